// The control process's metrics: what /metrics on the admin listener shows (prom-client's text
// format) and what each worker's last hour looks like (worker-series.ts). Requests are counted
// here as the clients got them (a 503 the supervisor gave without running the worker counts
// too); CPU, cold starts and isolates come in batches from the runtimes (worker-stats.ts).
//
// On the request path this costs one map lookup and a few additions: the counts wait in the
// worker's record and are folded into the exposed series every few seconds and at each scrape,
// so the per-request work never touches labels or prom-client.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { IsolateEndReason } from '../runtime/types.ts';
import type { PlatformEvents } from '../server/platform.ts';
import { BucketHistogram } from './bucket-histogram.ts';
import { OTHER_WORKERS, WorkerLabels } from './worker-labels.ts';
import { WorkerSeries } from './worker-series.ts';
import { COLD_START_BUCKETS_MS, CPU_BUCKETS_MS, observe, type BucketCounts, type StatsBatch, type WorkerDelta } from './worker-stats.ts';

/** Upper bounds of the request-duration histogram (time until the response head), in seconds. */
export const DURATION_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

const STORE_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** How an isolate's end is shown: an eviction (and why), a limit kill (and which), a crash; the rest are not counted. */
const END_METRIC: Partial<Record<IsolateEndReason, ['eviction' | 'kill' | 'crash', string]>> = {
  'evicted-isolates': ['eviction', 'isolate-cap'],
  'evicted-memory': ['eviction', 'memory-budget'],
  cpu: ['kill', 'cpu'],
  memory: ['kill', 'memory'],
  crashed: ['crash', ''],
};

/** How often waiting counts are folded into the series, and how often the busiest workers are picked again. */
const FOLD_MS = 5_000;
const REBALANCE_MS = 60_000;

interface WorkerRecord {
  /** Counts since the last fold: requests per status class, their durations, CPU and cold starts from the runtimes, isolate ends. */
  statuses: number[];
  duration: BucketCounts;
  cpu: BucketCounts;
  coldStarts: BucketCounts;
  ended: Partial<Record<IsolateEndReason, number>>;
  pending: boolean;
  /** Requests in the current label window (WorkerLabels.rebalance). */
  window: number;
}

export interface ServerMetricsOptions {
  /** Workers with series of their own; the rest share the label OTHER_WORKERS (default DEFAULT_METRICS_WORKERS). */
  workers?: number;
  /** Include the control process's own CPU, memory and event loop delay (default true). */
  processMetrics?: boolean;
  now?: () => number;
}

export class ServerMetrics implements PlatformEvents {
  readonly registry = new Registry();
  readonly series: WorkerSeries;
  readonly #labels: WorkerLabels;
  readonly #records = new Map<string, WorkerRecord>();
  readonly #timers: NodeJS.Timeout[] = [];
  #delay: ReturnType<typeof monitorEventLoopDelay> | undefined;
  /** Runtimes in this process, whose batches are taken at each fold rather than sent. */
  readonly #sources: [process: string, take: () => StatsBatch][] = [];
  /** The waiting counts of the workers without series of their own, summed during a fold. */
  readonly #other = newRecord();

