// Back-off for workers whose requests keep ending at their CPU or memory limit, or crashing
// their runtime process. Each such request costs a thread and up to the whole limit of CPU (or
// a heap grown to its limit, and a fresh isolate after it; or a new runtime process), which
// every other tenant of the process waits behind: a worker that loops forever and receives
// traffic would burn a core all along. A worker whose requests mostly end so is refused at
// admission for a while, without running, with 503 and Retry-After; after that it is on
// probation: its next such request refuses it again, for twice as long, up to a ceiling,
// until it behaves for a while. A worker that only now and
// then hits a limit among many requests that do not is left alone: the rule looks at the share
// of its requests, not only their number. (A crash also counts against the worker's account in
// crash-policy.ts, which moves it to the quarantine tier: this keeps it from crash-looping
// there at the cost of a process start each time.)
//
// What counts is the platform's own answer: the runtime's 503s for a request its isolate's
// limit ended (src/runtime/termination.ts), and the supervisor's 502 for a request whose code
// crashed its process. A worker can send those bytes itself, which only penalizes it.

import type { RuntimeResponse } from '../runtime/types.ts';
import { terminationResponseBody } from '../runtime/termination.ts';
import { CRASHED_ITS_PROCESS } from './runtime-process.ts';

export interface PenaltyLimits {
  /** Requests of one worker ended by a limit, in a window, before it is first refused for a while (0: never). */
  limitStrikes: number;
  /**
   * The window those requests are counted in; at least half of the worker's requests in it must
   * have hit a limit. Long enough for requests that take seconds to crash their process.
   */
  strikeWindowMs: number;
  /** The first refusal period; each next one doubles, up to `maxPenaltyMs`. */
  penaltyMs: number;
  maxPenaltyMs: number;
}

export const DEFAULT_PENALTIES: PenaltyLimits = Object.freeze({
  limitStrikes: 3,
  strikeWindowMs: 60_000,
  penaltyMs: 1000,
  maxPenaltyMs: 60_000,
});

/** A worker that has gone this long after its last refusal period without another starts again from the first. */
const FORGIVE_AFTER_MS = 10 * 60_000;
/** Past this many workers with records, expired records are swept. */
const SWEEP_AT = 1024;

const LIMIT_BODIES = [
  Buffer.from(terminationResponseBody({ kind: 'cpu', usedMs: 0, limitMs: 0, phase: 'request' })),
  Buffer.from(terminationResponseBody({ kind: 'memory', limitMb: 0 })),
];

const CRASHED = Buffer.from(CRASHED_ITS_PROCESS);

/** Whether the platform answered this because the request's isolate hit its CPU or memory limit, or its code crashed its process. */
export function endedByLimit(response: RuntimeResponse): boolean {
  const body = response.body;
  if (!(body instanceof Uint8Array)) return false;
  if (response.status === 503) return LIMIT_BODIES.some((limit) => limit.equals(body));
  return response.status === 502 && body.length > CRASHED.length && CRASHED.equals(body.subarray(0, CRASHED.length));
}

interface Record {
  /** When the current window began: with the first limit hit after the last one expired. */
  since: number;
  requests: number;
  hits: number;
  /** Refused until then (0: not refused). */
  until: number;
  /** Refusal periods so far; the next lasts penaltyMs * 2^level. */
  level: number;
}

export class LimitPenalties {
  readonly #limits: PenaltyLimits;
  readonly #now: () => number;
  readonly #records = new Map<string, Record>();

  constructor(limits: Partial<PenaltyLimits> = {}, now: () => number = Date.now) {
    this.#limits = { ...DEFAULT_PENALTIES, ...limits };
    this.#now = now;
  }

  /** The answer for a worker that is being refused now, or undefined when it may run. */
  refusal(worker: string): RuntimeResponse | undefined {
    const record = this.#records.get(worker);
    if (record === undefined || record.until === 0) return undefined;
    const left = record.until - this.#now();
    if (left <= 0) return undefined;
    return refused(Math.ceil(left / 1000), this.#limits);
  }

  /** Whether the worker's requests hit a limit within the window, or it is on probation after a refusal. */
  suspect(worker: string): boolean {
    const record = this.#records.get(worker);
    if (record === undefined) return false;
    const now = this.#now();
    if (record.until !== 0 && now - record.until <= FORGIVE_AFTER_MS) return true;
    return record.hits > 0 && now - record.since <= this.#limits.strikeWindowMs;
  }

  /** Counts a finished request of the worker; refuses the worker for a while when most of its requests hit a limit. */
  record(worker: string, response: RuntimeResponse): void {
    if (this.#limits.limitStrikes <= 0) return;
    const hit = endedByLimit(response);
    let record = this.#records.get(worker);
    if (record === undefined) {
      if (!hit) return;
      if (this.#records.size >= SWEEP_AT) this.#sweep();
      record = { since: this.#now(), requests: 0, hits: 0, until: 0, level: 0 };
      this.#records.set(worker, record);
    }
    const now = this.#now();
    // Requests that were in flight when the refusal began end meanwhile: they are paid for.
    if (record.until > now) return;
    if (now - record.since > this.#limits.strikeWindowMs) {
      if (!hit) return this.#expire(worker, record, now);
      record.since = now;
      record.requests = 0;
      record.hits = 0;
    }
    record.requests++;
    if (!hit) return;
    record.hits++;
    if (record.until !== 0 && now - record.until > FORGIVE_AFTER_MS) record.level = 0;
    // Once refused, a worker is on probation until forgiven: its next hit (if most of its
    // requests since) refuses it again, for twice as long.
    const strikes = record.level > 0 ? 1 : this.#limits.limitStrikes;
    if (record.hits < strikes || record.hits * 2 < record.requests) return;
    record.until = now + Math.min(this.#limits.maxPenaltyMs, this.#limits.penaltyMs * 2 ** record.level);
    record.level++;
    record.since = record.until;
    record.requests = 0;
    record.hits = 0;
  }

  /** Workers with a record now (for tests). */
  get size(): number {
    return this.#records.size;
  }

  /** A record whose window ran out with nothing new is kept only while its refusal level still matters. */
  #expire(worker: string, record: Record, now: number): void {
    if (record.until === 0 || now - record.until > FORGIVE_AFTER_MS) this.#records.delete(worker);
    else {
      record.requests = 0;
      record.hits = 0;
    }
  }

  #sweep(): void {
    const now = this.#now();
    for (const [worker, record] of this.#records) {
      if (now - record.since > this.#limits.strikeWindowMs) this.#expire(worker, record, now);
    }
  }
}

function refused(seconds: number, limits: PenaltyLimits): RuntimeResponse {
  return {
    status: 503,
    statusText: 'Service Unavailable',
    headers: [['content-type', 'text/plain;charset=UTF-8'], ['retry-after', String(seconds)]],
    body: Buffer.from(
      `This worker's requests keep exceeding its CPU or memory limit or crashing its process (${limits.limitStrikes} or more in ${limits.strikeWindowMs / 1000} s, most of its requests): ` +
        `it is not run for ${seconds} s. Fix what its log reports (isolet tail <worker>), then retry after ${seconds} s.\n`,
    ),
  };
}
