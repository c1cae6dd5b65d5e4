// structuredClone() (HTML §2.7 "safe passing of structured data"): the algorithm. A sandbox
// module (see src/runtime/sandbox-modules.ts), evaluated in an isolate the first time its code
// calls structuredClone(); in the snapshot it was heap in every idle isolate.
//
// Serialize and deserialize are fused into one walk that builds the copy directly: within one
// realm that is observably the same (properties are read in the spec's order, and shared or
// cyclic references map through one memory), and it allocates no intermediate record.
// One deviation: transferred ArrayBuffers are copied and then detached, instead of moved, so
// that views of a transferred buffer met later in the walk can still read their offsets.

import {
  Array, ArrayBuffer, ArrayBufferIsView, ArrayBufferPrototypeGetDetached, ArrayBufferPrototypeSlice,
  ArrayBufferPrototypeTransfer, ArrayFrom, ArrayIsArray, ArrayPrototypePush, Boolean, DataView, Error, EvalError,
  Map, MapPrototypeForEach, MapPrototypeSet, Number, Object, ObjectDefineProperty, ObjectGetOwnPropertyDescriptor,
  ObjectGetPrototypeOf, ObjectHasOwn, ObjectKeys, ObjectPrototypeToString, Promise, RangeError, ReferenceError,
  ReflectApply, SafeMap, Set, SetPrototypeAdd, String, StringPrototypeSlice, Symbol, SyntaxError, TypeError, URIError,
  TypedArrayPrototypeSet, Uint8Array, WeakMap, WeakSet, safeSetValues,
} from '../../../sandbox/primordials.ts';
export interface StructuredCloneDeps {
  DOMException: new (message?: string, name?: string) => Error;
  /** The platform object's serialization: undefined for no platform object, null for none. */
  platformSerialization(value: object): ((value: object) => object) | null | undefined;
}

let DOMException: StructuredCloneDeps['DOMException'];
let platformSerialization: StructuredCloneDeps['platformSerialization'];

const dataCloneError = (what: string): Error => new DOMException(`${what} could not be cloned.`, 'DataCloneError');

// Taken when the module loads, with the original built-ins in place (createModule): tenant
// code may have replaced the globals and methods since.
const { BigInt, Date, RegExp, WeakRef } = globalThis;
const BooleanValueOf = Boolean.prototype.valueOf, NumberValueOf = Number.prototype.valueOf;
const BigIntValueOf = BigInt.prototype.valueOf, StringValueOf = String.prototype.valueOf;
const SymbolValueOf = Symbol.prototype.valueOf, DateGetTime = Date.prototype.getTime;
const propertyIsEnumerable = Object.prototype.propertyIsEnumerable;
const regExpSource = ObjectGetOwnPropertyDescriptor(RegExp.prototype, 'source')!.get!;
const regExpFlags = ObjectGetOwnPropertyDescriptor(RegExp.prototype, 'flags')!.get!;

// Brand checks through built-in methods: Symbol.toStringTag can lie, internal slots cannot.
function hasSlot(fn: Function, value: unknown): boolean {
  try { ReflectApply(fn, value, []); return true; } catch { return false; }
}
const tagOf = (v: object): string => StringPrototypeSlice(ObjectPrototypeToString(v), 8, -1);
const byteLengthGetter = ObjectGetOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength')!.get!;
const mapSizeGetter = ObjectGetOwnPropertyDescriptor(Map.prototype, 'size')!.get!;
const setSizeGetter = ObjectGetOwnPropertyDescriptor(Set.prototype, 'size')!.get!;
const regExpFlagsOk = (v: object): boolean => hasSlot(regExpSource, v) && v !== RegExp.prototype;

const ERROR_TYPES: Record<string, ErrorConstructor> = {
  Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError,
};

type TypedArrayCtor = new (buffer: ArrayBuffer, byteOffset: number, length: number) => ArrayBufferView;

