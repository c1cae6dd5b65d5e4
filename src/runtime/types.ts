// The public shapes of the runtime: what an embedding application, the HTTP front and the
// server hand to a Runtime and get back. Kept free of isolated-vm types on purpose: nothing
// outside src/runtime may hold an isolate handle.

import type { EgressOptions } from '../api/fetch/egress-policy.ts';
import type { BindingSpec } from '../bridge/bindings.ts';
import type { JsonValue } from './json-value.ts';
import type { InlineRuns } from './inline-runs.ts';

export type { EgressOptions, BindingSpec, JsonValue };

/**
 * One module of a worker. `name` is its path as other modules import it ("./util.js").
 * Without `type` it is an ES module and `source` its JavaScript; with type 'wasm' it is a
 * WebAssembly module, `source` its bytes in base64, and importing it gives a WebAssembly.Module
 * (compiled by the host when the worker loads).
 */
export interface WorkerModule {
  name: string;
  source: string;
  type?: 'wasm';
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
  /**
   * Cron triggers (Cloudflare's syntax, src/cron/cron.ts): the host that runs the worker fires
   * its `scheduled` handler on them (`isolet serve` does; a Runtime runs one only when
   * `Runtime.scheduled` is called). A worker with any must export `scheduled`.
   */
  crons?: string[];
  /**
   * What the worker sees in `env` besides its vars, by env name: a binding the platform
   * implements, given as data (BindingSpec: KV, a service, assets; its calls go to
   * `RuntimeOptions.bindingHost`), or functions of the embedding application (HostBinding),
   * which the worker calls as `env.NAME.method(...)`. A name may not be both a var and a binding.
   */
  bindings?: Record<string, BindingSpec | HostBinding>;
}

/** A cron trigger's event, as `Runtime.scheduled` takes it: the worker's `controller.cron` and `controller.scheduledTime`. */
export interface ScheduledEvent {
  cron: string;
  /** When the event was due, in ms since the epoch (default: now). */
  scheduledTime?: number;
}

/**
 * How a scheduled event ended, in the words of Cloudflare's tail events: the handler (and its
 * waitUntil work) finished, threw, or was stopped at its CPU or memory limit.
 */
export type ScheduledOutcome = 'ok' | 'exception' | 'exceededCpu' | 'exceededMemory';

export interface ScheduledResult {
  outcome: ScheduledOutcome;
  /** The handler called `controller.noRetry()`. */
  noRetry: boolean;
  cpuMs: number;
  wallMs: number;
  /** What went wrong, when the outcome is not 'ok' (also in the worker's log). */
  error?: string;
}

/**
 * Functions of the embedding application a worker calls as `env.NAME.method(...)` (library face
 * only: they cannot cross to another process). Each call is async for the worker; its arguments
 * arrive structured-cloned, its result is structured-cloned into the isolate, and a thrown error
 * reaches the worker as an Error of the same name and message, nothing more. The time the host
 * spends is not the worker's CPU. Callable, as they are when the worker is loaded, with the
 * object as `this`: a plain object's own enumerable functions (any other field is an error: pass
 * data as vars), or an instance's own enumerable functions and its class's methods, inherited
 * ones too (not Object's, never `constructor`, getters not read); an instance's other fields are
 * its state, which the worker does not see.
 */
export type HostBinding = { readonly [method: string]: (...args: any[]) => unknown } | HostBindingInstance;

/** An instance of a class of the embedding application, as a HostBinding (see there). */
export type HostBindingInstance = object;

/** One call of a platform binding (a BindingSpec) from a worker, as a BindingHost answers it. */
export interface BindingCall {
  /** The calling worker. */
  worker: string;
  /** Its owner (WorkerDefinition.account, or the worker's name without one). */
  account: string;
  /** The env name of the binding. */
  name: string;
  /** Its spec, from the worker's definition (in `isolet serve`, from what the control process deployed). */
  binding: BindingSpec;
  /** What the binding type's sandbox module asks for, e.g. 'get', 'put', 'list'. */
  method: string;
  /** JSON only. */
  args: JsonValue[];
  /** At most one binary payload (a KV value, ...). */
  bytes?: Uint8Array;
  /** Aborted when the worker stops waiting: its request ended, or the call ran out of time. */
  signal: AbortSignal;
}

export interface BindingAnswer {
  value: JsonValue;
  bytes?: Uint8Array;
}

/** Answers the calls of platform bindings (RuntimeOptions.bindingHost). */
export interface BindingHost {
  call(call: BindingCall): Promise<BindingAnswer>;
}

/**
 * Thrown by a BindingHost (or a host binding): reaches the worker as an Error named `name`
 * (TypeError and RangeError as those types, any other name as an Error with that name) and
 * this message. Nothing else of the error crosses.
 */
