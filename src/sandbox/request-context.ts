// Which request the isolate is working for right now, and the host's wall clock when it last
// entered. The runtime sets both at every entry from the host (a request arriving, a timer
// firing, a body chunk arriving), in one call: every function a request enters costs it cache
// misses in an isolate served rarely (docs/BENCHMARKS.md, "Fewer functions per request").
// Operations that must belong to a request (timers, random values, I/O) read the request;
// outside any request, i.e. while the worker's top-level code runs, they are refused as in
// Workers. The clock (src/api/clock/sandbox.ts) reads the time.

import {
  ArrayPrototypePush, Error,
} from './primordials.ts';

/** The request the isolate works for now; 0 outside any (top-level code). */
export let currentRequest = 0;
/** The host's wall clock at its latest entry, never going back: the time tenant code sees. */
export let hostTime = 0;

export function enterFromHost(requestId: number, now: number): void {
  currentRequest = requestId;
  if (now > hostTime) hostTime = now;
}

export function currentRequestId(): number {
  return currentRequest;
}

export function requireRequestContext(what: string): void {
  if (currentRequest === 0) {
    throw new Error(
      `Disallowed operation called within global scope: ${what}. Asynchronous I/O (ex: fetch()), ` +
        'setting a timeout, and generating random values are not allowed within global scope. ' +
        'To fix this error, perform this operation within a handler.',
    );
  }
}

/**
 * What a module that keeps state per request (host calls waiting for their answer, timers)
 * drops when a request's work ends, added when it first holds some: a request that used
 * neither runs none of them.
 */
export const requestEndHooks: ((requestId: number) => void)[] = [];

export function onRequestEnd(hook: (requestId: number) => void): void {
  ArrayPrototypePush(requestEndHooks, hook);
}
