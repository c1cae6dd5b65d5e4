// The built-ins the sandbox runtime runs on, captured before any tenant code runs (as Node's
// `primordials` and Deno's `core.primordials`). Tenant code may replace any built-in: bundled
// polyfills and instrumentation do (core-js, zone.js), and so may a hostile worker. The
// platform's own classes (Headers, Request, Response, URL, the encoders) call these captured
// functions instead, so that what a tenant does to `Array.prototype.push` or
// `Promise.prototype.then` changes nothing in how they behave or how requests are answered.
//
// Methods are uncurried: `ArrayPrototypePush(array, x)` is the original `array.push(x)`. An
// uncurried method is `call` bound to the original method, so calling it looks nothing up.
// SafeMap/SafeSet have their methods as own properties, so `new SafeMap().get(k)` finds the
// original `get` however Map.prototype has been changed.
//
// The snapshot evaluates this module before any tenant code. Sandbox modules loaded on first
// use (src/runtime/sandbox-modules.ts) run on these same values, handed to them when they load
// (primordialValues, src/runtime/shared-primordials.ts); what their own top-level code takes
// from the realm it takes with the originals recorded here back in place (withOriginalIntrinsics).
//
// None is marked pure: the snapshot keeps every one, whether or not its own code uses it, for
// the sandbox modules that do.

/* eslint-disable @typescript-eslint/no-explicit-any */
type AnyFunction = (...args: any[]) => any;

// Captured first, from the untouched realm; everything below is built from these.
const { apply: ReflectApplyOriginal, getOwnPropertyDescriptor: GetOwnDescInherits, defineProperty: DefineProp, deleteProperty: DeleteProp, setPrototypeOf: SetProto } = Reflect;

/**
 * `holder`'s own descriptor of `key` with a null prototype. The engine makes descriptors as plain
 * objects, so reading `.get` of a data property's descriptor, or `.value` of an accessor's, or
 * passing one back to defineProperty, would find what a tenant put on Object.prototype (a `get`
 * or a `value` there makes every such descriptor invalid, or an accessor of it).
 */
function GetOwnDesc(holder: object, key: PropertyKey): PropertyDescriptor | undefined {
  const desc = GetOwnDescInherits(holder, key);
  if (desc !== undefined) SetProto(desc, null);
  return desc;
}
const bindCall: (fn: AnyFunction) => AnyFunction = Function.prototype.bind.bind(Function.prototype.call);

/**
 * Every capture, for withOriginalIntrinsics: (holder, key, original value or getter, whether it
 * is a getter) in a row. Flat, as an idle isolate pays for every object here.
 */
const recorded: unknown[] = [];

/** The original `holder[key]` (its getter, for an accessor), recorded. */
function own<T>(holder: object, key: PropertyKey): T {
  const desc = GetOwnDesc(holder, key)!;
  const accessor = desc.get !== undefined;
  const value = accessor ? desc.get : desc.value;
  recorded[recorded.length] = holder;
  recorded[recorded.length] = key;
  recorded[recorded.length] = value;
  recorded[recorded.length] = accessor;
  return value as T;
}

/** The original method `holder[key]`, uncurried: (self, ...args) => self.key(...args). */
function uncurry<F>(holder: object, key: PropertyKey): F {
  return bindCall(own<AnyFunction>(holder, key)) as F;
}

/** The original getter of `holder[key]`, uncurried: (self) => self.key. */
function getter<F>(holder: object, key: PropertyKey): F {
  return bindCall(own<AnyFunction>(holder, key)) as F;
}

const G = globalThis as unknown as Record<string, any>;

// Namespaces and constructors a sandbox module's top-level code or its libraries may take when it loads.
for (const name of ['Function', 'Reflect', 'JSON', 'Math', 'BigInt']) own(G, name);
// Taken by sandbox modules when they load: fflate's tables, structuredClone's brand checks.
for (const name of ['Uint16Array', 'Int32Array', 'WeakRef']) own(G, name);
for (const C of [G.Boolean, G.Number, G.BigInt, G.String, G.Symbol]) own(C.prototype, 'valueOf');
own(G.RegExp.prototype, 'source');
own(G.RegExp.prototype, 'flags');
own(G.Object.prototype, 'propertyIsEnumerable');
own(G.Function.prototype, 'bind');
own(G.Function.prototype, 'call');
own(G.Function.prototype, 'apply');
// The bundler's helpers in a sandbox module take it when the module loads (`__hasOwnProp`).
own(G.Object.prototype, 'hasOwnProperty');
own(Reflect, 'getOwnPropertyDescriptor');
own(Reflect, 'deleteProperty');
own(Reflect, 'apply');
own(Reflect, 'defineProperty');

