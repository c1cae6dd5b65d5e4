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
  'Function.prototype.bind', 'Function.prototype.call', 'Function.prototype.apply',
  // More that the stream, Blob, FormData and event implementations call
  'Object.create', 'Object.defineProperties', 'Object.prototype.hasOwnProperty', 'Object.getOwnPropertyNames',
  'WeakMap.prototype.get', 'WeakMap.prototype.set', 'WeakMap.prototype.has', 'WeakMap.prototype.delete',
  'WeakSet.prototype.add', 'WeakSet.prototype.has', 'Array.prototype.reduce', 'Array.prototype.every',
  'Array.prototype.fill', 'Array.prototype.keys', 'Array.prototype.entries', 'Array.prototype.values',
  'Promise.reject', 'Promise.race', 'Promise.allSettled', 'Promise.any',
  'Math.ceil', 'Math.trunc', 'Number.isFinite', 'Number.isNaN', 'Number.isInteger', 'Number.isSafeInteger',
  'ArrayBuffer.prototype.transfer', 'Map.prototype.values', 'Map.prototype.keys', 'Set.prototype.values',
  'Set.prototype.forEach', 'String.prototype.substring', 'String.prototype.lastIndexOf', 'String.prototype.charAt',
  'String.prototype.repeat', 'String.prototype.match', 'RegExp.prototype.@@match',
  // Globals (Symbol.asyncIterator and the other well-known symbols cannot be replaced: they are
  // read-only properties of Symbol, and `globalThis.Symbol` itself is replaced here)
  'globalThis.Promise', 'globalThis.Map', 'globalThis.Set', 'globalThis.WeakMap', 'globalThis.Uint8Array',
  'globalThis.ArrayBuffer', 'globalThis.TypeError', 'globalThis.RangeError', 'globalThis.String', 'globalThis.Symbol',
  'globalThis.Reflect', 'globalThis.JSON', 'globalThis.Object', 'globalThis.Array', 'globalThis.Number',
  'globalThis.WeakSet', 'globalThis.DataView', 'globalThis.Boolean', 'globalThis.Error', 'globalThis.Math',
  'globalThis.queueMicrotask', 'globalThis.AbortController',
  // More that URL and URLPattern call
  'globalThis.URL', 'globalThis.RegExp', 'globalThis.parseInt', 'Number.parseInt', 'String.prototype.substr',
  'String.prototype.search', 'Array.prototype.lastIndexOf',
  // More that crypto, console, Blob and bodies call
  'globalThis.FinalizationRegistry', 'FinalizationRegistry.prototype.register', 'globalThis.Int8Array',
  'globalThis.Uint16Array', 'globalThis.Int32Array', 'globalThis.EvalError', 'globalThis.isNaN', 'Date.now',
  'Date.prototype.getTime', 'Date.prototype.toISOString', 'String.prototype.isWellFormed',
];

