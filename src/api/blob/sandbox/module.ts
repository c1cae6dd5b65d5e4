// Blob and File (W3C File API §3 The Blob Interface, §4 The File Interface), as workerd has them.
// A sandbox module (see src/runtime/sandbox-modules.ts): evaluated in an isolate the first time
// its code touches Blob, File, FormData or body.blob(). A Blob's bytes live in the isolate, as
// one immutable Uint8Array that slices share (no byte of it is ever handed out uncopied).

import type { BodySource } from '../../body/sandbox.ts';
import {
  ArrayBuffer, ArrayBufferIsView, ArrayBufferPrototypeSlice, ArrayFrom, ArrayIsArray, ArrayPrototypePush, Error,
  MathMax, MathMin, MathTrunc, Number, NumberIsFinite, NumberIsNaN, ObjectDefineProperty, Promise, PromiseResolve,
  String, StringPrototypeCharCodeAt, StringPrototypeToLowerCase, Symbol, SymbolIterator, SymbolToStringTag,
  TypeError, TypedArrayPrototypeGetBuffer, TypedArrayPrototypeSet, TypedArrayPrototypeSlice,
  TypedArrayPrototypeSubarray, Uint8Array, NO_MEMBERS,
} from '../../../sandbox/primordials.ts';

export interface BlobDeps {
  utf8Encode(text: string): Uint8Array;
  utf8Decode(bytes: Uint8Array, keepBOM?: boolean): string;
  /** A ReadableStream reading `source` (loads the streams module). */
  streamFromSource(source: BodySource): unknown;
  /** The sandbox's clock (Date.now() is the tenant's to replace). */
  now(): number;
}

export interface BlobApi {
  Blob: typeof Blob;
  File: typeof File;
  isBlob(value: unknown): value is Blob;
  /** A Blob's bytes, shared: the caller must not write to them or hand them out. */
  bytesOf(blob: Blob): Uint8Array;
  /** A Blob of `bytes` (taken, not copied) and an already normalised `type`. */
  blobOf(bytes: Uint8Array, type: string): Blob;
  /** A File of `bytes` (taken, not copied). */
  fileOf(bytes: Uint8Array, name: string, type: string, lastModified: number): File;
}

declare class Blob {
  constructor(parts?: unknown, options?: unknown);
  readonly size: number;
  readonly type: string;
  slice(start?: unknown, end?: unknown, contentType?: unknown): Blob;
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
  bytes(): Promise<Uint8Array<ArrayBuffer>>;
  stream(): unknown;
}
declare class File extends Blob {
  constructor(parts: unknown, name: unknown, options?: unknown);
  readonly name: string;
  readonly lastModified: number;
}

