// Fires the cron triggers of the workers a node serves, once per cluster per tick. A tick is a
// minute (cron's resolution, in UTC). At each one the node works out which (worker, cron) are
// due, claims them in the store in one transaction (the first node's insert wins each; on SQLite
// the only node wins them all), and runs those it won in the workers' isolates, a bounded number
// at a time. Each run's outcome goes to the store (the admin API lists a worker's recent runs);
// its 'scheduled' log line comes from the runtime that ran it, like a request's.
//
// A tick is never replayed: a node that was down, asleep, or too busy to fire a tick within its
// minute skips it (and says so), as Cloudflare does not run missed crons either. Nor is a tick
// run without its claim: while the database is away a cluster's node runs no crons, since it
// cannot know that no other node does.

import { UnknownWorkerError } from '../runtime/runtime.ts';
import type { ScheduledResult, WorkerLogEntry } from '../runtime/types.ts';
import { cronSchedule, firesAt, MINUTE_MS, type CronSchedule } from '../cron/cron.ts';
import type { CronRun, CronTick, Store } from '../store/store.ts';
import type { ServerLog } from './logger.ts';
import type { WorkerHost } from './worker-host.ts';

/** Scheduled events one node runs at once; the rest of a tick's wait their turn. */
export const DEFAULT_CONCURRENT_RUNS = 16;

export interface CronSchedulerOptions {
  store: Store;
  host: WorkerHost;
  /** This node's name, recorded with each run it claims. */
  node: string;
  /** The workers this node serves that have cron triggers. */
  workers: () => Iterable<{ name: string; crons: readonly string[] }>;
  log: ServerLog;
  /** A worker's log (its tail): a run that could not reach its worker is told there. */
  workerLog: (entry: WorkerLogEntry) => void;
  /** The clock (default Date.now); tests move it by hand. */
  now?: () => number;
  concurrentRuns?: number;
}

export class CronScheduler {
  readonly #options: CronSchedulerOptions;
  readonly #now: () => number;
  /** Compiled schedules by expression, kept while some worker has them. */
  readonly #schedules = new Map<string, CronSchedule>();
  readonly #limit: number;
  #running = 0;
  readonly #waiting: (() => void)[] = [];
  /** Runs over and not yet written to the store; written together. */
  #finished: CronRun[] = [];
  #writing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #ticks = new Set<Promise<unknown>>();
  #closed = false;

  constructor(options: CronSchedulerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#limit = Math.max(1, options.concurrentRuns ?? DEFAULT_CONCURRENT_RUNS);
  }