const WORKER = `
const PATCHED = ${JSON.stringify(PATCHED)};
const called = [];
const { stringify } = JSON;
const savedNow = Date.now.bind(Date);
const SavedPromise = Promise, SavedUint8Array = Uint8Array, SavedMap = Map, SavedSymbol = Symbol, SavedDate = Date, SavedError = Error, SavedAbortController = AbortController, SavedURL = URL;
const enc = new TextEncoder(), dec = new TextDecoder();
const filledMap = new Map([['k', 'v']]);
// The worker's own helpers use nothing it replaces below.
const streamOf = (chunks) => {
  let i = 0;
  return new ReadableStream({ pull(c) { if (i < chunks.length) c.enqueue(chunks[i++]); else c.close(); } });
};
const readAll = async (stream) => {
  let text = '';
  for await (const chunk of stream) text += typeof chunk === 'string' ? chunk : dec.decode(chunk);
  return text;
};
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
      throw new SavedError('the tenant replaced ' + name);
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
    const url = new SavedURL(request.url);
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
    const ac = new SavedAbortController();
    let aborted = 0;
    ac.signal.addEventListener('abort', () => { aborted++; });
    ac.abort();
    out.aborted = aborted + ' ' + ac.signal.aborted;
    out.reqHeader = request.headers.get('x-test');
    out.method = request.method;
    if (request.method === 'POST') {
      const reader = request.body.getReader();
      out.body = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        out.body += dec.decode(value, { stream: true });
      }
    } else out.body = null;
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
    const key = await crypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    out.hmac = key.type + ' ' + key.extractable + ' ' + (await crypto.subtle.sign('HMAC', key, new SavedUint8Array(new SavedUint8Array(8).buffer, 2, 3))).byteLength;
    out.timer = await new SavedPromise((resolve) => setTimeout(() => resolve('fired'), 1));
    const upstream = await fetch(env.UP + '/up', { headers: { 'x-from': 'worker' } });
    out.upstream = upstream.status + ' ' + upstream.headers.get('x-upstream') + ' ' + (await upstream.text());
    console.log('req %s %d', 'n', requests, { a: [1, 'x'] }, new SavedMap(), SavedSymbol('s'), new SavedDate(0), /re/g);
    await streams(out);
    await blobsAndForms(out);
    others(out);
    urlPatterns(out);
    out.stillPatched = stillPatched();
    out.called = called.length;
    out.calledNames = called.length ? called[0] : '';
    out.requests = requests;
    // The response body is a stream the worker makes: the host pulls it through the stream classes.
    return new Response(streamOf([enc.encode(stringify(out))]), { status: 201, headers: { 'x-answer': 'yes', 'content-type': 'application/json' } });
  },
};

async function streams(out) {
  let pulls = 0;
  const counted = new ReadableStream({
    start(c) { c.enqueue('s'); },
    async pull(c) {
      await null;
      pulls++;
      if (pulls < 3) c.enqueue('p' + pulls);
      else c.close();
    },
  });
  const reader = counted.getReader();
  out.readable = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    out.readable += value;
  }
  let cancelled = '';
  const endless = new ReadableStream({ pull(c) { c.enqueue('x'); }, cancel(reason) { cancelled = 'cancelled: ' + reason; } }, { highWaterMark: 0 });
  const endlessReader = endless.getReader();
  out.cancel = (await endlessReader.read()).value;
  await endlessReader.cancel('enough');
  out.cancel += ' ' + cancelled;
  const exclaim = new TransformStream({ async transform(chunk, c) { c.enqueue(chunk + '!'); }, flush(c) { c.enqueue('.'); } });
  out.pipeThrough = await readAll(streamOf(['a', 'b']).pipeThrough(exclaim));
  let written = '';
  await streamOf(['x', 'y']).pipeTo(new WritableStream({ async write(chunk) { written += chunk; }, close() { written += ' closed'; } }));
  out.pipeTo = written;
  const teed = streamOf(['t1', 't2']).tee();
  out.tee = (await readAll(teed[0])) + '|' + (await readAll(teed[1]));
  const sink = [];
  const writer = new WritableStream({ write(chunk) { sink[sink.length] = chunk; } }, { highWaterMark: 2 }).getWriter();
  await writer.ready;
  await writer.write('w1');
  await writer.write('w2');
  await writer.close();
  out.writer = sink.length + ' ' + sink[0] + sink[1] + ' ' + (await writer.closed);
  const aborter = new SavedAbortController();
  const aborted = streamOf(['never']).pipeTo(new WritableStream({ start(c) { out.writableSignal = c.signal.aborted; } }), { signal: aborter.signal });
  aborter.abort('stopped');
  try {
    await aborted;
    out.pipeAbort = 'resolved';
  } catch (e) {
    out.pipeAbort = 'rejected: ' + e;
  }
  out.textStreams = await readAll(streamOf(['h\u00e9', 'l\ud83d', '\ude00o']).pipeThrough(new TextEncoderStream()).pipeThrough(new TextDecoderStream()));
  const gzipped = streamOf([enc.encode('zip me '), enc.encode('twice')]).pipeThrough(new CompressionStream('gzip'));
  out.compression = await new Response(gzipped.pipeThrough(new DecompressionStream('gzip'))).text();
  out.fromStream = await new Response(streamOf([enc.encode('s1'), enc.encode('s2')])).text();
  const bytes = new ReadableStream({ type: 'bytes', pull(c) { c.enqueue(enc.encode('by')); c.close(); } });
  const byob = bytes.getReader({ mode: 'byob' });
  const first = await byob.read(new SavedUint8Array(8));
  out.byob = dec.decode(first.value) + ' ' + (await byob.read(new SavedUint8Array(8))).done;
  // Not an array: from() iterates its argument with the argument's own (here replaced) iterator.
  out.from = await readAll(ReadableStream.from((async function* () { yield 'f1'; yield 'f2'; })()));
}

async function blobsAndForms(out) {
  const blob = new Blob(['ab', enc.encode('cd')], { type: 'Text/Plain' });
  out.blob = blob.size + ' ' + blob.type + ' ' + (await blob.text()) + ' ' + (await blob.slice(1, 3).text()) + ' '
    + (await new Response(blob.stream()).text()) + ' ' + (await blob.arrayBuffer()).byteLength;
  const file = new File(['f'], 'f.txt', { type: 'text/plain', lastModified: 5 });
  out.file = file.name + ' ' + file.lastModified + ' ' + (file instanceof Blob) + ' ' + (new File([], 'now').lastModified === savedNow());
  const form = new FormData();
  form.append('a', '1');
  form.append('a', '2');
  form.append('f', new Blob(['file body']), 'x.txt');
  form.set('b', 'B');
  form.delete('missing');
  out.form = form.getAll('a').length + ' ' + form.get('b') + ' ' + form.get('f').name + ' ' + form.has('a');
  let entries = '';
  form.forEach((value, name) => { entries += name; });
  out.form += ' ' + entries;
  const multipart = await new Request('http://example.com/', { method: 'POST', body: form }).formData();
  out.multipart = multipart.getAll('a').length + ' ' + multipart.get('b') + ' ' + (await multipart.get('f').text()) + ' ' + multipart.get('f').name;
  const urlencoded = await new Request('http://example.com/', { method: 'POST', body: new URLSearchParams('k=v&k=w') }).formData();
  out.urlencoded = urlencoded.getAll('k').length + ' ' + urlencoded.get('k');
}

function urlPatterns(out) {
  // Made in every request: the first is the first use of URLPattern in the isolate.
  const route = new URLPattern({ hostname: '{:sub.}?example.com', pathname: '/books/:id([0-9]+)/:rest*' });
  const match = route.exec('https://shop.example.com/books/42/a/b?x#y');
  const files = new URLPattern('/files/*.:ext', 'https://h.test');
  out.urlPattern = route.test('https://example.com/books/7') + ' ' + route.test({ hostname: 'example.com', pathname: '/books/x' }) + ' '
    + match.hostname.groups.sub + ' ' + match.pathname.groups.id + ' ' + match.pathname.groups.rest + ' ' + match.search.input + ' '
    + files.exec('https://h.test/files/a/b.TXT').pathname.groups.ext + ' ' + files.pathname + ' ' + route.hasRegExpGroups + ' '
    + new URLPattern({ pathname: '/A' }, { ignoreCase: true }).test({ pathname: '/a' }) + ' ' + URLPattern.compareComponent('pathname', route, files);
}

function others(out) {
  const original = { a: [1, { m: filledMap }], d: new SavedDate(0), u: new SavedUint8Array(2), s: 'x' };
  original.self = original;
  const copy = structuredClone(original);
  out.structuredClone = copy.a[0] + ' ' + (copy.a[1].m instanceof SavedMap) + ' ' + copy.a[1].m.size + ' '
    + (copy.d instanceof SavedDate) + ' ' + copy.u.length + ' ' + (copy.self === copy) + ' ' + (copy !== original);
  const target = new EventTarget();
  let seen = '';
  const listener = (e) => { seen += e.type + e.detail; };
  target.addEventListener('ping', listener);
  target.addEventListener('ping', { handleEvent(e) { seen += '+'; } }, { once: true });
  target.dispatchEvent(new CustomEvent('ping', { detail: 1 }));
  target.dispatchEvent(new CustomEvent('ping', { detail: 2 }));
  target.removeEventListener('ping', listener);
  target.dispatchEvent(new CustomEvent('ping', { detail: 3 }));
  const cancelable = new Event('c', { cancelable: true });
  target.addEventListener('c', (e) => e.preventDefault());
  out.events = seen + ' ' + target.dispatchEvent(cancelable) + ' ' + cancelable.defaultPrevented;
}
`;

