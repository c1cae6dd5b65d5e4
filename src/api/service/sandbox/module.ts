// A service binding in env (`env.OTHER`): a Fetcher whose `fetch(input, init)` sends a request
// to the bound worker, with global fetch()'s argument handling (../../fetch/sandbox.ts), and
// whose every other property is an RPC method of the bound entrypoint: `env.OTHER.add(1, 2)`
// sends the arguments (structured-cloned) through the `service.call` operation and resolves with
// the method's result. A sandbox module (src/runtime/sandbox-modules.ts), loaded by the first
// worker of an isolate that has a service binding.
//
// The host decides what a binding name means (the worker's definition), never this side.

import type { BindingMaker } from '../../bindings/sandbox.ts';
import {
  ObjectCreate, ObjectDefineProperty, ObjectFreeze, PromisePrototypeThen, PromiseReject, Proxy, ReflectHas,
} from '../../../sandbox/primordials.ts';

export interface ServiceDeps {
  /** fetch() through a service binding (serviceFetch in ../../fetch/sandbox.ts). */
  fetch(binding: string, input: unknown, init: unknown, argumentCount: number): Promise<unknown>;
  /** `service.call` with (binding, method) carrying `args`, its errors by the name the host gave. */
  call(binding: string, method: string, args: unknown[]): Promise<unknown>;
  requireRequestContext(what: string): void;
  /** The name of a platform object RPC cannot copy (a Request, a stream, ...), when the value is one. */
  platformObjectName(value: unknown): string | undefined;
  DOMException: new (message: string, name: string) => Error;
}

let deps: ServiceDeps;

/** Workers' Fetcher: its instances are the service bindings; the class itself is not exposed. */
class Fetcher {}
ObjectDefineProperty(Fetcher, 'name', { __proto__: null, value: 'Fetcher', configurable: true } as PropertyDescriptor);

function rpc(binding: string, method: string, args: unknown[]): Promise<unknown> {
  try {
    deps.requireRequestContext(`env.${binding}.${method}()`);
    for (let i = 0; i < args.length; i++) {
      const platform = deps.platformObjectName(args[i]);
      if (platform !== undefined) {
        throw new deps.DOMException(`Argument ${i + 1} of env.${binding}.${method}() is a ${platform}, which isolet's RPC cannot pass yet: pass plain data (objects, arrays, strings, numbers, Maps, Dates, bytes), or send a ${platform} with env.${binding}.fetch().`, 'DataCloneError');
      }
    }
    // The result crosses as a list of one (src/sandbox/dispatch.ts handleCall).
    return PromisePrototypeThen(deps.call(binding, method, args), firstOf);
  } catch (error) {
    return PromiseReject(error);
  }
}

function firstOf(list: unknown): unknown {
  return (list as unknown[])[0];
}

/** Names a stub never answers: a binding is not a thenable, and JSON.stringify(env) does not call it. */
function notAMethod(name: string): boolean {
  return name === 'then' || name === 'toJSON';
}

function fetcher(binding: string): object {
  const target = ObjectFreeze(ObjectCreate(Fetcher.prototype));
  const stubs = ObjectCreate(null) as Record<string, Function>;
  const fetch = function fetch(input: unknown, init?: unknown): Promise<unknown> {
    return deps.fetch(binding, input, init, arguments.length);
  };
  return new Proxy(target, {
    __proto__: null,
    get(object: object, property: string | symbol): unknown {
      if (property === 'fetch') return fetch;
      if (typeof property !== 'string' || notAMethod(property)) return undefined;
      // What every object has (toString, constructor, ...) stays what it is.
      if (ReflectHas(object, property)) return (object as Record<string, unknown>)[property];
      let stub = stubs[property];
      if (stub === undefined) {
        const method = property;
        // Named as the method, not a constructor; rest parameters take no iterator a tenant could replace.
        stub = { [method](...args: unknown[]): Promise<unknown> {
          return rpc(binding, method, args);
        } }[method]!;
        stubs[property] = stub;
      }
      return stub;
    },
  } as ProxyHandler<object>);
}

export function create(serviceDeps: ServiceDeps): BindingMaker<'service'> {
  deps = serviceDeps;
  return (name) => fetcher(name);
}
