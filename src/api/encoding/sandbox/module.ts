// TextEncoder, TextDecoder (WHATWG Encoding §4), atob and btoa (HTML §8.3). A sandbox module
// (see src/runtime/sandbox-modules.ts), evaluated in an isolate the first time its code reads
// one of these globals (or a stream that needs them): a hello-world worker never does, and in
// the snapshot they were heap in every idle isolate. The UTF-8 encoder and decoder themselves,
// which bodies use, are in ../sandbox.ts.

import { MAX_CALL_BYTES, type OperationCalls } from '../../../bridge/operations.ts';
import {
  ArrayBuffer, ArrayBufferPrototypeSlice, ArrayPrototypeConcat, ArrayPrototypeIncludes, Error, ObjectDefineProperty,
  ObjectEntries, RangeError, ReflectApply, String, StringFromCharCode, StringPrototypeCharCodeAt,
  StringPrototypeEndsWith, StringPrototypeSlice, StringPrototypeToLowerCase, SymbolToStringTag, TypeError,
  TypedArrayPrototypeSubarray, Uint8Array, stringTrimBy,
} from '../../../sandbox/primordials.ts';
export interface Utf8Decoder {
  reset(): void;
  decode(bytes: Uint8Array, flush: boolean, fatal: boolean): string;
}

export interface EncodingDeps {
  utf8Encode(input: string): Uint8Array;
  /** Encoding §4.4.3 encodeInto. */
  encodeInto(source: string, destination: Uint8Array): { read: number; written: number };
  Utf8Decoder: new () => Utf8Decoder;
  bufferSourceBytes(input: unknown, what: string): Uint8Array;
  DOMException: new (message?: string, name?: string) => Error;
  /** The host's decoding operations, and only those. */
  callSync: OperationCalls['callSync'];
}

export interface EncodingApi {
  TextEncoder: typeof TextEncoder;
  TextDecoder: typeof TextDecoder;
  atob: typeof atob;
  btoa: typeof btoa;
}

let deps: EncodingDeps;

class TextEncoder {
  get encoding(): string { return 'utf-8'; }

  encode(input: unknown = ''): Uint8Array {
    return deps.utf8Encode(String(input));
  }

  encodeInto(source: unknown, destination: Uint8Array): { read: number; written: number } {
    if (!(destination instanceof Uint8Array)) {
      throw new TypeError("Failed to execute 'encodeInto' on 'TextEncoder': parameter 2 is not of type 'Uint8Array'.");
    }
    return deps.encodeInto(String(source), destination);
  }
}

ObjectDefineProperty(TextEncoder.prototype, SymbolToStringTag, { __proto__: null, value: 'TextEncoder', configurable: true });

// Encoding §4.2: the labels of UTF-8, decoded here. Every other encoding of the Encoding
// Standard (the legacy single- and multi-byte ones, UTF-16) is decoded on the host by Node's
// ICU-backed TextDecoder (src/api/encoding/host.ts): their tables would cost every isolate's heap.
const UTF8_LABELS = ['unicode-1-1-utf-8', 'unicode11utf8', 'unicode20utf8', 'utf-8', 'utf8', 'x-unicode20utf8'];

let nextDecoderId = 1;

/** callSync, with the host's RangeError/TypeError arriving as those types (not a named Error). */
function decoderOp<T>(op: string, ...args: unknown[]): T {
  try {
    return ReflectApply(deps.callSync, undefined, ArrayPrototypeConcat([op], args)) as T;
  } catch (error) {
    const { name, message } = error as Error;
    if (name === 'RangeError') throw new RangeError(message);
    if (name === 'TypeError') throw new TypeError(message);
    throw error;
  }
}

class TextDecoder {
  #encoding: string;
  #fatal: boolean;
  #ignoreBOM: boolean;
  #bomSeen = false;
  #decoder: Utf8Decoder | null = null;
  /** The host's name for this decoder's streaming state (legacy encodings), made on first use. */
  #id = 0;
  #streaming = false;

  constructor(label: unknown = 'utf-8', options?: { fatal?: boolean; ignoreBOM?: boolean }) {
    // Encoding §4.2 "get an encoding": trim ASCII whitespace, compare case-insensitively.
    const name = StringPrototypeToLowerCase(stringTrimBy(String(label), (c) => c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d || c === 0x20));
    if (ArrayPrototypeIncludes(UTF8_LABELS, name)) {
      this.#encoding = 'utf-8';
      this.#decoder = new deps.Utf8Decoder();
    } else {
      // The host knows the whole label table; unknown labels and "replacement" are a RangeError.
      if (name.length > 64) throw new RangeError(`"${StringPrototypeSlice(String(label), 0, 64)}..." is not a valid encoding.`);
      this.#encoding = decoderOp<string>('encoding.name', name);
    }
    this.#fatal = !!options?.fatal;
    this.#ignoreBOM = !!options?.ignoreBOM;
  }

