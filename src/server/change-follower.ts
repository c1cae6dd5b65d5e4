// How a node of a cluster keeps serving what the shared store says. Every change to what serves
// advances the store's change counter; this node remembers the counter it has applied. A
// notification (LISTEN/NOTIFY) starts a sync at once; a reconcile every second reads the
// counter too, so a notification lost, a reconnect, or time spent away costs at most that long.
// A sync asks which workers changed since the applied point and serves each as the store now
// has it (Platform.follow: under the worker's lock, loaded atomically, routes after), then moves
// the point: what serves is always a state the store committed, never half of one.
//
// The node serves from memory: while the database is away it goes on serving the last state it
// applied, says so in /healthz, and catches up when the database is back. It also keeps that
// state in its data directory (node-snapshot.ts), so a node that starts while the database is
// away serves what it served before and catches up from there.

import type { LogBus } from './log-bus.ts';
import { readSnapshot, writeSnapshot } from './node-snapshot.ts';
import type { SecretBox } from '../store/secret-box.ts';
import type { ServerLog } from './logger.ts';
import type { Platform } from './platform.ts';
import { StoreUnavailableError, type SharedStore } from '../store/store.ts';

export const DEFAULT_RECONCILE_MS = 1000;

export type DatabaseState = 'connected' | 'unavailable';

export interface ClusterHealth {
  node: string;
  database: DatabaseState;
  /** The change counter this node has applied, and when it last moved or was confirmed. */
  change: number;
  changeCheckedAt: string | undefined;
}

export interface ChangeFollowerOptions {
  store: SharedStore;
  platform: Platform;
  /** Tails on this node of a token revoked through another node end. */
  bus: LogBus;
  log: ServerLog;
  node: string;
  reconcileMs?: number;
  /** Where the node keeps what it serves, sealed with the cluster's secrets key. */
  snapshot?: { path: string; box: SecretBox };
}

export class ChangeFollower {
  readonly #store: SharedStore;
  readonly #platform: Platform;
  readonly #bus: LogBus;
  readonly #log: ServerLog;
  readonly #node: string;
  readonly #reconcileMs: number;
  #applied = 0;
  #checkedAt: string | undefined;
  #database: DatabaseState = 'connected';
  #running: Promise<void> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #snapshot: { path: string; box: SecretBox } | undefined;
  #saving: Promise<void> | undefined;
  #saveAgain = false;

  constructor(options: ChangeFollowerOptions) {
    this.#store = options.store;
    this.#platform = options.platform;
    this.#bus = options.bus;
    this.#log = options.log;
    this.#node = options.node;
    this.#reconcileMs = options.reconcileMs ?? DEFAULT_RECONCILE_MS;
    this.#snapshot = options.snapshot;
  }

  /**
   * Boots the platform from the store and starts following. The counter is read before the
   * workers, so a change committed while they load is applied by the first sync. With the
   * database away, boots from the node's snapshot if it has one.
   */
  async start(): Promise<number> {
    let loaded: number;
    try {
      this.#applied = (await this.#store.changesSince(0)).head;
      loaded = await this.#platform.boot();
      this.#checkedAt = new Date().toISOString();
      this.#save();
    } catch (error) {
      if (!(error instanceof StoreUnavailableError) || this.#snapshot === undefined) throw error;
      const saved = await readSnapshot(this.#snapshot.path, this.#snapshot.box);
      if (saved === undefined) throw error;
      loaded = await this.#platform.bootFrom(saved.workers, saved.routes);
      this.#applied = saved.change;
      this.#database = 'unavailable';
      this.#log('warn', 'server', 'the database is unavailable: serving what this node served before, from its snapshot, until it is back', {
        change: saved.change, workers: saved.workers.length, reason: error.message,
      });
    }
    this.#store.watch({
      change: (head) => {
        if (head > this.#applied) this.sync();
      },
      connection: (up) => {
        if (up) this.sync();
        else this.#setDatabase('unavailable', 'lost the connection that pushes changes');
      },
    });
    this.#timer = setInterval(() => this.sync(), this.#reconcileMs);
    this.#timer.unref();
    return loaded;
  }

  health(): ClusterHealth {
    return { node: this.#node, database: this.#database, change: this.#applied, changeCheckedAt: this.#checkedAt };
  }

  /** Brings this node up to the store's counter; calls that come while one runs make one more run after it. */
  sync(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#syncOnce();
      } while (this.#again && !this.#closed);
    })().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #syncOnce(): Promise<void> {
    try {
      const batch = await this.#store.changesSince(this.#applied);
      if (batch.head !== this.#applied) {
        if (batch.workers === 'all') this.#log('warn', 'server', 'the change log does not reach back to this node\'s last change: loading every worker again', { from: this.#applied, to: batch.head });
        await this.#platform.follow(batch.workers);
        for (const token of batch.tokens) this.#bus.endToken(token);
        this.#applied = batch.head;
        this.#save();
      }
      this.#checkedAt = new Date().toISOString();
      this.#setDatabase('connected');
    } catch (error) {
      if (error instanceof StoreUnavailableError) this.#setDatabase('unavailable', error.message);
      else this.#log('error', 'server', 'could not apply changes from the store', { error: String(error) });
    }
  }

  #setDatabase(state: DatabaseState, reason?: string): void {
    if (state === this.#database) return;
    this.#database = state;
    if (state === 'unavailable') {
      this.#log('warn', 'server', 'the database is unavailable: serving the last state applied; the admin API answers 503 until it is back', { change: this.#applied, reason });
    } else {
      this.#log('info', 'server', 'the database is back: changes are applied again', { change: this.#applied });
    }
  }

  /** Writes the snapshot of what this node serves; calls while one is written make one more after it. */
  #save(): void {
    const snapshot = this.#snapshot;
    if (snapshot === undefined) return;
    if (this.#saving !== undefined) {
      this.#saveAgain = true;
      return;
    }
    this.#saving = (async () => {
      do {
        this.#saveAgain = false;
        const { workers, routes } = this.#platform.served();
        await writeSnapshot(snapshot.path, snapshot.box, { change: this.#applied, workers, routes });
      } while (this.#saveAgain);
    })()
      .catch((error: unknown) => this.#log('error', 'server', 'could not write the node snapshot', { path: snapshot.path, error: String(error) }))
      .finally(() => (this.#saving = undefined));
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#running;
    await this.#saving;
  }
}
