// A tail that sees the whole cluster: the log entries of a worker that another node served (its
// requests, the cron runs it won) reach a tail connected to this node, through the shared
// store's broadcasts (PostgreSQL NOTIFY), with no address of any other node to configure.
//
// Only what someone tails crosses: a node that tails a worker says so to the others every few
// seconds ("watching"), and each node sends the entries of the workers watched elsewhere, batched
// into broadcasts of at most BROADCAST_MAX_BYTES. It is best effort and bounded: what a node
// cannot send in time (a worker that logs faster than the cap) is dropped and counted, and the
// watching tails get one line that says how many; a tail's own filters apply where it is.

import { BROADCAST_MAX_BYTES, type SharedStore } from '../store/store.ts';
import type { WorkerLogEntry } from '../runtime/types.ts';
import type { LogBus } from './log-bus.ts';
import type { ServerLog } from './logger.ts';
import { OutageNotice } from './outage-notice.ts';

/** How often a node repeats which workers it tails; the others forget a worker after three silences. */
export const WATCH_EVERY_MS = 5000;
const WATCH_FORGOTTEN_MS = 3 * WATCH_EVERY_MS;
/** Entries wait this long to share a broadcast. */
const BATCH_MS = 50;
/** At most this many broadcasts of entries a second from one node (~0.8 MB/s), and this much waiting. */
const MAX_BROADCASTS_PER_SECOND = 100;
const MAX_QUEUED_BYTES = 1024 * 1024;

/** One broadcast, as JSON: who sent it, and what it watches or the entries it carries. */
interface Broadcast {
  /** The sending server instance (a node that restarts is a new one). */
  from: string;
  node: string;
  watching?: string[];
  entries?: WorkerLogEntry[];
}

export interface ClusterTailOptions {
  store: SharedStore;
  bus: LogBus;
  node: string;
  /** This server instance, unique in the cluster (its own broadcasts come back to it). */
  instance: string;
  log: ServerLog;
}

export class ClusterTail {
  readonly #store: SharedStore;
  readonly #bus: LogBus;
  readonly #node: string;
  readonly #instance: string;
  readonly #outage: OutageNotice;
  /** Workers tailed on other nodes, until when. */
  readonly #watchedElsewhere = new Map<string, number>();
  #queue: string[] = [];
  #queuedBytes = 0;
  /** Entries not sent, per worker, told to the tails with the next batch. */
  readonly #dropped = new Map<string, number>();
  #batchTimer: NodeJS.Timeout | undefined;
  readonly #watchTimer: NodeJS.Timeout;
  #windowStart = 0;
  #sentInWindow = 0;
  #closed = false;

