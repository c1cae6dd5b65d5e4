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
import { BodyTooLargeError, type RequestBody } from './request-body.ts';

export type RequestPhase = 'dispatching' | 'streaming' | 'waitUntil' | 'ended';

/** What a request's dispatch resolves with when it can never be answered (see never-responds.ts). */
export const NEVER_RESPONDS = Symbol('never responds');

/** How the host waits for the sandbox's answer: the result, null when the isolate is gone, or NEVER_RESPONDS. */
export type DispatchOutcome = DispatchResult | null | typeof NEVER_RESPONDS;

type HostTimer = { timeout: NodeJS.Timeout; immediate?: undefined } | { immediate: NodeJS.Immediate; timeout?: undefined };

let nextRequestId = 1;

export class RequestContext {
  /** Allocated here, on the host: the sandbox only ever names requests the host gave it. */
  readonly id = nextRequestId++;
  readonly method: string;
  readonly url: string;
  readonly startWall = performance.now();
  #phase: RequestPhase = 'dispatching';
  /** The status the client got (the log line's); 0 until there is one. */
  status = 0;
  /** CPU charged to this request, in nanoseconds. */
  cpuNs = 0;
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

  constructor(method: string, url: string, body: RequestBody | undefined, trace?: RequestTrace) {
    this.method = method;
    this.url = url;
    this.#body = body;
    this.#trace = trace;
  }

  /** What host operations see of this request; made by the first one (most requests have none). */
  get handle(): OpRequest {
    if (this.#handle !== undefined) return this.#handle;
    const context = this;
    return (this.#handle = {
      id: this.id,
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
    return timerIds;
  }

  /** The request's log line fields. */
  summary(): { message: string; fields: Record<string, unknown> } {
    return {
      message: `${this.method} ${this.url} ${this.status}`,
      fields: {
        requestId: this.id,
        method: this.method,
        url: this.url,
        status: this.status,
        cpuMs: Math.round((this.cpuNs + this.pendingCpuNs) / 1e3) / 1e3,
        wallMs: Math.round((performance.now() - this.startWall) * 100) / 100,
      },
    };
  }
}