  readonly #requests = new Counter({ name: 'isolet_requests_total', help: 'Requests answered for a worker, by status class, as the client got them.', labelNames: ['worker', 'status'], registers: [this.registry] });
  readonly #duration = new BucketHistogram({ name: 'isolet_request_duration_seconds', help: 'Time from a request reaching the server to its response head, per worker.', labelNames: ['worker'], buckets: DURATION_BUCKETS_S });
  readonly #cpu = new BucketHistogram({ name: 'isolet_request_cpu_seconds', help: 'CPU time a request used in its isolate, per worker.', labelNames: ['worker'], buckets: CPU_BUCKETS_MS.map((ms) => ms / 1000) });
  readonly #coldStarts = new BucketHistogram({ name: 'isolet_cold_start_duration_seconds', help: "Isolates started for a request that found none (its _count is the cold starts), per worker.", labelNames: ['worker'], buckets: COLD_START_BUCKETS_MS.map((ms) => ms / 1000) });
  readonly #evictions = new Counter({ name: 'isolet_isolate_evictions_total', help: 'Idle isolates disposed to make room, by the bound that was reached (isolate-cap, memory-budget).', labelNames: ['worker', 'reason'], registers: [this.registry] });
  readonly #kills = new Counter({ name: 'isolet_limit_kills_total', help: 'Isolates stopped for going past a limit, by kind (cpu, memory).', labelNames: ['worker', 'kind'], registers: [this.registry] });
  readonly #crashes = new Counter({ name: 'isolet_isolate_crashes_total', help: 'Isolates that ended for another fault of their own.', labelNames: ['worker'], registers: [this.registry] });
  readonly #isolates = new Gauge({ name: 'isolet_isolates', help: 'Isolates of each runtime process: live (serving a worker) and spare (made ahead of demand).', labelNames: ['process', 'state'], registers: [this.registry] });
  readonly #isolateMemory = new Gauge({ name: 'isolet_isolate_memory_bytes', help: "Memory the live isolates of each runtime process held when last measured (what --isolate-memory-mb bounds).", labelNames: ['process'], registers: [this.registry] });
  readonly #isolateMemoryBudget = new Gauge({ name: 'isolet_isolate_memory_budget_bytes', help: "What the live isolates of each runtime process may hold: --isolate-memory-mb, or its share of the machine's memory among the runtime processes.", labelNames: ['process'], registers: [this.registry] });
  readonly #restarts = new Counter({ name: 'isolet_runtime_process_restarts_total', help: 'Runtime processes that ended while they were to keep running, and were restarted, by tier and cause (fatal: a fatal V8 error; signal: killed, as when it stopped answering; exit).', labelNames: ['tier', 'cause'], registers: [this.registry] });
  readonly #quarantines = new Counter({ name: 'isolet_quarantines_total', help: 'Accounts moved to the quarantine tier because their code crashed runtime processes.', registers: [this.registry] });
  readonly #deploys = new Counter({ name: 'isolet_deploys_total', help: 'Versions made active, by kind (deploy, rollback).', labelNames: ['kind'], registers: [this.registry] });
  readonly #store = new Histogram({ name: 'isolet_store_operation_duration_seconds', help: 'Time each store operation took, by operation and outcome (ok, error).', labelNames: ['operation', 'outcome'], buckets: STORE_BUCKETS_S, registers: [this.registry] });

