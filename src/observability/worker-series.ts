// Each worker's last hour, a minute at a time, for the admin API (GET /v1/workers/:name/metrics)
// and the charts a dashboard draws from it: requests, errors (5xx answers), CPU and cold starts.
// Prometheus keeps the long history; this is what a node can answer on its own. Only workers
// with something in the last hour take memory.

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
  minutes: Float64Array;
  /** FIELDS.length values per slot. */
  values: Float64Array;
  last: number;
}

export class WorkerSeries {
  readonly #rings = new Map<string, Ring>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  add(worker: string, fields: Partial<SeriesFields>): void {
    const minute = Math.floor(this.#now() / MINUTE_MS);
    let ring = this.#rings.get(worker);
    if (ring === undefined) {
      ring = { minutes: new Float64Array(SERIES_MINUTES).fill(-1), values: new Float64Array(SERIES_MINUTES * FIELDS.length), last: minute };
      this.#rings.set(worker, ring);
    }
    const slot = minute % SERIES_MINUTES;
    if (ring.minutes[slot] !== minute) {
      ring.minutes[slot] = minute;
      ring.values.fill(0, slot * FIELDS.length, (slot + 1) * FIELDS.length);
    }
    for (let f = 0; f < FIELDS.length; f++) ring.values[slot * FIELDS.length + f]! += fields[FIELDS[f]!] ?? 0;
    ring.last = minute;
  }

  /** The worker's last SERIES_MINUTES minutes, oldest first, the current one last (zeros where nothing happened). */
  read(worker: string): SeriesPoint[] {
    const now = Math.floor(this.#now() / MINUTE_MS);
    const ring = this.#rings.get(worker);
    const points: SeriesPoint[] = [];
    for (let minute = now - SERIES_MINUTES + 1; minute <= now; minute++) {
      const slot = minute % SERIES_MINUTES;
      const point: SeriesPoint = { time: new Date(minute * MINUTE_MS).toISOString(), requests: 0, errors: 0, cpuMs: 0, coldStarts: 0 };
      if (ring !== undefined && ring.minutes[slot] === minute) {
        for (let f = 0; f < FIELDS.length; f++) point[FIELDS[f]!] = round(ring.values[slot * FIELDS.length + f]!);
      }
      points.push(point);
    }
    return points;
  }

  /** Each worker's totals over the last SERIES_MINUTES minutes, busiest first. */
  totals(): (SeriesFields & { worker: string })[] {
    this.prune();
    const rows = [...this.#rings.keys()].map((worker) => {
      const row = { worker, requests: 0, errors: 0, cpuMs: 0, coldStarts: 0 };
      for (const point of this.read(worker)) for (const field of FIELDS) row[field] += point[field];
      for (const field of FIELDS) row[field] = round(row[field]);
      return row;
    });
    return rows.sort((a, b) => b.requests - a.requests || a.worker.localeCompare(b.worker));
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
