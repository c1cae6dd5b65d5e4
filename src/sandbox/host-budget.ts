// Bounds on what one isolate may ask of the host's event loop. Every console line and every
// asynchronous call is a task on the host's main thread, which all tenants share: a worker that
// logs or calls in a loop would queue them faster than the host runs them (the event loop and
// the admin API starve, memory grows by hundreds of MB a second). The bounds are counted here,
// before anything crosses the wall, so a call over them costs the host nothing; the CPU limit
// ends the loop itself. The counters live in this module's closure, out of tenant code's reach.

import { currentTime } from '../api/clock/sandbox.ts';
import { MAX_LOG_LINE_CHARS } from '../bridge/protocol.ts';
import {
  MathMin, StringPrototypeSlice,
} from './primordials.ts';

/** Console lines (and uncaught-error reports) an isolate may send: a burst, refilled each second. */
export const LOG_LINES_PER_SECOND = 1000;
/** Characters of console output an isolate may send: a burst, refilled each second. */
export const LOG_CHARS_PER_SECOND = 1024 * 1024;
/** Asynchronous host calls (fetch, body reads, crypto.subtle, ...) an isolate may have pending. */
export const MAX_PENDING_HOST_CALLS = 1000;

/** A token bucket on the sandbox's clock (the host's time at the last entry). */
class Bucket {
  private tokens: number;
  private last = -Infinity;
  private readonly perSecond: number;

  constructor(perSecond: number) {
    this.perSecond = perSecond;
    this.tokens = perSecond;
  }

  take(cost: number): boolean {
    const now = currentTime();
    if (now > this.last) {
      if (this.last !== -Infinity) this.tokens = MathMin(this.perSecond, this.tokens + ((now - this.last) / 1000) * this.perSecond);
      this.last = now;
    }
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }
}

const lines = new Bucket(LOG_LINES_PER_SECOND);
const chars = new Bucket(LOG_CHARS_PER_SECOND);
let dropping = false;

/**
 * Whether a log line of `length` characters may go to the host now. The first line dropped
 * says so (`notice`), once per run of drops, so the worker's log shows the gap.
 */
export function admitLogLine(length: number, notice: (message: string) => void): boolean {
  const cost = MathMin(length, MAX_LOG_LINE_CHARS);
  if (lines.take(1) && chars.take(cost)) {
    dropping = false;
    return true;
  }
  if (!dropping) {
    dropping = true;
    notice(
      `Console output is over its limit (${LOG_LINES_PER_SECOND} lines and ${LOG_CHARS_PER_SECOND / 1024} KiB a second per isolate): ` +
        'lines are dropped until it refills. Log less, or log a summary.',
    );
  }
  return false;
}

/** `text` as one log line crosses the wall: cut to MAX_LOG_LINE_CHARS. */
export function logLine(text: string): string {
  return text.length > MAX_LOG_LINE_CHARS ? StringPrototypeSlice(text, 0, MAX_LOG_LINE_CHARS) : text;
}
