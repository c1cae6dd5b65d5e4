// One request's life on the host side of the wall, from dispatch to its log line. Its phase is
// the one answer to "where is this request", and everything the request owns (its host timers,
// its body's reader, its abort wiring, its CPU account) ends with it, in `finish()`.
//
//   dispatching -> streaming -> waitUntil -> ended
//        |              |____________^          ^
//        |___________________________|          |
//   (any phase) ________________________________|
//
//   dispatching: the isolate has the request and the host waits for its response;
//   streaming:   the host has the response head and sends its body (pulled from the isolate, or
//                the request's own body passed through);
//   waitUntil:   the response is complete; work the worker handed to ctx.waitUntil() may still
//                run (at most WAIT_UNTIL_MS);
//   ended:       nothing of the request runs or is charged any more.

import type { DispatchResult } from '../bridge/protocol.ts';
import type { OpRequest } from './host-ops.ts';
import type { RequestTrace } from './types.ts';
import type { RpcValue } from './rpc-value.ts';
import { BodyTooLargeError, type RequestBody } from './request-body.ts';
import { describeTermination, type Termination } from './termination.ts';
import type { LogLevel, ScheduledOutcome, ScheduledResult, WorkerLogEntry } from './types.ts';

export type RequestPhase = 'dispatching' | 'streaming' | 'waitUntil' | 'ended';

/** What a request's dispatch resolves with when it can never be answered (see never-responds.ts). */
export const NEVER_RESPONDS = Symbol('never responds');

/** How the host waits for the sandbox's answer: the result, null when the isolate is gone, or NEVER_RESPONDS. */
export type DispatchOutcome = DispatchResult | CallOutcome | null | typeof NEVER_RESPONDS;

/** The sandbox's answer to an RPC call (the `invoke` entry): the result, or the error's name and message (`value`). */
export interface CallOutcome {
  rpc: true;
  ok: boolean;
  value: RpcValue;
  errorName: string;
}

type HostTimer = { timeout: NodeJS.Timeout; immediate?: undefined } | { immediate: NodeJS.Immediate; timeout?: undefined };

/** A scheduled event (a cron trigger) in flight, where a request would have its method and URL. */
export interface ScheduledTrigger {
  cron: string;
  scheduledTime: number;
  /** Known once the handler has finished (or the isolate stopped it). */
  outcome?: ScheduledOutcome;
  noRetry?: boolean;
  error?: string;
}

let nextRequestId = 1;

export class RequestContext {
  /** Allocated here, on the host: the sandbox only ever names requests the host gave it. */
  readonly id = nextRequestId++;
  readonly method: string;
  readonly url: string;
  /** The service-binding calls this request came through and its own worker last (ServiceKeys). */
  readonly chain: readonly string[];
  readonly startWall = performance.now();
  #phase: RequestPhase = 'dispatching';
  /** The status the client got (the log line's); 0 until there is one. */
  status = 0;
  /** CPU charged to this request, in nanoseconds. */
  cpuNs = 0;
  /**
   * Which inline run started the request (WorkerIsolate's count; 0: it started on the isolate's
   * thread). What that run sent the host arrives a turn of the event loop later.
   */
  inlineRun = 0;
  /** CPU measured at request edges since the watchdog's last tick, not yet bounded by it. */
  pendingCpuNs = 0;
  /** The sandbox reported the request's work over (response and waitUntil). */
  sandboxDone = false;
  /** While streaming: the body is pulled from the isolate (not the request body passed through). */
  pullsFromIsolate = false;
  #handle: OpRequest | undefined;
  #body: RequestBody | undefined;
  #reading = false;
  readonly #timers = new Map<number, HostTimer>();
  /** Set for a scheduled event: its summary is a 'scheduled' line, and it has an outcome. */
  readonly trigger: ScheduledTrigger | undefined;
  #onEnded: (() => void) | undefined;
  #resolveDispatch: ((outcome: DispatchOutcome) => void) | undefined;
  #waitUntilTimer: NodeJS.Timeout | undefined;
  #clientSignal: AbortSignal | undefined;
  #onClientAbort: (() => void) | undefined;
  /**
   * Aborted when the client leaves or the request's work ends: cancels its host operations.
   * Made only when an operation asks for the signal (an abort builds a DOMException with a stack).
   */
  #controller: AbortController | undefined;

  /** Where the request's subrequests are traced, when tracing is on. */
  readonly #trace: RequestTrace | undefined;

