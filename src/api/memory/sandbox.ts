// Memory a tenant can hold outside what isolated-vm counts, brought under the isolate's memory
// limit. isolated-vm counts the V8 heap and ArrayBuffers made through its allocator; measured
// (Node 24, V8 13.6) it does not see:
//   - WebAssembly.Memory pages and resizable ArrayBuffers (reserved and committed by V8 itself:
//     8 buffers of 32 MB grew RSS by 256 MB in an isolate limited to 32 MB);
//   - ICU objects behind Intl (about 25-35 KB of native memory per Intl.DateTimeFormat, against
//     ~100 bytes of heap: 5,000 retained ones took 140 MB).
// Each such object is charged here by a *charge block*: a plain ArrayBuffer of the object's
// (estimated) native size, kept alive exactly as long as the object (a WeakMap from the object
// to its block). The block goes through isolated-vm's allocator, so the memory limit refuses it
// like any other allocation, and V8 counts it as external memory, so garbage Intl objects make
// the collector run as their real weight would. A block is zero-filled and mostly untouched
// when large (mmap); small ones cost their size in RSS, which keeps the worst case bounded at
// twice the limit.
//
// The replaced constructors keep their prototypes (instanceof, subclassing and
// Object.getPrototypeOf(x).constructor all lead to the replacement); the originals stay in this
// module's closure. Everything these functions run on is captured when the module is evaluated,
// before any tenant code exists: tenants may replace built-ins afterwards.

const { apply, construct, defineProperty, getOwnPropertyDescriptor, ownKeys, getPrototypeOf } = Reflect;
const NativeArrayBuffer = ArrayBuffer;
const NativeWeakMap = WeakMap;
const weakMapGet = WeakMap.prototype.get;
const weakMapSet = WeakMap.prototype.set;
const weakMapDelete = WeakMap.prototype.delete;
const NativeRangeError = RangeError;
const NativeTypeError = TypeError;
const NativeNumber = Number;
const { trunc, round } = Math;
const isNaNNumber = Number.isNaN;

const MB = 1024 * 1024;
const KB = 1024;
const WASM_PAGE = 65536;

/** The worker's memory limit (WorkerLimits.memoryMb), learnt at init; the default until then. */
let limitMb = 128;

/** Charge blocks by the object they pay for; a grown object chains its earlier blocks. */
type Charge = ArrayBuffer | { block: ArrayBuffer; previous: Charge };
let charges = new NativeWeakMap<object, Charge>();

function mb(bytes: number): string {
  return bytes >= MB ? `${round((bytes / MB) * 10) / 10} MB` : `${round(bytes / KB)} KB`;
}

/**
 * A block of `bytes` under the memory limit, or a RangeError that names the limit. Checked
 * against the whole limit first, so an absurd size fails without a collection.
 */
function chargeBlock(bytes: number, what: string): ArrayBuffer {
  if (bytes > limitMb * MB) {
    throw new NativeRangeError(`${what} needs ${mb(bytes)}, more than the worker's whole memory limit of ${limitMb} MB.`);
  }
  try {
    return new NativeArrayBuffer(bytes);
  } catch {
    throw new NativeRangeError(
      `${what} needs ${mb(bytes)} and the worker's memory limit of ${limitMb} MB is used up. ` +
        'Drop references to the objects it no longer needs (or reuse them), or raise the worker\'s memory limit.',
    );
  }
}

function attach(holder: object, block: ArrayBuffer): void {
  const previous = apply(weakMapGet, charges, [holder]) as Charge | undefined;
  apply(weakMapSet, charges, [holder, previous === undefined ? block : { block, previous }]);
}

/** Charges `holder` `bytes` more; returns an undo for when the operation it pays for fails. */
function charge(holder: object, bytes: number, what: string): () => void {
  if (!(bytes > 0)) return () => {};
  const previous = apply(weakMapGet, charges, [holder]) as Charge | undefined;
  attach(holder, chargeBlock(bytes, what));
  return () => {
    if (previous === undefined) apply(weakMapDelete, charges, [holder]);
    else apply(weakMapSet, charges, [holder, previous]);
  };
}