// The platform's own classes are the tenant's to change too: Request and Response build and read
// their headers without Headers.prototype, and each request gets its signal without
// AbortController.prototype.
const HEADERS_PATCHER = `
const refuse = () => { throw new Error('the tenant replaced a Headers method'); };
for (const name of ['append', 'get', 'has', 'set', 'delete', 'forEach', 'entries']) Headers.prototype[name] = refuse;
Object.defineProperty(AbortController.prototype, 'signal', { get: refuse, configurable: true });
export default {
  async fetch(incoming) {
    const request = new Request('http://example.com/', { method: 'POST', body: new URLSearchParams('k=v'), headers: [['x-a', '1']] });
    const form = await request.formData();
    const response = new Response(new URLSearchParams('r=s'), { headers: { 'x-b': '2' } });
    const redirect = Response.redirect('http://example.com/to', 301);
    const signal = incoming.signal instanceof AbortSignal && !incoming.signal.aborted;
    return new Response([form.get('k'), (await response.formData()).get('r'), redirect.status, signal].join(' '), { headers: { 'x-c': '3' } });
  },
};`;

// Likewise the stream classes' prototypes: bodies are read, teed and written with the classes'
// own methods, taken when the streams module loaded.
const STREAMS_PATCHER = `
const refuse = () => { throw new Error('the tenant replaced a stream method'); };
const encoder = new TextEncoder();
export default {
  async fetch() {
    const patched = [
      [ReadableStream, ['getReader', 'tee', 'cancel', 'pipeTo', 'pipeThrough', 'values']],
      [ReadableStreamDefaultReader, ['read', 'cancel', 'releaseLock']],
      [ReadableByteStreamController, ['enqueue', 'close']],
      [ReadableStreamDefaultController, ['enqueue', 'close']],
      [TransformStreamDefaultController, ['enqueue', 'terminate']],
    ];
    for (const [C, names] of patched) for (const name of names) C.prototype[name] = refuse;
    Object.defineProperty(ReadableStream.prototype, 'locked', { get: refuse, configurable: true });
    Object.defineProperty(ReadableByteStreamController.prototype, 'byobRequest', { get: refuse, configurable: true });
    const fromBody = await new Response(new Response('abc').body).text();
    const original = new Request('http://example.com/', { method: 'POST', body: 'xyz' });
    const copy = original.clone();
    const teed = (await original.text()) + (await copy.text());
    const gzip = new CompressionStream('gzip');
    const gzipWriter = gzip.writable.getWriter();
    gzipWriter.write(encoder.encode('squeeze'));
    gzipWriter.close();
    const compressed = (await new Response(gzip.readable).arrayBuffer()).byteLength > 10;
    const identity = new IdentityTransformStream();
    const writer = identity.writable.getWriter();
    writer.write(encoder.encode(fromBody + ' ' + teed + ' ' + compressed));
    writer.close();
    return new Response(identity.readable);
  },
};`;

