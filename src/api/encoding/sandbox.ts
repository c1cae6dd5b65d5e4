// UTF-8 for the sandbox (WHATWG Encoding §9.1): utf8Encode/utf8Decode are the shared helpers of
// the other sandbox APIs (bodies, URLs, Blobs). TextEncoder, TextDecoder, atob and btoa (a bare V8
// context has none) are a sandbox module (./sandbox/module.ts), loaded on first use.

import { DOMException } from '../events/sandbox.ts';
import { limitedHostCalls, createModule } from '../../sandbox/host-calls.ts';
import { markNotSerializable } from '../structured-clone/sandbox.ts';
import type { EncodingApi, EncodingDeps } from './sandbox/module.ts';
import {
  ArrayBuffer, ArrayBufferIsView, ArrayPrototypePush, MathMin, ReflectApply, String, StringFromCharCode,
  StringPrototypeCharCodeAt, TypeError, TypedArrayPrototypeSlice, TypedArrayPrototypeSubarray, Uint8Array,
} from '../../sandbox/primordials.ts';

/** UTF-8 encode a string; lone surrogates become U+FFFD (WebIDL USVString conversion). */
export function utf8Encode(input: string): Uint8Array {
  const len = input.length;
  // Fast path: all ASCII, one byte each.
  let i = 0;
  for (; i < len; i++) if (StringPrototypeCharCodeAt(input, i) > 0x7f) break;
  if (i === len) {
    const out = new Uint8Array(len);
    for (let j = 0; j < len; j++) out[j] = StringPrototypeCharCodeAt(input, j);
    return out;
  }
  const out = new Uint8Array(i + (len - i) * 3);
  for (let j = 0; j < i; j++) out[j] = StringPrototypeCharCodeAt(input, j);
  const { written } = encodeIntoFrom(input, i, out, i);
  return TypedArrayPrototypeSlice(out, 0, i + written);
}

// Encoding §4.4.3 encodeInto, from string index `start` and byte offset `at`.
function encodeIntoFrom(input: string, start: number, dest: Uint8Array, at: number): { read: number; written: number } {
  let i = start, o = at;
  const len = input.length, cap = dest.length;
  while (i < len) {
    let c = StringPrototypeCharCodeAt(input, i);
    let units = 1;
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < len ? StringPrototypeCharCodeAt(input, i + 1) : 0;
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
        ArrayPrototypePush(units, 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
      } else {
        ArrayPrototypePush(units, cp);
      }
      if (units.length >= 8190) { out += ReflectApply(StringFromCharCode, null, units); units = []; }
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
    if (units.length) out += ReflectApply(StringFromCharCode, null, units);
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
      out += ReflectApply(StringFromCharCode, null, TypedArrayPrototypeSubarray(bytes, i, MathMin(i + 8192, bytes.length)) as unknown as number[]);
    }
    return out;
  }
  return new Utf8Decoder().decode(start ? TypedArrayPrototypeSubarray(bytes, start) : bytes, true, false);
}

/** Bytes of a BufferSource (ArrayBuffer or view), without copying. */
export function bufferSourceBytes(input: unknown, what: string): Uint8Array {
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBufferIsView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  throw new TypeError(`${what} must be an ArrayBuffer or ArrayBufferView.`);
}

let encodingApi: EncodingApi | undefined;

/** TextEncoder, TextDecoder, atob and btoa, loaded on first use (./sandbox/module.ts). */
export function encoding(): EncodingApi {
  if (encodingApi !== undefined) return encodingApi;
  // Evaluated on first use, after tenant code may have run: only the host's decoding operations.
  const calls = limitedHostCalls('encoding');
  const loaded = createModule<EncodingDeps, EncodingApi>('encoding', {
    utf8Encode,
    encodeInto: (source, destination) => encodeIntoFrom(source, 0, destination, 0),
    Utf8Decoder,
    bufferSourceBytes,
    DOMException: DOMException as unknown as EncodingDeps['DOMException'],
    callSync: calls.callSync,
  });
  // Platform objects without a serialization: structuredClone refuses them (DataCloneError).
  markNotSerializable(loaded.TextEncoder, loaded.TextDecoder);
  encodingApi = loaded;
  return loaded;
}