/** ToIndex-like: the number a native constructor would see, read once (valueOf runs once). */
function toCount(value: unknown): number {
  const n = trunc(NativeNumber(value));
  return isNaNNumber(n) ? 0 : n;
}

function isObject(value: unknown): value is Record<PropertyKey, unknown> {
  return (typeof value === 'object' && value !== null) || typeof value === 'function';
}

/**
 * Makes `Replacement` stand in for `Native`: same prototype object, statics copied, the
 * prototype's `constructor` pointing at the replacement.
 */
function replaceConstructor(Native: Function, Replacement: Function, name: string): void {
  for (const key of ownKeys(Native)) {
    if (key === 'prototype' || key === 'name' || key === 'length' || key === 'caller' || key === 'arguments') continue;
    defineProperty(Replacement, key, getOwnPropertyDescriptor(Native, key)!);
  }
  defineProperty(Replacement, 'prototype', { value: Native.prototype, writable: false, enumerable: false, configurable: false });
  defineProperty(Replacement, 'name', { value: name, configurable: true });
  defineProperty(Replacement, 'length', { value: Native.length, configurable: true });
  defineProperty(Native.prototype, 'constructor', { value: Replacement, writable: true, enumerable: false, configurable: true });
}

function replaceMethod(target: object, key: PropertyKey, method: Function, name: string, length: number): void {
  defineProperty(method, 'name', { value: name, configurable: true });
  defineProperty(method, 'length', { value: length, configurable: true });
  const existing = getOwnPropertyDescriptor(target, key);
  defineProperty(target, key, {
    value: method,
    writable: existing?.writable ?? true,
    enumerable: existing?.enumerable ?? false,
    configurable: existing?.configurable ?? true,
  });
}

// ---------------------------------------------------------------------------------------------
// Resizable ArrayBuffers: V8 reserves maxByteLength and commits pages on resize() outside the
// allocator, so a resizable buffer is charged its maxByteLength when it is made.

const arrayBufferProto = NativeArrayBuffer.prototype;
const resizableGetter = getOwnPropertyDescriptor(arrayBufferProto, 'resizable')!.get!;
const maxByteLengthGetter = getOwnPropertyDescriptor(arrayBufferProto, 'maxByteLength')!.get!;
const nativeTransfer = (arrayBufferProto as unknown as { transfer: Function }).transfer;

function lockArrayBuffer(global: Record<string, unknown>): void {
  const ArrayBufferReplacement = function ArrayBuffer(this: unknown, length: unknown, options?: unknown): ArrayBuffer {
    if (new.target === undefined) throw new NativeTypeError("Constructor ArrayBuffer requires 'new'");
    if (!isObject(options)) return construct(NativeArrayBuffer, [length], new.target);
    const max = options.maxByteLength;
    if (max === undefined) return construct(NativeArrayBuffer, [length], new.target);
    const size = toCount(length);
    const maxBytes = toCount(max);
    // The charge comes first: a refused buffer must not have reserved its address space.
    const block = maxBytes >= 0 && maxBytes >= size ? chargeBlock(maxBytes, `A resizable ArrayBuffer (maxByteLength ${maxBytes})`) : undefined;
    const buffer = construct(NativeArrayBuffer, [size, { maxByteLength: maxBytes }], new.target) as ArrayBuffer;
    if (block) attach(buffer, block);
    return buffer;
  };
  replaceConstructor(NativeArrayBuffer, ArrayBufferReplacement, 'ArrayBuffer');
  defineProperty(global, 'ArrayBuffer', { value: ArrayBufferReplacement, writable: true, enumerable: false, configurable: true });

  // transfer() of a resizable buffer makes a new resizable buffer: the charge moves with it.
  replaceMethod(arrayBufferProto, 'transfer', function transfer(this: ArrayBuffer, ...args: unknown[]) {
    const resizable = apply(resizableGetter, this, []) as boolean;
    if (!resizable) return apply(nativeTransfer, this, args);
    const held = apply(weakMapGet, charges, [this]) as Charge | undefined;
    const block = held === undefined ? chargeBlock(apply(maxByteLengthGetter, this, []) as number, 'A resizable ArrayBuffer') : undefined;
    const result = apply(nativeTransfer, this, args) as ArrayBuffer;
    if (held !== undefined) {
      apply(weakMapDelete, charges, [this]);
      apply(weakMapSet, charges, [result, held]);
    } else if (block) {
      attach(result, block);
    }
    return result;
  }, 'transfer', 0);
}

