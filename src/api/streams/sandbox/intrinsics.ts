// What the bundled web-streams-polyfill runs on in place of the realm's globals. When the streams
// module is bundled, every global the polyfill names (Object.create, Promise, TypeError, ...)
// is rewritten to a property of this module (src/runtime/bound-libraries.ts), so the stream
// classes a tenant uses keep working however it has replaced those built-ins.

import { Promise, PromisePrototypeThen, PromiseResolve } from '../../../sandbox/primordials.ts';

export * from '../../../sandbox/primordials.ts';

/**
 * The platform's AbortController, for WritableStreamDefaultController.signal: the polyfill
 * would look the global up each time, which is the tenant's to replace. Set by create().
 */
export let AbortController: (new () => { signal: unknown; abort(reason?: unknown): void }) | undefined;

export function setAbortController(C: typeof AbortController): void {
  AbortController = C;
}

/**
 * Fulfils once every promise has, rejects with the first rejection (Streams' "waiting for all",
 * whose result pipeTo ignores). Promise.all would call the replaceable Promise.resolve, the
 * array's iterator and each promise's `then`.
 */
export function promiseAllVoid(promises: readonly Promise<unknown>[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let left = promises.length;
    if (left === 0) return resolve();
    const settledOne = (): void => {
      if (--left === 0) resolve();
    };
    for (let i = 0; i < promises.length; i++) PromisePrototypeThen(promises[i]!, settledOne, reject);
  });
}

/**
 * `promise.then(onFulfilled, onRejected)` for callbacks that return a promise: then would resolve
 * its promise with that promise, which calls the (replaceable) `then` of it. This follows it
 * with the captured `then` instead.
 */
export function chain<T, R>(
  promise: Promise<T>,
  onFulfilled: (value: T) => R | Promise<R>,
  onRejected?: (reason: unknown) => R | Promise<R>,
): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const run = <A>(step: (arg: A) => R | Promise<R>, arg: A): void => {
      let result: R | Promise<R>;
      try {
        result = step(arg);
      } catch (error) {
        return reject(error);
      }
      // PromiseResolve gives a promise of this realm back as it is.
      PromisePrototypeThen(PromiseResolve(result), resolve, reject);
    };
    PromisePrototypeThen(promise, (value) => run(onFulfilled, value), onRejected === undefined ? reject : (reason) => run(onRejected, reason));
  });
}
