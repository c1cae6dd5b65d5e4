// Service bindings on `isolet serve`: what a deployment may bind. A binding may name a worker
// that does not exist yet (Cloudflare allows it: calls fail until it is deployed, with an error
// that says so), but never one of another account. Calls themselves do not go through the
// binding handlers: fetch() and RPC need streams both ways, and take their own path through the
// control process (src/supervisor/service-exchanges.ts, ProcessPool's service routing), where the
// same account rule is checked again at every call.

import { BindingError } from '../runtime/types.ts';
import { ApiError } from './api-error.ts';
import { registerBindingHandler } from './binding-handlers.ts';

registerBindingHandler('service', {
  async call(call) {
    // Only a sandbox taken over by tenant code sends this: the Fetcher calls its own operations.
    throw new BindingError('TypeError', `env.${call.name} is a service binding: call env.${call.name}.fetch() or its methods.`);
  },
  async checkDeploy(spec, deploy, context) {
    const target = await context.store.getWorker(spec.service);
    if (target !== undefined && target.accountId !== deploy.account) {
      throw new ApiError(
        'forbidden',
        `The binding ${deploy.name} names the worker '${spec.service}', which belongs to another account: a service binding reaches only workers of your own account. Fix: name one of your workers.`,
      );
    }
  },
});