  constructor(options: ClusterTailOptions) {
    this.#store = options.store;
    this.#bus = options.bus;
    this.#node = options.node;
    this.#instance = options.instance;
    this.#outage = new OutageNotice(options.log, {
      down: 'could not share log lines with the other nodes: tails on them miss this node\'s lines until the database answers',
      up: 'log lines are shared with the other nodes again',
    });
    this.#store.onBroadcast((message) => this.#received(message));
    this.#watchTimer = setInterval(() => this.#announce(this.#bus.watchedWorkers()), WATCH_EVERY_MS);
    this.#watchTimer.unref();
  }

  /** A tail here started on a worker nobody here tailed: the other nodes start sending at once. */
  watched(worker: string): void {
    this.#announce([worker]);
  }

  /** An entry this node made: sent on if another node tails its worker. */
  local(entry: WorkerLogEntry): void {
    if (this.#closed) return;
    const until = this.#watchedElsewhere.get(entry.worker);
    if (until === undefined) return;
    if (until < Date.now()) {
      this.#watchedElsewhere.delete(entry.worker);
      return;
    }
    const text = fitted({ ...entry, node: this.#node });
    if (this.#queuedBytes + text.length > MAX_QUEUED_BYTES) {
      this.#dropped.set(entry.worker, (this.#dropped.get(entry.worker) ?? 0) + 1);
    } else {
      this.#queue.push(text);
      this.#queuedBytes += text.length;
    }
    this.#batchTimer ??= setTimeout(() => this.#flush(), BATCH_MS);
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#watchTimer);
    clearTimeout(this.#batchTimer);
    this.#queue = [];
  }

  #announce(workers: string[]): void {
    if (this.#closed || workers.length === 0) return;
    const names = workers.map((worker) => ascii(JSON.stringify(worker)));
    for (let from = 0; from < names.length;) {
      const { message, next } = this.#pack('watching', names, from);
      this.#send(message);
      from = next;
    }
  }

  /**
   * One broadcast of `key`: the JSON texts of `items` from `from` on, as many as fit
   * BROADCAST_MAX_BYTES (at least one: each fits alone), and where the next one starts.
   */
  #pack(key: 'watching' | 'entries', items: string[], from: number): { message: string; next: number } {
    const head = `{"from":${ascii(JSON.stringify(this.#instance))},"node":${ascii(JSON.stringify(this.#node))},"${key}":[`;
    let bytes = head.length + 2;
    let next = from;
    do bytes += items[next++]!.length + 1;
    while (next < items.length && bytes + items[next]!.length + 1 <= BROADCAST_MAX_BYTES);
    return { message: `${head}${items.slice(from, next).join(',')}]}`, next };
  }

  #flush(): void {
    this.#batchTimer = undefined;
    if (this.#closed) return;
    const now = Date.now();
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#sentInWindow = 0;
    }
    for (const [worker, count] of this.#dropped) {
      const text = fitted({
        time: new Date(now).toISOString(), worker, level: 'warn', type: 'lifecycle', node: this.#node, dropped: count,
        message: `${count} log entries of ${worker} on node ${this.#node} did not reach this tail: the worker logged faster than nodes share lines. This node's own tail has them all.`,
      });
      this.#queue.push(text);
      this.#queuedBytes += text.length;
    }
    this.#dropped.clear();
    let taken = 0;
    while (taken < this.#queue.length && this.#sentInWindow < MAX_BROADCASTS_PER_SECOND) {
      const { message, next } = this.#pack('entries', this.#queue, taken);
      for (let i = taken; i < next; i++) this.#queuedBytes -= this.#queue[i]!.length;
      this.#sentInWindow++;
      this.#send(message);
      taken = next;
    }
    this.#queue = this.#queue.slice(taken);
    // What did not fit this second waits for the next one.
    if (this.#queue.length > 0) this.#batchTimer = setTimeout(() => this.#flush(), Math.max(BATCH_MS, 1000 - (Date.now() - this.#windowStart)));
  }

  #send(message: string): void {
    this.#store.broadcast(message).then(() => this.#outage.succeeded(), (error: unknown) => this.#outage.failed(error));
  }

  #received(message: string): void {
    if (this.#closed) return;
    let broadcast: Broadcast;
    try {
      broadcast = JSON.parse(message) as Broadcast;
    } catch {
      return;
    }
    if (typeof broadcast !== 'object' || broadcast === null || broadcast.from === this.#instance) return;
    if (Array.isArray(broadcast.watching)) {
      const until = Date.now() + WATCH_FORGOTTEN_MS;
      for (const worker of broadcast.watching) if (typeof worker === 'string') this.#watchedElsewhere.set(worker, until);
    }
    if (Array.isArray(broadcast.entries)) {
      for (const entry of broadcast.entries) {
        if (isEntry(entry)) this.#bus.publish(entry);
      }
    }
  }
}

function isEntry(value: unknown): value is WorkerLogEntry {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as Record<string, unknown>;
  return typeof entry.worker === 'string' && typeof entry.time === 'string' && typeof entry.level === 'string' &&
    typeof entry.type === 'string' && typeof entry.message === 'string';
}

/**
 * The entry as JSON that fits one broadcast with room to spare: one too long keeps only its
 * core fields and as much of its message as fits (and says so). Every character outside ASCII
 * is escaped, so a string's length is its size in bytes.
 */
function fitted(entry: WorkerLogEntry): string {
  const limit = BROADCAST_MAX_BYTES - 200;
  const text = ascii(JSON.stringify(entry));
  if (text.length <= limit) return text;
  const { time, worker, level, type, node } = entry;
  for (let keep = Math.min(entry.message.length, limit); ; keep = Math.floor(keep / 2)) {
    const message = `${entry.message.slice(0, keep)} … (cut: too long to share between nodes)`;
    const cut = ascii(JSON.stringify({ time, worker, level, type, node, truncated: true, message }));
    if (cut.length <= limit || keep === 0) return cut;
  }
}

function ascii(json: string): string {
  return json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
