// Large values a host call carries out of the isolate (a KV value of megabytes, say), held here
// until the host takes them with the `takePayload` entry, a piece at a time.
//
// Copying a value out as an argument of the call would happen while the worker's code runs, so
// the worker would pay for the platform's copy (and the serializer's buffers, and the collections
// they bring on): 25 MiB cost ~100 ms of a 50 ms limit. Taken by an entry of its own that runs no
// tenant code, the copy is charged to no request, as a response body's large chunks are
// (takeResponseChunk). Pieces of at most 1 MiB: each take is a run of the isolate, and the
// native watchdog bounds every run by the CPU limit whoever it is charged to; copying into fresh
// memory costs what its page faults cost, which on some machines is 100 ms for 25 MiB. A payload is held under the id of the call that carries it and dropped
// when that call settles or its request's calls are dropped, so a payload the host never takes
// (a call refused before it got there) is not kept.
//
// The bytes are read when the host takes them, before the call settles: a worker that changes a
// buffer it passed before awaiting the call may send the change.

import {
  ArrayBufferPrototypeGetByteLength, MathMin, SafeMap, StringPrototypeCharCodeAt, StringPrototypeSlice, TypedArrayPrototypeGetBuffer,
  TypedArrayPrototypeGetByteLength, TypedArrayPrototypeGetByteOffset, TypedArrayPrototypeSet, Uint8Array,
} from './primordials.ts';
import { MAX_CALL_BYTES } from '../bridge/operations.ts';

/** What one value crosses as: text (the host encodes it as UTF-8), or bytes, in parts (a stream's chunks) or one. */
export type OutgoingValue = string | Uint8Array[];

/** A part and the length it had when handed over (bytes that differ were detached or resized). */
interface Part {
  value: string | Uint8Array;
  length: number;
}

/**
 * Parts by index in a Map and records with a null prototype: takePayload runs no tenant code,
 * and an array's index or an object's field read there could reach a getter a tenant put on a
 * prototype. `part` and `offset` are where the next piece starts.
 */
interface Held {
  parts: SafeMap<number, Part>;
  part: number;
  offset: number;
}

/** The most bytes one take hands the host: what one call may carry. */
const PIECE_BYTES = MAX_CALL_BYTES;
/** The most UTF-16 units of text one take hands the host (at most 1 MiB copied, one-byte or two). */
const PIECE_CHARS = 512 * 1024;

const held = new SafeMap<number, Held>();
/** Full pieces are copied here, one after another (the host copies each out before the next): no garbage per piece. */
let scratch: Uint8Array | undefined;

/** Holds `value` for call `callId` until the host takes it or the call settles. */
export function holdPayload(callId: number, value: OutgoingValue): void {
  const parts = new SafeMap<number, Part>();
  if (typeof value === 'string') {
    parts.set(0, { __proto__: null, value, length: value.length } as Part);
  } else {
    for (let i = 0; i < value.length; i++) {
      const bytes = value[i]!;
      parts.set(i, { __proto__: null, value: bytes, length: TypedArrayPrototypeGetByteLength(bytes) } as Part);
    }
  }
  held.set(callId, { __proto__: null, parts, part: 0, offset: 0 } as Held);
}

/** The call settled (or will never be answered): its payload, if the host did not take all of it, goes. */
export function dropPayload(callId: number): void {
  if (held.size === 0) return;
  held.delete(callId);
  if (held.size === 0) scratch = undefined;
}

/**
 * The next piece of call `callId`'s payload (an entry point): text as it is, bytes as a buffer
 * the host copies, null when there is no more, false when a part was detached or resized after
 * it was handed over (what is left is not the value). Runs no tenant code: captured getters and
 * constructors only, and `set` into buffers of its own.
 */
export function takePayload(callId: number): ArrayBuffer | string | null | false {
  const entry = held.get(callId);
  if (entry === undefined) return null;
  const parts = entry.parts;
  const first = parts.get(entry.part);
  if (first === undefined) {
    dropPayload(callId);
    return null;
  }
  if (typeof first.value === 'string') return textPiece(entry, first.value);
  // A part the host can copy as it is: all of its buffer, no larger than a piece.
  if (entry.offset === 0 && first.length <= PIECE_BYTES) {
    const buffer = TypedArrayPrototypeGetBuffer(first.value) as ArrayBuffer;
    if (TypedArrayPrototypeGetByteLength(first.value) !== first.length) return false;
    if (TypedArrayPrototypeGetByteOffset(first.value) === 0 && ArrayBufferPrototypeGetByteLength(buffer) === first.length) {
      entry.part++;
      return buffer;
    }
  }
  // Else a piece is copied together from the parts, up to PIECE_BYTES or the next text.
  let size = 0;
  for (let i = entry.part, offset = entry.offset; size < PIECE_BYTES; i++, offset = 0) {
    const part = parts.get(i);
    if (part === undefined || typeof part.value === 'string') break;
    size += MathMin(part.length - offset, PIECE_BYTES - size);
  }
  const piece = size === PIECE_BYTES ? (scratch ??= new Uint8Array(PIECE_BYTES)) : new Uint8Array(size);
  let at = 0;
  while (at < size) {
    const part = parts.get(entry.part)!;
    const bytes = part.value as Uint8Array;
    if (TypedArrayPrototypeGetByteLength(bytes) !== part.length) return false;
    const n = MathMin(part.length - entry.offset, size - at);
    // A window made with the captured constructor: `subarray` would look up a species constructor.
    TypedArrayPrototypeSet(piece, new Uint8Array(TypedArrayPrototypeGetBuffer(bytes) as ArrayBuffer, TypedArrayPrototypeGetByteOffset(bytes) + entry.offset, n), at);
    at += n;
    entry.offset += n;
    if (entry.offset === part.length) {
      entry.part++;
      entry.offset = 0;
    }
  }
  return TypedArrayPrototypeGetBuffer(piece) as ArrayBuffer;
}

/** The next slice of a text part, never ending between the two halves of a surrogate pair (the host encodes each slice apart). */
function textPiece(entry: Held, text: string): string {
  let end = MathMin(entry.offset + PIECE_CHARS, text.length);
  if (end < text.length) {
    const last = StringPrototypeCharCodeAt(text, end - 1);
    if (last >= 0xd800 && last <= 0xdbff) end--;
  }
  const piece = StringPrototypeSlice(text, entry.offset, end);
  if (end === text.length) {
    entry.part++;
    entry.offset = 0;
  } else {
    entry.offset = end;
  }
  return piece;
}