// The constructors and namespaces themselves: sandbox code imports these in place of the
// globals of the same names (a tenant may replace `globalThis.Promise`).
export const Array: ArrayConstructor = own(G, 'Array');
export const ArrayBuffer: ArrayBufferConstructor = own(G, 'ArrayBuffer');
export const Boolean: BooleanConstructor = own(G, 'Boolean');
export const DataView: DataViewConstructor = own(G, 'DataView');
export const Date: DateConstructor = own(G, 'Date');
export const Error: ErrorConstructor = own(G, 'Error');
export const FinalizationRegistry: FinalizationRegistryConstructor = own(G, 'FinalizationRegistry');
export const EvalError: EvalErrorConstructor = own(G, 'EvalError');
export const Map: MapConstructor = own(G, 'Map');
export const Number: NumberConstructor = own(G, 'Number');
export const Object: ObjectConstructor = own(G, 'Object');
export const Promise: PromiseConstructor = own(G, 'Promise');
export const RangeError: RangeErrorConstructor = own(G, 'RangeError');
export const ReferenceError: ReferenceErrorConstructor = own(G, 'ReferenceError');
export const RegExp: RegExpConstructor = own(G, 'RegExp');
export const Set: SetConstructor = own(G, 'Set');
export const String: StringConstructor = own(G, 'String');
export const Symbol: SymbolConstructor = own(G, 'Symbol');
export const SyntaxError: SyntaxErrorConstructor = own(G, 'SyntaxError');
export const TypeError: TypeErrorConstructor = own(G, 'TypeError');
export const Uint8Array: Uint8ArrayConstructor = own(G, 'Uint8Array');
export const URIError: URIErrorConstructor = own(G, 'URIError');
export const WeakMap: WeakMapConstructor = own(G, 'WeakMap');
export const WeakSet: WeakSetConstructor = own(G, 'WeakSet');
export const Proxy: ProxyConstructor = own(G, 'Proxy');

// Well-known symbols are read-only, but `Symbol` itself can be replaced.
export const SymbolIterator: typeof globalThis.Symbol.iterator = globalThis.Symbol.iterator;
export const SymbolAsyncIterator: typeof globalThis.Symbol.asyncIterator = globalThis.Symbol.asyncIterator;
export const SymbolToStringTag: typeof globalThis.Symbol.toStringTag = globalThis.Symbol.toStringTag;
export const SymbolHasInstance: typeof globalThis.Symbol.hasInstance = globalThis.Symbol.hasInstance;

// Reflect
export const ReflectApply: typeof Reflect.apply = own(Reflect, 'apply');
export const ReflectConstruct: typeof Reflect.construct = own(Reflect, 'construct');
export const ReflectDefineProperty: typeof Reflect.defineProperty = own(Reflect, 'defineProperty');
export const ReflectGetOwnPropertyDescriptor: typeof Reflect.getOwnPropertyDescriptor = own(Reflect, 'getOwnPropertyDescriptor');
export const ReflectGetPrototypeOf: typeof Reflect.getPrototypeOf = own(Reflect, 'getPrototypeOf');
export const ReflectOwnKeys: typeof Reflect.ownKeys = own(Reflect, 'ownKeys');
export const ReflectHas: typeof Reflect.has = own(Reflect, 'has');

