// setTimeout/setInterval inside the isolate. The wait happens on the host (the isolate has no
// event loop of its own); the host calls `fireTimer` back. Every timer belongs to the request
// that set it and is cancelled when that request's work is over, as in Workers, so no tenant
// code runs outside a request's CPU accounting. A sandbox module (see
// src/runtime/sandbox-modules.ts), evaluated in an isolate the first time its code reads one of
// the timer globals: before that no timer can exist, and a hello-world worker never sets one.

import type { AbortSignal } from '../../events/sandbox.ts';
import {
  MathMax, MathMin, Number, NumberIsFinite, ObjectDefineProperty, Promise, PromisePrototypeThen, PromiseReject,
  PromiseResolve, RangeError, ReflectApply, SafeMap, SafeSet, Set, Symbol, SymbolToStringTag, TypeError,
  safeMapEntries, safeSetValues,
} from '../../../sandbox/primordials.ts';

export interface TimersDeps {
  startTimer(requestId: number, timerId: number, delay: number): void;
  /** Runs `fn` as a microtask, on built-ins captured before tenant code ran. */
  defer(fn: () => void): void;
  clearTimer(timerId: number): void;
  requireRequestContext(what: string): void;
  currentRequestId(): number;
  AbortSignal: abstract new (...args: never[]) => AbortSignal;
  addAbortAlgorithm(signal: AbortSignal, fn: () => void): void;
  removeAbortAlgorithm(signal: AbortSignal, fn: () => void): void;
}

export interface TimersApi {
  globals: Record<string, unknown>;
  /** The host's timer went off: run the callback in its request's context. */
  fireTimer(id: number): void;
  /** A request's work is over: drop its timers (the host has already forgotten them). */
  dropRequestTimers(requestId: number): void;
}

let deps: TimersDeps;

interface Timer {
  callback: (...args: unknown[]) => void;
  args: unknown[];
  intervalMs: number | undefined;
  requestId: number;
}

const timers = new SafeMap<number, Timer>();
const timersByRequest = new SafeMap<number, Set<number>>();
let nextTimerId = 1;
/**
 * Timers set since the last flush, not yet known to the host. They start at the end of the
 * current turn (a microtask), so a timer cleared in the same turn never crosses the wall: a
 * `clearTimeout(setTimeout(f, ms))` loop would otherwise queue two host calls per iteration on
 * the host's main thread.
 */
const unstarted = new SafeMap<number, number>();
let flushQueued = false;

function flushTimers(): void {
  flushQueued = false;
  for (const entry of safeMapEntries(unstarted)) {
    const id = entry[0], ms = entry[1];
    const timer = timers.get(id);
    if (timer) deps.startTimer(timer.requestId, id, ms);
  }
  unstarted.clear();
}
const MAX_TIMERS_PER_REQUEST = 10_000;

function toDelay(value: unknown): number {
  const n = Number(value);
  if (!NumberIsFinite(n) || n < 0) return 0;
  return MathMin(n, 2 ** 31 - 1);
}

function start(callback: unknown, delay: unknown, args: unknown[], repeat: boolean, name: string): number {
  if (typeof callback !== 'function') {
    // String timers are code generation from strings.
    throw new TypeError(`${name}: the first argument must be a function; strings are not evaluated (code generation from strings is disallowed)`);
  }
  deps.requireRequestContext(name);
  const requestId = deps.currentRequestId();
  let owned = timersByRequest.get(requestId);
  if (!owned) timersByRequest.set(requestId, (owned = new SafeSet()));
  if (owned.size >= MAX_TIMERS_PER_REQUEST) {
    throw new RangeError(`${name}: too many pending timers in one request (at most ${MAX_TIMERS_PER_REQUEST})`);
  }
  const id = nextTimerId++;
  const ms = toDelay(delay);
  timers.set(id, { callback: callback as Timer['callback'], args, intervalMs: repeat ? MathMax(ms, 1) : undefined, requestId });
  owned.add(id);
  unstarted.set(id, ms);
  if (!flushQueued) {
    flushQueued = true;
    deps.defer(flushTimers);
  }
  return id;
}

