// web-streams-polyfill, bound to the built-ins captured before tenant code runs.
//
// The polyfill looks built-ins up when it runs: `Object.create(...)` for every stream it makes,
// `Object.prototype.hasOwnProperty.call` in every brand check, `Promise.prototype.then`, `push`
// on the arrays it owns, `Function.prototype.apply`, ... A tenant that replaces any of them
// (core-js, zone.js, instrumentation, an attacker) would change how the platform's streams
// behave, request and response bodies included, and would see the polyfill's internal objects
// pass through its replacement. Evaluating the module with the originals in place
// (withOriginalIntrinsics) covers only what it captures at load.
//
// So the polyfill is bundled bound to the captured originals (src/sandbox/primordials.ts, through
// src/api/streams/sandbox/intrinsics.ts), in two steps:
//  - esbuild's `define` rewrites every global it names, and the static methods it calls, to the
//    captured ones (`Object.create` -> ObjectCreate, `TypeError` -> the original TypeError, ...).
//    This is the parser's work, not text matching, and covers every site however many there are.
//  - the few prototype methods it calls on objects it owns (`push` on its own arrays, `then` on
//    its own promises through `.call`, TypedArray `set`, ArrayBuffer `transfer`) are rewritten
//    into calls of the uncurried originals by exact replacements below. The polyfill's version is
//    pinned (package.json) and its dist file is minified, so each replacement must match exactly
//    as often as expected, or the build fails and names the one to update: a silent miss would
//    leave a hole.
// Nothing changes for tenant callbacks (a source's pull, a transform): they are the tenant's own
// functions and run with whatever built-ins it has set.
//
// The cost: a transform of the 65 KB file once per process, and almost no bytes in the bundle
// (docs/BENCHMARKS.md, streams-size).

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { transform, type Plugin } from 'esbuild';

const INTRINSICS = fileURLToPath(new URL('../../src/api/streams/sandbox/intrinsics.ts', import.meta.url));
const NS = '__intrinsics';

/** Global name (or member chain) in the polyfill -> the captured original in intrinsics.ts. */
const DEFINE: Record<string, string> = {
  Object: 'Object',
  'Object.create': 'ObjectCreate',
  'Object.defineProperty': 'ObjectDefineProperty',
  'Object.defineProperties': 'ObjectDefineProperties',
  // hasOwnProperty.call(o, k) and Object.hasOwn(o, k) are the same operation.
  'Object.prototype.hasOwnProperty.call': 'ObjectHasOwn',
  'Function.prototype.apply.call': 'ReflectApply',
  Promise: 'Promise',
  'Promise.resolve': 'PromiseResolve',
  'Promise.reject': 'PromiseReject',
  'Promise.prototype.then': 'PromisePrototypeThen',
  Error: 'Error',
  TypeError: 'TypeError',
  RangeError: 'RangeError',
  Number: 'Number',
  'Number.isFinite': 'NumberIsFinite',
  'Number.isNaN': 'NumberIsNaN',
  isFinite: 'NumberIsFinite',
  Boolean: 'Boolean',
  String: 'String',
  Symbol: 'Symbol',
  'Symbol.iterator': 'SymbolIterator',
  'Symbol.asyncIterator': 'SymbolAsyncIterator',
  'Symbol.toStringTag': 'SymbolToStringTag',
  ArrayBuffer: 'ArrayBuffer',
  'ArrayBuffer.isView': 'ArrayBufferIsView',
  Uint8Array: 'Uint8Array',
  DataView: 'DataView',
  'Math.min': 'MathMin',
  'Math.floor': 'MathFloor',
  'Math.ceil': 'MathCeil',
  'Math.trunc': 'MathTrunc',
  AbortController: 'AbortController',
};

/**
 * [what the polyfill's dist file says, what it becomes, how often it occurs]. In the result,
 * globals are still rewritten by DEFINE afterwards.
 */
