// Timers ordering, queueMicrotask, the frozen clock, console.
import { probeRoutes, err } from './_probe.js';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export default probeRoutes({
  '/order': () => ({
    macroVsMicro: async () => {
      const out = [];
      setTimeout(() => out.push('timeout0'), 0);
      queueMicrotask(() => out.push('microtask'));
      Promise.resolve().then(() => out.push('promise'));
      out.push('sync');
      await sleep(20);
      return out;
    },
    delays: async () => {
      const out = [];
      setTimeout(() => out.push(10), 10);
      setTimeout(() => out.push(1), 1);
      setTimeout(() => out.push(0), 0);
      setTimeout(() => out.push('0b'), 0);
      setTimeout(() => out.push(5), 5);
      await sleep(40);
      return out;
    },
    nestedMicrotasks: async () => {
      const out = [];
      setTimeout(() => {
        out.push('t1');
        queueMicrotask(() => out.push('t1-micro'));
      }, 0);
      setTimeout(() => out.push('t2'), 0);
      await sleep(20);
      return out;
    },
    interval: async () => {
      const out = [];
      await new Promise((resolve) => {
        let n = 0;
        const id = setInterval(() => {
          out.push(++n);
          if (n === 3) {
            clearInterval(id);
            resolve();
          }
        }, 2);
      });
      await sleep(10);
      return out;
    },
    args: () => new Promise((resolve) => setTimeout((a, b) => resolve([a, b]), 0, 'x', 'y')),
    clearBeforeFire: async () => {
      let fired = false;
      const id = setTimeout(() => (fired = true), 1);
      clearTimeout(id);
      await sleep(10);
      return fired;
    },
    clearInterchangeable: async () => {
      let fired = 0;
      const a = setTimeout(() => fired++, 1);
      clearInterval(a);
      const b = setInterval(() => fired++, 1);
      clearTimeout(b);
      await sleep(10);
      return fired;
    },
    clearBogus: () => [clearTimeout(), clearTimeout(null), clearTimeout('x'), clearTimeout(999999), clearInterval({})].map(String),
    idType: () => {
      const id = setTimeout(() => {}, 1);
      clearTimeout(id);
      return [typeof id, typeof id === 'object' ? Object.prototype.toString.call(id) : 'primitive'];
    },
    idsDistinct: () => {
      const a = setTimeout(() => {}, 1);
      const b = setTimeout(() => {}, 1);
      clearTimeout(a);
      clearTimeout(b);
      return a !== b;
    },
    negativeDelay: async () => {
      const out = [];
      setTimeout(() => out.push('neg'), -5);
      setTimeout(() => out.push('nan'), NaN);
      setTimeout(() => out.push('str'), '0');
      await sleep(10);
      return out;
    },
    notCallable: () => err(() => setTimeout('code', 0)),
    queueMicrotaskBad: () => err(() => queueMicrotask(5)),
    queueMicrotaskThis: () => new Promise((resolve) => queueMicrotask(function () {
      resolve(this === undefined ? 'undefined' : typeof this);
    })),
    scheduler: async () => {
      if (typeof scheduler === 'undefined') return 'no scheduler';
      const before = Date.now();
      await scheduler.wait(5);
      return [typeof scheduler.wait, Date.now() - before >= 5];
    },
    setImmediate: () => typeof setImmediate,
  }),
  '/clock': () => ({
    frozenDuringSync: () => {
      const a = Date.now();
      let x = 0;
      for (let i = 0; i < 2e6; i++) x += i;
      return [Date.now() === a, x > 0];
    },
    performanceFrozen: () => {
      if (typeof performance === 'undefined') return 'no performance';
      const a = performance.now();
      let x = 0;
      for (let i = 0; i < 2e6; i++) x += i;
      return [performance.now() === a, typeof performance.timeOrigin];
    },
    advancesAfterTimer: async () => {
      const a = Date.now();
      await sleep(20);
      const elapsed = Date.now() - a;
      return elapsed >= 20 && elapsed < 2000;
    },
    newDateMatchesNow: () => new Date().getTime() === Date.now(),
    integerMs: () => Number.isInteger(Date.now()),
    performanceNowShape: () => (typeof performance === 'undefined' ? 'no performance' : [Number.isFinite(performance.now()), performance.now() >= 0]),
  }),
  '/console': () => ({
    methods: () => ['log', 'info', 'warn', 'error', 'debug', 'trace', 'table', 'dir', 'assert', 'time', 'timeEnd', 'count', 'group', 'groupEnd']
      .map((m) => [m, typeof console[m]]),
    logValues: () => {
      const cyclic = {};
      cyclic.self = cyclic;
      console.log('str', 1, 1n, null, undefined, Symbol('s'), () => 1, cyclic, new Map([[1, 2]]), new Error('logged'), new Uint8Array(3));
      console.log('%s %d %i %f %o %O %c %%', 'a', 1.5, 2.5, 3.5, { a: 1 }, { b: 2 }, 'color: red');
      console.info(new Headers({ a: '1' }), new URL('http://a/'), new Request('http://a/'), new Response('x'));
      console.warn();
      console.error(Object.create(null));
      console.debug([1, [2, [3, [4, [5]]]]]);
      return 'no crash';
    },
    assertFalse: () => err(() => console.assert(false, 'assertion message')),
    logThrowingToString: () => err(() => console.log({ toString() { throw new Error('x'); } })),
    logProxy: () => err(() => console.log(new Proxy({}, { get() { throw new Error('trap'); } }))),
  }),
});
