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
import { MAX_VALUES, type PlatformBindingAnswer } from '../../bridge/operations.ts';
import { callBindingOperation } from '../../sandbox/host-calls.ts';
import { assetsMaker } from '../assets/sandbox.ts';
import { kvMaker } from '../kv/sandbox.ts';
import { requireRequestContext } from '../../sandbox/request-context.ts';
import { serviceMaker } from '../service/sandbox.ts';
import { utf8Encode } from '../encoding/sandbox.ts';
import type { OutgoingValue } from '../../sandbox/outgoing-payloads.ts';
import {
  ArrayBuffer, ArrayBufferIsView, ArrayBufferPrototypeGetByteLength, ArrayIsArray, DataViewPrototypeGetBuffer, DataViewPrototypeGetByteLength,
  DataViewPrototypeGetByteOffset, ObjectDefineProperty, ObjectFreeze, ObjectKeys, PromiseReject, TypedArrayPrototypeGetBuffer,
  TypedArrayPrototypeGetByteLength, TypedArrayPrototypeGetByteOffset, TypedArrayPrototypeGetSymbolToStringTag, TypedArrayPrototypeSet,
  TypeError, Uint8Array,
} from '../../sandbox/primordials.ts';

/**
 * What a call carries besides its JSON arguments: bytes (a buffer or a view), text (sent as
 * UTF-8), a value in parts (a stream's chunks, in order), or the unread body of request
 * `requestBody`, which the host reads itself: those bytes never enter the isolate.
 */
export type CallPayload = ArrayBuffer | ArrayBufferView | string | Uint8Array[] | { requestBody: number };

/** A platform binding's way to the host: `binding.call` for its env name. */
export type CallBinding = (method: string, args: unknown[], payload?: CallPayload | null) => Promise<PlatformBindingAnswer>;

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

/**
 * Up to this much crosses as an argument of the call, copied with it (a crossing of its own
 * costs more than copying this); a larger value is held for the host to take at the platform's
 * cost (src/sandbox/outgoing-payloads.ts), so the worker does not pay for copying megabytes out.
 */
const INLINE_BYTES = 64 * 1024;

/** `bytes` as a Uint8Array over the same memory, brand-checked with captured getters (no tenant getter runs). */
function byteView(bytes: ArrayBuffer | ArrayBufferView): Uint8Array {
  if (!ArrayBufferIsView(bytes)) return new Uint8Array(bytes as ArrayBuffer, 0, ArrayBufferPrototypeGetByteLength(bytes as ArrayBuffer));
  if (TypedArrayPrototypeGetSymbolToStringTag(bytes) !== undefined) {
    return new Uint8Array(TypedArrayPrototypeGetBuffer(bytes) as ArrayBuffer, TypedArrayPrototypeGetByteOffset(bytes), TypedArrayPrototypeGetByteLength(bytes));
  }
  const view = bytes as DataView;
  return new Uint8Array(DataViewPrototypeGetBuffer(view) as ArrayBuffer, DataViewPrototypeGetByteOffset(view), DataViewPrototypeGetByteLength(view));
}

/** Only these bytes, as an ArrayBuffer of their own (what crosses cheapest): `set`, not `slice`, which would look up a species constructor. */
function ownCopy(view: Uint8Array): ArrayBuffer {
  const own = new Uint8Array(TypedArrayPrototypeGetByteLength(view));
  TypedArrayPrototypeSet(own, view);
  return TypedArrayPrototypeGetBuffer(own) as ArrayBuffer;
}

/**
 * How `payload` crosses: [the call's `bytes` argument, its `requestBody` argument, the value the
 * host takes]. `bytes` is the value itself when small, `true` when the host takes it, else null.
 */
function crossingOf(payload: CallPayload | null | undefined): [ArrayBuffer | true | null, number | null, OutgoingValue | undefined] {
  if (payload === undefined || payload === null) return [null, null, undefined];
  if (typeof payload === 'string') {
    // UTF-8 is at most 3 bytes per UTF-16 unit: text that surely fits is encoded here.
    return payload.length * 3 <= INLINE_BYTES ? [ownCopy(utf8Encode(payload)), null, undefined] : [true, null, payload];
  }
  if (ArrayIsArray(payload)) {
    const parts = payload as Uint8Array[];
    let size = 0;
    for (let i = 0; i < parts.length; i++) size += TypedArrayPrototypeGetByteLength(parts[i]!);
    if (size > INLINE_BYTES) return [true, null, parts];
    const own = new Uint8Array(size);
    for (let i = 0, at = 0; i < parts.length; i++) {
      TypedArrayPrototypeSet(own, parts[i]!, at);
      at += TypedArrayPrototypeGetByteLength(parts[i]!);
    }
    return [TypedArrayPrototypeGetBuffer(own) as ArrayBuffer, null, undefined];
  }
  if (payload instanceof ArrayBuffer || ArrayBufferIsView(payload)) {
    const view = byteView(payload as ArrayBuffer | ArrayBufferView);
    return TypedArrayPrototypeGetByteLength(view) > INLINE_BYTES ? [true, null, [view]] : [ownCopy(view), null, undefined];
  }
  return [null, (payload as { requestBody: number }).requestBody, undefined];
}

/** `binding.call` for env name `name`, on behalf of the current request; refused in top-level code, as I/O is in Workers. */
function caller(name: string): CallBinding {
  return (method, args, payload) => {
    try {
      requireRequestContext(`env.${name}.${method}()`);
      const [bytes, requestBody, held] = crossingOf(payload);
      const listed = args.length > MAX_VALUES;
      return callBindingOperation('binding.call', [name, method, bytes, requestBody, listed], listed ? [args] : args, held) as Promise<PlatformBindingAnswer>;
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