// Promise's species hooks: `then` on a promise looks up its constructor and that one's
// Symbol.species, so a platform promise hop that used `then` would run this worker's getters.
const SPECIES_PATCHER = `
const seen = [];
Object.defineProperty(Promise, Symbol.species, { get() { seen.push('species'); throw new Error('species'); }, configurable: true });
Object.defineProperty(Promise.prototype, 'constructor', { get() { seen.push('constructor'); throw new Error('constructor'); }, configurable: true });
export default {
  fetch() {
    return new Response('species ' + seen.length);
  },
};`;

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
    { patcher: moduleWorker(WORKER, { vars: { UP: base }, limits: { cpuMs: 2_000 } }), other: moduleWorker(`export default { fetch() { return new Response('other ok'); } };`), 'headers-patcher': moduleWorker(HEADERS_PATCHER), 'streams-patcher': moduleWorker(STREAMS_PATCHER), 'species-patcher': moduleWorker(SPECIES_PATCHER) },
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
      hmac: 'secret false 32',
      timer: 'fired',
      upstream: '200 worker from upstream',
      readable: 'sp1p2',
      cancel: 'x cancelled: enough',
      pipeThrough: 'a!b!.',
      pipeTo: 'xy closed',
      tee: 't1t2|t1t2',
      writer: '2 w1w2 undefined',
      writableSignal: false,
      pipeAbort: 'rejected: stopped',
      textStreams: 'h\u00e9l\u{1f600}o',
      compression: 'zip me twice',
      fromStream: 's1s2',
      byob: 'by true',
      from: 'f1f2',
      blob: '4 text/plain abcd bc abcd 4',
      file: 'f.txt 5 true true',
      form: '2 B x.txt true aafb',
      multipart: '2 B file body x.txt',
      urlencoded: '2 v',
      structuredClone: '1 true 1 true 2 true true',
      events: 'ping1+ping2 false true',
      urlPattern: 'true false shop 42 a/b x TXT /files/*.:ext true true -1',
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
  assert.deepEqual(lines, [1, 2, 3].map((n) => `req n ${n} { a: [ 1, 'x' ] } Map(0) {  } Symbol(s) 1970-01-01T00:00:00.000Z /re/g`));
});

