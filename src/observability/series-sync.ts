// Writes the minutes this server counted (worker-series.ts) to the store every few seconds, and
// reads the other instances' back when the admin API answers: so a worker's last hour adds up
// every node of a cluster, and survives a restart of this one. This server's own counts of the
// current hour are always read from memory, the freshest.

import type { Store, WorkerMinute } from '../store/store.ts';
import type { ServerLog } from '../server/logger.ts';
import { OutageNotice } from '../server/outage-notice.ts';
import type { WorkerSeries } from './worker-series.ts';

export const SERIES_SYNC_MS = 15_000;
/** Minutes kept in the store past the hour a chart shows. */
const KEPT_MINUTES = 120;

export interface SeriesSyncOptions {
  store: Store;
  series: WorkerSeries;
  /** This server instance (a restarted server is a new one: its earlier minutes stay in the store). */
  instance: string;
  log: ServerLog;
  everyMs?: number;
}

export class SeriesSync {
  readonly #store: Store;
  readonly #series: WorkerSeries;
  readonly #instance: string;
  readonly #outage: OutageNotice;
  readonly #timer: NodeJS.Timeout;
  #running: Promise<void> | undefined;

  constructor(options: SeriesSyncOptions) {
    this.#store = options.store;
    this.#series = options.series;
    this.#instance = options.instance;
    this.#outage = new OutageNotice(options.log, {
      down: 'could not write the workers\' hourly counts to the store: the charts show only this node\'s until it answers',
      up: 'the workers\' hourly counts are written to the store again',
    });
    this.#timer = setInterval(() => void this.sync(), options.everyMs ?? SERIES_SYNC_MS);
    this.#timer.unref();
  }

  /** Writes the minutes changed since the last write (one write at a time). */
  sync(): Promise<void> {
    this.#running ??= this.#write().finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** The other instances' minutes of the hour (one worker's, or all); none while the store is away. */
  async others(worker?: string): Promise<WorkerMinute[]> {
    try {
      return await this.#store.workerMinutes(this.#series.firstMinute(), this.#instance, worker);
    } catch {
      return [];
    }
  }

  /** Stops the timer after a last write, so a restart keeps what this server counted. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
    await this.sync();
  }

  async #write(): Promise<void> {
    const rows = this.#series.takeChanged();
    if (rows.length === 0) return;
    try {
      await this.#store.saveWorkerMinutes(this.#instance, rows, this.#series.firstMinute() - KEPT_MINUTES);
      this.#outage.succeeded();
    } catch (error) {
      this.#series.changedAgain(rows);
      this.#outage.failed(error);
    }
  }
}
