// Idle isolates give memory back. V8 keeps every young-generation page an isolate has touched,
// so a tenant that served a burst and went quiet would hold about twice the memory of a fresh
// isolate for as long as it lives. Once an isolate has had nothing in flight for `idleMs`, it
// runs full collections that shrink its heap (WorkerIsolate.reduceMemory), as V8's memory
// reducer does for a background page, if it grew enough since the last time for the
// collections' CPU to buy something back (REDUCE_MIN_GAIN_BYTES). A few at a time, so that a thousand tenants going quiet
// together do not fill the isolate threads with collections.

export interface IdleReducible {
  lastUsed: number;
  reduceMemory(): Promise<void> | undefined;
}

const MAX_AT_ONCE = 2;

export class IdleMemoryReducer {
  private readonly idleMs: number;
  /** Live isolates, least recently used first. */
  private readonly isolates: () => Iterable<IdleReducible>;
  private timer: NodeJS.Timeout | undefined;
  private running = 0;
  private stopped = false;

  constructor(idleMs: number, isolates: () => Iterable<IdleReducible>) {
    this.idleMs = idleMs;
    this.isolates = isolates;
  }

  /** Starts looking (idempotent); the timer never keeps the process alive. */
  start(): void {
    if (this.timer || this.stopped || !(this.idleMs > 0)) return;
    this.timer = setInterval(() => this.sweep(), Math.max(50, Math.min(1000, this.idleMs / 2)));
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private sweep(): void {
    if (this.stopped) return;
    const idleBefore = Date.now() - this.idleMs;
    for (const isolate of this.isolates()) {
      if (this.running >= MAX_AT_ONCE) return;
      // Least recently used first: past the first recently used one, all are.
      if (isolate.lastUsed > idleBefore) return;
      const reducing = isolate.reduceMemory();
      if (!reducing) continue;
      this.running++;
      void reducing.then(() => {
        this.running--;
        this.sweep();
      });
    }
  }
}
