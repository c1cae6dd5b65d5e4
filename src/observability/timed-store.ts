// Store latency without touching the stores: every method of the Store that returns a promise
// is timed on its way through a Proxy, named by the method (a fixed set, so the label stays
// bounded). Everything else passes through as it is, so isSharedStore and the engines' own
// methods see the store they know.

import type { Store } from '../store/store.ts';

export type StoreTiming = (operation: string, seconds: number, ok: boolean) => void;

export function timedStore<S extends Store>(store: S, timing: StoreTiming): S {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string' || property === 'constructor') return value;
      let timed = wrapped.get(property);
      if (timed === undefined) {
        timed = function (this: unknown, ...args: unknown[]): unknown {
          const started = performance.now();
          const result = (value as (...a: unknown[]) => unknown).apply(this === receiver ? target : this, args);
          if (!(result instanceof Promise)) return result;
          return result.then(
            (answer) => {
              timing(property, (performance.now() - started) / 1000, true);
              return answer;
            },
            (error: unknown) => {
              timing(property, (performance.now() - started) / 1000, false);
              throw error;
            },
          );
        };
        wrapped.set(property, timed);
      }
      return timed;
    },
  });
}
