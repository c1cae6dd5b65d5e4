// Tenant code that replaces built-ins (polyfills, instrumentation, or an attacker) must change
// nothing in how the platform's APIs behave or how its requests are answered: the sandbox
// runtime runs on built-ins captured before tenant code (src/sandbox/primordials.ts).
//
// The worker below saves what it needs, then replaces every built-in in PATCHED with a function
// that records its name and throws. It then exercises the platform's APIs and answers with what
// it saw; any platform use of a replaced built-in shows up as an error or as a name in `called`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, moduleWorker, type Served } from './support/serve.ts';

/**
 * Built-ins the worker replaces: 'Holder.key' (or 'Holder.prototype.key'), '@@name' for a
 * well-known symbol; 'TypedArray' is %TypedArray%, 'globalThis.X' a global. Extend freely.
 */
const PATCHED = [
  // Array
  'Array.prototype.push', 'Array.prototype.pop', 'Array.prototype.shift', 'Array.prototype.map',
  'Array.prototype.filter', 'Array.prototype.join', 'Array.prototype.slice', 'Array.prototype.splice',
  'Array.prototype.indexOf', 'Array.prototype.includes', 'Array.prototype.forEach', 'Array.prototype.concat',
  'Array.prototype.@@iterator', 'Array.from', 'Array.isArray',
  'Array.prototype.sort', 'Array.prototype.some', 'Array.prototype.find', 'Array.prototype.findIndex', 'Array.prototype.unshift',
  // String
  'String.prototype.toLowerCase', 'String.prototype.toUpperCase', 'String.prototype.split',
  'String.prototype.replace', 'String.prototype.slice', 'String.prototype.indexOf', 'String.prototype.trim',
  'String.prototype.charCodeAt', 'String.prototype.codePointAt', 'String.prototype.normalize',
  'String.prototype.startsWith', 'String.prototype.includes', 'String.fromCharCode',
  'String.prototype.endsWith', 'String.prototype.padStart', 'String.prototype.toWellFormed', 'String.prototype.replaceAll',
  'String.prototype.@@iterator', 'String.fromCodePoint', 'Number.prototype.toString', 'Math.min', 'Math.max', 'Math.floor',
  // Object
  'Object.keys', 'Object.entries', 'Object.defineProperty', 'Object.assign', 'Object.freeze',
  'Object.getOwnPropertyDescriptor', 'Object.setPrototypeOf', 'Object.getPrototypeOf',
  // Map, Set
  'Map.prototype.get', 'Map.prototype.set', 'Map.prototype.has', 'Map.prototype.delete', 'Map.prototype.@@iterator',
  'Map.prototype.forEach', 'Map.prototype.entries', 'Object.hasOwn', 'Object.prototype.toString',
  'Set.prototype.add', 'Set.prototype.has', 'Set.prototype.delete', 'Set.prototype.@@iterator',
  // Promise
  'Promise.prototype.then', 'Promise.prototype.catch', 'Promise.prototype.finally', 'Promise.resolve', 'Promise.all',
  // JSON, Reflect
  'JSON.parse', 'JSON.stringify', 'Reflect.apply', 'Reflect.construct', 'Reflect.ownKeys',
  // Typed arrays
  'TypedArray.prototype.set', 'TypedArray.prototype.subarray', 'TypedArray.prototype.slice',
  'TypedArray.prototype.@@iterator', 'TypedArray.prototype.fill', 'ArrayBuffer.prototype.slice', 'ArrayBuffer.isView',
  // RegExp
  'RegExp.prototype.exec', 'RegExp.prototype.test', 'RegExp.prototype.@@replace', 'RegExp.prototype.@@split',
  // Function
  'Function.prototype.bind',
  // Globals
  'globalThis.Promise', 'globalThis.Map', 'globalThis.Set', 'globalThis.WeakMap', 'globalThis.Uint8Array',
  'globalThis.ArrayBuffer', 'globalThis.TypeError', 'globalThis.RangeError', 'globalThis.String', 'globalThis.Symbol',
  'globalThis.Reflect', 'globalThis.JSON', 'globalThis.Object', 'globalThis.Array', 'globalThis.Number',
];

// Not patched (yet): Object.create, Object.defineProperties, Function.prototype.call and
// .apply. The ReadableStream polyfill (web-streams-polyfill, in the streams sandbox module)
// looks them up at run time, and array and promise methods too, so streams a worker makes
// (new ReadableStream, TransformStream, ...) are not covered by this test.

