// The public shapes of the runtime: what an embedding application, the HTTP front and the
// server hand to a Runtime and get back. Kept free of isolated-vm types on purpose: nothing
// outside src/runtime may hold an isolate handle.

import type { EgressOptions } from '../api/fetch/egress-policy.ts';

export type { EgressOptions };

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** One ES module of a worker. `name` is its path as other modules import it ("./util.js"). */
export interface WorkerModule {
  name: string;
  source: string;
}

export interface WorkerLimits {
  /** CPU time one request may use, in milliseconds (default 50). */
  cpuMs: number;
  /** CPU time the worker's top-level code may use while it loads, in milliseconds (default 400). */
  startupCpuMs: number;
  /** Heap plus ArrayBuffer memory of one isolate, in megabytes (default 128). */
  memoryMb: number;
  /** Outbound requests one request may make (default 50). */
  subrequests: number;
}

/**
 * A worker as the runtime loads it. Either `modules` (ES modules; `main`, or the first module,
 * is the entry and has `export default { fetch }`) or `script` (a service-worker script that
 * calls `addEventListener('fetch', ...)`).
 */
export interface WorkerDefinition {
  modules?: WorkerModule[];
  main?: string;
  script?: string;
  /** Text and JSON values the worker sees as `env`. */
  vars?: Record<string, JsonValue>;
  limits?: Partial<WorkerLimits>;
  compatibilityDate?: string;
  /**
   * Who owns the worker (an account, a customer). Resources shared between workers, such as
   * outbound connections and host work done for them, are bounded per owner; workers without
   * one are each their own owner.
   */
  account?: string;
}

/** A request as the runtime takes it: the head, plus a body the isolate pulls from on demand. */
export interface RuntimeRequest {
  method: string;
  /** Absolute URL, as the client used it. */
  url: string;
  /** Header pairs in arrival order; names may repeat. */
  headers: Iterable<[string, string]>;
  /** Pulled chunk by chunk as the worker reads it (a Node IncomingMessage fits). */
  body?: AsyncIterable<Uint8Array> | Uint8Array | string | null;
  /** Aborts the worker's `request.signal`, e.g. when the client disconnects. */
  signal?: AbortSignal;
  /** Where the request's subrequests are traced (src/observability/tracing.ts); absent when tracing is off. */
  trace?: RequestTrace;
}

/** A traced request, as the runtime sees it: it makes a span for each subrequest. */
export interface RequestTrace {
  /** The W3C traceparent of the request's span, which another process makes its spans under. */
  readonly traceparent: string;
  /** A span for one outbound fetch, begun now; ended with its response's status or the error. */
  subrequest(method: string, url: string): { end(status: number | undefined, error?: string): void };
}

/**
 * Header names and values, and statusText, are byte strings: each character is one byte (the
 * UTF-8 encoding of what the worker set), the convention of Node's raw headers, so they go on
 * the wire exactly as workerd sends them. A header set to 'é' reads here as 'Ã©'.
 */
export interface RuntimeResponse {
  status: number;
  /** The reason phrase: the worker's, or workerd's table's when the worker gave none. */
  statusText: string;
  /** Header pairs; `set-cookie` appears once per cookie. */
  headers: [string, string][];
  /** The whole body when the worker gave one at once; otherwise chunks as the worker makes them. */
  body: Uint8Array | AsyncIterable<Uint8Array> | null;
}

export type LogLevel = 'debug' | 'info' | 'log' | 'warn' | 'error';

/** One structured log line about a worker. */
export interface WorkerLogEntry {
  time: string;
  worker: string;
  level: LogLevel;
  /** What kind of line: the worker's console, an uncaught error, a limit, a request summary. */
  type: 'console' | 'exception' | 'limit' | 'request' | 'lifecycle';
  message: string;
  [field: string]: unknown;
}

export interface RuntimeOptions {
  /** Defaults for workers that do not set their own limits. */
  limits?: Partial<WorkerLimits>;
  /** Where worker logs go (default: JSON lines on stderr). */
  log?: (entry: WorkerLogEntry) => void;
  /** Most live isolates at once; the least recently used idle ones are disposed past it. */
  maxIsolates?: number;
  /**
   * Memory the live isolates may hold together, in MB: their heaps' pages backed by memory and
   * their ArrayBuffers, as last measured (after a worker starts, and at most once a second after
   * its responses). Past it the least recently used idle isolates are disposed; one with a
   * request in flight or waitUntil work never is. Default: 40% of the machine's memory
   * (defaultMemoryBudgetMb); a server with N runtime processes gives each its share.
   */
  memoryBudgetMb?: number;
  /**
   * Isolates to keep ready ahead of demand, so a worker's first request skips creating one
   * (default 2; 0 turns it off). Made one at a time after one is taken.
   */
  spareIsolates?: number;
  /**
   * After this long with nothing in flight, an isolate runs full collections that give its idle
   * memory back (default 10,000 ms; 0 turns it off). Needs isolet's isolated-vm build.
   */
  reduceIdleMemoryAfterMs?: number;
  /**
   * Where workers' fetch() may connect. By default anything public, and nothing loopback,
   * private, link-local, carrier-grade NAT, multicast, unspecified or cloud metadata (checked on
   * the resolved address, on every redirect hop). `allow` opens networks (CIDRs) or hostnames
   * ("*.corp.example" for a suffix); `deny` closes more, and wins over allow.
   */
  egress?: EgressOptions;
  /** Told when a worker's isolate starts for a request and when one ends, for metrics. */
  isolateEvents?: IsolateEvents;
}

/** Why a worker's isolate ended: a limit, a crash, a new version, or room made for others. */
export type IsolateEndReason = 'replaced' | 'evicted-isolates' | 'evicted-memory' | 'cpu' | 'memory' | 'crashed' | 'shutdown';

/**
 * What a Runtime tells of its isolates' lives (src/observability/worker-stats.ts counts them).
 * Called synchronously where it happens: keep it to counting.
 */
export interface IsolateEvents {
  /** A request found no live isolate and one was started for it (a cold start) in `ms`. */
  started(worker: string, ms: number): void;
  ended(worker: string, reason: IsolateEndReason): void;
}

/** A worker isolate's heap, in bytes, as V8 reports it. */
export interface IsolateMemoryUsage {
  /** What the heap has reserved. */
  heapTotal: number;
  /** What of that is backed by memory now. */
  heapPhysical: number;
  /** What live objects use. */
  heapUsed: number;
  /** ArrayBuffer memory outside the heap. */
  external: number;
}

export const DEFAULT_LIMITS: WorkerLimits = Object.freeze({
  cpuMs: 50,
  startupCpuMs: 400,
  memoryMb: 128,
  subrequests: 50,
});

/** Thrown by Runtime.load for a worker that cannot be loaded; `message` names the cause and the fix. */
export class WorkerLoadError extends Error {
  override name = 'WorkerLoadError';
  /** module:line:col where the problem is, when known. */
  location?: string;
  constructor(message: string, location?: string) {
    super(message);
    this.location = location;
  }
}