export class BindingError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
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
  /** The export that answers (a service binding's named entrypoint); the default export when absent. */
  entrypoint?: string;
  /**
   * The service-binding calls the request came through, the first caller first (each a
   * ServiceKey). Set by the platform, never from what a client or a worker sends: it bounds how
   * deep calls nest and refuses a cycle.
   */
  chain?: readonly string[];
  /** Where the request's subrequests are traced (src/observability/tracing.ts); absent when tracing is off. */
  trace?: RequestTrace;
}

import type { RpcValue } from './rpc-value.ts';

/** One call through a service binding (`env.NAME.fetch()` or `env.NAME.method()`), as a ServiceHost answers it. */
export interface ServiceCall {
  /** The calling worker. */
  worker: string;
  /** Its owner (WorkerDefinition.account, or the worker's name without one). */
  account: string;
  /** The env name of the binding. */
  name: string;
  /** The worker the binding names. */
  service: string;
  /** The named entrypoint of that worker the binding names; the default export when absent. */
  entrypoint?: string;
  /** The calls the caller's request came through and the caller itself, last (ServiceKeys). */
  chain: readonly string[];
}

/**
 * Where a worker's service-binding calls go (RuntimeOptions.serviceHost). A Runtime answers
 * them itself by default, with the workers it has loaded; `isolet serve` sends them to its
 * control process. Errors reach the calling worker by name and message (BindingError).
 */
export interface ServiceHost {
  /** The request to the service's worker, as `env.NAME.fetch()` made it. */
  fetch(call: ServiceCall, request: RuntimeRequest): Promise<RuntimeResponse>;
  /**
   * RPC: the result of method `method` of the service's entrypoint, with `args` (an array),
   * both structured clones the host hands on between isolates, read only where they are used
   * (RpcValue).
   */
  call(call: ServiceCall, method: string, args: RpcValue): Promise<RpcValue>;
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
  /** What kind of line: the worker's console, an uncaught error, a limit, a request's or a scheduled event's summary. */
  type: 'console' | 'exception' | 'limit' | 'request' | 'scheduled' | 'lifecycle';
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
   * its responses). Past it the least recently used idle isolates are disposed, for a worker
   * asked for more often lately; one asked for no more often is served on probation, past the
   * budget by its isolate, which goes first next time. One with a request in flight or
   * waitUntil work never is. Default: 40% of the machine's memory (defaultMemoryBudgetMb); a
   * server with N runtime processes gives each its share (Runtime.setMemoryBudget).
   */
  memoryBudgetMb?: number;
  /**
   * Isolates to keep ready ahead of demand, so a worker's first request skips creating one
   * (default 2; 0 turns it off). Made one at a time after one is taken.
   */
  spareIsolates?: number;
  /**
   * After this long with nothing in flight, an isolate that has grown by at least 512 KB since it
   * started (or last did this) runs full collections that give its idle memory back (default
   * 10,000 ms; 0 turns it off). Needs isolet's isolated-vm build.
   */
  reduceIdleMemoryAfterMs?: number;
  /**
   * Where workers' fetch() may connect. By default anything public, and nothing loopback,
   * private, link-local, carrier-grade NAT, multicast, unspecified or cloud metadata (checked on
   * the resolved address, on every redirect hop). `allow` opens networks (CIDRs) or hostnames
   * ("*.corp.example" for a suffix); `deny` closes more, and wins over allow.
   */
  egress?: EgressOptions;
  /**
   * Answers the calls of the workers' platform bindings (BindingSpec: KV, services, assets).
   * Without one, such a call rejects with an Error that says the binding is not available here.
   */
  bindingHost?: BindingHost;
  /**
   * How long one binding call (host or platform binding) may take before the worker's promise
   * rejects with a TimeoutError, in ms (default 30,000). A call also ends with its request.
   */
  bindingTimeoutMs?: number;
  /** Where service-binding calls go (default: the workers loaded in this Runtime, see ServiceHost). */
  serviceHost?: ServiceHost;
  /** Told when a worker's isolate starts for a request and when one ends, for metrics. */
  isolateEvents?: IsolateEvents;
  /**
   * Whether a worker that keeps answering quickly starts its requests on the thread that calls
   * `fetch()` while that thread has room (default true): no hand-off to an isolate thread and
   * back, and with many tenants 10-35% less CPU a request. The handler's synchronous
   * part then holds that thread, as in workerd; a worker whose request runs long goes back to its
   * own thread, and one that holds the thread for long pauses inline runs for all
   * (src/runtime/inline-runs.ts). Needs isolet's isolated-vm build. An InlineRuns sets other
   * thresholds.
   */
  inlineRuns?: boolean | InlineRuns;
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