const WORKER = `
const PATCHED = ${JSON.stringify(PATCHED)};
const called = [];
const { stringify } = JSON;
const SavedPromise = Promise, SavedUint8Array = Uint8Array, SavedMap = Map, SavedSymbol = Symbol;
const holders = { TypedArray: Object.getPrototypeOf(Uint8Array), globalThis };
const resolveHolder = (path) => {
  let holder = holders[path[0]] ?? globalThis[path[0]];
  for (let i = 1; i < path.length; i++) holder = holder[path[i]];
  return holder;
};
const targets = PATCHED.map((name) => {
  const parts = name.split('.');
  const last = parts.pop();
  const key = last.startsWith('@@') ? Symbol[last.slice(2)] : last;
  return { name, holder: resolveHolder(parts), key };
});
const patchAll = () => {
  for (let i = 0; i < targets.length; i++) {
    const { name, holder, key } = targets[i];
    holder[key] = function patched() {
      called[called.length] = name;
      throw new Error('the tenant replaced ' + name);
    };
  }
};
const stillPatched = () => {
  let n = 0;
  for (let i = 0; i < targets.length; i++) if (targets[i].holder[targets[i].key].name === 'patched') n++;
  return n;
};
patchAll();

let requests = 0;
export default {
  async fetch(request, env) {
    requests++;
    const out = {};
    const url = new URL(request.url);
    out.path = url.pathname;
    out.query = url.searchParams.get('q');
    const params = new URLSearchParams('a=1&b=2&a=3');
    params.append('c', 'Ä b');
    out.params = params.toString() + ' ' + params.getAll('a').length;
    const h = new Headers({ 'X-One': '1' });
    h.append('x-two', 'Two');
    h.set('Content-Type', 'text/plain');
    out.headerCount = 0;
    h.forEach(() => { out.headerCount++; });
    out.xTwo = h.get('X-TWO');
    out.firstEntry = h.entries().next().value[0] + ' ' + h.has('x-one') + ' ' + h.getSetCookie().length;
    h.delete('x-one');
    const sorted = new URLSearchParams('b=2&a=1');
    sorted.sort();
    out.sorted = sorted.toString() + ' ' + sorted.has('a') + ' ' + sorted.size;
    url.searchParams.set('z', 'last');
    url.hash = 'frag';
    out.href = url.search + url.hash;
    const redirect = Response.redirect('http://example.com/r', 302);
    out.redirect = redirect.status + ' ' + redirect.headers.get('location');
    const fromJson = Response.json({ a: [1] });
    out.fromJson = (await fromJson.clone().text()) + ' ' + fromJson.headers.get('content-type');
    const ac = new AbortController();
    let aborted = 0;
    ac.signal.addEventListener('abort', () => { aborted++; });
    ac.abort();
    out.aborted = aborted + ' ' + ac.signal.aborted;
    out.reqHeader = request.headers.get('x-test');
    out.method = request.method;
    out.body = request.method === 'POST' ? await request.text() : null;
    const clone = new Request('http://example.com/p', { method: 'put', headers: h, body: 'abc' });
    out.clone = clone.method + ' ' + (await clone.arrayBuffer()).byteLength;
    const json = await new Response('{"n":[1,2]}').json();
    out.json = json.n[1];
    const bytes = new TextEncoder().encode('héllo');
    out.encoded = bytes.length;
    out.decoded = new TextDecoder().decode(bytes);
    out.random = crypto.getRandomValues(new SavedUint8Array(4)).length;
    out.uuid = crypto.randomUUID().length;
    out.digest = (await crypto.subtle.digest('SHA-256', bytes)).byteLength;
    out.timer = await new SavedPromise((resolve) => setTimeout(() => resolve('fired'), 1));
    const upstream = await fetch(env.UP + '/up', { headers: { 'x-from': 'worker' } });
    out.upstream = upstream.status + ' ' + upstream.headers.get('x-upstream') + ' ' + (await upstream.text());
    console.log('req %s %d', 'n', requests, { a: [1, 'x'] }, new SavedMap(), SavedSymbol('s'));
    out.stillPatched = stillPatched();
    out.called = called.length;
    out.calledNames = called.length ? called[0] : '';
    out.requests = requests;
    return new Response(stringify(out), { status: 201, headers: { 'x-answer': 'yes', 'content-type': 'application/json' } });
  },
};
`;

let upstream: Server;
let served: Served;

