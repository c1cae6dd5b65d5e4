// Each worker's last hour, a minute at a time, for the admin API (GET /v1/workers/:name/metrics)
// and the charts a dashboard draws from it: requests, errors (5xx answers), CPU and cold starts.
// Prometheus keeps the long history. This holds what this server counted; the minutes it
// touched are written to the store (series-sync.ts), from which the other nodes' counts, and this
// node's from before a restart, are added when read. Only workers with something in the last
// hour take memory.

import type { WorkerMinute } from '../store/worker-minute.ts';

export const SERIES_MINUTES = 60;

/** What a worker did in one minute. */
export interface SeriesPoint {
  /** The minute's start (ISO 8601). */
  time: string;
  requests: number;
  errors: number;
  cpuMs: number;
  coldStarts: number;
}

export type SeriesFields = Omit<SeriesPoint, 'time'>;

const FIELDS = ['requests', 'errors', 'cpuMs', 'coldStarts'] as const;
const MINUTE_MS = 60_000;

interface Ring {
  /** Which minute (since the epoch) each slot holds. */
  minutes: Int32Array;
  /** FIELDS.length values per slot. */
  values: Float64Array;
  last: number;
}

export class WorkerSeries {
  readonly #rings = new Map<string, Ring>();
  /** Minutes changed since the store last took them, per worker. */
  readonly #dirty = new Map<string, Set<number>>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  add(worker: string, fields: Partial<SeriesFields>): void {
    const minute = Math.floor(this.#now() / MINUTE_MS);
    let ring = this.#rings.get(worker);
    if (ring === undefined) {
      ring = { minutes: new Int32Array(SERIES_MINUTES).fill(-1), values: new Float64Array(SERIES_MINUTES * FIELDS.length), last: minute };
      this.#rings.set(worker, ring);
    }
    const slot = minute % SERIES_MINUTES;
    if (ring.minutes[slot] !== minute) {
      ring.minutes[slot] = minute;
      ring.values.fill(0, slot * FIELDS.length, (slot + 1) * FIELDS.length);
    }
    for (let f = 0; f < FIELDS.length; f++) ring.values[slot * FIELDS.length + f]! += fields[FIELDS[f]!] ?? 0;
    ring.last = minute;
    this.#changed(worker, minute);
  }

  #changed(worker: string, minute: number): void {
    let dirty = this.#dirty.get(worker);
    if (dirty === undefined) this.#dirty.set(worker, (dirty = new Set()));
    dirty.add(minute);
  }

  /** The minutes changed since the last call, with what this server counted in each (all of it, not the change). */
  takeChanged(): WorkerMinute[] {
    const rows: WorkerMinute[] = [];
    for (const [worker, minutes] of this.#dirty) {
      const ring = this.#rings.get(worker);
      if (ring === undefined) continue;
      for (const minute of minutes) {
        const slot = minute % SERIES_MINUTES;
        if (ring.minutes[slot] !== minute) continue;
        const row: WorkerMinute = { worker, minute, requests: 0, errors: 0, cpuMs: 0, coldStarts: 0 };
        for (let f = 0; f < FIELDS.length; f++) row[FIELDS[f]!] = ring.values[slot * FIELDS.length + f]!;
        rows.push(row);
      }
    }
    this.#dirty.clear();
    return rows;
  }

  /** Rows takeChanged gave that could not be written: taken again next time. */
  changedAgain(rows: WorkerMinute[]): void {
    for (const { worker, minute } of rows) if (this.#rings.has(worker)) this.#changed(worker, minute);
  }

  /** The first minute of the window read() covers. */
  firstMinute(): number {
    return Math.floor(this.#now() / MINUTE_MS) - SERIES_MINUTES + 1;
  }

  /**
   * The worker's last SERIES_MINUTES minutes, oldest first, the current one last (zeros where
   * nothing happened): this server's counts plus `others` (other instances', from the store).
   */
  read(worker: string, others: WorkerMinute[] = []): SeriesPoint[] {
    const first = this.firstMinute();
    const ring = this.#rings.get(worker);
    const points: SeriesPoint[] = [];
    for (let minute = first; minute < first + SERIES_MINUTES; minute++) {
      const slot = minute % SERIES_MINUTES;
      const point: SeriesPoint = { time: new Date(minute * MINUTE_MS).toISOString(), requests: 0, errors: 0, cpuMs: 0, coldStarts: 0 };
      if (ring !== undefined && ring.minutes[slot] === minute) {
        for (let f = 0; f < FIELDS.length; f++) point[FIELDS[f]!] = ring.values[slot * FIELDS.length + f]!;
      }
      points.push(point);
    }
    for (const row of others) {
      const point = row.worker === worker ? points[row.minute - first] : undefined;
      if (point === undefined) continue;
      for (const field of FIELDS) point[field] += row[field];
    }
    for (const point of points) for (const field of FIELDS) point[field] = round(point[field]);
    return points;
  }

  /** Each worker's totals over the last SERIES_MINUTES minutes (this server's plus `others`), busiest first. */
  totals(others: WorkerMinute[] = []): (SeriesFields & { worker: string })[] {
    this.prune();
    const first = this.firstMinute();
    const rows = new Map<string, SeriesFields & { worker: string }>();
    const row = (worker: string) => {
      let found = rows.get(worker);
      if (found === undefined) rows.set(worker, (found = { worker, requests: 0, errors: 0, cpuMs: 0, coldStarts: 0 }));
      return found;
    };
    for (const worker of this.#rings.keys()) {
      const total = row(worker);
      for (const point of this.read(worker)) for (const field of FIELDS) total[field] += point[field];
    }
    for (const other of others) {
      if (other.minute < first) continue;
      const total = row(other.worker);
      for (const field of FIELDS) total[field] += other[field];
    }
    const list = [...rows.values()];
    for (const total of list) for (const field of FIELDS) total[field] = round(total[field]);
    return list.sort((a, b) => b.requests - a.requests || a.worker.localeCompare(b.worker));
  }

  forget(worker: string): void {
    this.#rings.delete(worker);
    this.#dirty.delete(worker);
  }

  /** Forgets workers with nothing in the last SERIES_MINUTES minutes. */
  prune(): void {
    const oldest = Math.floor(this.#now() / MINUTE_MS) - SERIES_MINUTES + 1;
    for (const [worker, ring] of this.#rings) if (ring.last < oldest) this.#rings.delete(worker);
  }
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