  get encoding(): string { return this.#encoding; }
  get fatal(): boolean { return this.#fatal; }
  get ignoreBOM(): boolean { return this.#ignoreBOM; }

  decode(input?: unknown, options?: { stream?: boolean }): string {
    const continuing = this.#streaming;
    this.#streaming = !!options?.stream;
    const bytes = input === undefined || input === null ? new Uint8Array(0) : deps.bufferSourceBytes(input, "Failed to execute 'decode' on 'TextDecoder': parameter 1");
    if (this.#decoder === null) return this.#decodeOnHost(bytes, continuing);
    // Encoding §4.3 decode(): a new (non-streaming-continued) call starts from a clean state.
    if (!continuing) { this.#decoder.reset(); this.#bomSeen = false; }
    let out: string;
    try {
      out = this.#decoder.decode(bytes, !this.#streaming, this.#fatal);
    } catch (error) {
      this.#streaming = false;
      throw error;
    }
    // §4.1 "serialize I/O queue": strip one BOM at the very start of the stream.
    if (!this.#ignoreBOM && !this.#bomSeen && out.length > 0) {
      this.#bomSeen = true;
      if (StringPrototypeCharCodeAt(out, 0) === 0xfeff) out = StringPrototypeSlice(out, 1);
    }
    return out;
  }

  // The host keeps a streaming decoder's state (BOM, a multi-byte sequence split across calls)
  // under this decoder's id; inputs over a host call's bound are sent as a stream of chunks.
  #decodeOnHost(bytes: Uint8Array, continuing: boolean): string {
    if (this.#id === 0) this.#id = nextDecoderId++;
    let out = '';
    let at = 0;
    try {
      do {
        const chunk = TypedArrayPrototypeSubarray(bytes, at, at + MAX_CALL_BYTES);
        at += chunk.byteLength;
        const last = at >= bytes.byteLength;
        const copy = ArrayBufferPrototypeSlice(chunk.buffer as ArrayBuffer, chunk.byteOffset, chunk.byteOffset + chunk.byteLength);
        out += decoderOp<string>('encoding.decode', this.#encoding, copy, this.#fatal, this.#ignoreBOM, this.#id, continuing, !last || this.#streaming);
        continuing = true;
      } while (at < bytes.byteLength);
    } catch (error) {
      this.#streaming = false;
      throw error;
    }
    return out;
  }
}
ObjectDefineProperty(TextDecoder.prototype, SymbolToStringTag, { __proto__: null, value: 'TextDecoder', configurable: true });

// HTML §8.3 / Infra "forgiving-base64".
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function b64Value(c: number): number {
  if (c >= 65 && c <= 90) return c - 65;
  if (c >= 97 && c <= 122) return c - 71;
  if (c >= 48 && c <= 57) return c + 4;
  if (c === 43) return 62;
  if (c === 47) return 63;
  return -1;
}

function btoa(data: unknown): string {
  if (arguments.length === 0) throw new TypeError("Failed to execute 'btoa': 1 argument required, but only 0 present.");
  const s = String(data);
  for (let i = 0; i < s.length; i++) {
    if (StringPrototypeCharCodeAt(s, i) > 0xff) {
      throw new deps.DOMException('btoa() can only operate on characters in the Latin1 (ISO/IEC 8859-1) range.', 'InvalidCharacterError');
    }
  }
  let out = '';
  let i = 0;
  for (; i + 2 < s.length; i += 3) {
    const n = (StringPrototypeCharCodeAt(s, i) << 16) | (StringPrototypeCharCodeAt(s, i + 1) << 8) | StringPrototypeCharCodeAt(s, i + 2);
    out += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
  }
  if (s.length - i === 1) {
    const n = StringPrototypeCharCodeAt(s, i) << 16;
    out += B64[n >> 18] + B64[(n >> 12) & 63] + '==';
  } else if (s.length - i === 2) {
    const n = (StringPrototypeCharCodeAt(s, i) << 16) | (StringPrototypeCharCodeAt(s, i + 1) << 8);
    out += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + '=';
  }
  return out;
}

function atob(data: unknown): string {
  if (arguments.length === 0) throw new TypeError("Failed to execute 'atob': 1 argument required, but only 0 present.");
  // Infra "forgiving-base64 decode", steps 1-8.
  const input = String(data);
  let s = '';
  for (let i = 0; i < input.length; i++) {
    const c = StringPrototypeCharCodeAt(input, i);
    if (c !== 0x09 && c !== 0x0a && c !== 0x0c && c !== 0x0d && c !== 0x20) s += input[i];
  }
  if (s.length % 4 === 0) {
    if (StringPrototypeEndsWith(s, '==')) s = StringPrototypeSlice(s, 0, -2);
    else if (StringPrototypeEndsWith(s, '=')) s = StringPrototypeSlice(s, 0, -1);
  }
  const invalid = (): Error => new deps.DOMException(
    "atob() called with invalid base64-encoded data. (Only whitespace, '+', '/', alphanumeric ASCII, and up to two terminal '=' signs when the input data length is divisible by 4 are allowed.)",
    'InvalidCharacterError');
  if (s.length % 4 === 1) throw invalid();
  let out = '';
  let buffer = 0, bits = 0;
  for (let i = 0; i < s.length; i++) {
    const v = b64Value(StringPrototypeCharCodeAt(s, i));
    if (v < 0) throw invalid();
    buffer = ((buffer << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += StringFromCharCode((buffer >> bits) & 0xff);
    }
  }
  return out;
}

export function create(given: EncodingDeps): EncodingApi {
  deps = given;
  const api = { TextEncoder, TextDecoder, atob, btoa };
  // The bundler renames classes and functions; tenants see `.name` (constructor.name, stack traces).
  for (const [name, value] of ObjectEntries(api)) ObjectDefineProperty(value, 'name', { __proto__: null, value: name, configurable: true });
  return api;
}