before(async () => {
  upstream = createServer((req, res) => {
    res.writeHead(200, { 'x-upstream': String(req.headers['x-from']) });
    res.end('from upstream');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  served = await serve(
    { patcher: moduleWorker(WORKER, { vars: { UP: base } }), other: moduleWorker(`export default { fetch() { return new Response('other ok'); } };`) },
    { egress: { allow: ['127.0.0.1'] } },
  );
});

after(async () => {
  await served?.close();
  await new Promise<void>((resolve) => upstream?.close(() => resolve()));
});

test('a worker that replaces built-ins is still served correctly, request after request', { timeout: 60_000 }, async () => {
  for (let i = 1; i <= 3; i++) {
    const init = i === 2 ? { method: 'POST', body: 'posted body', headers: { 'x-test': 'T' } } : { headers: { 'x-test': 'T' } };
    const response = await served.fetch('patcher', `/some/path?q=${i}`, init);
    const text = await response.text();
    assert.equal(response.status, 201, `${text}\n${JSON.stringify(served.logs.slice(-3), null, 1)}`);
    assert.equal(response.headers.get('x-answer'), 'yes');
    const out = JSON.parse(text);
    assert.deepEqual(out, {
      path: '/some/path',
      query: String(i),
      params: 'a=1&b=2&a=3&c=%C3%84+b 2',
      headerCount: 3,
      xTwo: 'Two',
      firstEntry: 'content-type true 0',
      sorted: 'a=1&b=2 true 2',
      href: `?q=${i}&z=last#frag`,
      redirect: '302 http://example.com/r',
      fromJson: '{"a":[1]} application/json',
      aborted: '1 true',
      reqHeader: 'T',
      method: i === 2 ? 'POST' : 'GET',
      body: i === 2 ? 'posted body' : null,
      clone: 'PUT 3',
      json: 2,
      encoded: 6,
      decoded: 'héllo',
      random: 4,
      uuid: 36,
      digest: 32,
      timer: 'fired',
      upstream: '200 worker from upstream',
      stillPatched: PATCHED.length,
      called: 0,
      calledNames: '',
      requests: i,
    });
  }
  const other = await served.fetch('other', '/');
  assert.equal(await other.text(), 'other ok');
  const errors = served.logs.filter((entry) => entry.level === 'error');
  assert.deepEqual(errors, []);
  const lines = served.logs.filter((entry) => entry.worker === 'patcher' && entry.level === 'log').map((entry) => entry.message);
  assert.deepEqual(lines, [1, 2, 3].map((n) => `req n ${n} { a: [ 1, 'x' ] } Map(0) {  } Symbol(s)`));
});

// The module itself, and the Promise cases the runtime's code is written around, in a bare
// isolate (no Node): which uses of a promise call a replaced Promise.prototype.then.
test('primordials: captured methods, safe collections, original built-ins for a module, and which awaits call then', async () => {
  const { build } = await import('esbuild');
  const ivm = (await import('isolated-vm')).default;
  const result = await build({
    entryPoints: [new URL('../src/sandbox/primordials.ts', import.meta.url).pathname],
    bundle: true, write: false, format: 'iife', globalName: 'P', target: 'es2024',
  });
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  try {
    const context = isolate.createContextSync();
    context.evalSync(result.outputFiles[0]!.text);
    const probe = await context.eval(`(async () => {
      const out = {};
      let thenCalls = 0;
      const realThen = Promise.prototype.then;
      const realPush = Array.prototype.push;
      P.ObjectDefineProperty(Promise.prototype, 'then', { __proto__: null, value: function (...a) { thenCalls++; return P.ReflectApply(realThen, this, a); }, writable: true, configurable: true });
      Array.prototype.push = () => { throw new Error('tenant push'); };
      Map.prototype.get = () => 'tenant get';
      delete Array.prototype.includes;

      thenCalls = 0; await Promise.resolve(1); out.awaitNative = thenCalls;
      thenCalls = 0; await (async () => Promise.resolve(1))(); out.returnPromise = thenCalls;
      thenCalls = 0; await (async () => await Promise.resolve(1))(); out.returnAwait = thenCalls;
      thenCalls = 0; await P.PromisePrototypeThen(Promise.resolve(1), (v) => v); out.capturedThen = thenCalls;
      thenCalls = 0; await P.PromisePrototypeThen(Promise.resolve(1), () => Promise.resolve(2)); out.thenReturningPromise = thenCalls;

      const arr = []; P.ArrayPrototypePush(arr, 'x'); out.push = arr.join();
      const map = new P.SafeMap(); map.set('k', 'v'); out.safeMapGet = map.get('k');
      out.inside = P.withOriginalIntrinsics(() => [Array.prototype.push === realPush, typeof Array.prototype.includes, Map.prototype.get.name].join());
      out.after = [Array.prototype.push === realPush, typeof Array.prototype.includes, Map.prototype.get()].join();
      out.safeArray = ''; for (const x of P.safeArray(['a', 'b'])) out.safeArray += x;
      return JSON.stringify(out);
    })()`, { promise: true });
    assert.deepEqual(JSON.parse(probe as string), {
      awaitNative: 0,
      returnPromise: 1, // why the runtime's async functions `return await` a promise
      returnAwait: 0,
      capturedThen: 0,
      thenReturningPromise: 1, // why a then callback never returns a promise in the runtime
      push: 'x',
      safeMapGet: 'v',
      inside: 'true,function,get',
      after: 'false,undefined,tenant get',
      safeArray: 'ab',
    });
  } finally {
    isolate.dispose();
  }
});
