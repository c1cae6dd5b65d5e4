// The host half of TextDecoder's legacy encodings (WHATWG Encoding §10-§14: the single-byte
// encodings, gbk/gb18030, big5, euc-jp, iso-2022-jp, shift_jis, euc-kr, utf-16le/be,
// x-user-defined). UTF-8 never crosses: the sandbox decodes it itself. The others use Node's
// TextDecoder (full ICU), which implements the Encoding Standard's label table and decoders;
// shipping those tables into every isolate would cost hundreds of KB of heap each.
//
// Streaming (`decode(bytes, { stream: true })`) keeps a Node decoder per sandbox decoder id in
// the calling isolate's op scope (dropped with the isolate). At most MAX_STREAMS are kept per
// isolate; past that the least recently used is dropped, and if its decoder then continues its
// stream it gets a TypeError rather than text missing the bytes its state held.

import { TextDecoder as NodeTextDecoder } from 'node:util';
import type { OperationTable, SyncOp } from '../../runtime/host-ops.ts';
import { MAX_CALL_BYTES } from '../../bridge/operations.ts';

/**
 * An error whose name reaches the sandbox as its type (host-ops.ts's OpError, made here: a value
 * import of host-ops.ts would be a cycle, since host-ops.ts imports this table).
 */
class OpError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

// What a decode costs the host: Node's decoders take ~1-5 ms per MiB (shift_jis, gb18030 and
// the single-byte ones ~5 ms, UTF-16 ~1 ms), on the host's main thread (a sync op runs there,
// and it is not charged to the isolate's CPU). So each call is bounded (the sandbox splits
// larger inputs into streamed calls, and the host's event loop runs between them), and each
// isolate has a budget of bytes per second (a token bucket), so that one worker decoding in a
// loop cannot take more than a few percent of the main thread.

/** The per-isolate budget: refilled at this many bytes per second, up to BUDGET_BURST. */
const BUDGET_RATE = 16 * 1024 * 1024;
const BUDGET_BURST = 32 * 1024 * 1024;
const MAX_STREAMS = 64;
const MAX_LABEL = 64;

interface EncodingScope {
  /** Sandbox decoder id -> Node decoder in mid-stream (Map order is least recently used first). */
  streams: Map<number, NodeTextDecoder>;
  /** Bytes this isolate may still decode now, and since when it refills (ms: the end of the last decode). */
  budget: number;
  budgetAt: number;
}

function spend(scope: EncodingScope, bytes: number): void {
  const now = performance.now();
  scope.budget = Math.min(BUDGET_BURST, scope.budget + ((now - scope.budgetAt) / 1000) * BUDGET_RATE);
  scope.budgetAt = now;
  if (bytes > scope.budget) {
    throw new OpError('RangeError', `TextDecoder: a worker may decode at most ${BUDGET_RATE / 1024 / 1024} MiB of non-UTF-8 text per second (bursts of ${BUDGET_BURST / 1024 / 1024} MiB).`);
  }
  scope.budget -= bytes;
}

function scopeOf(scope: Map<string, unknown>): EncodingScope {
  let s = scope.get('encoding') as EncodingScope | undefined;
  if (!s) {
    s = { streams: new Map(), budget: BUDGET_BURST, budgetAt: performance.now() };
    scope.set('encoding', s);
  }
  return s;
}

/** Encoding §4.2 "get an encoding": the encoding's name for `label`, or a RangeError. */
function encodingName(label: unknown): string {
  if (typeof label !== 'string' || label.length > MAX_LABEL) throw new OpError('RangeError', 'The encoding label is not supported.');
  try {
    return new NodeTextDecoder(label).encoding;
  } catch {
    // Unknown labels and the "replacement" encoding (iso-2022-kr, ...), as workerd.
    throw new OpError('RangeError', `"${label}" is not a valid encoding.`);
  }
}

export const encodingSyncOps = {
  /** [label] -> the encoding's name (e.g. 'latin1' -> 'windows-1252'). */
  'encoding.name': (_ctx, [label]) => encodingName(label),

  /**
   * [encoding, bytes, fatal, ignoreBOM, id, continuing, stream] -> the decoded text. `id` names
   * the sandbox decoder; `continuing` says its previous call was a streaming one.
   */
  'encoding.decode': (ctx, [encoding, bytes, fatal, ignoreBOM, id, continuing, stream]) => {
    if (typeof encoding !== 'string' || encoding.length > MAX_LABEL) throw new OpError('RangeError', 'Bad encoding.');
    if (!(bytes instanceof ArrayBuffer) || bytes.byteLength > MAX_CALL_BYTES) {
      throw new OpError('RangeError', `decode: input must be an ArrayBuffer of at most ${MAX_CALL_BYTES} bytes.`);
    }
    if (typeof id !== 'number' || !Number.isSafeInteger(id)) throw new OpError('TypeError', 'Bad decoder id.');
    const options = { fatal: fatal === true, ignoreBOM: ignoreBOM === true };
    const scope = scopeOf(ctx.scope);
    spend(scope, bytes.byteLength);
    let decoder = scope.streams.get(id);
    scope.streams.delete(id);
    if (continuing === true && decoder === undefined) {
      throw new OpError('TypeError', `Too many TextDecoders were streaming at once in this worker (over ${MAX_STREAMS}); this one's state was dropped.`);
    }
    if (continuing !== true || decoder === undefined) {
      try {
        decoder = new NodeTextDecoder(encodingName(encoding), options);
      } catch (error) {
        if (error instanceof OpError) throw error;
        throw new OpError('RangeError', `"${encoding}" is not a valid encoding.`);
      }
    }
    let text: string;
    try {
      text = decoder.decode(new Uint8Array(bytes), { stream: stream === true });
    } catch {
      // fatal: the stream ends with the error (the sandbox starts afresh on the next call).
      throw new OpError('TypeError', `The encoded data was not valid for encoding ${encoding}`);
    } finally {
      // Time spent decoding refills nothing: on a loaded machine a decode takes longer, and
      // otherwise the slower the host, the more a worker could decode back to back.
      scope.budgetAt = performance.now();
    }
    if (stream === true) {
      scope.streams.set(id, decoder);
      if (scope.streams.size > MAX_STREAMS) scope.streams.delete(scope.streams.keys().next().value!);
    }
    return text;
  },
} satisfies Partial<OperationTable>;