// Object
export const ObjectAssign: typeof Object.assign = own(G.Object, 'assign');
export const ObjectCreate: typeof Object.create = own(G.Object, 'create');
/** A property descriptor; give it `__proto__: null`, so that no accessor on Object.prototype joins it. */
export type Descriptor = PropertyDescriptor & ThisType<any> & { __proto__?: null };
export const ObjectDefineProperty: <T>(o: T, key: PropertyKey, desc: Descriptor) => T = own(G.Object, 'defineProperty');
export const ObjectDefineProperties: typeof Object.defineProperties = own(G.Object, 'defineProperties');
export const ObjectEntries: typeof Object.entries = own(G.Object, 'entries');
export const ObjectFreeze: typeof Object.freeze = own(G.Object, 'freeze');
// Recorded for withOriginalIntrinsics; the sandbox's own reads go through GetOwnDesc.
own(G.Object, 'getOwnPropertyDescriptor');
/** Object.getOwnPropertyDescriptor, its result with a null prototype (see GetOwnDesc). */
export const ObjectGetOwnPropertyDescriptor: typeof Object.getOwnPropertyDescriptor = GetOwnDesc;
export const ObjectGetOwnPropertyNames: typeof Object.getOwnPropertyNames = own(G.Object, 'getOwnPropertyNames');
export const ObjectGetPrototypeOf: typeof Object.getPrototypeOf = own(G.Object, 'getPrototypeOf');
export const ObjectHasOwn: (o: object, key: PropertyKey) => boolean = own(G.Object, 'hasOwn');
export const ObjectIs: typeof Object.is = own(G.Object, 'is');
export const ObjectKeys: typeof Object.keys = own(G.Object, 'keys');
export const ObjectSetPrototypeOf: typeof Object.setPrototypeOf = own(G.Object, 'setPrototypeOf');
export const ObjectPrototypeToString: (self: unknown) => string = uncurry(G.Object.prototype, 'toString');
/**
 * The dictionary an API reads when its caller passed none (WebIDL: an omitted dictionary has no
 * members). A `{}` would inherit whatever a tenant put on Object.prototype (`type`, `headers`,
 * `highWaterMark`, ...) and read it as if it had been passed.
 */
export const NO_MEMBERS: Readonly<Record<string, undefined>> = ObjectFreeze({ __proto__: null }) as never;

// Function
export const FunctionPrototypeCall: (fn: AnyFunction, self: unknown, ...args: unknown[]) => any = uncurry(G.Function.prototype, 'call');

// Array
export const ArrayIsArray: typeof Array.isArray = own(G.Array, 'isArray');
export const ArrayFrom: typeof Array.from = own(G.Array, 'from');
export const ArrayPrototypePush: <T>(self: T[], ...items: T[]) => number = uncurry(G.Array.prototype, 'push');
export const ArrayPrototypePop: <T>(self: T[]) => T | undefined = uncurry(G.Array.prototype, 'pop');
export const ArrayPrototypeShift: <T>(self: T[]) => T | undefined = uncurry(G.Array.prototype, 'shift');
export const ArrayPrototypeUnshift: <T>(self: T[], ...items: T[]) => number = uncurry(G.Array.prototype, 'unshift');
export const ArrayPrototypeSlice: <T>(self: readonly T[], start?: number, end?: number) => T[] = uncurry(G.Array.prototype, 'slice');
export const ArrayPrototypeSplice: <T>(self: T[], start: number, deleteCount?: number, ...items: T[]) => T[] = uncurry(G.Array.prototype, 'splice');
export const ArrayPrototypeJoin: (self: readonly unknown[], separator?: string) => string = uncurry(G.Array.prototype, 'join');
export const ArrayPrototypeIndexOf: <T>(self: readonly T[], value: T, from?: number) => number = uncurry(G.Array.prototype, 'indexOf');
export const ArrayPrototypeIncludes: <T>(self: readonly T[], value: T) => boolean = uncurry(G.Array.prototype, 'includes');
export const ArrayPrototypeMap: <T, U>(self: readonly T[], fn: (value: T, index: number) => U) => U[] = uncurry(G.Array.prototype, 'map');
export const ArrayPrototypeFilter: <T>(self: readonly T[], fn: (value: T, index: number) => unknown) => T[] = uncurry(G.Array.prototype, 'filter');
export const ArrayPrototypeForEach: <T>(self: readonly T[], fn: (value: T, index: number) => void) => void = uncurry(G.Array.prototype, 'forEach');
export const ArrayPrototypeSort: <T>(self: T[], compare?: (a: T, b: T) => number) => T[] = uncurry(G.Array.prototype, 'sort');
export const ArrayPrototypeSome: <T>(self: readonly T[], fn: (value: T, index: number) => unknown) => boolean = uncurry(G.Array.prototype, 'some');
export const ArrayPrototypeFind: <T>(self: readonly T[], fn: (value: T, index: number) => unknown) => T | undefined = uncurry(G.Array.prototype, 'find');
export const ArrayPrototypeFindIndex: <T>(self: readonly T[], fn: (value: T, index: number) => unknown) => number = uncurry(G.Array.prototype, 'findIndex');
export const ArrayPrototypeConcat: <T>(self: readonly T[], ...items: (T | readonly T[])[]) => T[] = uncurry(G.Array.prototype, 'concat');
export const ArrayPrototypeSymbolIterator: <T>(self: readonly T[]) => IterableIterator<T> = uncurry(G.Array.prototype, globalThis.Symbol.iterator);
export const ArrayIteratorPrototypeNext: <T>(self: Iterator<T>) => IteratorResult<T> = uncurry(G.Object.getPrototypeOf([][globalThis.Symbol.iterator]()), 'next');

