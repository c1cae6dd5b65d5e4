// TextEncoder, TextDecoder (UTF-8), atob and btoa for the sandbox: a bare V8 context has none.
// Specs: WHATWG Encoding (§4 API, §9.1 UTF-8), HTML §8.3 (base64 utility methods).
// utf8Encode/utf8Decode are also the shared UTF-8 helpers of the other sandbox APIs.

import { DOMException } from '../events/sandbox.ts';
import { callSync } from '../../sandbox/host.ts';

/** UTF-8 encode a string; lone surrogates become U+FFFD (WebIDL USVString conversion). */
export function utf8Encode(input: string): Uint8Array {
  const len = input.length;
  // Fast path: all ASCII, one byte each.
  let i = 0;
  for (; i < len; i++) if (input.charCodeAt(i) > 0x7f) break;
  if (i === len) {
    const out = new Uint8Array(len);
    for (let j = 0; j < len; j++) out[j] = input.charCodeAt(j);
    return out;
  }
  const out = new Uint8Array(i + (len - i) * 3);
  for (let j = 0; j < i; j++) out[j] = input.charCodeAt(j);
  const { written } = encodeIntoFrom(input, i, out, i);
  return out.slice(0, i + written);
}

// Encoding §4.4.3 encodeInto, from string index `start` and byte offset `at`.
function encodeIntoFrom(input: string, start: number, dest: Uint8Array, at: number): { read: number; written: number } {
  let i = start, o = at;
  const len = input.length, cap = dest.length;
  while (i < len) {
    let c = input.charCodeAt(i);
    let units = 1;
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < len ? input.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        units = 2;
      } else {
        c = 0xfffd;
      }
    }
    if (c < 0x80) {
      if (o + 1 > cap) break;
      dest[o++] = c;
    } else if (c < 0x800) {
      if (o + 2 > cap) break;
      dest[o++] = 0xc0 | (c >> 6);
      dest[o++] = 0x80 | (c & 0x3f);
    } else if (c < 0x10000) {
      if (o + 3 > cap) break;
      dest[o++] = 0xe0 | (c >> 12);
      dest[o++] = 0x80 | ((c >> 6) & 0x3f);
      dest[o++] = 0x80 | (c & 0x3f);
    } else {
      if (o + 4 > cap) break;
      dest[o++] = 0xf0 | (c >> 18);
      dest[o++] = 0x80 | ((c >> 12) & 0x3f);
      dest[o++] = 0x80 | ((c >> 6) & 0x3f);
      dest[o++] = 0x80 | (c & 0x3f);
    }
    i += units;
  }
  return { read: i - start, written: o - at };
}

/**
 * Encoding §9.1.1 UTF-8 decoder as a resumable state machine: invalid sequences become U+FFFD
 * (maximal subparts, as the spec says) or throw when `fatal`. `state` carries a sequence split
 * across chunks when streaming.
 */
class Utf8Decoder {
  codePoint = 0;
  bytesSeen = 0;
  bytesNeeded = 0;
  lower = 0x80;
  upper = 0xbf;

  /** Decode `bytes`; if `flush`, an unfinished sequence at the end is an error. */
  decode(bytes: Uint8Array, flush: boolean, fatal: boolean): string {
    let out = '';
    let units: number[] = [];
    const push = (cp: number): void => {
      if (cp > 0xffff) {
        cp -= 0x10000;
        units.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
      } else {
        units.push(cp);
      }
      if (units.length >= 8190) { out += String.fromCharCode.apply(null, units); units = []; }
    };
    const error = (): void => {
      if (fatal) { this.reset(); throw new TypeError('The encoded data was not valid for encoding utf-8'); }
      push(0xfffd);
    };
    const len = bytes.length;
    for (let i = 0; i < len; i++) {
      const b = bytes[i];
      if (this.bytesNeeded === 0) {
        if (b <= 0x7f) { push(b); continue; }
        if (b >= 0xc2 && b <= 0xdf) { this.bytesNeeded = 1; this.codePoint = b & 0x1f; }
        else if (b >= 0xe0 && b <= 0xef) {
          if (b === 0xe0) this.lower = 0xa0;
          if (b === 0xed) this.upper = 0x9f;
          this.bytesNeeded = 2; this.codePoint = b & 0xf;
        } else if (b >= 0xf0 && b <= 0xf4) {
          if (b === 0xf0) this.lower = 0x90;
          if (b === 0xf4) this.upper = 0x8f;
          this.bytesNeeded = 3; this.codePoint = b & 0x7;
        } else error();
        continue;
      }
      if (b < this.lower || b > this.upper) {
        // The spec "prepends" the byte back to the stream: reprocess it as a lead byte.
        this.reset();
        error();
        i--;
        continue;
      }
      this.lower = 0x80; this.upper = 0xbf;
      this.codePoint = (this.codePoint << 6) | (b & 0x3f);
      if (++this.bytesSeen === this.bytesNeeded) {
        const cp = this.codePoint;
        this.reset();
        push(cp);
      }
    }
    if (flush && this.bytesNeeded !== 0) { this.reset(); error(); }
    if (units.length) out += String.fromCharCode.apply(null, units);
    return out;
  }

  reset(): void {
    this.codePoint = 0; this.bytesSeen = 0; this.bytesNeeded = 0; this.lower = 0x80; this.upper = 0xbf;
  }
}

