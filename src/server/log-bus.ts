// Live logs: the Runtime's log callback publishes every worker log entry here, and each
// `tail` client subscribes to one worker. Publishing never waits: a subscriber gets the line
// written to its socket's buffer, and one whose buffer grows past its bound (a client that
// reads slower than the worker logs) is dropped, so a slow tail can never slow the worker.
//
// A subscription is bound to the worker's identity (not only its name) and to the token that
// opened it: deleting the worker or revoking the token ends it, so a tail never goes on to
// show a later worker of the same name (another account's logs) or outlives its right to read.

import type { WorkerLogEntry } from '../runtime/types.ts';

export type DropReason = 'slow' | 'closing' | 'worker-deleted' | 'token-revoked';

export interface LogSubscriber {
  /** Which entries it wants (a tail's filters); undefined: all. */
  accepts?: ((entry: WorkerLogEntry) => boolean) | undefined;
  /** Takes one NDJSON line; returns false when the subscriber is over its bound and must go. */
  write(line: string): boolean;
  /** Called once when the bus drops the subscriber (over its bound, its right ended, or the bus closing). */
  drop(reason: DropReason): void;
}

/** What a subscription depends on: the worker's store id and the id of the token that opened it. */
export interface TailBinding {
  workerId: string;
  tokenId: string;
}

export interface LogBusOptions {
  /** A worker got its first subscriber here (a cluster tells the other nodes: cluster-tail.ts). */
  watched?: (worker: string) => void;
}

export class LogBus {
  readonly #byWorker = new Map<string, Map<LogSubscriber, TailBinding | undefined>>();
  readonly #watched: ((worker: string) => void) | undefined;

  constructor(options: LogBusOptions = {}) {
    this.#watched = options.watched;
  }

  publish(entry: WorkerLogEntry): void {
    const subscribers = this.#byWorker.get(entry.worker);
    if (subscribers === undefined) return;
    const line = JSON.stringify(entry) + '\n';
    for (const subscriber of [...subscribers.keys()]) {
      if (subscriber.accepts !== undefined && !subscriber.accepts(entry)) continue;
      if (!subscriber.write(line)) {
        this.unsubscribe(entry.worker, subscriber);
        subscriber.drop('slow');
      }
    }
  }

  subscribe(worker: string, subscriber: LogSubscriber, binding?: TailBinding): () => void {
    let subscribers = this.#byWorker.get(worker);
    const first = subscribers === undefined;
    if (subscribers === undefined) {
      subscribers = new Map();
      this.#byWorker.set(worker, subscribers);
    }
    subscribers.set(subscriber, binding);
    if (first) this.#watched?.(worker);
    return () => this.unsubscribe(worker, subscriber);
  }

  /** The workers someone tails here now. */
  watchedWorkers(): string[] {
    return [...this.#byWorker.keys()];
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

  /** Ends every subscription to this worker identity (it was deleted). */
  endWorker(workerId: string): number {
    return this.#end((binding) => binding?.workerId === workerId, 'worker-deleted');
  }

  /** Ends every subscription opened with this token (it was revoked). */
  endToken(tokenId: string): number {
    return this.#end((binding) => binding?.tokenId === tokenId, 'token-revoked');
  }

  /** Drops every subscriber (at shutdown, so their streams end and the server can close). */
  close(): void {
    this.#end(() => true, 'closing');
  }

  #end(matches: (binding: TailBinding | undefined) => boolean, reason: DropReason): number {
    const ended: LogSubscriber[] = [];
    for (const [worker, subscribers] of this.#byWorker) {
      for (const [subscriber, binding] of subscribers) {
        if (!matches(binding)) continue;
        subscribers.delete(subscriber);
        ended.push(subscriber);
      }
      if (subscribers.size === 0) this.#byWorker.delete(worker);
    }
    for (const subscriber of ended) subscriber.drop(reason);
    return ended.length;
  }
}
