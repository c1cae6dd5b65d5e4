// What a Runtime measures of its workers, counted where it happens and handed on in batches:
// a runtime process sends one `stats` message a second (src/supervisor/runtime-main.ts), never
// one per request, and `isolet serve --processes 0` merges the same batches in its own process.
// The batch is declared and checked here once; the control process checks it as hostile (a
// runtime process a tenant broke may send anything), like every message of that process.

import type { IsolateEndReason, IsolateEvents, WorkerLogEntry } from '../runtime/types.ts';

/** Upper bounds of the CPU-per-request histogram's buckets, in milliseconds (+Inf is implied). */
export const CPU_BUCKETS_MS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500] as const;

/** Upper bounds of the cold-start histogram's buckets, in milliseconds. */
export const COLD_START_BUCKETS_MS = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500] as const;

export const END_REASONS: readonly IsolateEndReason[] = ['replaced', 'evicted-isolates', 'evicted-memory', 'cpu', 'memory', 'crashed', 'shutdown'];

/** A histogram's new observations: a count per bucket (the last is +Inf) and their sum. */
export interface BucketCounts {
  counts: number[];
  sum: number;
}

/** What one worker did since the last batch. */
export interface WorkerDelta {
  /** CPU per finished request, in ms. */
  cpu: BucketCounts;
  /** Isolates started for a request, and how long each took, in ms. */
  coldStarts: BucketCounts;
  /** Isolates that ended, by reason (IsolateEndReason). */
  ended: Partial<Record<IsolateEndReason, number>>;
}

/** One batch from a runtime: its workers' deltas and its isolates now. */
export interface StatsBatch {
  workers: Record<string, WorkerDelta>;
  /** Live isolates, spare isolates, the memory the live ones held when last measured and what they may hold (bytes). */
  isolates: { live: number; spare: number; memoryBytes: number; budgetBytes: number };
}

/** The gauges a batch carries, read from the Runtime when it is made. */
export interface IsolateGauges {
  readonly liveIsolates: number;
  readonly spareIsolates: number;
  readonly isolateMemory: number;
  readonly isolateMemoryBudget: number;
}

/** Workers one batch may name: a process holds at most a few thousand live isolates. */
const MAX_BATCH_WORKERS = 20_000;

function emptyCounts(buckets: readonly number[]): BucketCounts {
  return { counts: new Array<number>(buckets.length + 1).fill(0), sum: 0 };
}

/** Adds one observation `value` to `into`. */
export function observe(into: BucketCounts, buckets: readonly number[], value: number): void {
  let i = 0;
  while (i < buckets.length && value > buckets[i]!) i++;
  into.counts[i]!++;
  into.sum += value;
}

/**
 * Counts a Runtime's events between batches. It is the Runtime's `isolateEvents`, and takes
 * its `log` entries: a request's CPU is on its log line already, measured once.
 */
export class WorkerStats implements IsolateEvents {
  #workers = new Map<string, WorkerDelta>();

  #delta(worker: string): WorkerDelta {
    let delta = this.#workers.get(worker);
    if (delta === undefined) {
      delta = { cpu: emptyCounts(CPU_BUCKETS_MS), coldStarts: emptyCounts(COLD_START_BUCKETS_MS), ended: {} };
      this.#workers.set(worker, delta);
    }
    return delta;
  }

  /** A worker log entry: a request's line carries the CPU it used. */
  log(entry: WorkerLogEntry): void {
    if (entry.type !== 'request' || typeof entry.cpuMs !== 'number') return;
    observe(this.#delta(entry.worker).cpu, CPU_BUCKETS_MS, entry.cpuMs);
  }

  started(worker: string, ms: number): void {
    observe(this.#delta(worker).coldStarts, COLD_START_BUCKETS_MS, ms);
  }

  ended(worker: string, reason: IsolateEndReason): void {
    const ended = this.#delta(worker).ended;
    ended[reason] = (ended[reason] ?? 0) + 1;
  }

  /** What happened since the last take, with the gauges now. */
  take(gauges: IsolateGauges): StatsBatch {
    const workers = Object.fromEntries(this.#workers);
    this.#workers = new Map();
    return { workers, isolates: { live: gauges.liveIsolates, spare: gauges.spareIsolates, memoryBytes: gauges.isolateMemory, budgetBytes: gauges.isolateMemoryBudget } };
  }
}

/** Batches with nothing new that are not sent before one is sent anyway. */
const UNCHANGED_BATCHES_SKIPPED = 5;

/**
 * Sends a Runtime's batches every `intervalMs` when something changed, and every
 * UNCHANGED_BATCHES_SKIPPED intervals anyway; returns what stops it (sending what is left). The
 * timer does not keep the process alive.
 */
export function reportStats(stats: WorkerStats, gauges: IsolateGauges, send: (batch: StatsBatch) => void, intervalMs = 1000): () => void {
  let last: StatsBatch['isolates'] | undefined;
  let unchanged = 0;
  const flush = () => {
    const batch = stats.take(gauges);
    const { live, spare, memoryBytes, budgetBytes } = batch.isolates;
    // Unchanged gauges are sent again now and then: whoever reads them may not have had the
    // last batch (a spare process's went to no one until a slot adopted it).
    const same = Object.keys(batch.workers).length === 0 && last?.live === live && last.spare === spare && last.memoryBytes === memoryBytes && last.budgetBytes === budgetBytes;
    if (same && ++unchanged < UNCHANGED_BATCHES_SKIPPED) return;
    unchanged = 0;
    last = batch.isolates;
    send(batch);
  };
  const timer = setInterval(flush, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    flush();
  };
}

// Checking a batch that came from a runtime process.

function fail(what: string): never {
  throw new Error(`malformed message: stats ${what}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function amount(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) fail(what);
  return value;
}

function checkCounts(value: unknown, buckets: readonly number[], what: string): BucketCounts {
  if (!isObject(value) || !Array.isArray(value.counts) || value.counts.length !== buckets.length + 1) fail(what);
  return { counts: value.counts.map((count) => amount(count, what)), sum: amount(value.sum, what) };
}

/** The batch, if it has the declared shape (numbers finite and not negative, known reasons); throws otherwise. */
export function checkStatsBatch(value: unknown): StatsBatch {
  if (!isObject(value) || !isObject(value.workers) || !isObject(value.isolates)) fail('batch');
  const names = Object.keys(value.workers);
  if (names.length > MAX_BATCH_WORKERS) fail('batch size');
  const workers: Record<string, WorkerDelta> = {};
  for (const name of names) {
    const delta = value.workers[name];
    if (name.length > 63 || !isObject(delta) || !isObject(delta.ended)) fail('worker');
    const ended: WorkerDelta['ended'] = {};
    for (const [reason, count] of Object.entries(delta.ended)) {
      if (!(END_REASONS as readonly string[]).includes(reason)) fail('end reason');
      ended[reason as IsolateEndReason] = amount(count, 'end count');
    }
    workers[name] = {
      cpu: checkCounts(delta.cpu, CPU_BUCKETS_MS, 'cpu'),
      coldStarts: checkCounts(delta.coldStarts, COLD_START_BUCKETS_MS, 'cold starts'),
      ended,
    };
  }
  const { live, spare, memoryBytes, budgetBytes } = value.isolates;
  return { workers, isolates: { live: amount(live, 'live'), spare: amount(spare, 'spare'), memoryBytes: amount(memoryBytes, 'memory'), budgetBytes: amount(budgetBytes, 'memory budget') } };
}
