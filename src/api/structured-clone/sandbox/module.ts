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
  Array, ArrayBuffer, ArrayBufferIsView, ArrayFrom, ArrayIsArray, Error, EvalError, Map, Number, Object,
  ObjectDefineProperty, ObjectGetOwnPropertyDescriptor, ObjectGetPrototypeOf, ObjectHasOwn, ObjectKeys, Promise,
  RangeError, ReferenceError, SafeMap, SafeSet, Set, String, Symbol, SyntaxError, TypeError, URIError, Uint8Array,
  WeakMap, WeakSet,
} from '../../../sandbox/primordials.ts';
export interface StructuredCloneDeps {
  DOMException: new (message?: string, name?: string) => Error;
  /** The platform object's serialization: undefined for no platform object, null for none. */
  platformSerialization(value: object): ((value: object) => object) | null | undefined;
}

let DOMException: StructuredCloneDeps['DOMException'];
let platformSerialization: StructuredCloneDeps['platformSerialization'];

const dataCloneError = (what: string): Error => new DOMException(`${what} could not be cloned.`, 'DataCloneError');

// Brand checks through built-in methods: Symbol.toStringTag can lie, internal slots cannot.
function hasSlot(fn: Function, value: unknown): boolean {
  try { fn.call(value); return true; } catch { return false; }
}
const byteLengthGetter = ObjectGetOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength')!.get!;
const mapSizeGetter = ObjectGetOwnPropertyDescriptor(Map.prototype, 'size')!.get!;
const setSizeGetter = ObjectGetOwnPropertyDescriptor(Set.prototype, 'size')!.get!;
const regExpFlagsOk = (v: object): boolean => hasSlot(ObjectGetOwnPropertyDescriptor(RegExp.prototype, 'source')!.get!, v) && v !== RegExp.prototype;

const ERROR_TYPES: Record<string, ErrorConstructor> = {
  Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError,
};

type TypedArrayCtor = new (buffer: ArrayBuffer, byteOffset: number, length: number) => ArrayBufferView;

function structuredClone<T>(value: T, options?: { transfer?: readonly unknown[] }): T {
  const memory = new SafeMap<object, unknown>();
  const transfer = options?.transfer === undefined ? [] : ArrayFrom(options.transfer);
  const transferred: ArrayBuffer[] = [];
  for (const t of transfer) {
    // HTML §2.7.7 StructuredSerializeWithTransfer, steps 4-5: only ArrayBuffers (no
    // MessagePorts in a worker), each once, none already detached.
    if (!(t instanceof ArrayBuffer) || !hasSlot(byteLengthGetter, t)) throw dataCloneError('Value in the transfer list');
    if (memory.has(t)) throw new DOMException('ArrayBuffer at index is a duplicate in the transfer list.', 'DataCloneError');
    if ((t as ArrayBuffer & { detached: boolean }).detached) throw new DOMException('An ArrayBuffer is detached and could not be cloned.', 'DataCloneError');
    memory.set(t, copyArrayBuffer(t));
    transferred.push(t);
  }
  const result = cloneValue(value, memory) as T;
  for (const t of transferred) (t as ArrayBuffer & { transfer(): ArrayBuffer }).transfer();
  return result;
}

function copyArrayBuffer(buffer: ArrayBuffer): ArrayBuffer {
  const b = buffer as ArrayBuffer & { resizable: boolean; maxByteLength: number; detached: boolean };
  if (b.detached) throw new DOMException('An ArrayBuffer is detached and could not be cloned.', 'DataCloneError');
  if (!b.resizable) return buffer.slice(0);
  const copy = new ArrayBuffer(buffer.byteLength, { maxByteLength: b.maxByteLength } as never);
  new Uint8Array(copy).set(new Uint8Array(buffer));
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

  if (hasSlot(Boolean.prototype.valueOf, v)) out = Object(Boolean.prototype.valueOf.call(v));
  else if (hasSlot(Number.prototype.valueOf, v)) out = Object(Number.prototype.valueOf.call(v));
  else if (hasSlot(BigInt.prototype.valueOf, v)) out = Object(BigInt.prototype.valueOf.call(v));
  else if (hasSlot(String.prototype.valueOf, v)) out = Object(String.prototype.valueOf.call(v));
  else if (hasSlot(Symbol.prototype.valueOf, v)) throw dataCloneError('Symbol object');
  else if (hasSlot(Date.prototype.getTime, v)) out = new Date(Date.prototype.getTime.call(v));
  else if (regExpFlagsOk(v)) { const r = v as RegExp; out = new RegExp(r.source, r.flags); }
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
    const map = new SafeMap();
    memory.set(v, map);
    // Copy the entries first: the spec serializes a snapshot of the list.
    for (const [k, val] of ArrayFrom((v as Map<unknown, unknown>).entries())) map.set(cloneValue(k, memory), cloneValue(val, memory));
    return map;
  } else if (hasSlot(setSizeGetter, v)) {
    const set = new SafeSet();
    memory.set(v, set);
    for (const item of ArrayFrom(v as Set<unknown>)) set.add(cloneValue(item, memory));
    return set;
  } else if (v instanceof DOMException) {
    out = new DOMException((v as Error).message, (v as Error).name);
  } else if (Object.prototype.toString.call(v) === '[object Error]' || v instanceof Error) {
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
    if (platform === null) throw dataCloneError(`#<${Object.prototype.toString.call(v).slice(8, -1)}>`);
    out = platform(v);
  } else if (v instanceof Promise || v instanceof WeakMap || v instanceof WeakSet || v instanceof WeakRef) {
    throw dataCloneError(`#<${Object.prototype.toString.call(v).slice(8, -1)}>`);
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
  for (const key of ObjectKeys(from)) {
    if (!Object.prototype.propertyIsEnumerable.call(from, key)) continue;
    const value = cloneValue((from as Record<string, unknown>)[key], memory);
    ObjectDefineProperty(to, key, { __proto__: null, value, writable: true, enumerable: true, configurable: true });
  }
}

export function create(deps: StructuredCloneDeps): typeof structuredClone {
  ({ DOMException, platformSerialization } = deps);
  return structuredClone;
}