export function create(deps: BlobDeps): BlobApi {
  const { utf8Encode, utf8Decode, streamFromSource, now } = deps;
  const kInternal = Symbol('blob.internal');

  // File API §3.1 step 3.1: a type with a character outside U+0020-U+007E is the empty string;
  // otherwise it is lowercased.
  function normalizeType(type: unknown): string {
    const t = String(type);
    for (let i = 0; i < t.length; i++) {
      const c = StringPrototypeCharCodeAt(t, i);
      if (c < 0x20 || c > 0x7e) return '';
    }
    return StringPrototypeToLowerCase(t);
  }

  function dictionary(options: unknown, what: string): Record<string, unknown> {
    if (options === undefined || options === null) return NO_MEMBERS;
    if (typeof options !== 'object' && typeof options !== 'function') {
      throw new TypeError(`Failed to construct '${what}': The provided value is not of type '${what}PropertyBag'.`);
    }
    return options as Record<string, unknown>;
  }

  // File API §3.1.1 "process blob parts".
  function processParts(parts: unknown, endings: unknown, what: string): Uint8Array {
    if (parts === undefined) return new Uint8Array(0);
    if (parts === null || (typeof parts !== 'object' && typeof parts !== 'function') || typeof (parts as Iterable<unknown>)[SymbolIterator] !== 'function') {
      throw new TypeError(`Failed to construct '${what}': The provided value cannot be converted to a sequence.`);
    }
    // workerd does not implement `endings` (File API §3.1.1 "convert line endings"): any value is an Error.
    if (endings !== undefined) throw new Error("The 'endings' field on 'Options' is not implemented.");
    const chunks: Uint8Array[] = [];
    let total = 0;
    // An array is read by index, as workerd reads a JavaScript array given for a sequence: its
    // iterator is the realm's, which the tenant may have replaced. Other iterables are iterated.
    const list = ArrayIsArray(parts) ? parts : ArrayFrom(parts as Iterable<unknown>);
    for (let i = 0; i < list.length; i++) {
      const part: unknown = list[i];
      let bytes: Uint8Array;
      if (part instanceof ArrayBuffer) bytes = new Uint8Array(ArrayBufferPrototypeSlice(part, 0));
      else if (ArrayBufferIsView(part)) bytes = new Uint8Array(ArrayBufferPrototypeSlice(part.buffer as ArrayBuffer, part.byteOffset, part.byteOffset + part.byteLength));
      else if (isBlob(part)) bytes = bytesOf(part);
      else bytes = utf8Encode(String(part));
      ArrayPrototypePush(chunks, bytes);
      total += bytes.byteLength;
    }
    if (chunks.length === 1) return chunks[0]!;
    const out = new Uint8Array(total);
    let at = 0;
    for (let i = 0; i < chunks.length; i++) {
      TypedArrayPrototypeSet(out, chunks[i]!, at);
      at += chunks[i]!.byteLength;
    }
    return out;
  }

  // WebIDL [Clamp]-less `long long` conversion for slice()'s arguments.
  function toInteger(value: unknown): number {
    const n = MathTrunc(Number(value));
    return NumberIsFinite(n) ? n : (NumberIsNaN(n) ? 0 : n);
  }

  let bytesOf!: (blob: Blob) => Uint8Array;
  let isBlob!: (value: unknown) => value is Blob;
  let blobOf!: (bytes: Uint8Array, type: string) => Blob;
  let setType!: (blob: Blob, type: string) => void;

  class Blob {
    #bytes: Uint8Array;
    #type: string;

    constructor(parts?: unknown, options?: unknown) {
      if (parts === kInternal) {
        this.#bytes = options as Uint8Array;
        this.#type = '';
        return;
      }
      const opts = dictionary(options, 'Blob');
      this.#bytes = processParts(parts, opts.endings, new.target === Blob ? 'Blob' : 'File');
      this.#type = opts.type === undefined ? '' : normalizeType(opts.type);
    }

    get size(): number { return this.#bytes.byteLength; }
    get type(): string { return this.#type; }

    // File API §3.3.1 slice(): negative positions count from the end; the result is clamped.
    slice(start?: unknown, end?: unknown, contentType?: unknown): Blob {
      const size = this.#bytes.byteLength;
      const rel = (v: unknown, d: number): number => {
        if (v === undefined) return d;
        const n = toInteger(v);
        return n < 0 ? MathMax(size + n, 0) : MathMin(n, size);
      };
      const from = rel(start, 0);
      const to = rel(end, size);
      return blobOf(TypedArrayPrototypeSubarray(this.#bytes, from, MathMax(from, to)), contentType === undefined ? '' : normalizeType(contentType));
    }

    // File API §3.3.3 says "UTF-8 decode" (which strips a BOM); workerd keeps a leading BOM.
    async text(): Promise<string> { return utf8Decode(this.#bytes, true); }
    async arrayBuffer(): Promise<ArrayBuffer> { return TypedArrayPrototypeGetBuffer(TypedArrayPrototypeSlice(this.#bytes)) as ArrayBuffer; }
    async bytes(): Promise<Uint8Array<ArrayBuffer>> { return TypedArrayPrototypeSlice(this.#bytes) as Uint8Array<ArrayBuffer>; }

    stream(): unknown {
      let bytes: Uint8Array | null = TypedArrayPrototypeSlice(this.#bytes);
      const length = bytes.byteLength;
      return streamFromSource({
        pull: () => { const b = bytes; bytes = null; return PromiseResolve(b && b.byteLength > 0 ? b : null); },
        length,
      });
    }

    static {
      bytesOf = (blob) => blob.#bytes;
      isBlob = (value): value is Blob => typeof value === 'object' && value !== null && #bytes in value;
      setType = (blob, type) => { blob.#type = type; };
      blobOf = (bytes, type) => {
        const blob = new Blob(kInternal, bytes);
        blob.#type = type;
        return blob;
      };
    }
  }

  let fileOf!: (bytes: Uint8Array, name: string, type: string, lastModified: number) => File;

  class File extends Blob {
    #name: string;
    #lastModified: number;

    constructor(parts: unknown, name: unknown, options?: unknown) {
      if (arguments.length < 2) {
        throw new TypeError("Failed to construct 'File': constructor parameter 2 is not of type 'string'.");
      }
      if (parts === kInternal) {
        super(kInternal, options);
        this.#name = name as string;
        this.#lastModified = 0;
        return;
      }
      super(parts, options);
      const opts = dictionary(options, 'File');
      this.#name = String(name);
      // §4.1 step 3.3: lastModified defaults to the current time (the sandbox's frozen clock).
      // The spec's type is long long; workerd keeps it a double (1.7 stays 1.7).
      this.#lastModified = opts.lastModified === undefined ? now() : Number(opts.lastModified);
    }

    get name(): string { return this.#name; }
    get lastModified(): number { return this.#lastModified; }

    static {
      fileOf = (bytes, name, type, lastModified) => {
        const file = new File(kInternal, name, bytes);
        file.#lastModified = lastModified;
        setType(file, type);
        return file;
      };
    }
  }

  for (const [C, name] of [[Blob, 'Blob'], [File, 'File']] as const) {
    ObjectDefineProperty(C.prototype, SymbolToStringTag, { __proto__: null, value: name, configurable: true });
    ObjectDefineProperty(C, 'name', { __proto__: null, value: name, configurable: true });
  }

  return { Blob, File, isBlob, bytesOf, blobOf, fileOf };
}