const REPLACE: readonly (readonly [string, string, number])[] = [
  // Its PerformPromiseThen: `then` is the captured original, `.call` would be looked up.
  ['function f(e,t,r){return a.call(e,t,r)}', 'function f(e,t,r){return a(e,t,r)}', 1],
  // "A promise resolved with x" is PromiseResolve(%Promise%, x): a promise of this realm comes
  // back as it is, where `new Promise(r => r(x))` would call its (replaceable) `then`.
  ['function c(e){return u(t=>t(e))}', 'function c(e){return Promise.resolve(e)}', 1],
  // Reactions that return a promise (the async iterator's queue of next/return calls, pipeTo's
  // loop and its wait for pending writes, a TransformStream's write under backpressure): `then`
  // would resolve with that promise by calling its replaceable `then`.
  ['m(this._ongoingPromise,', `${NS}.chain(this._ongoingPromise,`, 2],
  ['return f(s._readyPromise,g)', `return ${NS}.chain(s._readyPromise,g)`, 1],
  ['return f(this._currentWrite,', `return ${NS}.chain(this._currentWrite,`, 1],
  ['return m(e._backpressureChangePromise,', `return ${NS}.chain(e._backpressureChangePromise,`, 1],
  // The arrays it owns: tee's pair, its queue's segments, pull-into descriptors, pipeTo's actions.
  ['function le(e){return e.slice()}', `function le(e){return ${NS}.ArrayPrototypeSlice(e)}`, 1],
  ['t._elements.push(e)', `${NS}.ArrayPrototypePush(t._elements,e)`, 1],
  ['(He(e),t.push(r))', `(He(e),${NS}.ArrayPrototypePush(t,r))`, 1],
  ['t.push(He(e))', `${NS}.ArrayPrototypePush(t,He(e))`, 1],
  ['a.push(()=>', `${NS}.ArrayPrototypePush(a,()=>`, 2],
  ['Promise.all(a.map(e=>e()))', `${NS}.promiseAllVoid(${NS}.ArrayPrototypeMap(a,e=>e()))`, 1],
  // Bytes: copying into a buffer, transferring and slicing buffers.
  ['new Uint8Array(e).set(new Uint8Array(r,o,n),t)', `${NS}.TypedArrayPrototypeSet(new Uint8Array(e),new Uint8Array(r,o,n),t)`, 1],
  [
    'let ce=e=>(ce="function"==typeof e.transfer?e=>e.transfer():"function"==typeof structuredClone?e=>structuredClone(e,{transfer:[e]}):e=>e,ce(e)),de=e=>(de="boolean"==typeof e.detached?e=>e.detached:e=>0===e.byteLength,de(e));',
    `let ce=e=>${NS}.ArrayBufferPrototypeTransfer(e),de=e=>${NS}.ArrayBufferPrototypeGetDetached(e);`,
    1,
  ],
  ['if(e.slice)return e.slice(t,r);', `return ${NS}.ArrayBufferPrototypeSlice(e,t,r);`, 1],
  // queueMicrotask is a global the tenant may replace: its own fallback queues with the captured `then`.
  ['if("function"==typeof queueMicrotask)y=queueMicrotask;else{', '{', 1],
];

function occurrences(text: string, search: string): number {
  let n = 0;
  for (let i = text.indexOf(search); i !== -1; i = text.indexOf(search, i + search.length)) n++;
  return n;
}

/** The polyfill's source, bound to the captured built-ins (an ES module importing intrinsics.ts). */
export async function boundStreamsPolyfill(path: string): Promise<string> {
  let source = await readFile(path, 'utf8');
  for (const [from, to, expected] of REPLACE) {
    const found = occurrences(source, from);
    if (found !== expected) {
      throw new Error(`web-streams-polyfill (${path}) no longer reads as src/runtime/streams-polyfill.ts expects: ${JSON.stringify(from)} occurs ${found} times, not ${expected}. Update that replacement for the installed version.`);
    }
    source = source.split(from).join(to);
  }
  const define: Record<string, string> = {};
  for (const [name, captured] of Object.entries(DEFINE)) define[name] = `${NS}.${captured}`;
  const result = await transform(source, { format: 'esm', define, target: 'es2024', legalComments: 'none', logLevel: 'silent' });
  return `import * as ${NS} from ${JSON.stringify(INTRINSICS)};\n${result.code}`;
}

/** An esbuild plugin that bundles web-streams-polyfill bound to the captured built-ins. */
export const streamsPolyfillPlugin: Plugin = {
  name: 'isolet-streams-polyfill',
  setup(build) {
    build.onLoad({ filter: /[\\/]web-streams-polyfill[\\/]dist[\\/]ponyfill\.mjs$/ }, async (args) => ({
      contents: await boundStreamsPolyfill(args.path),
      loader: 'js',
    }));
  },
};
