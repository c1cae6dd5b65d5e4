// What a tenant adds to Object.prototype (a polyfill's `Object.prototype.extend = ...`, a flag set
// by assignment, or names an attacker picks because the platform's own code would read them:
// `get` and `value`, which every descriptor literal inherits, and the members of every dictionary
// the platform fills in when the caller passes none) changes nothing in how the platform's APIs
// behave, on their first use (when their module loads after the tenant's code ran) or later.
//
// Two workers run the same steps: one adds all of the below to Object.prototype at its top level,
// before its first request; the other does not. Every dictionary the steps pass is made without a
// prototype, so any difference between the two is the platform reading a tenant's addition.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, moduleWorker, type Served } from './support/serve.ts';

/** Added with defineProperty (not enumerable), each with the value 'polluted'. */
const DEFINED = [
  // Property descriptors: a literal without `__proto__: null` inherits them.
  'get', 'set', 'value', 'writable', 'enumerable', 'configurable',
  // Streams: sources, sinks, transformers, strategies, pipe and reader options.
  'type', 'highWaterMark', 'size', 'start', 'pull', 'cancel', 'close', 'write', 'abort', 'transform', 'flush',
  'autoAllocateChunkSize', 'preventClose', 'preventAbort', 'preventCancel', 'signal', 'mode', 'min',
  // Request and fetch() init, Blob and File options, TextDecoder options.
  'headers', 'method', 'body', 'redirect', 'cf', 'integrity', 'cache', 'endings', 'lastModified', 'fatal', 'ignoreBOM', 'stream',
  // crypto.subtle algorithm members.
  'hash', 'iv', 'length', 'namedCurve', 'tagLength', 'counter', 'salt', 'info', 'label', 'public',
  // URLPattern's init members and its own option names.
  'baseURL', 'protocol', 'username', 'password', 'hostname', 'port', 'pathname', 'search', 'ignoreCase', 'delimiter', 'prefixes',
  // fflate's options.
  'level', 'mem', 'dictionary', 'filename', 'mtime',
];

const STEPS = String.raw`
const dec = new TextDecoder();
// The members' own keys only: a for...in would take the polluter's enumerable additions along.
const none = (members) => Object.assign(Object.create(null), members);
export const STEPS = {
  url: () => { const u = new URL('/x?d=1#h', 'http://a.b'); u.pathname = '/y'; return u.href + ' ' + u.searchParams.get('d'); },
  searchParams: () => { const p = new URLSearchParams('b=2&a=1'); p.sort(); p.append('c', 'Ä'); return p.toString() + ' ' + p.size; },
  headers: () => { const h = new Headers([['a', '1']]); h.append('b', '2'); let n = 0; h.forEach(() => n++); return n + h.get('a'); },
  response: async () => { const r = new Response('hi'); return r.status + r.statusText + (await r.text()) + r.headers.get('content-type'); },
  responseJson: async () => (await Response.json(none({ x: 1 })).json()).x,
  requestNoInit: async () => { const r = new Request('http://x/'); return r.method + ' ' + r.redirect + ' ' + r.url + ' ' + [...r.headers].length; },
  requestBody: async () => { const r = new Request('http://x/', none({ method: 'POST', body: 'abc' })); return (await r.clone().text()) + (await r.text()); },
  encoding: () => dec.decode(new TextEncoder().encode('é')) + new TextDecoder('utf-8').decode(new Uint8Array([0x61])),
  readable: async () => { const r = new ReadableStream(none({ start(c) { c.enqueue('a'); c.close(); } })).getReader(); return (await r.read()).value + (await r.read()).done; },
  readableNoArgs: () => new ReadableStream().locked,
  transformNoArgs: async () => await new Response(new Response('abc').body.pipeThrough(new TransformStream())).text(),
  writable: async () => { let s = ''; const w = new WritableStream(none({ write(c) { s += c; } })).getWriter(); await w.write('q'); await w.close(); return s; },
  pipeTo: async () => { let n = 0; await new Response('pp').body.pipeTo(new WritableStream(none({ write(c) { n += c.length; } }))); return n; },
  tee: async () => { const [a, b] = new Response('tt').body.tee(); return (await new Response(a).text()) + (await new Response(b).text()); },
  byob: async () => { const r = new Response('by').body.getReader(none({ mode: 'byob' })); return (await r.read(new Uint8Array(8))).value.length; },
  textStreams: async () => await new Response(new Response('zz').body.pipeThrough(new TextDecoderStream()).pipeThrough(new TextEncoderStream())).text(),
  compression: async () => await new Response(new Response('zip').body.pipeThrough(new CompressionStream('gzip')).pipeThrough(new DecompressionStream('gzip'))).text(),
  deflate: async () => await new Response(new Response('raw').body.pipeThrough(new CompressionStream('deflate-raw')).pipeThrough(new DecompressionStream('deflate-raw'))).text(),
  identity: async () => { const t = new IdentityTransformStream(); const w = t.writable.getWriter(); w.write(new Uint8Array([1, 2])); w.close(); return (await new Response(t.readable).arrayBuffer()).byteLength; },
  blob: async () => { const b = new Blob(['ab']); return (await b.text()) + '|' + b.type + '|' + b.size + (await b.slice(1).text()); },
  file: () => { const f = new File(['f'], 'n'); return f.name + '|' + f.type + '|' + typeof f.lastModified; },
  formData: async () => { const f = new FormData(); f.append('a', 'b'); return (await new Response(f).formData()).get('a'); },
  digest: async () => (await crypto.subtle.digest(none({ name: 'SHA-256' }), new Uint8Array(1))).byteLength,
  hmac: async () => { const k = await crypto.subtle.importKey('raw', new Uint8Array(8), none({ name: 'HMAC', hash: 'SHA-256' }), false, ['sign']); return (await crypto.subtle.sign('HMAC', k, new Uint8Array(1))).byteLength; },
  aes: async () => { const k = await crypto.subtle.generateKey(none({ name: 'AES-GCM', length: 128 }), false, ['encrypt']); return (await crypto.subtle.encrypt(none({ name: 'AES-GCM', iv: new Uint8Array(12) }), k, new Uint8Array(4))).byteLength; },
  digestStream: async () => { const s = new crypto.DigestStream('SHA-256'); const w = s.getWriter(); await w.write(new Uint8Array(1)); await w.close(); return (await s.digest).byteLength; },
  random: () => crypto.getRandomValues(new Uint8Array(2)).length + crypto.randomUUID().length,
  timer: () => new Promise((r) => setTimeout(() => r('t'), 1)),
  clone: () => { const c = structuredClone(new Map([[1, none({ a: [2] })]])); return c.get(1).a[0]; },
  base64: () => atob(btoa('x')),
  events: () => { const t = new EventTarget(); let n = 0; t.addEventListener('x', () => n++); t.dispatchEvent(new Event('x')); return n + String(new CustomEvent('y').detail); },
  abort: () => { const a = new AbortController(); a.abort(); return a.signal.aborted + a.signal.reason.name; },
  pattern: () => { const m = new URLPattern('http://x/a/:b').exec('http://x/a/c'); return m.pathname.groups.b + (Object.getPrototypeOf(m.pathname.groups) === Object.prototype); },
  patternInit: () => new URLPattern(none({ pathname: '/a/*' })).test('http://x/a/c'),
  patternNoArgs: () => new URLPattern().test('http://x/anything'),
  console: () => { console.log('x', none({ a: 1 }), [1]); return 1; },
  fetch: async (up) => { const r = await fetch(up); return r.status + (await r.text()); },
};`;