function clear(id: unknown): void {
  const n = typeof id === 'number' ? id : Number(id);
  const timer = timers.get(n);
  if (!timer) return;
  timers.delete(n);
  timersByRequest.get(timer.requestId)?.delete(n);
  if (!unstarted.delete(n)) deps.clearTimer(n);
}

/** The host's timer went off: run the callback in its request's context. */
function fireTimer(id: number): void {
  const timer = timers.get(id);
  if (!timer) return;
  if (timer.intervalMs === undefined) {
    timers.delete(id);
    timersByRequest.get(timer.requestId)?.delete(id);
  } else {
    deps.startTimer(timer.requestId, id, timer.intervalMs);
  }
  ReflectApply(timer.callback, undefined, timer.args);
}

/** A request's work is over: drop its timers (the host has already forgotten them). */
function dropRequestTimers(requestId: number): void {
  const owned = timersByRequest.get(requestId);
  if (!owned) return;
  for (const id of safeSetValues(owned)) {
    timers.delete(id);
    unstarted.delete(id);
  }
  timersByRequest.delete(requestId);
}

function timerGlobals(): Record<string, unknown> {
  return {
    setTimeout: function setTimeout(callback: unknown, delay?: unknown, ...args: unknown[]) {
      return start(callback, delay, args, false, 'setTimeout');
    },
    setInterval: function setInterval(callback: unknown, delay?: unknown, ...args: unknown[]) {
      return start(callback, delay, args, true, 'setInterval');
    },
    clearTimeout: function clearTimeout(id?: unknown) {
      checkTimerId(arguments.length, id, 'clearTimeout');
      clear(id);
    },
    clearInterval: function clearInterval(id?: unknown) {
      checkTimerId(arguments.length, id, 'clearInterval');
      clear(id);
    },
    queueMicrotask: function queueMicrotask(callback: unknown) {
      if (typeof callback !== 'function') {
        throw new TypeError("Failed to execute 'queueMicrotask': parameter 1 is not of type 'Function'.");
      }
      // workerd calls it with the global object as `this`.
      PromisePrototypeThen(PromiseResolve(), () => ReflectApply(callback as () => void, globalThis, []));
    },
    scheduler: new Scheduler(kCreate),
  };
}

// workerd's clearTimeout/clearInterval take a WebIDL number: no argument at all, or a BigInt
// (which no number conversion takes), is a TypeError; anything else converts (to NaN at worst,
// which names no timer).
function checkTimerId(count: number, id: unknown, name: string): void {
  if (count === 0 || typeof id === 'bigint') {
    throw new TypeError(`Failed to execute '${name}' on 'ServiceWorkerGlobalScope': parameter 1 is not of type 'Number'.`);
  }
}

const kCreate = Symbol('Scheduler.create');

/** The `scheduler` global (WICG Prioritized Task Scheduling, as far as workerd has it: wait). */
class Scheduler {
  constructor(token?: unknown) {
    if (token !== kCreate) throw new TypeError('Illegal constructor');
  }

  /** A promise resolved (with undefined) after `delay` ms, or rejected when `signal` aborts. */
  wait(delay: unknown, options?: { signal?: AbortSignal }): Promise<void> {
    if (arguments.length === 0) {
      return PromiseReject(new TypeError("Failed to execute 'wait' on 'Scheduler': parameter 1 is not of type 'number'."));
    }
    const signal = options?.signal;
    if (signal !== undefined && !(signal instanceof deps.AbortSignal)) {
      return PromiseReject(new TypeError("Failed to execute 'wait' on 'Scheduler': member signal is not of type AbortSignal."));
    }
    if (signal?.aborted) return PromiseReject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      let id = 0;
      const onAbort = (): void => {
        clear(id);
        reject(signal!.reason);
      };
      id = start(() => {
        if (signal) deps.removeAbortAlgorithm(signal, onAbort);
        resolve();
      }, delay, [], false, 'scheduler.wait');
      if (signal) deps.addAbortAlgorithm(signal, onAbort);
    });
  }
}
ObjectDefineProperty(Scheduler.prototype, SymbolToStringTag, { __proto__: null, value: 'Scheduler', configurable: true });

export function create(given: TimersDeps): TimersApi {
  deps = given;
  return { globals: timerGlobals(), fireTimer, dropRequestTimers };
}
