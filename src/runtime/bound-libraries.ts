// Third-party libraries of the sandbox modules, bound to the built-ins captured before tenant
// code runs: web-streams-polyfill (the stream classes), fflate (CompressionStream) and
// urlpattern-polyfill (URLPattern).
//
// All look built-ins up when they run. The streams polyfill calls `Object.create(...)` for every
// stream it makes, `Object.prototype.hasOwnProperty.call` in every brand check,
// `Promise.prototype.then`, `push` on the arrays it owns, `Function.prototype.apply`, ...; fflate
// calls `subarray` and `set` on its buffers and its own methods through `.call`; the URLPattern
// polyfill calls string methods, RegExp `test` and `exec`, `replace` with a RegExp and array
// iterators throughout, and `new URL`. A tenant that replaces any of them (core-js, zone.js,
// instrumentation, an attacker) would change how the platform's streams behave, request and
// response bodies included, or how URLPattern matches, and would see the libraries' internal
// objects pass through its replacement. Evaluating a module with the originals in place
// (withOriginalIntrinsics) covers only what it captures at load.
//
// So each library is bundled bound to the captured originals (src/sandbox/primordials.ts):
//  - esbuild's `define` rewrites every global it names, and the static methods it calls, to the
//    captured ones (`Object.create` -> ObjectCreate, `TypeError` -> the original TypeError, ...).
//    This is the parser's work, not text matching, and covers every site however many there are.
//  - the prototype methods it calls on objects it owns (`push` on its own arrays, `then` on its
//    own promises through `.call`, TypedArray `set` and `subarray`, ArrayBuffer `transfer`) are
//    rewritten into calls of the uncurried originals: by exact replacements, and where the
//    receiver is a name or a property chain (fflate's `name.subarray(`, the URLPattern polyfill's
//    `name.substring(`, ...) by a pattern. Each library's version is pinned
//    (package.json), and each replacement must match exactly as often as expected, or the build
//    fails and names the one to update: a silent miss would leave a hole.
// Nothing changes for tenant callbacks (a source's pull, a transform): they are the tenant's own
// functions and run with whatever built-ins it has set.
//
// The cost: a transform of each library once per process, and a few hundred bytes in the
// bundles (docs/BENCHMARKS.md, api-cost).

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { transform, type Plugin } from 'esbuild';

const NS = '__intrinsics';

/** Global name (or member chain) in a library -> the captured original of that name. */
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
  'Math.max': 'MathMax',
  'Math.log': 'MathLog',
};

/**
 * [what the library's file says, what it becomes, how often it occurs]. In the result, globals
 * are still rewritten by DEFINE afterwards.
 */
type Replacement = readonly [string | RegExp, string, number];

interface BoundLibrary {
  /** The library file's path ends with this. */
  file: RegExp;
  /** The module the rewritten code takes the captured built-ins from. */
  intrinsics: string;
  /** Globals beyond DEFINE, for this library only. */
  define?: Record<string, string>;
  replace: readonly Replacement[];
}

const sandboxFile = (path: string): string => fileURLToPath(new URL(`../../src/${path}`, import.meta.url));

// The stream classes: every global and prototype method web-streams-polyfill calls at run time.
const streamsPolyfill: Replacement[] = [
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
  // An omitted dictionary (a source, a strategy, pipeTo's options, ...) is an empty one without a
  // prototype: `{}` would read what a tenant put on Object.prototype as members.
  [/([(,][a-z])=\{\}(?=[,)])/g, `$1=${NS}.NO_MEMBERS`, 10],
  // queueMicrotask is a global the tenant may replace: its own fallback queues with the captured `then`.
  ['if("function"==typeof queueMicrotask)y=queueMicrotask;else{', '{', 1],
];

// fflate's streaming classes (CompressionStream, DecompressionStream). Its buffers are typed
// arrays and its methods call each other through `.call`: every `name.subarray(`, `name.set(`
// and `name.call(` is one of those, with a plain name or property chain before it.
const receiver = String.raw`(?<![\w$.#])((?:this|[A-Za-z_$][\w$]*)(?:\.#?[A-Za-z_$][\w$]*)*)`;
const fflate: Replacement[] = [
  [new RegExp(`${receiver}\\.subarray\\(`, 'g'), `${NS}.TypedArrayPrototypeSubarray($1, `, 34],
  [new RegExp(`${receiver}\\.set\\(`, 'g'), `${NS}.TypedArrayPrototypeSet($1, `, 25],
  [new RegExp(`${receiver}\\.call\\(`, 'g'), `${NS}.FunctionPrototypeCall($1, `, 28],
  // The arrays it sorts while building Huffman trees.
  ['t.push({', `${NS}.ArrayPrototypePush(t, {`, 2],
  ['var t2 = t.slice();', `var t2 = ${NS}.ArrayPrototypeSlice(t);`, 1],
  ['t.sort(function (a, b)', `${NS}.ArrayPrototypeSort(t, function (a, b)`, 1],
  ['t2.sort(function (a, b)', `${NS}.ArrayPrototypeSort(t2, function (a, b)`, 1],
];