// ---------------------------------------------------------------------------------------------
// WebAssembly.Memory and WebAssembly.Table. WebAssembly is installed into each context after
// the snapshot is deserialised, so this part runs per context, at init.

/** Table elements one table may have; a funcref element is ~32 bytes of heap. */
function maxTableElements(): number {
  // A table is one V8 heap allocation, and growing one that does not fit is fatal to the whole
  // process (not just the isolate): each table is kept to 1/128 of the memory limit.
  return limitMb * 256;
}

function lockWebAssembly(wasm: Record<string, unknown>): void {
  const NativeMemory = wasm.Memory as (new (descriptor: object) => object) | undefined;
  if (typeof NativeMemory === 'function') {
    const memoryProto = NativeMemory.prototype as Record<string, unknown>;
    const nativeGrow = memoryProto.grow as Function;
    const bufferGetter = getOwnPropertyDescriptor(memoryProto, 'buffer')!.get!;
    const MemoryReplacement = function Memory(this: unknown, descriptor: unknown): object {
      if (new.target === undefined) throw new NativeTypeError("WebAssembly.Memory must be invoked with 'new'");
      if (!isObject(descriptor)) throw new NativeTypeError('WebAssembly.Memory(): Argument 0 must be a memory descriptor');
      // Each member is read once and handed on as a primitive, so a getter cannot show the
      // check one value and the constructor another.
      const address = descriptor.address ?? descriptor.index;
      if (address !== undefined && address !== 'i32') {
        throw new NativeTypeError('WebAssembly.Memory(): only 32-bit memories are supported (address: "i32").');
      }
      const rawInitial = descriptor.initial ?? descriptor.minimum;
      const rawMaximum = descriptor.maximum;
      if (descriptor.shared) {
        // Shared memory's buffer is a SharedArrayBuffer, which builds high-resolution timers.
        throw new NativeTypeError('WebAssembly.Memory(): shared memories are not supported (no SharedArrayBuffer, as a Spectre defence); remove `shared: true`.');
      }
      const initial = rawInitial === undefined ? undefined : toCount(rawInitial);
      const maximum = rawMaximum === undefined ? undefined : toCount(rawMaximum);
      const block = initial !== undefined && initial > 0 && initial <= 65536
        ? chargeBlock(initial * WASM_PAGE, `WebAssembly.Memory of ${initial} pages`)
        : undefined;
      const memory = construct(NativeMemory, [{ initial, maximum, shared: false }], new.target) as object;
      if (block) attach(memory, block);
      return memory;
    };
    replaceConstructor(NativeMemory, MemoryReplacement, 'Memory');
    wasm.Memory = MemoryReplacement;
    replaceMethod(memoryProto, 'grow', function grow(this: object, delta: unknown) {
      apply(bufferGetter, this, []); // a WebAssembly.Memory, or the native TypeError
      const pages = toCount(delta);
      const undo = pages > 0 && pages <= 65536 ? charge(this, pages * WASM_PAGE, `WebAssembly.Memory.grow(${pages})`) : () => {};
      try {
        return apply(nativeGrow, this, [pages]);
      } catch (error) {
        undo();
        throw error;
      }
    }, 'grow', 1);
    // Buffers that resize the memory under them would skip grow(); not in this V8, but refused
    // should a later one add them.
    for (const name of ['toResizableBuffer', 'toFixedLengthBuffer']) {
      if (name in memoryProto) delete memoryProto[name];
    }
  }

  const NativeTable = wasm.Table as (new (descriptor: object, value?: unknown) => object) | undefined;
  if (typeof NativeTable === 'function') {
    const tableProto = NativeTable.prototype as Record<string, unknown>;
    const nativeTableGrow = tableProto.grow as Function;
    const lengthGetter = getOwnPropertyDescriptor(tableProto, 'length')!.get!;
    const tooLarge = (what: string, elements: number) =>
      new NativeRangeError(`${what}: ${elements} elements is more than a table may have here (${maxTableElements()} for a worker with ${limitMb} MB of memory).`);
    const TableReplacement = function Table(this: unknown, descriptor: unknown, ...rest: unknown[]): object {
      if (new.target === undefined) throw new NativeTypeError("WebAssembly.Table must be invoked with 'new'");
      if (!isObject(descriptor)) throw new NativeTypeError('WebAssembly.Table(): Argument 0 must be a table descriptor');
      const address = descriptor.address ?? descriptor.index;
      if (address !== undefined && address !== 'i32') {
        throw new NativeTypeError('WebAssembly.Table(): only 32-bit tables are supported (address: "i32").');
      }
      const element = descriptor.element;
      const rawInitial = descriptor.initial ?? descriptor.minimum;
      const rawMaximum = descriptor.maximum;
      const initial = rawInitial === undefined ? undefined : toCount(rawInitial);
      const maximum = rawMaximum === undefined ? undefined : toCount(rawMaximum);
      if (initial !== undefined && initial > maxTableElements()) throw tooLarge('WebAssembly.Table()', initial);
      if (maximum !== undefined && maximum > maxTableElements()) throw tooLarge('WebAssembly.Table() maximum', maximum);
      const args = rest.length > 0 ? [{ element, initial, maximum }, rest[0]] : [{ element, initial, maximum }];
      return construct(NativeTable, args, new.target) as object;
    };
    replaceConstructor(NativeTable, TableReplacement, 'Table');
    wasm.Table = TableReplacement;
    replaceMethod(tableProto, 'grow', function grow(this: object, delta: unknown, ...rest: unknown[]) {
      const length = apply(lengthGetter, this, []) as number;
      const count = toCount(delta);
      if (count > 0 && length + count > maxTableElements()) throw tooLarge('WebAssembly.Table.grow()', length + count);
      return apply(nativeTableGrow, this, rest.length > 0 ? [count, rest[0]] : [count]);
    }, 'grow', 1);
  }
}