  constructor(options: ServerMetricsOptions = {}) {
    this.#labels = new WorkerLabels(options.workers);
    this.series = new WorkerSeries(options.now);
    for (const histogram of [this.#duration, this.#cpu, this.#coldStarts]) this.registry.registerMetric(histogram.asMetric());
    if (options.processMetrics !== false) this.#processMetrics();
    this.#timers.push(setInterval(() => this.fold(), FOLD_MS), setInterval(() => this.#rebalance(), REBALANCE_MS));
    for (const timer of this.#timers) timer.unref();
  }

  /**
   * The control process's own CPU, memory and event loop delay, read at each scrape.
   * prom-client's collectDefaultMetrics was measured too costly for the request path (it
   * observes every garbage collection): about a quarter fewer requests per CPU-second over HTTP.
   */
  #processMetrics(): void {
    const delay = monitorEventLoopDelay({ resolution: 20 });
    delay.enable();
    this.#delay = delay;
    const registers = [this.registry];
    new Counter({
      name: 'isolet_control_cpu_seconds_total', help: "The control process's CPU time (user and system).", registers,
      collect() {
        const { user, system } = process.cpuUsage();
        this.reset();
        this.inc((user + system) / 1e6);
      },
    });
    new Gauge({ name: 'isolet_control_resident_memory_bytes', help: "The control process's resident memory.", registers, collect() { this.set(process.memoryUsage.rss()); } });
    new Gauge({
      name: 'isolet_control_event_loop_delay_seconds', help: "How late the control process's event loop ran timers since the last scrape, by quantile (0.5, 0.99, 1 = the most).", labelNames: ['quantile'], registers,
      collect() {
        for (const quantile of [0.5, 0.99]) this.set({ quantile: String(quantile) }, delay.percentile(quantile * 100) / 1e9);
        this.set({ quantile: '1' }, delay.max / 1e9);
        delay.reset();
      },
    });
  }

  /** A request answered with `status` (its head sent after `seconds`). The request path's one call. */
  request(worker: string, status: number, seconds: number): void {
    const record = this.#records.get(worker) ?? this.#record(worker);
    const index = Math.floor(status / 100) - 1;
    if (index >= 0 && index < 5) record.statuses[index]!++;
    observe(record.duration, DURATION_BUCKETS_S, seconds);
    record.window++;
    record.pending = true;
  }

  /** A runtime's batch (worker-stats.ts); `process` names it in the isolate gauges. */
  merge(process: string, batch: StatsBatch): void {
    for (const [worker, delta] of Object.entries(batch.workers)) addDelta(this.#records.get(worker) ?? this.#record(worker), delta);
    this.#isolates.set({ process, state: 'live' }, batch.isolates.live);
    this.#isolates.set({ process, state: 'spare' }, batch.isolates.spare);
    this.#isolateMemory.set({ process }, batch.isolates.memoryBytes);
    this.#isolateMemoryBudget.set({ process }, batch.isolates.budgetBytes);
  }

  /** A Runtime in this process (isolet serve --processes 0): its counts are taken at each fold. */
  pull(process: string, take: () => StatsBatch): void {
    this.#sources.push([process, take]);
  }

  /** A runtime process ended and is being restarted: its isolates are gone with it. */
  processEnded(tier: string, process: string, cause: 'fatal' | 'signal' | 'exit'): void {
    this.#restarts.inc({ tier, cause });
    this.#isolates.set({ process, state: 'live' }, 0);
    this.#isolates.set({ process, state: 'spare' }, 0);
    this.#isolateMemory.set({ process }, 0);
  }

  quarantined(): void {
    this.#quarantines.inc();
  }

  /** A version was made active (PlatformEvents). */
  activated(kind: 'deploy' | 'rollback'): void {
    this.#deploys.inc({ kind });
  }

  /** A worker is no longer served (PlatformEvents): its name may go to another account, which must not see its history. */
  unserved(worker: string): void {
    this.#records.delete(worker);
    if (this.#labels.drop(worker)) this.#forget(worker);
    this.series.forget(worker);
  }

  storeOperation(operation: string, seconds: number, ok: boolean): void {
    this.#store.observe({ operation, outcome: ok ? 'ok' : 'error' }, seconds);
  }

  /** The exposition text, with every waiting count folded in. */
  async render(): Promise<{ contentType: string; body: string }> {
    this.fold();
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Moves the counts waiting in the workers' records into the exposed series and the hourly ones. */
  fold(): void {
    for (const [process, take] of this.#sources) this.merge(process, take());
    // Workers without series of their own are summed first, so OTHER_WORKERS's series are
    // touched once however many of them there are.
    const other = this.#other;
    for (const [worker, record] of this.#records) {
      if (!record.pending) continue;
      record.pending = false;
      this.series.add(worker, { requests: sum(record.statuses), errors: record.statuses[4], cpuMs: record.cpu.sum, coldStarts: sum(record.coldStarts.counts) });
      const label = this.#labels.label(worker);
      if (label === OTHER_WORKERS) addRecord(other, record);
      else this.#expose(label, record);
      clearRecord(record);
    }
    if (other.pending) {
      other.pending = false;
      this.#expose(OTHER_WORKERS, other);
      clearRecord(other);
    }
  }

  /** Adds a record's counts to the series of `label`. */
  #expose(label: string, record: WorkerRecord): void {
    for (let i = 0; i < STATUS_CLASSES.length; i++) {
      if (record.statuses[i]! > 0) this.#requests.inc({ worker: label, status: STATUS_CLASSES[i]! }, record.statuses[i]!);
    }
    if (sum(record.duration.counts) > 0) this.#duration.add({ worker: label }, record.duration.counts, record.duration.sum);
    if (sum(record.cpu.counts) > 0) this.#cpu.add({ worker: label }, record.cpu.counts, record.cpu.sum / 1000);
    if (sum(record.coldStarts.counts) > 0) this.#coldStarts.add({ worker: label }, record.coldStarts.counts, record.coldStarts.sum / 1000);
    for (const [reason, count] of Object.entries(record.ended) as [IsolateEndReason, number][]) {
      const shown = END_METRIC[reason];
      if (shown === undefined || count === 0) continue;
      if (shown[0] === 'eviction') this.#evictions.inc({ worker: label, reason: shown[1] }, count);
      else if (shown[0] === 'kill') this.#kills.inc({ worker: label, kind: shown[1] }, count);
      else this.#crashes.inc({ worker: label }, count);
    }
  }

  /** Gives the workers' own series to the busiest of the last window; drops the records of workers idle through it. */
  #rebalance(): void {
    this.fold();
    const scores = new Map<string, number>();
    for (const [worker, record] of this.#records) {
      scores.set(worker, record.window);
      if (record.window === 0 && !this.#labels.has(worker)) this.#records.delete(worker);
      record.window = 0;
    }
    for (const worker of this.#labels.rebalance(scores)) this.#forget(worker);
    this.series.prune();
  }

  /** Removes a worker's own series: its counts go to OTHER_WORKERS from now on. */
  #forget(worker: string): void {
    for (const status of STATUS_CLASSES) this.#requests.remove({ worker, status });
    for (const histogram of [this.#duration, this.#cpu, this.#coldStarts]) histogram.remove({ worker });
    for (const reason of ['isolate-cap', 'memory-budget']) this.#evictions.remove({ worker, reason });
    for (const kind of ['cpu', 'memory']) this.#kills.remove({ worker, kind });
    this.#crashes.remove({ worker });
  }

  #record(worker: string): WorkerRecord {
    const record = newRecord();
    this.#records.set(worker, record);
    return record;
  }

  close(): void {
    for (const timer of this.#timers) clearInterval(timer);
    this.#delay?.disable();
  }
}

export { OTHER_WORKERS };

function newRecord(): WorkerRecord {
  return {
    statuses: [0, 0, 0, 0, 0],
    duration: { counts: new Array<number>(DURATION_BUCKETS_S.length + 1).fill(0), sum: 0 },
    cpu: { counts: new Array<number>(CPU_BUCKETS_MS.length + 1).fill(0), sum: 0 },
    coldStarts: { counts: new Array<number>(COLD_START_BUCKETS_MS.length + 1).fill(0), sum: 0 },
    ended: {},
    pending: false,
    window: 0,
  };
}

/** Adds `from`'s waiting counts to `into`'s. */
function addRecord(into: WorkerRecord, from: WorkerRecord): void {
  for (let i = 0; i < into.statuses.length; i++) into.statuses[i]! += from.statuses[i]!;
  addCounts(into.duration, from.duration);
  addDelta(into, from);
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}

function addDelta(record: WorkerRecord, delta: WorkerDelta): void {
  addCounts(record.cpu, delta.cpu);
  addCounts(record.coldStarts, delta.coldStarts);
  for (const [reason, count] of Object.entries(delta.ended) as [IsolateEndReason, number][]) record.ended[reason] = (record.ended[reason] ?? 0) + count;
  record.pending = true;
}

function addCounts(into: BucketCounts, from: BucketCounts): void {
  for (let i = 0; i < into.counts.length; i++) into.counts[i]! += from.counts[i] ?? 0;
  into.sum += from.sum;
}

function clearRecord(record: WorkerRecord): void {
  record.statuses.fill(0);
  for (const counts of [record.duration, record.cpu, record.coldStarts]) {
    counts.counts.fill(0);
    counts.sum = 0;
  }
  record.ended = {};
}