// urlpattern-polyfill (URLPattern). Its receivers are its own strings (pattern text, URL
// components), arrays (tokens, parts, group names) and regular expressions; a receiver is a
// plain name, a property chain (private names included) or, where it reads otherwise, spelled out.
const urlPattern: Replacement[] = [
  // Its bundler's name helper, called as its functions are made (the lexer's each time a pattern
  // is parsed): a descriptor literal would take a `get` or `set` a tenant put on Object.prototype.
  ['Pe(e,"name",{value:t,configurable:!0})', 'Pe(e,"name",{__proto__:null,value:t,configurable:!0})', 1],
  // Its own records (options, a parsed constructor string, the components' patterns, an omitted
  // input) have no prototype: it tests components with `in` and reads them by name, which would
  // find what a tenant put on Object.prototype (a `hash`, a `port`). exec()'s result and its
  // groups are the tenant's to use, plain objects as the spec makes them: those two stay.
  [/=\{\}(?=[;,)])/g, '={__proto__:null}', 14],
  ['let c={__proto__:null};r?c.inputs', 'let c={};r?c.inputs', 1],
  // A URL's components, read back as an init (no baseURL of its own).
  ['let r=new URL(e,t);return{protocol:', 'let r=new URL(e,t);return{__proto__:null,protocol:', 1],
  ['let s={__proto__:null};for(let[i,o]of', 'let s={};for(let[i,o]of', 1],
  // Strings.
  [new RegExp(`${receiver}\\.substring\\(`, 'g'), `${NS}.StringPrototypeSubstring($1,`, 15],
  ['e.substr(s,1)', `${NS}.StringPrototypeSlice(e,s,s+1)`, 1],
  // Only after e.endsWith(t), so the same as substr.
  ['e.substr(0,e.length-t.length)', `${NS}.StringPrototypeSlice(e,0,e.length-t.length)`, 1],
  ['e.startsWith(t)', `${NS}.StringPrototypeStartsWith(e,t)`, 1],
  ['e.endsWith(t)', `${NS}.StringPrototypeEndsWith(e,t)`, 1],
  ['e.toLowerCase()', `${NS}.StringPrototypeToLowerCase(e)`, 2],
  ['n.pathname.lastIndexOf("/")', `${NS}.StringPrototypeLastIndexOf(n.pathname,"/")`, 1],
  ['t.prefixes.indexOf(m)', `${NS}.StringPrototypeIndexOf(t.prefixes,m)`, 1],
  ['r.delimiter.indexOf(s)', `${NS}.StringPrototypeIndexOf(r.delimiter,s)`, 1],
  ['t.prefixes.includes(', `${NS}.StringPrototypeIncludes(t.prefixes,`, 2],
  // Its escaping: replace with a global RegExp calls the RegExp's exec and Symbol.replace.
  [String.raw`e.replace(/([.+*?^${'$'}{}()[\]|/\\])/g,"\\$1")`, NS + String.raw`.backslashEscape(e,".+*?^${'$'}{}()[]|/\\")`, 2],
  [String.raw`e.replace(/([+*?:{}()\\])/g,"\\$1")`, NS + String.raw`.backslashEscape(e,"+*?:{}()\\")`, 1],
  // Arrays.
  [new RegExp(`${receiver}\\.push\\(`, 'g'), `${NS}.ArrayPrototypePush($1,`, 14],
  [/(\[[\d,]+\])\.includes\(/g, `${NS}.ArrayPrototypeIncludes($1,`, 5],
  ['re.includes(t)', `${NS}.ArrayPrototypeIncludes(re,t)`, 1],
  ['this.#s[s].some(', `${NS}.ArrayPrototypeSome(this.#s[s],`, 1],
  // for...of would call the array's iterator and its next; `let [i, o]` would iterate each entry.
  [/for\((let )?([a-z]) ?of ?([\w$]+|\[[^\]]*\])\)/g, `for($1$2 of ${NS}.safeArray($3))`, 6],
  ['for(let[i,o]of this.#t[l].entries())if(', 'for(let i=0,o;i<this.#t[l].length;i++)if(o=this.#t[l][i],', 1],
  // Regular expressions: test looks exec up on the RegExp; the captured exec looks up nothing.
  [String.raw`return(t?/^[\x00-\xFF]*$/:/^[\x00-\x7F]*$/).test(e)`, String.raw`return ${NS}.RegExpPrototypeTest(t?/^[\x00-\xFF]*$/:/^[\x00-\x7F]*$/,e)`, 1],
  ['/^[-+.A-Za-z0-9]*$/.test(e)', `${NS}.RegExpPrototypeTest(/^[-+.A-Za-z0-9]*$/,e)`, 1],
  [String.raw`/[\t\n\r #%/:<>?@[\]^\\|]/g.test(e)`, String.raw`${NS}.RegExpPrototypeTest(/[\t\n\r #%/:<>?@[\]^\\|]/g,e)`, 1],
  [String.raw`/[^0-9a-fA-F[\]:]/g.test(e)`, String.raw`${NS}.RegExpPrototypeTest(/[^0-9a-fA-F[\]:]/g,e)`, 1],
  ['/^[0-9]*$/.test(e)', `${NS}.RegExpPrototypeTest(/^[0-9]*$/,e)`, 1],
  // Receivers that are names, once the literals above are done (`/g.test(` would read as one).
  [new RegExp(`${receiver}\\.test\\(`, 'g'), `${NS}.RegExpPrototypeTest($1,`, 5],
  [/this\.#n\[([cl])\]\.exec\(/g, `${NS}.RegExpPrototypeExec(this.#n[$1],`, 2],
];