// ---------------------------------------------------------------------------------------------
// Intl: each object holds ICU state outside the heap. Estimated native sizes, measured as RSS
// per retained object (5,000 of each in one isolate, less the ICU data loaded once per process)
// and rounded up: locales and options vary what ICU builds (a DateTimeFormat measured 25-34 KB).

const INTL_NATIVE_BYTES: Record<string, number> = {
  DateTimeFormat: 36 * KB,
  RelativeTimeFormat: 12 * KB,
  Segmenter: 4 * KB,
  v8BreakIterator: 4 * KB,
  DurationFormat: 2 * KB,
  NumberFormat: 2 * KB,
  Collator: 2 * KB,
  PluralRules: 2 * KB,
  ListFormat: 2 * KB,
  DisplayNames: 2 * KB,
  Locale: 2 * KB,
};
/** Segmenter.prototype.segment's Segments, and each iterator over them (a break iterator clone). */
const SEGMENTS_BYTES = 1 * KB;
const SEGMENT_ITERATOR_BYTES = 4 * KB;

/** Charges what a native Intl call made; a non-object result (an error path) is passed on. */
function charged<T>(result: T, bytes: number, what: string): T {
  if (isObject(result)) attach(result, chargeBlock(bytes, `${what} (about ${mb(bytes)} of native memory each)`));
  return result;
}

