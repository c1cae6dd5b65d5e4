// A response body the worker gave whole (a string or bytes) that is too large for one crossing
// of the wall goes out like a stream: the host pulls it a slice at a time, as fast as the
// client's socket takes it. Sent whole, each such response was a full copy in the host's
// memory for as long as its client took to read it (twenty clients that never read a 100 MiB
// response held 4 GB there); this way the host holds one slice per response, and the bytes
// stay in the isolate, under its memory limit.

import type { BodySource } from '../api/body/sandbox.ts';
import {
  MathMin, StringPrototypeCharCodeAt, StringPrototypeSlice, Uint8Array,
} from './primordials.ts';

/** Bodies larger than this (in bytes, or UTF-16 units of a string) are sent a slice at a time. */
export const MAX_WHOLE_BODY_CROSSING = 1024 * 1024;
/** What one pull hands the host, at most: a worker's larger chunks are handed over in slices too. */
export const SLICE = 1024 * 1024;
/** A slice of text, in UTF-16 units: each encodes to at most 3 bytes, so a slice to at most SLICE. */
const TEXT_SLICE = SLICE / 4;

export function wholeBodySource(body: string | Uint8Array): BodySource {
  if (typeof body !== 'string') {
    // Handed over as one chunk: pullResponse slices every chunk larger than SLICE.
    let sent = false;
    return {
      length: body.byteLength,
      pull: async () => {
        if (sent) return null;
        sent = true;
        return body;
      },
    };
  }
  let at = 0;
  return {
    length: utf8Length(body),
    pull: async () => {
      if (at >= body.length) return null;
      let end = MathMin(at + TEXT_SLICE, body.length);
      // A surrogate pair is one character: never split it between two slices.
      const last = StringPrototypeCharCodeAt(body, end - 1);
      if (end < body.length && last >= 0xd800 && last <= 0xdbff) end--;
      // Crosses as a string: isolated-vm copies it natively and the host encodes it natively,
      // where encoding it here would be the worker's CPU spent in JavaScript.
      const slice = StringPrototypeSlice(body, at, end);
      at = end;
      return slice as unknown as Uint8Array;
    },
  };
}

/** The UTF-8 length of a string as the host encodes it (a lone surrogate becomes U+FFFD, 3 bytes). */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = StringPrototypeCharCodeAt(text, i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = StringPrototypeCharCodeAt(text, i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}
