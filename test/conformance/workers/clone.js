// structuredClone: what it copies, how, and what it refuses (DataCloneError).
import { probeRoutes, err } from './_probe.js';

export default probeRoutes({
  '/values': () => ({
    primitives: () => [1, -0, NaN, 'x', true, null, undefined, 10n].map((v) => structuredClone(v)),
    object: () => structuredClone({ a: 1, b: [1, { c: 'd' }], e: undefined }),
    cycles: () => {
      const o = { name: 'o' };
      o.self = o;
      o.list = [o];
      const c = structuredClone(o);
      return [c !== o, c.self === c, c.list[0] === c];
    },
    shared: () => {
      const s = { x: 1 };
      const c = structuredClone({ a: s, b: s });
      return c.a === c.b;
    },
    map: () => structuredClone(new Map([[1, { a: 2 }], ['k', [3]]])),
    set: () => structuredClone(new Set([1, 'a', 1])),
    date: () => structuredClone(new Date(0)),
    regexp: () => {
      const r = structuredClone(/a+b/gi);
      return [r.source, r.flags, r.lastIndex];
    },
    boxed: () => [structuredClone(new Number(3)), structuredClone(new String('s')), structuredClone(new Boolean(false))].map((v) => [typeof v, v.valueOf()]),
    errors: () => [new Error('e'), new TypeError('t'), new RangeError('r'), new SyntaxError('s'), new EvalError('v'), new URIError('u')].map((e) => {
      const c = structuredClone(e);
      return [c.constructor.name, c.name, c.message, c instanceof Error];
    }),
    errorCause: () => {
      const c = structuredClone(new Error('e', { cause: 'why' }));
      return c.cause;
    },
    customErrorName: () => {
      const e = new Error('m');
      e.name = 'CustomError';
      const c = structuredClone(e);
      return [c.name, c.constructor.name];
    },
    arrayBuffer: () => {
      const b = new Uint8Array([1, 2, 3]).buffer;
      const c = structuredClone(b);
      return [c, c !== b];
    },
    typedArrays: () => [new Int16Array([1, -2]), new Float64Array([1.5]), new BigInt64Array([5n]), new DataView(new Uint8Array([9, 8]).buffer, 1)].map((v) => {
      const c = structuredClone(v);
      return [c.constructor.name, c.byteLength, c.byteOffset];
    }),
    sharedBuffer: () => {
      const buf = new ArrayBuffer(4);
      const c = structuredClone({ a: new Uint8Array(buf), b: new Uint16Array(buf) });
      return c.a.buffer === c.b.buffer;
    },
    sparseArray: () => {
      const a = [1, , 3];
      a.extra = 'x';
      const c = structuredClone(a);
      return [c.length, 1 in c, c.extra];
    },
    prototypeDropped: () => {
      class A {
        constructor() {
          this.x = 1;
        }
        get y() {
          return 2;
        }
      }
      const c = structuredClone(new A());
      return [c.constructor === Object, c.x, c.y];
    },
    gettersRun: () => {
      const c = structuredClone({ get g() { return 'got'; } });
      return Object.getOwnPropertyDescriptor(c, 'g');
    },
    symbolKeysDropped: () => Object.getOwnPropertySymbols(structuredClone({ [Symbol('s')]: 1 })).length,
    nonEnumerableDropped: () => Object.keys(structuredClone(Object.defineProperty({}, 'h', { value: 1, enumerable: false }))),
  }),
  '/refused': () => ({
    function: () => err(() => structuredClone(() => 1)),
    functionInObject: () => err(() => structuredClone({ f() {} })),
    symbol: () => err(() => structuredClone(Symbol('s'))),
    weakMap: () => err(() => structuredClone(new WeakMap())),
    promise: () => err(() => structuredClone(Promise.resolve())),
    headers: () => err(() => structuredClone(new Headers())),
    request: () => err(() => structuredClone(new Request('http://a/'))),
    response: () => err(() => structuredClone(new Response())),
    url: () => err(() => structuredClone(new URL('http://a/'))),
    abortController: () => err(() => structuredClone(new AbortController())),
    eventTarget: () => err(() => structuredClone(new EventTarget())),
    noArgs: () => err(() => structuredClone()),
    transfer: () => {
      const buf = new Uint8Array([1, 2]).buffer;
      try {
        const c = structuredClone(buf, { transfer: [buf] });
        return [buf.byteLength, c.byteLength];
      } catch (e) {
        return `throws ${e.constructor.name}:${e.name}`;
      }
    },
    transferNotInValue: () => {
      const buf = new ArrayBuffer(2);
      try {
        structuredClone(1, { transfer: [buf] });
        return buf.byteLength;
      } catch (e) {
        return `throws ${e.constructor.name}:${e.name}`;
      }
    },
  }),
});
