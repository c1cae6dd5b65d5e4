// Where `isolet serve` answers workers' platform bindings: one handler per binding type,
// registered here (the KV, services and assets modules each register theirs), and the one
// BindingHost that dispatches to them. Calls reach it from runtime processes through the
// control process's channel (src/supervisor/runtime-process.ts resolves each call's spec from
// what it deployed there), or straight from the Runtime with `--processes 0`. A handler sees a
// resolved BindingCall: the spec and account are the server's, never the caller's say-so.
//
// A deployment's bindings are checked here too, before its code runs: each type must have a
// handler on this server, and the handler's `checkDeploy` decides ownership (a KV namespace of
// the deploying account, a service in it).

import { BindingError, type BindingAnswer, type BindingCall, type BindingHost, type BindingSpec } from '../runtime/types.ts';
import type { BindingType } from '../bridge/bindings.ts';
import type { Store } from '../store/store.ts';
import { ApiError } from './api-error.ts';
import type { ServerLog } from './logger.ts';

/** What handlers work with: the server's store and log. */
export interface BindingContext {
  store: Store;
  log: ServerLog;
}

export type SpecOf<T extends BindingType> = Extract<BindingSpec, { type: T }>;

/** Where a binding is being deployed. */
export interface BindingDeploy {
  /** The deploying account's id. */
  account: string;
  worker: string;
  /** The binding's env name. */
  name: string;
}

export interface BindingHandler<T extends BindingType = BindingType> {
  /**
   * Answers one call. A BindingError reaches the worker as its name and message; any other
   * error is logged here and the worker gets a message that names no internals.
   */
  call(call: BindingCall & { binding: SpecOf<T> }, context: BindingContext): Promise<BindingAnswer>;
  /** Checks at deploy that the account may bind this spec; throws an ApiError ('forbidden', 'invalid') that says why. */
  checkDeploy?(spec: SpecOf<T>, deploy: BindingDeploy, context: BindingContext): Promise<void>;
}

const handlers = new Map<BindingType, BindingHandler>();

/** Registers the handler of a binding type; returns what unregisters it. */
export function registerBindingHandler<T extends BindingType>(type: T, handler: BindingHandler<T>): () => void {
  if (handlers.has(type)) throw new Error(`A handler for ${type} bindings is registered already.`);
  handlers.set(type, handler as unknown as BindingHandler);
  return () => {
    if (handlers.get(type) === (handler as unknown as BindingHandler)) handlers.delete(type);
  };
}

/** The BindingHost of a server: each call to its type's handler, errors made safe to show a worker. */
export function serverBindingHost(context: BindingContext): BindingHost {
  return {
    async call(call) {
      const what = `env.${call.name}.${call.method}()`;
      const handler = handlers.get(call.binding.type);
      if (handler === undefined) throw new BindingError('Error', `${what}: ${call.binding.type} bindings are not available on this server.`);
      try {
        return await handler.call(call, context);
      } catch (error) {
        if (error instanceof BindingError) throw error;
        context.log('error', 'binding', 'a binding call failed', {
          worker: call.worker, account: call.account, binding: call.name, type: call.binding.type, method: call.method, error: String(error),
        });
        throw new BindingError('Error', `${what} failed on the server; its log says why.`);
      }
    },
  };
}

/** Refuses (ApiError) a deployment binding a type this server has no handler for, or what its handler's checkDeploy refuses. */
export async function checkDeployBindings(
  bindings: Record<string, BindingSpec> | undefined,
  deploy: Omit<BindingDeploy, 'name'>,
  context: BindingContext,
): Promise<void> {
  for (const [name, spec] of Object.entries(bindings ?? {})) {
    const handler = handlers.get(spec.type);
    if (handler === undefined) throw new ApiError('invalid', `The binding ${name} is of type ${spec.type}, which this server does not offer: remove it from the deployment.`);
    await handler.checkDeploy?.(spec, { ...deploy, name }, context);
  }
}