  constructor(method: string, url: string, body: RequestBody | undefined, chain: readonly string[], trace?: RequestTrace, trigger?: ScheduledTrigger) {
    this.method = method;
    this.url = url;
    this.#body = body;
    this.chain = chain;
    this.#trace = trace;
    this.trigger = trigger;
  }

  /** Resolves when the request's work is over (finish()); one waiter at a time. */
  whenEnded(): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve) => (this.#onEnded = resolve));
  }

  /** The isolate stopped while this was in flight: a scheduled event's outcome says why. */
  stopped(termination: Termination): void {
    if (this.trigger === undefined) return;
    this.trigger.outcome = termination.kind === 'cpu' ? 'exceededCpu' : termination.kind === 'memory' ? 'exceededMemory' : 'exception';
    this.trigger.error = describeTermination(termination);
  }

  /** What host operations see of this request; made by the first one (most requests have none). */
  get handle(): OpRequest {
    if (this.#handle !== undefined) return this.#handle;
    const context = this;
    return (this.#handle = {
      id: this.id,
      chain: this.chain,
      get signal() {
        context.#controller ??= new AbortController();
        if (context.ended) context.#controller.abort();
        return context.#controller.signal;
      },
      subrequests: 0,
      trace: this.#trace,
      readBody: () => this.readBody(),
      readWholeBody: (text, capBytes) => this.#readBody((body) => body.readWhole(text, capBytes), text ? '' : new ArrayBuffer(0)),
    });
  }

  get phase(): RequestPhase {
    return this.#phase;
  }

  get ended(): boolean {
    return this.#phase === 'ended';
  }

  /** Whether the host waits for the sandbox's answer. */
  get awaitingResponse(): boolean {
    return this.#resolveDispatch !== undefined;
  }

  /**
   * Whether the isolate may run again for this request without a new call from outside
   * (never-responds.ts). Its timers count too, but the isolate's index of all timers answers
   * that for every request at once.
   */
  get keepsIsolateBusy(): boolean {
    return (this.#phase === 'streaming' && this.pullsFromIsolate) || this.#reading;
  }

  /** The promise the host's dispatch awaits; settled by answer() or when the request ends. */
  dispatched(): Promise<DispatchOutcome> {
    return new Promise((resolve) => (this.#resolveDispatch = resolve));
  }

  /** The sandbox's answer (or NEVER_RESPONDS) reached the host; false if it was not waited for. */
  answer(outcome: DispatchOutcome): boolean {
    const resolve = this.#resolveDispatch;
    if (!resolve) return false;
    this.#resolveDispatch = undefined;
    resolve(outcome);
    return true;
  }

  /** The response head is out and its body streams: from the isolate, or the request's body passed through. */
  startStreaming(fromIsolate: boolean): void {
    if (this.#phase !== 'dispatching') return;
    this.#phase = 'streaming';
    this.pullsFromIsolate = fromIsolate;
  }

  /**
   * The response is complete. Returns true when the request's work is over with it (the sandbox
   * said so), else it is in waitUntil, which `onExpired` ends after `ms`.
   */
  responded(ms: number, onExpired: () => void): boolean {
    if (this.ended) return false;
    this.#phase = 'waitUntil';
    this.pullsFromIsolate = false;
    if (this.sandboxDone) return true;
    this.#expireAfter(ms, onExpired);
    return false;
  }

  /** The client went away: the request's work may go on for `ms` (to log, or in waitUntil), then `onExpired` ends it. */
  clientLeft(ms: number, onExpired: () => void): void {
    if (this.ended) return;
    this.#controller?.abort();
    this.#expireAfter(ms, onExpired);
  }

  #expireAfter(ms: number, onExpired: () => void): void {
    if (this.#waitUntilTimer) return;
    this.#waitUntilTimer = setTimeout(() => {
      if (!this.ended) onExpired();
    }, ms);
    this.#waitUntilTimer.unref();
  }

  /** Calls `onAbort` when the client's signal fires; false if it already has. */
  listenForClient(signal: AbortSignal | undefined, onAbort: () => void): boolean {
    if (!signal) return true;
    if (signal.aborted) return false;
    this.#clientSignal = signal;
    this.#onClientAbort = onAbort;
    signal.addEventListener('abort', onAbort, { once: true });
    return true;
  }

  /** Starts a host timer of this request; its callback does not run once the request has ended. */
  startTimer(timerId: number, delayMs: number, fire: () => void): void {
    this.clearTimer(timerId);
    const run = () => {
      this.#timers.delete(timerId);
      if (!this.ended) fire();
    };
    // 0 ms runs before 1 ms, as in workerd (Node's setTimeout makes both 1 ms).
    this.#timers.set(timerId, delayMs === 0 ? { immediate: setImmediate(run) } : { timeout: setTimeout(run, delayMs) });
  }

  clearTimer(timerId: number): boolean {
    const timer = this.#timers.get(timerId);
    if (!timer) return false;
    if (timer.immediate) clearImmediate(timer.immediate);
    else clearTimeout(timer.timeout);
    this.#timers.delete(timerId);
    return true;
  }

  /** The request body's next piece for the isolate (see request-body.ts), or null at its end. */
  readBody(): Promise<ArrayBuffer | null> {
    return this.#readBody((body) => body.read(), null);
  }

  /** The body source's own chunks, uncopied, for a body sent on unread: they never enter the isolate. */
  nextBodyChunk(): Promise<IteratorResult<Uint8Array>> {
    return this.#readBody((body) => body.next(), { done: true, value: undefined });
  }

  /** One read of the request body at a time; `atEnd` when there is nothing (more) to read. */
  async #readBody<T>(read: (body: RequestBody) => Promise<T>, atEnd: T): Promise<T> {
    if (!this.#body || this.ended) return atEnd;
    if (this.#reading) throw new TypeError('The request body is already being read.');
    this.#reading = true;
    try {
      const result = await read(this.#body);
      // finish() closed the source under this read: what it has is not the whole body. (Another
      // request's code may be reading this body, and would take a cut one for complete.)
      if (this.ended) throw new Error('its request ended while it was being read');
      if (this.#body?.done) this.#body = undefined;
      return result;
    } catch (cause) {
      this.#body = undefined;
      if (cause instanceof BodyTooLargeError) throw cause;
      throw new TypeError(`The request body could not be read: ${cause instanceof Error ? cause.message : String(cause)}`);
    } finally {
      this.#reading = false;
    }
  }

  /**
   * Ends the request: its host operations are cancelled, a dispatch still waiting resolves with
   * null, its timers and body reader stop. Returns the timer ids it had (the isolate's index of
   * them forgets them), or undefined if it had already ended.
   */
  finish(): number[] | undefined {
    if (this.ended) return undefined;
    this.#phase = 'ended';
    this.#controller?.abort();
    this.answer(null);
    if (this.#waitUntilTimer) clearTimeout(this.#waitUntilTimer);
    if (this.#onClientAbort) this.#clientSignal?.removeEventListener('abort', this.#onClientAbort);
    const timerIds = [...this.#timers.keys()];
    for (const timerId of timerIds) this.clearTimer(timerId);
    this.#body?.return().catch(() => {});
    this.#body = undefined;
    this.#onEnded?.();
    return timerIds;
  }

  get cpuMs(): number {
    return Math.round((this.cpuNs + this.pendingCpuNs) / 1e3) / 1e3;
  }

  get wallMs(): number {
    return Math.round((performance.now() - this.startWall) * 100) / 100;
  }

  /** The request's log line: a 'request' line, or a 'scheduled' one for a scheduled event. */
  summary(): { level: LogLevel; type: WorkerLogEntry['type']; message: string; fields: Record<string, unknown> } {
    const trigger = this.trigger;
    if (trigger !== undefined) {
      const outcome = trigger.outcome ?? 'exception';
      return {
        level: outcome === 'ok' ? 'info' : 'error',
        type: 'scheduled',
        message: `scheduled "${trigger.cron}" ${outcome}`,
        fields: {
          requestId: this.id,
          cron: trigger.cron,
          scheduledTime: trigger.scheduledTime,
          outcome,
          ...(trigger.noRetry ? { noRetry: true } : {}),
          cpuMs: this.cpuMs,
          wallMs: this.wallMs,
        },
      };
    }
    return {
      level: 'info',
      type: 'request',
      message: `${this.method} ${this.url} ${this.status}`,
      fields: { requestId: this.id, method: this.method, url: this.url, status: this.status, cpuMs: this.cpuMs, wallMs: this.wallMs },
    };
  }

  /** A scheduled event's result, once its work is over. */
  scheduledResult(): ScheduledResult {
    const trigger = this.trigger!;
    const outcome = trigger.outcome ?? 'exception';
    return {
      outcome,
      noRetry: trigger.noRetry === true,
      cpuMs: this.cpuMs,
      wallMs: this.wallMs,
      ...(outcome === 'ok' || trigger.error === undefined ? {} : { error: trigger.error }),
    };
  }
}
