// A background write to a shared service (the store, for the charts and the cluster's tails) that
// can fail for a while: the log says once that it stopped working, with why, and once that it
// works again, not at every attempt.

import type { ServerLog } from './logger.ts';

export class OutageNotice {
  readonly #log: ServerLog;
  readonly #down: string;
  readonly #up: string;
  #failing = false;

  /** `down` and `up`: the messages of the warn line and of the info line. */
  constructor(log: ServerLog, messages: { down: string; up: string }) {
    this.#log = log;
    this.#down = messages.down;
    this.#up = messages.up;
  }

  failed(error: unknown): void {
    if (this.#failing) return;
    this.#failing = true;
    this.#log('warn', 'server', this.#down, { reason: error instanceof Error ? error.message : String(error) });
  }

  succeeded(): void {
    if (!this.#failing) return;
    this.#failing = false;
    this.#log('info', 'server', this.#up, {});
  }
}
