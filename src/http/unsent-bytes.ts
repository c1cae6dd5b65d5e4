// Response bytes the front has taken from workers that clients have not read yet. A chunk is
// pulled from a worker only when the client's socket took the one before (the 'drain' wait in
// the front), so each response holds at most one chunk here; but a chunk the socket did not
// take stays in Node's buffer until the client reads, and many clients that never read would
// each hold one. These caps, per worker and in all, make the next pull wait instead: a worker
// whose clients do not read stops being asked for bytes, and other workers keep theirs.

export interface UnsentLimits {
  /** Bytes waiting on clients that read slowly, in all (default 256 MiB). */
  maxUnsentBytes: number;
  /** ... for one worker (default 64 MiB). */
  maxUnsentBytesPerWorker: number;
}

export const DEFAULT_UNSENT_LIMITS: UnsentLimits = Object.freeze({
  maxUnsentBytes: 256 * 1024 * 1024,
  maxUnsentBytesPerWorker: 64 * 1024 * 1024,
});

export class UnsentBytes {
  readonly #limits: UnsentLimits;
  #total = 0;
  readonly #byWorker = new Map<string, number>();
  #waiters: Array<() => void> = [];

  constructor(limits: Partial<UnsentLimits> = {}) {
    this.#limits = { ...DEFAULT_UNSENT_LIMITS, ...limits };
  }

  get total(): number {
    return this.#total;
  }

  /** `bytes` of `worker` wait in a socket's buffer for their client. */
  hold(worker: string, bytes: number): void {
    this.#total += bytes;
    this.#byWorker.set(worker, (this.#byWorker.get(worker) ?? 0) + bytes);
  }

  /** Those bytes left (the client read them, or the connection closed). */
  release(worker: string, bytes: number): void {
    this.#total -= bytes;
    const left = (this.#byWorker.get(worker) ?? 0) - bytes;
    if (left > 0) this.#byWorker.set(worker, left);
    else this.#byWorker.delete(worker);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves once `worker` may be asked for another chunk (at once, usually). */
  async room(worker: string): Promise<void> {
    while (this.#total > this.#limits.maxUnsentBytes || (this.#byWorker.get(worker) ?? 0) > this.#limits.maxUnsentBytesPerWorker) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }
}