function structuredClone<T>(value: T, options?: { transfer?: readonly unknown[] }): T {
  const memory = new SafeMap<object, unknown>();
  const list = options?.transfer;
  // An array by index (as workerd reads a sequence given as an array), other iterables iterated.
  const transfer = list === undefined ? [] : ArrayIsArray(list) ? list : ArrayFrom(list);
  const transferred: ArrayBuffer[] = [];
  for (let i = 0; i < transfer.length; i++) {
    const t = transfer[i];
    // HTML §2.7.7 StructuredSerializeWithTransfer, steps 4-5: only ArrayBuffers (no
    // MessagePorts in a worker), each once, none already detached.
    if (!(t instanceof ArrayBuffer) || !hasSlot(byteLengthGetter, t)) throw dataCloneError('Value in the transfer list');
    if (memory.has(t)) throw new DOMException('ArrayBuffer at index is a duplicate in the transfer list.', 'DataCloneError');
    if (ArrayBufferPrototypeGetDetached(t)) throw new DOMException('An ArrayBuffer is detached and could not be cloned.', 'DataCloneError');
    memory.set(t, copyArrayBuffer(t));
    ArrayPrototypePush(transferred, t);
  }
  const result = cloneValue(value, memory) as T;
  for (let i = 0; i < transferred.length; i++) ArrayBufferPrototypeTransfer(transferred[i]!);
  return result;
}

function copyArrayBuffer(buffer: ArrayBuffer): ArrayBuffer {
  const b = buffer as ArrayBuffer & { resizable: boolean; maxByteLength: number; detached: boolean };
  if (ArrayBufferPrototypeGetDetached(buffer)) throw new DOMException('An ArrayBuffer is detached and could not be cloned.', 'DataCloneError');
  if (!b.resizable) return ArrayBufferPrototypeSlice(buffer, 0);
  const copy = new ArrayBuffer(buffer.byteLength, { maxByteLength: b.maxByteLength } as never);
  TypedArrayPrototypeSet(new Uint8Array(copy), new Uint8Array(buffer));
  return copy;
}