// String
export const StringFromCharCode: typeof String.fromCharCode = own(G.String, 'fromCharCode');
export const StringFromCodePoint: typeof String.fromCodePoint = own(G.String, 'fromCodePoint');
export const StringPrototypeCharCodeAt: (self: string, index: number) => number = uncurry(G.String.prototype, 'charCodeAt');
export const StringPrototypeCodePointAt: (self: string, index: number) => number | undefined = uncurry(G.String.prototype, 'codePointAt');
export const StringPrototypeCharAt: (self: string, index: number) => string = uncurry(G.String.prototype, 'charAt');
export const StringPrototypeToLowerCase: (self: string) => string = uncurry(G.String.prototype, 'toLowerCase');
export const StringPrototypeToUpperCase: (self: string) => string = uncurry(G.String.prototype, 'toUpperCase');
export const StringPrototypeSlice: (self: string, start?: number, end?: number) => string = uncurry(G.String.prototype, 'slice');
export const StringPrototypeSubstring: (self: string, start: number, end?: number) => string = uncurry(G.String.prototype, 'substring');
export const StringPrototypeIndexOf: (self: string, search: string, from?: number) => number = uncurry(G.String.prototype, 'indexOf');
export const StringPrototypeLastIndexOf: (self: string, search: string, from?: number) => number = uncurry(G.String.prototype, 'lastIndexOf');
export const StringPrototypeIncludes: (self: string, search: string, from?: number) => boolean = uncurry(G.String.prototype, 'includes');
export const StringPrototypeStartsWith: (self: string, search: string, from?: number) => boolean = uncurry(G.String.prototype, 'startsWith');
export const StringPrototypeEndsWith: (self: string, search: string) => boolean = uncurry(G.String.prototype, 'endsWith');
export const StringPrototypeTrim: (self: string) => string = uncurry(G.String.prototype, 'trim');
export const StringPrototypeRepeat: (self: string, count: number) => string = uncurry(G.String.prototype, 'repeat');
export const StringPrototypePadStart: (self: string, length: number, fill?: string) => string = uncurry(G.String.prototype, 'padStart');
export const StringPrototypeNormalize: (self: string, form?: string) => string = uncurry(G.String.prototype, 'normalize');
export const StringPrototypeToWellFormed: (self: string) => string = uncurry(G.String.prototype, 'toWellFormed');
export const StringPrototypeIsWellFormed: (self: string) => boolean = uncurry(G.String.prototype, 'isWellFormed');
// split and replace with a string pattern: with a RegExp they call its Symbol.split/replace.
export const StringPrototypeSplit: (self: string, separator: string, limit?: number) => string[] = uncurry(G.String.prototype, 'split');
export const StringPrototypeReplaceAll: (self: string, search: string, replacement: string) => string = uncurry(G.String.prototype, 'replaceAll');

// RegExp: exec and test look up nothing (test calls `exec` through the RegExp, so call exec).
export const RegExpPrototypeExec: (self: RegExp, input: string) => RegExpExecArray | null = uncurry(G.RegExp.prototype, 'exec');
/** `re.test(s)`, without looking up `re.exec`. */
export function RegExpPrototypeTest(re: RegExp, input: string): boolean {
  return RegExpPrototypeExec(re, input) !== null;
}

// Number
export const NumberIsInteger: typeof Number.isInteger = own(G.Number, 'isInteger');
export const NumberIsNaN: typeof Number.isNaN = own(G.Number, 'isNaN');
export const NumberIsFinite: typeof Number.isFinite = own(G.Number, 'isFinite');
export const NumberIsSafeInteger: typeof Number.isSafeInteger = own(G.Number, 'isSafeInteger');
/** The global parseInt (the same function as Number.parseInt). */
export const NumberParseInt: typeof Number.parseInt = own(G.Number, 'parseInt');
export const NumberPrototypeToString: (self: number, radix?: number) => string = uncurry(G.Number.prototype, 'toString');
export const MathMin: typeof Math.min = own(Math, 'min');
export const MathMax: typeof Math.max = own(Math, 'max');
export const MathFloor: typeof Math.floor = own(Math, 'floor');
export const MathTrunc: typeof Math.trunc = own(Math, 'trunc');
export const MathCeil: typeof Math.ceil = own(Math, 'ceil');
export const MathLog: typeof Math.log = own(Math, 'log');