const entry = (pollute: boolean) => `
import { STEPS } from './steps.js';
${pollute ? `
for (const key of ${JSON.stringify(DEFINED)}) Object.defineProperty(Object.prototype, key, { __proto__: null, value: 'polluted', writable: true, configurable: true });
// By assignment: enumerable, as most polyfills add them.
Object.prototype.flag = true;
Object.prototype.extend = function extend() { return this; };` : ''}
export default {
  async fetch(request, env) {
    const out = {};
    for (const name in STEPS) {
      if (!Object.hasOwn(STEPS, name)) continue;
      try { out[name] = String(await STEPS[name](env.UP)); } catch (error) { out[name] = 'threw ' + error; }
    }
    return new Response(JSON.stringify(out));
  },
};`;

let upstream: Server;
let served: Served;

before(async () => {
  upstream = createServer((req, res) => res.end('from upstream'));
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const UP = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/`;
  const worker = (pollute: boolean) => moduleWorker('', {
    modules: [{ name: 'main.js', source: entry(pollute) }, { name: 'steps.js', source: STEPS }],
    vars: { UP },
    limits: { cpuMs: 2_000 },
  });
  served = await serve({ plain: worker(false), polluter: worker(true) }, { egress: { allow: ['127.0.0.1'] } });
});

after(async () => {
  await served?.close();
  await new Promise<void>((resolve) => upstream?.close(() => resolve()));
});

test("what a tenant adds to Object.prototype changes nothing in the platform's APIs, on their first use and later", { timeout: 60_000 }, async () => {
  const answer = async (worker: string): Promise<Record<string, string>> => {
    const response = await served.fetch(worker, '/');
    const text = await response.text();
    assert.equal(response.status, 200, text);
    return JSON.parse(text) as Record<string, string>;
  };
  const expected = await answer('plain');
  // The steps themselves work: nothing threw in the worker that adds nothing.
  assert.deepEqual(Object.entries(expected).filter(([, value]) => value.startsWith('threw')), []);
  assert.equal(expected.pattern, 'ctrue');
  assert.equal(expected.fetch, '200from upstream');
  // The first request loads every lazily loaded module after the additions; the second uses them.
  for (let i = 0; i < 2; i++) assert.deepEqual(await answer('polluter'), expected, `request ${i + 1}`);
});