function cloneValue(value: unknown, memory: Map<object, unknown>): unknown {
  // HTML §2.7.3 StructuredSerializeInternal, step by step.
  if (typeof value === 'symbol') throw dataCloneError('Symbol()');
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return value;
  if (memory.has(value)) return memory.get(value);
  if (typeof value === 'function') throw dataCloneError(`${(value as Function).name || 'function'}`);
  const v = value as object;
  let out: unknown;
  let platform: ((value: object) => object) | null | undefined;

  if (hasSlot(BooleanValueOf, v)) out = Object(ReflectApply(BooleanValueOf, v, []));
  else if (hasSlot(NumberValueOf, v)) out = Object(ReflectApply(NumberValueOf, v, []));
  else if (hasSlot(BigIntValueOf, v)) out = Object(ReflectApply(BigIntValueOf, v, []));
  else if (hasSlot(StringValueOf, v)) out = Object(ReflectApply(StringValueOf, v, []));
  else if (hasSlot(SymbolValueOf, v)) throw dataCloneError('Symbol object');
  else if (hasSlot(DateGetTime, v)) out = new Date(ReflectApply(DateGetTime, v, []));
  else if (regExpFlagsOk(v)) out = new RegExp(ReflectApply(regExpSource, v, []), ReflectApply(regExpFlags, v, []));
  else if (hasSlot(byteLengthGetter, v)) out = copyArrayBuffer(v as ArrayBuffer);
  else if (ArrayBufferIsView(v)) {
    // The view's buffer goes through the memory, so views sharing a buffer still share one.
    const view = v as ArrayBufferView & { length?: number };
    const buffer = cloneValue(view.buffer, memory) as ArrayBuffer;
    if (view instanceof DataView) out = new DataView(buffer, view.byteOffset, view.byteLength);
    else {
      const Ctor = (ObjectGetPrototypeOf(ObjectGetPrototypeOf(view)) === ObjectGetPrototypeOf(Uint8Array.prototype)
        ? view.constructor : Uint8Array) as TypedArrayCtor;
      out = new Ctor(buffer, view.byteOffset, view.length!);
    }
  } else if (hasSlot(mapSizeGetter, v)) {
    // The tenant's Map, made and filled with the captured methods: a SafeMap would hand it the
    // runtime's own class.
    const map = new Map();
    memory.set(v, map);
    // Copy the entries first: the spec serializes a snapshot of the list.
    const entries: unknown[] = [];
    MapPrototypeForEach(v as Map<unknown, unknown>, (val, k) => { ArrayPrototypePush(entries, k, val); });
    for (let i = 0; i < entries.length; i += 2) MapPrototypeSet(map, cloneValue(entries[i], memory), cloneValue(entries[i + 1], memory));
    return map;
  } else if (hasSlot(setSizeGetter, v)) {
    const set = new Set();
    memory.set(v, set);
    const items: unknown[] = [];
    for (const item of safeSetValues(v as Set<unknown>)) ArrayPrototypePush(items, item);
    for (let i = 0; i < items.length; i++) SetPrototypeAdd(set, cloneValue(items[i], memory));
    return set;
  } else if (v instanceof DOMException) {
    out = new DOMException((v as Error).message, (v as Error).name);
  } else if (ObjectPrototypeToString(v) === '[object Error]' || v instanceof Error) {
    // HTML: name (one of the standard ones, else "Error"), message, and the engine's stack.
    const nameProp = (v as Error).name;
    const Ctor = typeof nameProp === 'string' && ObjectHasOwn(ERROR_TYPES, nameProp) ? ERROR_TYPES[nameProp] : Error;
    const desc = ObjectGetOwnPropertyDescriptor(v, 'message');
    const err = desc && 'value' in desc ? new Ctor(String(desc.value)) : new Ctor();
    memory.set(v, err);
    const stack = (v as Error).stack;
    if (typeof stack === 'string') ObjectDefineProperty(err, 'stack', { __proto__: null, value: stack, writable: true, configurable: true });
    if (ObjectHasOwn(v, 'cause')) {
      ObjectDefineProperty(err, 'cause', { __proto__: null, value: cloneValue((v as Error).cause, memory), writable: true, configurable: true });
    }
    return err;
  } else if (ArrayIsArray(v)) {
    const arr = new Array((v as unknown[]).length);
    memory.set(v, arr);
    copyProperties(v, arr, memory);
    return arr;
  } else if ((platform = platformSerialization(v)) !== undefined) {
    if (platform === null) throw dataCloneError(`#<${tagOf(v)}>`);
    out = platform(v);
  } else if (v instanceof Promise || v instanceof WeakMap || v instanceof WeakSet || v instanceof WeakRef) {
    throw dataCloneError(`#<${tagOf(v)}>`);
  } else {
    // Any other object, whatever its prototype, is copied as a plain object.
    const obj: Record<string, unknown> = {};
    memory.set(v, obj);
    copyProperties(v, obj, memory);
    return obj;
  }
  memory.set(v, out);
  return out;
}

// HTML §2.7.3 step 26: own enumerable string-keyed properties, read with [[Get]].
function copyProperties(from: object, to: Record<string, unknown> | unknown[], memory: Map<object, unknown>): void {
  const keys = ObjectKeys(from);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (!ReflectApply(propertyIsEnumerable, from, [key])) continue;
    const value = cloneValue((from as Record<string, unknown>)[key], memory);
    ObjectDefineProperty(to, key, { __proto__: null, value, writable: true, enumerable: true, configurable: true });
  }
}

export function create(deps: StructuredCloneDeps): typeof structuredClone {
  ({ DOMException, platformSerialization } = deps);
  return structuredClone;
}
