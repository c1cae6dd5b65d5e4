// KV bindings on `isolet serve`: the control process answers a worker's KV calls from the
// store, for the worker's account (a namespace of another account does not exist for it), and
// refuses at deploy a binding to a namespace the deploying account does not have. Registered
// when this module loads (server.ts imports it), once per process.

import { answerKvCall } from '../bindings/kv/kv-calls.ts';
import { ApiError } from './api-error.ts';
import { registerBindingHandler, type BindingHandler } from './binding-handlers.ts';

export const kvBindingHandler: BindingHandler<'kv'> = {
  call: (call, { store }) =>
    answerKvCall(store.kv, { name: call.name, namespaceId: call.binding.namespaceId, owner: call.account, method: call.method, args: call.args, bytes: call.bytes }),

  async checkDeploy(spec, deploy, { store }) {
    if ((await store.kv.getNamespace(spec.namespaceId, deploy.account)) !== undefined) return;
    // The same words whether the namespace is another account's or nobody's.
    throw new ApiError(
      'invalid',
      `The binding ${deploy.name} names the KV namespace '${spec.namespaceId}', which this account does not have: ` +
        "create one with 'isolet kv namespace create <title>' and bind its id (kv_namespaces in wrangler.toml).",
    );
  },
};

registerBindingHandler('kv', kvBindingHandler);
