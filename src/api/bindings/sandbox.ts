// The sandbox half of bindings: `env` built from the worker's vars and bindings, once, when the
// worker registers (src/sandbox/main.ts). A host binding becomes a frozen plain object whose
// methods return promises; a platform binding (BindingSpec) becomes the object its type's maker
// returns (a KVNamespace for 'kv', a Fetcher for 'service' and 'assets'). Every call goes out
// through the one host operation `binding.call`; the host half (./host.ts) decides what a name
// means, never this side.
//
// A type's maker lives in that type's sandbox module (src/api/<type>/sandbox/module.ts, listed in
// src/runtime/sandbox-modules.ts), loaded by the first worker of an isolate that has such a
// binding: the snapshot every isolate starts from does not grow with the binding APIs. A type
// plugs in with one line in MAKERS: a function that loads its module (createModule) and returns
// the maker, which gets `call`, the type's way to the host (JSON arguments and at most one binary
// payload out; a JSON value and at most one binary payload back).

import type { BindingSpec, BindingType, EnvBinding } from '../../bridge/bindings.ts';
import type { PlatformBindingAnswer } from '../../bridge/operations.ts';
import { callBindingOperation } from '../../sandbox/host-calls.ts';
import { assetsMaker } from '../assets/sandbox.ts';
import { kvMaker } from '../kv/sandbox.ts';
import { requireRequestContext } from '../../sandbox/request-context.ts';
import { serviceMaker } from '../service/sandbox.ts';
import {
  ArrayBufferIsView, ArrayIsArray, ObjectDefineProperty, ObjectFreeze, ObjectKeys, PromiseReject,
  TypedArrayPrototypeGetBuffer, TypedArrayPrototypeSlice, TypeError, Uint8Array,
} from '../../sandbox/primordials.ts';

/** A platform binding's way to the host: `binding.call` for its env name. */
export type CallBinding = (method: string, args: unknown[], bytes?: ArrayBuffer | ArrayBufferView | null) => Promise<PlatformBindingAnswer>;

/** Makes env's object for one binding of type T. */
export type BindingMaker<T extends BindingType = BindingType> = (name: string, spec: Extract<BindingSpec, { type: T }>, call: CallBinding) => object;

/** Each binding type's maker, loaded on first use (see the top of this file). */
const MAKERS: { [T in BindingType]: () => BindingMaker<T> } = {
  kv: kvMaker,
  service: serviceMaker,
  assets: assetsMaker,
  raw: () => rawBinding,
};

const loaded: Record<string, BindingMaker | undefined> = { __proto__: null } as never;

function makerOf(type: BindingType): BindingMaker {
  return (loaded[type] ??= (MAKERS[type] as () => BindingMaker)());
}

/** Only the view's own bytes, as an ArrayBuffer of their own (what crosses cheapest). */
function ownBuffer(bytes: ArrayBuffer | ArrayBufferView): ArrayBuffer {
  if (!ArrayBufferIsView(bytes)) return bytes as ArrayBuffer;
  const view = bytes as ArrayBufferView;
  return TypedArrayPrototypeGetBuffer(TypedArrayPrototypeSlice(new Uint8Array(view.buffer, view.byteOffset, view.byteLength))) as ArrayBuffer;
}

/** `binding.call` for env name `name`, on behalf of the current request; refused in top-level code, as I/O is in Workers. */
function caller(name: string): CallBinding {
  return (method, args, bytes) => {
    try {
      requireRequestContext(`env.${name}.${method}()`);
      return callBindingOperation([name, method, args, bytes === undefined || bytes === null ? null : ownBuffer(bytes)]) as Promise<PlatformBindingAnswer>;
    } catch (error) {
      return PromiseReject(error);
    }
  };
}

/** A host binding: each method sends its arguments (structured-cloned) and resolves with the host's result. */
function hostBinding(name: string, methods: string[]): object {
  const call = caller(name);
  const object: Record<string, unknown> = {};
  for (let i = 0; i < methods.length; i++) {
    const method = methods[i]!;
    // A method (not a constructor, no prototype) named as the host's function; rest parameters
    // take no iterator a tenant could replace.
    const fn = {
      [method](...args: unknown[]): Promise<unknown> {
        return call(method, args, null);
      },
    }[method];
    ObjectDefineProperty(object, method, { __proto__: null, value: fn, writable: false, enumerable: true, configurable: false } as PropertyDescriptor);
  }
  return ObjectFreeze(object);
}

/** 'raw': the call as it crosses, for handlers registered without a sandbox module of their own. */
const rawBinding: BindingMaker<'raw'> = (name, _spec, call) =>
  ObjectFreeze({
    call(method: unknown, args: unknown = [], bytes: unknown = null): Promise<PlatformBindingAnswer> {
      if (typeof method !== 'string' || !ArrayIsArray(args)) return PromiseReject(new TypeError(`env.${name}.call(method, args, bytes): method is a string and args an array.`));
      if (bytes !== null && !(bytes instanceof ArrayBuffer) && !ArrayBufferIsView(bytes)) return PromiseReject(new TypeError(`env.${name}.call(): bytes is an ArrayBuffer, a view of one, or null.`));
      return call(method, args as unknown[], bytes as ArrayBuffer | ArrayBufferView | null);
    },
  });

/**
 * Adds each binding's object to `env` (the worker's vars, copied in). Throws when a binding
 * cannot be made; the worker then does not load, and the message says why.
 */
export function addBindings(env: Record<string, unknown>, bindings: Record<string, EnvBinding>): void {
  const names = ObjectKeys(bindings);
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const binding = bindings[name]!;
    const value = 'methods' in binding
      ? hostBinding(name, binding.methods)
      : makerOf(binding.spec.type)(name, binding.spec, caller(name));
    ObjectDefineProperty(env, name, { __proto__: null, value, writable: true, enumerable: true, configurable: true } as PropertyDescriptor);
  }
}
