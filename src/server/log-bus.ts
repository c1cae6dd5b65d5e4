// Live logs: the Runtime's log callback publishes every worker log entry here, and each
// `tail` client subscribes to one worker. Publishing never waits: a subscriber gets the line
// written to its socket's buffer, and one whose buffer grows past its bound (a client that
// reads slower than the worker logs) is dropped, so a slow tail can never slow the worker.

import type { WorkerLogEntry } from '../runtime/types.ts';

export interface LogSubscriber {
  /** Takes one NDJSON line; returns false when the subscriber is over its bound and must go. */
  write(line: string): boolean;
  /** Called once when the bus drops the subscriber (over its bound, or the bus closing). */
  drop(reason: 'slow' | 'closing'): void;
}

export class LogBus {
  readonly #byWorker = new Map<string, Set<LogSubscriber>>();

  publish(entry: WorkerLogEntry): void {
    const subscribers = this.#byWorker.get(entry.worker);
    if (subscribers === undefined) return;
    const line = JSON.stringify(entry) + '\n';
    for (const subscriber of subscribers) {
      if (!subscriber.write(line)) {
        this.unsubscribe(entry.worker, subscriber);
        subscriber.drop('slow');
      }
    }
  }

  subscribe(worker: string, subscriber: LogSubscriber): () => void {
    let subscribers = this.#byWorker.get(worker);
    if (subscribers === undefined) {
      subscribers = new Set();
      this.#byWorker.set(worker, subscribers);
    }
    subscribers.add(subscriber);
    return () => this.unsubscribe(worker, subscriber);
  }

  unsubscribe(worker: string, subscriber: LogSubscriber): void {
    const subscribers = this.#byWorker.get(worker);
    if (subscribers === undefined) return;
    subscribers.delete(subscriber);
    if (subscribers.size === 0) this.#byWorker.delete(worker);
  }

  subscriberCount(worker: string): number {
    return this.#byWorker.get(worker)?.size ?? 0;
  }

  /** Drops every subscriber (at shutdown, so their streams end and the server can close). */
  close(): void {
    const all = [...this.#byWorker.values()].flatMap((set) => [...set]);
    this.#byWorker.clear();
    for (const subscriber of all) subscriber.drop('closing');
  }
}