// Date
export const DatePrototypeGetTime: (self: Date) => number = uncurry(G.Date.prototype, 'getTime');
export const DatePrototypeToISOString: (self: Date) => string = uncurry(G.Date.prototype, 'toISOString');

// FinalizationRegistry
export const FinalizationRegistryPrototypeRegister: <T>(self: FinalizationRegistry<T>, target: WeakKey, held: T) => void = uncurry(G.FinalizationRegistry.prototype, 'register');

// JSON
export const JSONParse: typeof JSON.parse = own(JSON, 'parse');
export const JSONStringify: typeof JSON.stringify = own(JSON, 'stringify');

// Map, Set, WeakMap
export const MapPrototypeGet: <K, V>(self: Map<K, V>, key: K) => V | undefined = uncurry(G.Map.prototype, 'get');
export const MapPrototypeSet: <K, V>(self: Map<K, V>, key: K, value: V) => Map<K, V> = uncurry(G.Map.prototype, 'set');
export const MapPrototypeHas: <K>(self: Map<K, unknown>, key: K) => boolean = uncurry(G.Map.prototype, 'has');
export const MapPrototypeDelete: <K>(self: Map<K, unknown>, key: K) => boolean = uncurry(G.Map.prototype, 'delete');
export const MapPrototypeClear: (self: Map<unknown, unknown>) => void = uncurry(G.Map.prototype, 'clear');
export const MapPrototypeForEach: <K, V>(self: Map<K, V>, fn: (value: V, key: K) => void) => void = uncurry(G.Map.prototype, 'forEach');
export const MapPrototypeGetSize: (self: Map<unknown, unknown>) => number = getter(G.Map.prototype, 'size');
export const MapPrototypeEntries: <K, V>(self: Map<K, V>) => MapIterator<[K, V]> = uncurry(G.Map.prototype, 'entries');
export const MapPrototypeKeys: <K>(self: Map<K, unknown>) => MapIterator<K> = uncurry(G.Map.prototype, 'keys');
export const MapPrototypeValues: <V>(self: Map<unknown, V>) => MapIterator<V> = uncurry(G.Map.prototype, 'values');
export const MapIteratorPrototypeNext: <T>(self: Iterator<T>) => IteratorResult<T> = uncurry(G.Object.getPrototypeOf(new G.Map().entries()), 'next');
export const SetPrototypeAdd: <T>(self: Set<T>, value: T) => Set<T> = uncurry(G.Set.prototype, 'add');
export const SetPrototypeHas: <T>(self: Set<T>, value: T) => boolean = uncurry(G.Set.prototype, 'has');
export const SetPrototypeDelete: <T>(self: Set<T>, value: T) => boolean = uncurry(G.Set.prototype, 'delete');
export const SetPrototypeGetSize: (self: Set<unknown>) => number = getter(G.Set.prototype, 'size');
export const SetPrototypeValues: <T>(self: Set<T>) => SetIterator<T> = uncurry(G.Set.prototype, 'values');
export const SetIteratorPrototypeNext: <T>(self: Iterator<T>) => IteratorResult<T> = uncurry(G.Object.getPrototypeOf(new G.Set().values()), 'next');
export const WeakMapPrototypeGet: <K extends WeakKey, V>(self: WeakMap<K, V>, key: K) => V | undefined = uncurry(G.WeakMap.prototype, 'get');
export const WeakMapPrototypeSet: <K extends WeakKey, V>(self: WeakMap<K, V>, key: K, value: V) => WeakMap<K, V> = uncurry(G.WeakMap.prototype, 'set');
export const WeakMapPrototypeHas: <K extends WeakKey>(self: WeakMap<K, unknown>, key: K) => boolean = uncurry(G.WeakMap.prototype, 'has');
export const WeakMapPrototypeDelete: <K extends WeakKey>(self: WeakMap<K, unknown>, key: K) => boolean = uncurry(G.WeakMap.prototype, 'delete');
export const WeakSetPrototypeAdd: <T extends WeakKey>(self: WeakSet<T>, value: T) => WeakSet<T> = uncurry(G.WeakSet.prototype, 'add');
export const WeakSetPrototypeHas: <T extends WeakKey>(self: WeakSet<T>, value: T) => boolean = uncurry(G.WeakSet.prototype, 'has');