const LIBRARIES: readonly BoundLibrary[] = [
  {
    file: /[\\/]web-streams-polyfill[\\/]dist[\\/]ponyfill\.mjs$/,
    intrinsics: sandboxFile('api/streams/sandbox/intrinsics.ts'),
    // The platform's AbortController, for WritableStreamDefaultController.signal.
    define: { AbortController: 'AbortController' },
    replace: streamsPolyfill,
  },
  {
    file: /[\\/]urlpattern-polyfill[\\/]dist[\\/]urlpattern\.js$/,
    intrinsics: sandboxFile('api/url-pattern/sandbox/intrinsics.ts'),
    // The platform's URL with accessors of its own (SafeURL); a Set with its methods as its own.
    define: { URL: 'URL', Set: 'SafeSet', RegExp: 'RegExp', parseInt: 'NumberParseInt', 'Object.assign': 'ObjectAssign' },
    replace: urlPattern,
  },
  {
    file: /[\\/]fflate[\\/]esm[\\/]browser\.js$/,
    intrinsics: sandboxFile('sandbox/primordials.ts'),
    replace: fflate,
  },
];

function occurrences(text: string, search: string | RegExp): number {
  if (typeof search !== 'string') return text.match(search)?.length ?? 0;
  let n = 0;
  for (let i = text.indexOf(search); i !== -1; i = text.indexOf(search, i + search.length)) n++;
  return n;
}

/** The library's source at `path`, bound to the captured built-ins (an ES module importing its intrinsics). */
export async function bindLibrary(library: BoundLibrary, path: string): Promise<string> {
  let source = await readFile(path, 'utf8');
  for (const [from, to, expected] of library.replace) {
    const found = occurrences(source, from);
    if (found !== expected) {
      throw new Error(`${path} no longer reads as src/runtime/bound-libraries.ts expects: ${String(from)} occurs ${found} times, not ${expected}. Update that replacement for the installed version.`);
    }
    source = typeof from === 'string' ? source.split(from).join(to) : source.replace(from, to);
  }
  const define: Record<string, string> = {};
  for (const [name, captured] of Object.entries({ ...DEFINE, ...library.define })) define[name] = `${NS}.${captured}`;
  const result = await transform(source, { format: 'esm', define, target: 'es2024', legalComments: 'none', logLevel: 'silent' });
  return `import * as ${NS} from ${JSON.stringify(library.intrinsics)};\n${result.code}`;
}

/** An esbuild plugin that bundles the libraries above bound to the captured built-ins. */
export const boundLibrariesPlugin: Plugin = {
  name: 'isolet-bound-libraries',
  setup(build) {
    for (const library of LIBRARIES) {
      build.onLoad({ filter: library.file }, async (args) => ({ contents: await bindLibrary(library, args.path), loader: 'js' }));
    }
  },
};
