// What each worker did in each of the last 60 minutes, for the dashboard's charts
// (GET /v1/workers/:name/activity): requests, errors (5xx answers), CPU and cold starts, counted
// from the lines the server logs anyway (a request's line carries its status and CPU) and from
// the runtime's cold-start events. Per worker: 60 slots, one per minute, reused as the hour
// turns, so a request costs a lookup and four additions, and a worker costs a fixed few
// hundred bytes until it has been quiet for an hour.

import type { WorkerLogEntry } from '../runtime/types.ts';
import type { Store, WorkerInfo } from '../store/store.ts';

export const MINUTE_MS = 60_000;
export const MINUTES = 60;

/** One minute of one worker. */
export interface ActivityMinute {
  /** When the minute began (ISO 8601). */
  start: string;
  requests: number;
  errors: number;
  cpuMs: number;
  coldStarts: number;
}

const REQUESTS = 0;
const ERRORS = 1;
const CPU_MS = 2;
const COLD_STARTS = 3;
const FIELDS = 4;

interface Slots {
  /** The minute (ms since the epoch / MINUTE_MS) each slot holds; a slot of another minute counts as empty. */
  minutes: Float64Array;
  counts: Float64Array;
  /** When each slot's minute got its first count (ms since the epoch). */
  first: Float64Array;
  /** The newest minute counted. */
  last: number;
  /** Where the newest minute's counters begin in `counts`. */
  base: number;
}

export class WorkerActivity {
  readonly #workers = new Map<string, Slots>();
  readonly #now: () => number;
  #swept = 0;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Counts a worker's log line: a request's status and CPU. Every other line is ignored. */
  record(entry: WorkerLogEntry): void {
    if (entry.type !== 'request') return;
    const { counts, base } = this.#current(entry.worker);
    counts[base + REQUESTS]!++;
    if (typeof entry.status === 'number' && entry.status >= 500) counts[base + ERRORS]!++;
    if (typeof entry.cpuMs === 'number' && Number.isFinite(entry.cpuMs) && entry.cpuMs > 0) counts[base + CPU_MS]! += entry.cpuMs;
  }

  /** A new isolate started for one of the worker's requests. */
  coldStart(worker: string): void {
    const { counts, base } = this.#current(worker);
    counts[base + COLD_STARTS]!++;
  }

  /**
   * The worker's last hour, oldest minute first, the current minute last. A minute whose first
   * count came before `since` (the worker's creation) reads as zero: a name deleted and made
   * again is another worker, perhaps another account's, and its counts are not the new one's.
   */
  minutes(worker: string, since = 0): ActivityMinute[] {
    const current = Math.floor(this.#now() / MINUTE_MS);
    const slots = this.#workers.get(worker);
    const out: ActivityMinute[] = [];
    for (let minute = current - MINUTES + 1; minute <= current; minute++) {
      const i = minute % MINUTES;
      const held = slots !== undefined && slots.minutes[i] === minute && slots.first[i]! >= since;
      const at = (field: number) => (held ? slots.counts[i * FIELDS + field]! : 0);
      out.push({
        start: new Date(minute * MINUTE_MS).toISOString(),
        requests: at(REQUESTS),
        errors: at(ERRORS),
        cpuMs: Math.round(at(CPU_MS) * 1000) / 1000,
        coldStarts: at(COLD_STARTS),
      });
    }
    return out;
  }

  /** Workers counted now (each quiet for an hour is forgotten). */
  get size(): number {
    return this.#workers.size;
  }

  /** The worker's slots, with `base` at the current minute's counters. */
  #current(worker: string): Slots {
    const now = this.#now();
    const minute = Math.floor(now / MINUTE_MS);
    if (minute !== this.#swept) this.#sweep(minute);
    let slots = this.#workers.get(worker);
    if (slots === undefined) {
      slots = { minutes: new Float64Array(MINUTES).fill(-1), first: new Float64Array(MINUTES), counts: new Float64Array(MINUTES * FIELDS), last: minute, base: 0 };
      this.#workers.set(worker, slots);
    }
    const i = minute % MINUTES;
    if (slots.minutes[i] !== minute) {
      slots.minutes[i] = minute;
      slots.first[i] = now;
      slots.counts.fill(0, i * FIELDS, (i + 1) * FIELDS);
    }
    slots.last = minute;
    slots.base = i * FIELDS;
    return slots;
  }

  /** Once a minute: forget the workers with nothing in the last hour. */
  #sweep(minute: number): void {
    this.#swept = minute;
    for (const [worker, slots] of this.#workers) if (slots.last <= minute - MINUTES) this.#workers.delete(worker);
  }
}

/**
 * The answer of GET /v1/workers/:name/activity for a worker the caller owns: its last hour,
 * counted from when it was created (its oldest version), so a name deleted and taken again
 * never shows the earlier worker's traffic.
 */
export async function activityAnswer(activity: WorkerActivity, worker: WorkerInfo, store: Pick<Store, 'listVersions'>): Promise<{ worker: string; minuteMs: number; minutes: ActivityMinute[] }> {
  const versions = await store.listVersions(worker.name);
  const created = versions.length === 0 ? Date.now() : Math.min(...versions.map((v) => Date.parse(v.createdAt)));
  return { worker: worker.name, minuteMs: MINUTE_MS, minutes: activity.minutes(worker.name, created) };
}
