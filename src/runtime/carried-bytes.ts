// The bytes an asynchronous operation's call carries past one call's bound (MAX_CALL_BYTES,
// src/bridge/operations.ts): held in the isolate (src/sandbox/outgoing-payloads.ts) and taken a
// piece at a time (OpContext.takePayload) into one buffer made for them, so that the event loop,
// which every tenant of the process shares, runs between pieces. An argument of that size would
// be copied onto the host's main thread in one go (a 100 MB crypto.subtle.digest held it for 2 s).

import type { OpContext } from './host-ops.ts';

const MB = 1024 * 1024;

interface Held {
  bytes: number;
}

/**
 * Counts `length` bytes against what an isolate's pending operations may hold on the host once
 * taken: its memory limit, which held them while they were in the isolate. Without it a worker
 * could start operation after operation (16 may wait for the crypto threads per account), each
 * taken out of the isolate and freed there, and hold gigabytes of the host's memory. Returns the
 * release, to call when the operation is done with them; `tooMuch()` is the error past the bound.
 */
export function reserveCarried(ctx: Pick<OpContext, 'scope' | 'limits'>, length: number, tooMuch: () => Error): () => void {
  let held = ctx.scope.get('carried') as Held | undefined;
  if (held === undefined) ctx.scope.set('carried', held = { bytes: 0 });
  if (held.bytes + length > ctx.limits.memoryMb * MB) throw tooMuch();
  held.bytes += length;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    held.bytes -= length;
  };
}

/**
 * Takes the `length` bytes the call carries. `changed()` is the error when they do not add up:
 * a part the worker detached or resized before it was taken, or a sandbox that sent other than it said.
 */
export async function takeCarried(ctx: Pick<OpContext, 'takePayload'>, length: number, changed: () => Error): Promise<Uint8Array> {
  const whole = new Uint8Array(length);
  let at = 0;
  for (;;) {
    const piece = await ctx.takePayload();
    if (piece === null) break;
    if (!(piece instanceof ArrayBuffer) || at + piece.byteLength > length) throw changed();
    whole.set(new Uint8Array(piece), at);
    at += piece.byteLength;
  }
  if (at !== length) throw changed();
  return whole;
}
