// The rules every service-binding call is held to, wherever its target runs: the Runtime that
// holds both workers (runtime.ts), or the control process of `isolet serve`, which decides for
// calls between runtime processes (src/supervisor/service-router.ts).
//
// A call carries the chain of calls it came through, kept on the host side of the wall (in each
// request's RequestContext, and in the messages the control process sends), never in anything a
// worker or a client sends: a worker can neither forge nor reset it. A chain deeper than
// MAX_SERVICE_DEPTH, or one that would reach an entrypoint already in it, is refused.

import { BindingError, type ServiceCall } from './types.ts';

/** Service calls one request may nest: A -> B is one. */
export const MAX_SERVICE_DEPTH = 16;

/** How a worker's entrypoint appears in a chain: its name, with `#Entrypoint` for a named one. */
export function serviceKey(worker: string, entrypoint?: string): string {
  return entrypoint === undefined || entrypoint === '' ? worker : `${worker}#${entrypoint}`;
}

/**
 * The chain the called worker's request comes with (the called worker adds its own key): the
 * call's; a BindingError for a cycle or a chain too deep.
 */
export function chainOf(call: ServiceCall): readonly string[] {
  const key = serviceKey(call.service, call.entrypoint);
  const chain = [...call.chain, key];
  if (call.chain.includes(key)) {
    throw new BindingError('Error', `env.${call.name}.fetch() or RPC would make a cycle of service calls (${chain.join(' -> ')}): a worker's entrypoint may not be called again by a call it made. Break the cycle, or give the work its own entrypoint.`);
  }
  if (chain.length - 1 > MAX_SERVICE_DEPTH) {
    throw new BindingError('Error', `env.${call.name}: service calls nest more than ${MAX_SERVICE_DEPTH} deep (${chain.join(' -> ')}). Make the chain shorter.`);
  }
  return call.chain;
}

/** The error of a call to a worker that is not there (yet: a binding may name one before it is deployed). */
export function noSuchService(call: ServiceCall, fix: string): BindingError {
  return new BindingError('Error', `env.${call.name} names the worker '${call.service}', which is not running here. Fix: ${fix}`);
}

/** The error of a call to a worker of another account. */
export function otherAccount(call: ServiceCall): BindingError {
  return new BindingError('Error', `env.${call.name} names the worker '${call.service}', which belongs to another account: a service binding reaches only workers of its own account.`);
}