test('a worker that replaces Headers methods and AbortController\'s signal still gets its requests, responses and bodies built and read', async () => {
  const response = await served.fetch('headers-patcher', '/');
  assert.equal(await response.text(), 'v s 301 true');
  assert.equal(response.headers.get('x-c'), '3');
  assert.equal(response.headers.get('content-type'), 'text/plain;charset=UTF-8');
});

test('a worker that replaces the stream classes\' methods still gets its bodies read, teed, compressed and sent', async () => {
  const response = await served.fetch('streams-patcher', '/');
  assert.equal(await response.text(), 'abc xyzxyz true');
  assert.deepEqual(served.logs.filter((entry) => entry.worker === 'streams-patcher' && entry.level === 'error'), []);
});

test('a worker that replaces Promise\'s constructor and Symbol.species getters is still answered, request after request, without them being called', async () => {
  for (let i = 0; i < 3; i++) {
    const response = await served.fetch('species-patcher', '/');
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'species 0');
  }
  assert.deepEqual(served.logs.filter((entry) => entry.worker === 'species-patcher' && entry.level === 'error'), []);
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

// Sandbox modules run on the runtime's captured built-ins, handed over when they load
// (src/runtime/shared-primordials.ts): none evaluates a copy of primordials.ts of its own.
test('sandbox modules take the runtime\'s captured built-ins instead of bundling their own', async () => {
  const { bundleSandboxModule, SANDBOX_MODULES } = await import('../src/runtime/sandbox-modules.ts');
  const { PRIMORDIALS_PARAMETER } = await import('../src/runtime/shared-primordials.ts');
  for (const name of Object.keys(SANDBOX_MODULES)) {
    const source = await bundleSandboxModule(name);
    assert.ok(source.startsWith(`"use strict";(function(${PRIMORDIALS_PARAMETER}){`), name);
    // primordials.ts uncurries with Function.prototype.bind.bind(Function.prototype.call).
    assert.ok(!source.includes('.bind.bind('), `${name} bundles a copy of primordials.ts`);
  }
});