// Promise. `await` on a promise of this realm calls no `then` (only on other thenables), but
// resolving a promise with a promise does: an async function must `return await p`, not
// `return p`, and a resolve function must not be given a promise.
export const PromiseResolve: <T = void>(value?: T) => Promise<Awaited<T>> = ((resolve: AnyFunction, P: unknown) => (value?: unknown) => ReflectApplyOriginal(resolve, P, [value]))(own(G.Promise, 'resolve'), G.Promise) as never;
export const PromiseReject: (reason: unknown) => Promise<never> = ((reject: AnyFunction, P: unknown) => (reason: unknown) => ReflectApplyOriginal(reject, P, [reason]))(own(G.Promise, 'reject'), G.Promise) as never;
export const PromisePrototypeThen: <T, R1 = T, R2 = never>(
  self: Promise<T>,
  onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
  onRejected?: ((reason: any) => R2 | PromiseLike<R2>) | null,
) => Promise<R1 | R2> = uncurry(G.Promise.prototype, 'then');

// ArrayBuffer, TypedArray, DataView
const TypedArrayPrototype: object = G.Object.getPrototypeOf(G.Uint8Array.prototype);
export const ArrayBufferIsView: typeof ArrayBuffer.isView = own(G.ArrayBuffer, 'isView');
export const ArrayBufferPrototypeSlice: (self: ArrayBuffer, start?: number, end?: number) => ArrayBuffer = uncurry(G.ArrayBuffer.prototype, 'slice');
export const ArrayBufferPrototypeGetByteLength: (self: ArrayBuffer) => number = getter(G.ArrayBuffer.prototype, 'byteLength');
export const ArrayBufferPrototypeTransfer: (self: ArrayBuffer) => ArrayBuffer = uncurry(G.ArrayBuffer.prototype, 'transfer');
export const ArrayBufferPrototypeGetDetached: (self: ArrayBuffer) => boolean = getter(G.ArrayBuffer.prototype, 'detached');
export const ArrayBufferPrototypeGetResizable: (self: ArrayBuffer) => boolean = getter(G.ArrayBuffer.prototype, 'resizable');
export const DataViewPrototypeGetBuffer: (self: DataView) => ArrayBufferLike = getter(G.DataView.prototype, 'buffer');
export const DataViewPrototypeGetByteOffset: (self: DataView) => number = getter(G.DataView.prototype, 'byteOffset');
export const DataViewPrototypeGetByteLength: (self: DataView) => number = getter(G.DataView.prototype, 'byteLength');
export const TypedArrayPrototypeSet: (self: Uint8Array, source: ArrayLike<number>, offset?: number) => void = uncurry(TypedArrayPrototype, 'set');
export const TypedArrayPrototypeSubarray: (self: Uint8Array, start?: number, end?: number) => Uint8Array = uncurry(TypedArrayPrototype, 'subarray');
export const TypedArrayPrototypeSlice: (self: Uint8Array, start?: number, end?: number) => Uint8Array = uncurry(TypedArrayPrototype, 'slice');
export const TypedArrayPrototypeIndexOf: (self: Uint8Array, value: number, from?: number) => number = uncurry(TypedArrayPrototype, 'indexOf');
export const TypedArrayPrototypeFill: (self: Uint8Array, value: number, start?: number, end?: number) => Uint8Array = uncurry(TypedArrayPrototype, 'fill');
export const TypedArrayPrototypeGetBuffer: (self: ArrayBufferView) => ArrayBufferLike = getter(TypedArrayPrototype, 'buffer');
export const TypedArrayPrototypeGetByteLength: (self: ArrayBufferView) => number = getter(TypedArrayPrototype, 'byteLength');
export const TypedArrayPrototypeGetByteOffset: (self: ArrayBufferView) => number = getter(TypedArrayPrototype, 'byteOffset');
export const TypedArrayPrototypeGetLength: (self: ArrayBufferView) => number = getter(TypedArrayPrototype, 'length');
/** The typed array's [[TypedArrayName]], or undefined for anything else (no instanceof, no Symbol.hasInstance). */
export const TypedArrayPrototypeGetSymbolToStringTag: (self: unknown) => string | undefined = getter(TypedArrayPrototype, globalThis.Symbol.toStringTag);

