// setTimeout, setInterval, clearTimeout, clearInterval, queueMicrotask and scheduler: globals
// made on first access, from a sandbox module (./sandbox/module.ts). Before it is loaded no
// timer can exist, so the host's timer and end-of-request calls have nothing to do.

import { hostCalls, createModule } from '../../sandbox/host-calls.ts';
import { currentRequestId, onRequestEnd, requireRequestContext } from '../../sandbox/request-context.ts';
import { AbortSignal, addAbortAlgorithm, removeAbortAlgorithm } from '../events/sandbox.ts';
import type { TimersApi, TimersDeps } from './sandbox/module.ts';
import {
  Promise, PromisePrototypeThen, PromiseResolve,
} from '../../sandbox/primordials.ts';

let api: TimersApi | undefined;

// Captured while the snapshot is made, before any tenant code can replace them.
const resolved = PromiseResolve();
const defer = (fn: () => void): void => void PromisePrototypeThen(resolved, fn);

function timers(): TimersApi {
  if (api !== undefined) return api;
  api = createModule<TimersDeps, TimersApi>('timers', {
    startTimer: (requestId, timerId, delay) => hostCalls.startTimer(requestId, timerId, delay),
    defer,
    clearTimer: (timerId) => hostCalls.clearTimer(timerId),
    requireRequestContext,
    currentRequestId,
    AbortSignal,
    addAbortAlgorithm,
    removeAbortAlgorithm,
  });
  onRequestEnd(api.dropRequestTimers);
  return api;
}

/** The host's timer went off: run the callback in its request's context. */
export function fireTimer(id: number): void {
  api?.fireTimer(id);
}

export function timerGlobals(): Record<string, (name: string) => unknown> {
  const make = (name: string): unknown => timers().globals[name];
  return { setTimeout: make, setInterval: make, clearTimeout: make, clearInterval: make, queueMicrotask: make, scheduler: make };
}