function lockIntl(intl: Record<string, unknown>): void {
  for (const name of ownKeys(INTL_NATIVE_BYTES) as string[]) {
    const Native = intl[name] as Function | undefined;
    if (typeof Native !== 'function') continue;
    const bytes = INTL_NATIVE_BYTES[name]!;
    const what = `Intl.${name}`;
    // DateTimeFormat, NumberFormat, Collator (and v8BreakIterator) may be called without
    // `new` and then make an object too; the others throw the native TypeError.
    const Replacement = function (this: unknown, ...args: unknown[]): unknown {
      const result = new.target === undefined ? apply(Native, this, args) : construct(Native, args, new.target);
      return charged(result, bytes, what);
    };
    replaceConstructor(Native, Replacement, name);
    defineProperty(intl, name, { value: Replacement, writable: true, enumerable: false, configurable: true });
  }

  // Locale's maximize() and minimize() make new Locales natively.
  const NativeLocale = intl.Locale as Function | undefined;
  if (typeof NativeLocale === 'function') {
    const localeProto = NativeLocale.prototype as Record<string, unknown>;
    for (const name of ['maximize', 'minimize']) {
      const native = localeProto[name] as Function | undefined;
      if (typeof native !== 'function') continue;
      replaceMethod(localeProto, name, function (this: unknown) {
        return charged(apply(native, this, []), INTL_NATIVE_BYTES.Locale!, 'Intl.Locale');
      }, name, 0);
    }
  }

  // Segmenter.prototype.segment(string) -> Segments; Segments[Symbol.iterator]() -> an iterator
  // with its own break iterator. The Segments prototype is reached through one native call.
  const NativeSegmenter = INTL_NATIVE_SEGMENTER;
  if (typeof NativeSegmenter === 'function') {
    const segmenterProto = NativeSegmenter.prototype as Record<string, unknown>;
    const nativeSegment = segmenterProto.segment as Function;
    const segmentsProto = getPrototypeOf(apply(nativeSegment, new NativeSegmenter(), [''])) as Record<PropertyKey, unknown>;
    const nativeIterator = segmentsProto[Symbol.iterator] as Function;
    replaceMethod(segmenterProto, 'segment', function segment(this: unknown, input: unknown) {
      return charged(apply(nativeSegment, this, [input]), SEGMENTS_BYTES, 'Intl.Segmenter.prototype.segment()');
    }, 'segment', 1);
    replaceMethod(segmentsProto, Symbol.iterator, function (this: unknown) {
      return charged(apply(nativeIterator, this, []), SEGMENT_ITERATOR_BYTES, 'A Segments iterator');
    }, '[Symbol.iterator]', 0);
  }
}

// Captured now, with the rest: lockIntl replaces the global one.
const INTL_NATIVE_SEGMENTER = (globalThis as { Intl?: { Segmenter?: new () => object } }).Intl?.Segmenter;

/**
 * Locks what lives in the snapshot (ArrayBuffer, Intl). Runs once, when the runtime script is
 * evaluated, before any tenant code.
 */
export function lockMemoryFeatures(global: typeof globalThis): void {
  const g = global as unknown as Record<string, unknown>;
  lockArrayBuffer(g);
  const intl = g.Intl as Record<string, unknown> | undefined;
  if (intl) lockIntl(intl);
}

/**
 * Per context, at init: the worker's memory limit, and WebAssembly (which V8 installs after the
 * snapshot is deserialised).
 */
export function lockContextMemory(global: typeof globalThis, memoryMb: unknown): void {
  if (typeof memoryMb === 'number' && memoryMb > 0 && memoryMb < 1e6) limitMb = memoryMb;
  // A fresh map per context: nothing charged while the snapshot was made carries over.
  charges = new NativeWeakMap();
  const wasm = (global as { WebAssembly?: Record<string, unknown> }).WebAssembly;
  if (wasm) lockWebAssembly(wasm);
}