/** `value instanceof Uint8Array` as the original realm answers it: no Symbol.hasInstance involved. */
export function isUint8Array(value: unknown): value is Uint8Array {
  return TypedArrayPrototypeGetSymbolToStringTag(value) === 'Uint8Array';
}

/**
 * A Map whose methods are its own and original: `map.get(k)` is the captured get whatever
 * Map.prototype holds, and iteration uses the original iterators.
 */
export class SafeMap<K, V> extends Map<K, V> {
  constructor(entries?: readonly (readonly [K, V])[] | null) {
    super();
    if (entries) for (let i = 0; i < entries.length; i++) MapPrototypeSet(this, entries[i]![0], entries[i]![1]);
  }
}
/** A Set whose methods are its own and original (see SafeMap). */
export class SafeSet<T> extends Set<T> {
  constructor(values?: readonly T[] | null) {
    super();
    if (values) for (let i = 0; i < values.length; i++) SetPrototypeAdd(this, values[i]!);
  }
}
/** A WeakMap whose methods are its own and original. */
export class SafeWeakMap<K extends WeakKey, V> extends WeakMap<K, V> {}

function copyMethods(target: object, source: object, keys: readonly PropertyKey[]): void {
  for (let i = 0; i < keys.length; i++) {
    const desc = GetOwnDesc(source, keys[i]!)!;
    DefineProp(target, keys[i]!, desc);
  }
}
// `super()` with no argument calls no `set`/`add`; the methods are copied onto the subclasses'
// prototypes, so a tenant's change to Map.prototype no longer reaches them.
copyMethods(SafeMap.prototype, G.Map.prototype, ['get', 'set', 'has', 'delete', 'clear', 'forEach', 'size', 'entries', 'keys', 'values', globalThis.Symbol.iterator]);
copyMethods(SafeSet.prototype, G.Set.prototype, ['add', 'has', 'delete', 'clear', 'forEach', 'size', 'values', 'keys', 'entries', globalThis.Symbol.iterator]);
copyMethods(SafeWeakMap.prototype, G.WeakMap.prototype, ['get', 'set', 'has', 'delete']);
// Every one of them serves the whole runtime: frozen, so that one that reached tenant code by
// mistake could not be changed into a way in.
ObjectFreeze(SafeMap.prototype);
ObjectFreeze(SafeSet.prototype);
ObjectFreeze(SafeWeakMap.prototype);
// Their iterators are the realm's, whose `next` a tenant can replace: walk a SafeMap with
// forEach, not for...of.

let originalsInPlace = false;

// Object.prototype's own keys as the realm made it. What a tenant adds there (`Object.prototype.flag
// = true`, a polyfill's method, a `get` or `value` that every descriptor literal would inherit) is
// seen by a library's and its bundler's code as it loads: esbuild's export helper walks its
// exports with for...in and defines a getter for each key it finds, so one enumerable non-function
// addition made every module that loads after it throw ("Getter must be a function").
//
// Object.prototype's own properties are all recorded, so that one the tenant changed (an enumerable
// `constructor`, a replaced `toString`) is the original again while a module loads.
const objectPrototype: object = G.Object.prototype;
const originalObjectKeys = new SafeSet<PropertyKey>(ReflectOwnKeys(objectPrototype));
originalObjectKeys.forEach((key) => own(objectPrototype, key));

/**
 * Takes what a tenant added to Object.prototype off it, for as long as a module loads, and returns
 * it as (key, descriptor) pairs to put back. One made non-configurable cannot be taken off; it
 * stays.
 */
function takeObjectPrototypeAdditions(): unknown[] {
  const taken: unknown[] = [];
  const keys = ReflectOwnKeys(objectPrototype);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (originalObjectKeys.has(key)) continue;
    const desc = GetOwnDesc(objectPrototype, key);
    if (desc !== undefined && DeleteProp(objectPrototype, key)) {
      taken[taken.length] = key;
      taken[taken.length] = desc;
    }
  }
  return taken;
}

/**
 * Runs `fn` with the original built-ins recorded above back in place, then puts back whatever
 * the tenant had set. For a sandbox module evaluated on first use: its top-level code, its
 * libraries' and its bundler's helpers (which take Object.defineProperty and the like when they
 * run) then capture the originals. A property the tenant made non-configurable and
 * changed cannot be put back; it stays as the tenant left it.
 */
