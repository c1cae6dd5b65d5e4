// Whether a runtime process still answers. A process can stop without ending: its main thread
// stuck in native code, stopped by a signal, or a V8 a tenant has broken spinning. Then its
// requests would wait forever and what the control process writes to it would pile up. The
// control process pings it on a steady beat; any frame from the process counts as an answer,
// and a ping left unanswered past the timeout declares it hung (the caller kills it, and it is
// restarted like any crash).

export interface LivenessOptions {
  /** How often to ping (ms). */
  intervalMs: number;
  /** How long a ping may stay unanswered before the process is declared hung (ms). */
  timeoutMs: number;
}

/**
 * Generous on purpose: a loaded machine can stall a healthy process for seconds (a large GC,
 * a burst of cold starts), and killing a healthy process fails every request in flight on it.
 */
export const DEFAULT_LIVENESS: LivenessOptions = { intervalMs: 5_000, timeoutMs: 30_000 };

export class Liveness {
  readonly #options: LivenessOptions;
  readonly #ping: () => void;
  readonly #hung: (silentMs: number) => void;
  #timer: NodeJS.Timeout | undefined;
  /** When the unanswered ping was sent; undefined when the last one was answered. */
  #pingedAt: number | undefined;

  constructor(options: LivenessOptions, ping: () => void, hung: (silentMs: number) => void) {
    this.#options = options;
    this.#ping = ping;
    this.#hung = hung;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#beat(), this.#options.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The process sent something: it is alive. */
  heard(): void {
    this.#pingedAt = undefined;
  }

  #beat(): void {
    const now = performance.now();
    if (this.#pingedAt === undefined) {
      this.#pingedAt = now;
      this.#ping();
      return;
    }
    const silent = now - this.#pingedAt;
    if (silent < this.#options.timeoutMs) return;
    // After a stall of this process's own loop, timers run before the socket is read: look
    // again once pending input has been handled, so an answer already waiting counts.
    setImmediate(() => {
      if (this.#timer === undefined || this.#pingedAt === undefined) return;
      this.stop();
      this.#hung(Math.round(performance.now() - this.#pingedAt));
    });
  }
}
