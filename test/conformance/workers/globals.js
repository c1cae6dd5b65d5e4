// The global scope: which names exist and what kind of thing each is, what the global scope
// refuses at load time, and code generation from strings.
import { probeRoutes, err } from './_probe.js';

// What top-level code (outside a request) may do, recorded at load.
const atLoad = {};
const record = (name, f) => {
  try {
    atLoad[name] = ['ok', String(f())];
  } catch (e) {
    atLoad[name] = ['throws', e.constructor.name];
  }
};
record('setTimeout', () => typeof setTimeout(() => {}, 1));
record('getRandomValues', () => crypto.getRandomValues(new Uint8Array(1)).length);
record('randomUUID', () => crypto.randomUUID().length);
record('DateNow', () => Date.now() === 0);
record('newResponse', () => new Response('x').status);
record('newRequest', () => new Request('http://a/').method);

export default probeRoutes({
  // Own names of the global object and of its prototypes (workerd puts most of its API on
  // ServiceWorkerGlobalScope.prototype), except Object.prototype's.
  '/names': () => {
    const names = new Set();
    for (let o = globalThis; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
      for (const name of Object.getOwnPropertyNames(o)) names.add(name);
    }
    const checks = {};
    for (const name of [...names].sort()) checks[name] = () => typeof globalThis[name];
    return checks;
  },
  '/shape': () => ({
    selfIsGlobal: () => [self === globalThis, typeof self],
    globalThisTag: () => Object.prototype.toString.call(globalThis),
    globalProtoChain: () => {
      const names = [];
      for (let p = Object.getPrototypeOf(globalThis); p; p = Object.getPrototypeOf(p)) names.push(p.constructor?.name);
      return names;
    },
    navigator: () => (typeof navigator === 'undefined' ? 'no navigator' : [navigator.userAgent, navigator.hardwareConcurrency, navigator.language]),
    eval: () => err(() => eval('1 + 1')),
    newFunction: () => err(() => new Function('return 1')),
    asyncFunctionCtor: () => err(() => new (Object.getPrototypeOf(async () => {}).constructor)('return 1')),
    setTimeoutString: () => err(() => setTimeout('1', 1)),
    wasmCompile: () => typeof WebAssembly === 'undefined' ? 'no WebAssembly' : err(() => new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]))),
    sharedArrayBuffer: () => typeof SharedArrayBuffer,
    atomicsWait: () => typeof Atomics === 'undefined' ? 'no Atomics' : typeof Atomics.wait,
    process: () => typeof process,
    require: () => typeof require,
    global: () => typeof global,
    importMeta: () => typeof import.meta,
    atLoad: () => atLoad,
  }),
});
