// Which request the isolate is working for right now. The runtime sets it at every entry from
// the host (a request arriving, a timer firing, a body chunk arriving); operations that must
// belong to a request (timers, random values, I/O) read it. Outside any request, i.e. while
// the worker's top-level code runs, such operations are refused as in Workers.

import {
  Error,
} from './primordials.ts';
let current = 0;

export function enterRequest(requestId: number): void {
  current = requestId;
}

export function currentRequestId(): number {
  return current;
}

export function requireRequestContext(what: string): void {
  if (current === 0) {
    throw new Error(
      `Disallowed operation called within global scope: ${what}. Asynchronous I/O (ex: fetch()), ` +
        'setting a timeout, and generating random values are not allowed within global scope. ' +
        'To fix this error, perform this operation within a handler.',
    );
  }
}