  /** Fires each tick on the clock from the next minute on. */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#arm();
  }

  /** Stops firing; resolves when the runs in flight are over and written. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await Promise.allSettled([...this.#ticks]);
  }

  /**
   * Runs the tick at `scheduledTime` (a minute; seconds are dropped): claims what is due and
   * runs what this node won. Resolves with those runs once they are over and recorded.
   */
  tick(scheduledTime: number): Promise<CronRun[]> {
    return this.#tracked(this.#tick(Math.floor(scheduledTime / MINUTE_MS) * MINUTE_MS));
  }

  /**
   * Runs one of a worker's cron triggers now, on this node, outside the schedule (an operator's
   * or a tenant's test of the handler), and records it as any other run.
   * Resolves once it is over and recorded.
   */
  runNow(worker: string, cron: string): Promise<CronRun> {
    // Its row is keyed by the millisecond it ran at, never a whole minute, so it cannot take the
    // place of a scheduled tick.
    let scheduledTime = this.#now();
    if (scheduledTime % MINUTE_MS === 0) scheduledTime += 1;
    return this.#tracked((async () => {
      await this.#options.store.claimCronTicks(scheduledTime, this.#options.node, [{ worker, cron }]);
      const done = await this.#run({ worker, cron }, scheduledTime);
      await this.#write();
      return done;
    })());
  }

  /** Work that close() waits for. */
  #tracked<T>(work: Promise<T>): Promise<T> {
    this.#ticks.add(work);
    void work.finally(() => this.#ticks.delete(work)).catch(() => {});
    return work;
  }

  #arm(): void {
    const now = this.#now();
    const next = (Math.floor(now / MINUTE_MS) + 1) * MINUTE_MS;
    this.#timer = setTimeout(() => this.#fire(next), next - now);
    this.#timer.unref();
  }

  #fire(due: number): void {
    if (this.#closed) return;
    const late = this.#now() - due;
    if (late < 0) {
      // Woken early (the clock was set back): wait for the tick itself.
      this.#timer = setTimeout(() => this.#fire(due), -late);
      this.#timer.unref();
      return;
    }
    if (late < MINUTE_MS) {
      this.tick(due).catch((error: unknown) => this.#options.log('error', 'cron', 'cron tick failed', { scheduledTime: due, error: String(error) }));
    } else {
      this.#options.log('warn', 'cron', 'cron tick skipped: the node was busy or asleep past its minute (missed ticks are not replayed)', {
        scheduledTime: due, lateMs: late,
      });
    }
    this.#arm();
  }

  async #tick(scheduledTime: number): Promise<CronRun[]> {
    const due = this.#due(scheduledTime);
    if (due.length === 0) return [];
    let won: CronTick[];
    try {
      won = await this.#options.store.claimCronTicks(scheduledTime, this.#options.node, due);
    } catch (error) {
      this.#options.log('warn', 'cron', 'cron tick not run: its triggers could not be claimed in the store', {
        scheduledTime, due: due.length, error: String(error),
      });
      return [];
    }
    const runs = await Promise.all(won.map((tick) => this.#run(tick, scheduledTime)));
    await this.#write();
    return runs;
  }

  /** The (worker, cron) pairs that fire at this minute. */
  #due(scheduledTime: number): CronTick[] {
    const due: CronTick[] = [];
    const used = new Set<string>();
    for (const { name, crons } of this.#options.workers()) {
      for (const cron of crons) {
        const schedule = this.#schedule(cron, name);
        used.add(cron);
        if (schedule !== undefined && firesAt(schedule, scheduledTime)) due.push({ worker: name, cron });
      }
    }
    for (const cron of this.#schedules.keys()) if (!used.has(cron)) this.#schedules.delete(cron);
    return due;
  }

  #schedule(cron: string, worker: string): CronSchedule | undefined {
    let schedule = this.#schedules.get(cron);
    if (schedule === undefined) {
      try {
        schedule = cronSchedule(cron);
      } catch (error) {
        // Checked at deploy: only a version stored before that check could hold one.
        this.#options.log('warn', 'cron', 'a cron trigger is not valid and never fires', { worker, cron, error: String(error) });
        return undefined;
      }
      this.#schedules.set(cron, schedule);
    }
    return schedule;
  }

  async #run(tick: CronTick, scheduledTime: number): Promise<CronRun> {
    await this.#turn();
    const startedAt = new Date().toISOString();
    let result: ScheduledResult;
    try {
      result = await this.#options.host.scheduled(tick.worker, { cron: tick.cron, scheduledTime });
    } catch (error) {
      const reason = error instanceof UnknownWorkerError ? 'the worker is no longer served on this node' : (error as Error).message;
      result = { outcome: 'exception', noRetry: false, cpuMs: 0, wallMs: 0, error: `The scheduled event could not run to its end: ${reason}` };
      // The runtime wrote no line for it: the worker's tail hears of it here.
      this.#options.workerLog({
        time: startedAt, worker: tick.worker, level: 'error', type: 'scheduled', message: `scheduled "${tick.cron}" exception`,
        cron: tick.cron, scheduledTime, outcome: 'exception', error: result.error,
      });
    } finally {
      this.#release();
    }
    const run: CronRun = { ...tick, scheduledTime, node: this.#options.node, startedAt, ...result };
    this.#finished.push(run);
    return run;
  }

  /** Writes the runs over so far in one transaction (those that finish meanwhile go in the next). */
  async #write(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing;
    if (this.#finished.length === 0) return;
    const runs = this.#finished;
    this.#finished = [];
    this.#writing = this.#options.store.recordCronRuns(runs).catch((error: unknown) => {
      this.#options.log('warn', 'cron', 'the outcomes of cron runs could not be recorded', { runs: runs.length, error: String(error) });
    }).finally(() => (this.#writing = undefined));
    await this.#writing;
  }

  async #turn(): Promise<void> {
    if (this.#running < this.#limit) {
      this.#running++;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next !== undefined) next();
    else this.#running--;
  }
}