/** UTF-8 decode (Encoding §6 "UTF-8 decode"): strips one leading BOM, replaces errors. */
export function utf8Decode(bytes: Uint8Array, keepBOM = false): string {
  let start = 0;
  if (!keepBOM && bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) start = 3;
  // Fast path: ASCII only.
  let ascii = true;
  for (let i = start; i < bytes.length; i++) if (bytes[i] > 0x7f) { ascii = false; break; }
  if (ascii) {
    let out = '';
    for (let i = start; i < bytes.length; i += 8192) {
      out += String.fromCharCode.apply(null, bytes.subarray(i, Math.min(i + 8192, bytes.length)) as unknown as number[]);
    }
    return out;
  }
  return new Utf8Decoder().decode(start ? bytes.subarray(start) : bytes, true, false);
}

/** Bytes of a BufferSource (ArrayBuffer or view), without copying. */
export function bufferSourceBytes(input: unknown, what: string): Uint8Array {
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  throw new TypeError(`${what} must be an ArrayBuffer or ArrayBufferView.`);
}

export class TextEncoder {
  get encoding(): string { return 'utf-8'; }

  encode(input: unknown = ''): Uint8Array {
    return utf8Encode(String(input));
  }

  encodeInto(source: unknown, destination: Uint8Array): { read: number; written: number } {
    if (!(destination instanceof Uint8Array)) {
      throw new TypeError("Failed to execute 'encodeInto' on 'TextEncoder': parameter 2 is not of type 'Uint8Array'.");
    }
    return encodeIntoFrom(String(source), 0, destination, 0);
  }
}

Object.defineProperty(TextEncoder.prototype, Symbol.toStringTag, { value: 'TextEncoder', configurable: true });

// Encoding §4.2: the labels of UTF-8, decoded here. Every other encoding of the Encoding
// Standard (the legacy single- and multi-byte ones, UTF-16) is decoded on the host by Node's
// ICU-backed TextDecoder (src/api/encoding/host.ts): their tables would cost every isolate's heap.
const UTF8_LABELS = ['unicode-1-1-utf-8', 'unicode11utf8', 'unicode20utf8', 'utf-8', 'utf8', 'x-unicode20utf8'];

/** Bytes per host call (src/api/encoding/host.ts MAX_DECODE_BYTES); larger inputs are streamed. */
const HOST_DECODE_CHUNK = 1024 * 1024;
let nextDecoderId = 1;

/** callSync, with the host's RangeError/TypeError arriving as those types (not a named Error). */
function decoderOp<T>(op: string, ...args: unknown[]): T {
  try {
    return callSync<T>(op, ...args);
  } catch (error) {
    const { name, message } = error as Error;
    if (name === 'RangeError') throw new RangeError(message);
    if (name === 'TypeError') throw new TypeError(message);
    throw error;
  }
}

export class TextDecoder {
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
    const name = String(label).replace(/^[\t\n\f\r ]+|[\t\n\f\r ]+$/g, '').toLowerCase();
    if (UTF8_LABELS.includes(name)) {
      this.#encoding = 'utf-8';
      this.#decoder = new Utf8Decoder();
    } else {
      // The host knows the whole label table; unknown labels and "replacement" are a RangeError.
      if (name.length > 64) throw new RangeError(`"${String(label).slice(0, 64)}..." is not a valid encoding.`);
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
    const bytes = input === undefined || input === null ? new Uint8Array(0) : bufferSourceBytes(input, "Failed to execute 'decode' on 'TextDecoder': parameter 1");
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
      if (out.charCodeAt(0) === 0xfeff) out = out.slice(1);
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
        const chunk = bytes.subarray(at, at + HOST_DECODE_CHUNK);
        at += chunk.byteLength;
        const last = at >= bytes.byteLength;
        const copy = chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.byteLength) as ArrayBuffer;
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
Object.defineProperty(TextDecoder.prototype, Symbol.toStringTag, { value: 'TextDecoder', configurable: true });

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

export function btoa(data: unknown): string {
  if (arguments.length === 0) throw new TypeError("Failed to execute 'btoa': 1 argument required, but only 0 present.");
  const s = String(data);
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0xff) {
      throw new DOMException('btoa() can only operate on characters in the Latin1 (ISO/IEC 8859-1) range.', 'InvalidCharacterError');
    }
  }
  let out = '';
  let i = 0;
  for (; i + 2 < s.length; i += 3) {
    const n = (s.charCodeAt(i) << 16) | (s.charCodeAt(i + 1) << 8) | s.charCodeAt(i + 2);
    out += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
  }
  if (s.length - i === 1) {
    const n = s.charCodeAt(i) << 16;
    out += B64[n >> 18] + B64[(n >> 12) & 63] + '==';
  } else if (s.length - i === 2) {
    const n = (s.charCodeAt(i) << 16) | (s.charCodeAt(i + 1) << 8);
    out += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + '=';
  }
  return out;
}

export function atob(data: unknown): string {
  if (arguments.length === 0) throw new TypeError("Failed to execute 'atob': 1 argument required, but only 0 present.");
  // Infra "forgiving-base64 decode", steps 1-8.
  let s = String(data).replace(/[\t\n\f\r ]/g, '');
  if (s.length % 4 === 0) {
    if (s.endsWith('==')) s = s.slice(0, -2);
    else if (s.endsWith('=')) s = s.slice(0, -1);
  }
  const invalid = (): DOMException => new DOMException(
    "atob() called with invalid base64-encoded data. (Only whitespace, '+', '/', alphanumeric ASCII, and up to two terminal '=' signs when the input data length is divisible by 4 are allowed.)",
    'InvalidCharacterError');
  if (s.length % 4 === 1) throw invalid();
  let out = '';
  let buffer = 0, bits = 0;
  for (let i = 0; i < s.length; i++) {
    const v = b64Value(s.charCodeAt(i));
    if (v < 0) throw invalid();
    buffer = ((buffer << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += String.fromCharCode((buffer >> bits) & 0xff);
    }
  }
  return out;
}