export function withOriginalIntrinsics<T>(fn: () => T): T {
  // Nested (a module that loads another as it is made): the originals are in place already, and
  // checking each again would read every descriptor once more.
  if (originalsInPlace) return fn();
  // First, so that the descriptors read below inherit no `get` or `value` of the tenant's: they
  // are then read as the engine makes them, and only the few kept to put back lose their prototype.
  const added = takeObjectPrototypeAdditions();
  const changed: unknown[] = [];
  for (let i = 0; i < recorded.length; i += 4) {
    const holder = recorded[i] as object, key = recorded[i + 1] as PropertyKey, original = recorded[i + 2];
    const current = GetOwnDescInherits(holder, key);
    if (current && (recorded[i + 3] ? current.get : current.value) === original) continue;
    const desc = recorded[i + 3]
      ? { __proto__: null, get: original, set: undefined, enumerable: false, configurable: true }
      : { __proto__: null, value: original, writable: true, enumerable: false, configurable: true };
    if (DefineProp(holder, key, desc as PropertyDescriptor)) {
      // Put back after the tenant's additions are: without a prototype, it takes none of them.
      if (current) SetProto(current, null);
      changed[changed.length] = holder;
      changed[changed.length] = key;
      changed[changed.length] = current;
    }
  }
  originalsInPlace = true;
  try {
    return fn();
  } finally {
    originalsInPlace = false;
    for (let i = 0; i < added.length; i += 2) DefineProp(objectPrototype, added[i] as PropertyKey, added[i + 1] as PropertyDescriptor);
    for (let i = 0; i < changed.length; i += 3) {
      const holder = changed[i] as object, key = changed[i + 1] as PropertyKey, current = changed[i + 2] as PropertyDescriptor | undefined;
      if (current) DefineProp(holder, key, current);
      else DeleteProp(holder, key);
    }
  }
}

/**
 * Every value this module exports, in the order they are declared, for the sandbox modules.
 * The list is written in when the runtime is bundled (src/runtime/shared-primordials.ts), from
 * this file's own exports, so that no second list has to be kept in step with them.
 */
export function primordialValues(): readonly unknown[] {
  return [];
}

/** The code points of `s` as strings, as `Array.from(s)` gives them, without the string iterator. */
export function stringCodePoints(s: string): string[] {
  const out: string[] = [];
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = StringPrototypeCharCodeAt(s, i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = StringPrototypeCharCodeAt(s, i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        out[out.length] = StringPrototypeSlice(s, i, i + 2);
        i++;
        continue;
      }
    }
    out[out.length] = s[i]!;
  }
  return out;
}

/** `s` without the leading and trailing code units for which `strip` is true. */
export function stringTrimBy(s: string, strip: (c: number) => boolean): string {
  let start = 0, end = s.length;
  while (start < end && strip(StringPrototypeCharCodeAt(s, start))) start++;
  while (end > start && strip(StringPrototypeCharCodeAt(s, end - 1))) end--;
  return start === 0 && end === s.length ? s : StringPrototypeSlice(s, start, end);
}

/**
 * An iterable over `array`'s elements that calls none of the realm's iterators, for for...of
 * (which would call Array.prototype[Symbol.iterator] and the array iterator's `next`, both
 * replaceable). The iterator has a null prototype, so no `return` on Object.prototype is called
 * on a `break`. Element destructuring (`for (const [a, b] of ...)`) iterates each element: index it.
 */
export function safeArray<T>(array: readonly T[]): Iterable<T> {
  return {
    __proto__: null,
    [SymbolIterator]() {
      let i = 0;
      return {
        __proto__: null,
        next: (): IteratorResult<T> => (i < array.length ? { done: false, value: array[i++]! } : { done: true, value: undefined }),
      };
    },
  } as unknown as Iterable<T>;
}

/** An iterable over `set`'s values, with the original iterator and `next` (see safeArray). */
export function safeSetValues<T>(set: Set<T>): Iterable<T> {
  return safeNativeIterator(SetPrototypeValues(set), SetIteratorPrototypeNext);
}

/** An iterable over `map`'s [key, value] entries, with the original iterator and `next` (see safeArray). */
export function safeMapEntries<K, V>(map: Map<K, V>): Iterable<[K, V]> {
  return safeNativeIterator(MapPrototypeEntries(map), MapIteratorPrototypeNext);
}

function safeNativeIterator<T>(iterator: Iterator<T>, next: (self: Iterator<T>) => IteratorResult<T>): Iterable<T> {
  return {
    __proto__: null,
    [SymbolIterator]: () => ({ __proto__: null, next: () => next(iterator) }),
  } as unknown as Iterable<T>;
}
