// Streams in a worker, through real HTTP: the WHATWG stream classes, Workers' FixedLengthStream
// and IdentityTransformStream, compression (checked against Node's zlib on this side), and
// request and response bodies as streams (streamed uploads and downloads, cancellation).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync, gunzipSync, deflateSync, inflateSync, deflateRawSync, inflateRawSync } from 'node:zlib';
import { request as httpRequest } from 'node:http';
import { serve, moduleWorker, type Served } from './support/serve.ts';

const PROBES = `
const enc = new TextEncoder();
const dec = new TextDecoder();
const collect = async (stream) => { const out = []; for await (const chunk of stream) out.push(chunk); return out; };
const text = async (stream) => new Response(stream).text();
const name = (e) => e && e.constructor ? e.constructor.name + ': ' + e.message : String(e);
const probes = {
  async tee() {
    const [a, b] = ReadableStream.from(['x', 'y', 'z']).tee();
    return [await collect(a), await collect(b)];
  },
  async pipeThrough() {
    const upper = new TransformStream({ transform(chunk, c) { c.enqueue(chunk.toUpperCase()); }, flush(c) { c.enqueue('!'); } });
    return collect(ReadableStream.from(['a', 'b']).pipeThrough(upper));
  },
  async pipeTo() {
    const seen = [];
    const ws = new WritableStream({ write(chunk) { seen.push(chunk); }, close() { seen.push('closed'); } }, new CountQueuingStrategy({ highWaterMark: 2 }));
    await ReadableStream.from([1, 2, 3]).pipeTo(ws);
    return seen;
  },
  async byob() {
    let n = 0;
    const rs = new ReadableStream({ type: 'bytes', pull(c) { if (n++ < 2) c.enqueue(new Uint8Array([1, 2, 3, 4, 5])); else { c.close(); c.byobRequest?.respond(0); } } });
    const reader = rs.getReader({ mode: 'byob' });
    const sizes = [];
    for (;;) { const { done, value } = await reader.read(new Uint8Array(3)); if (done) break; sizes.push([...value]); }
    return [reader instanceof ReadableStreamBYOBReader, sizes];
  },
  async byobOnBody(request) {
    const reader = request.body.getReader({ mode: 'byob' });
    let total = 0, reads = 0;
    for (;;) { const { done, value } = await reader.read(new Uint8Array(1000)); if (done) break; total += value.byteLength; reads++; if (value.byteLength > 1000) return 'too big'; }
    return [total, reads > 1];
  },
  async iterate() {
    const out = [];
    for await (const chunk of ReadableStream.from((async function* () { yield 1; yield 2; })())) out.push(chunk);
    const it = ReadableStream.from([1, 2, 3]).values({ preventCancel: false });
    out.push((await it.next()).value, (await it.return()).done);
    return out;
  },
  async errors() {
    const out = [];
    const broken = new ReadableStream({ start(c) { c.error(new TypeError('broken')); } });
    try { await broken.getReader().read(); } catch (e) { out.push(name(e)); }
    let cancelled;
    const rs = new ReadableStream({ pull(c) { c.enqueue('x'); }, cancel(reason) { cancelled = reason; } });
    const reader = rs.getReader();
    await reader.read();
    await reader.cancel('enough');
    out.push(cancelled, (await reader.read()).done);
    out.push(rs.locked, (() => { try { rs.getReader(); return 'second reader'; } catch (e) { return name(e); } })());
    const ws = new WritableStream({ write() { throw new RangeError('nope'); } });
    const writer = ws.getWriter();
    try { await writer.write('a'); } catch (e) { out.push(name(e)); }
    const ac = new AbortController();
    const piped = new ReadableStream({ pull() {} }).pipeTo(new WritableStream(), { signal: ac.signal });
    ac.abort();
    try { await piped; } catch (e) { out.push(e.name); }
    try { new Response(broken); } catch (e) { out.push(name(e)); }
    return out;
  },
  async from() {
    return [await collect(ReadableStream.from(new Set(['s']))), await text(ReadableStream.from([enc.encode('by'), enc.encode('tes')]))];
  },
  async textStreams() {
    const bytes = enc.encode('héllo wörld €');
    const chunks = [bytes.slice(0, 2), bytes.slice(2, 9), bytes.slice(9)];
    const decoded = (await collect(ReadableStream.from(chunks).pipeThrough(new TextDecoderStream()))).join('');
    const encoded = await new Response(ReadableStream.from(['a\\uD83D', '\\uDE00b']).pipeThrough(new TextEncoderStream())).arrayBuffer();
    const t = new TextDecoderStream('utf-8', { fatal: true });
    return [decoded, [...new Uint8Array(encoded)], new TextEncoderStream().encoding, t.encoding, t.fatal, t instanceof TransformStream];
  },
  async compression(request) {
    const format = new URL(request.url).searchParams.get('format');
    return new Response(request.body.pipeThrough(new CompressionStream(format)));
  },
  async decompression(request) {
    const format = new URL(request.url).searchParams.get('format');
    return new Response(request.body.pipeThrough(new DecompressionStream(format)));
  },
  async roundTrip() {
    const out = [];
    for (const format of ['gzip', 'deflate', 'deflate-raw']) {
      const input = 'isolet '.repeat(1000);
      const packed = await new Response(new Response(input).body.pipeThrough(new CompressionStream(format))).arrayBuffer();
      const back = await text(new Response(packed).body.pipeThrough(new DecompressionStream(format)));
      out.push([format, back === input, packed.byteLength < 200]);
    }
    out.push((() => { try { new CompressionStream('br'); return 'ok'; } catch (e) { return name(e); } })());
    try { await text(new Response(new Uint8Array([1, 2, 3, 4])).body.pipeThrough(new DecompressionStream('gzip'))); } catch (e) { out.push(e.constructor.name); }
    out.push(new CompressionStream('gzip') instanceof TransformStream);
    return out;
  },
  async fixedLength() {
    const out = [];
    const short = new FixedLengthStream(5);
    const w1 = short.writable.getWriter();
    w1.write(enc.encode('abc'));
    const closed = w1.close().then(() => 'closed', (e) => name(e));
    const read = text(short.readable).then(() => 'read', (e) => name(e));
    out.push(await closed, await read);
    const long = new FixedLengthStream(2);
    const w2 = long.writable.getWriter();
    const reading = text(long.readable).catch((e) => name(e));
    out.push(await w2.write(enc.encode('abc')).then(() => 'written', (e) => name(e)), await reading);
    out.push((() => { try { new FixedLengthStream(-1); return 'ok'; } catch (e) { return name(e); } })());
    return out;
  },
  fixedResponse() {
    const { readable, writable } = new FixedLengthStream(11);
    const w = writable.getWriter();
    (async () => { await w.write(enc.encode('hello ')); await w.write(enc.encode('world')); await w.close(); })();
    return new Response(readable);
  },
  async identity() {
    const ts = new IdentityTransformStream();
    const w = ts.writable.getWriter();
    const wrote = w.write(enc.encode('bytes')).then(() => w.close());
    const reader = ts.readable.getReader({ mode: 'byob' });
    const first = await reader.read(new Uint8Array(2));
    reader.releaseLock();
    const rest = (await collect(ts.readable)).map((c) => dec.decode(c)).join('');
    await wrote;
    const t2 = new IdentityTransformStream();
    const w3 = t2.writable.getWriter();
    // Writes complete as the readable side reads (there is no buffer in between): read first.
    t2.readable.getReader().read().catch(() => {});
    const refused = await w3.write('a string').then(() => 'accepted', (e) => name(e));
    return [dec.decode(first.value), rest, refused, ts instanceof TransformStream];
  },
  async bodies(request) {
    const out = [];
    const r = new Response('abc');
    out.push(r.body instanceof ReadableStream, r.bodyUsed);
    out.push(await text(r.body), r.bodyUsed);
    try { await r.text(); } catch (e) { out.push(name(e)); }
    const s = new Response(ReadableStream.from([enc.encode('x'), enc.encode('y')]));
    const c = s.clone();
    out.push(await s.text(), await c.text());
    const q = new Request('https://a.example/', { method: 'POST', body: ReadableStream.from([enc.encode('up')]), duplex: 'half' });
    out.push(await q.text());
    const locked = new Response('z'); locked.body.getReader();
    try { await locked.text(); } catch (e) { out.push(name(e)); }
    try { await new Response(ReadableStream.from(['not bytes'])).text(); } catch (e) { out.push(name(e)); }
    out.push(await request.text());
    return out;
  },
  echo(request) {
    // Through the isolate chunk by chunk: a TransformStream that counts.
    let n = 0;
    return new Response(request.body.pipeThrough(new TransformStream({ transform(c, ctl) { n += c.byteLength; ctl.enqueue(c); }, flush(ctl) { ctl.enqueue(enc.encode('|' + n)); } })));
  },
  download(request) {
    const count = Number(new URL(request.url).searchParams.get('chunks'));
    let i = 0;
    return new Response(new ReadableStream({
      pull(c) { if (i < count) c.enqueue(enc.encode('chunk ' + i++ + '\\n')); else c.close(); },
    }), { headers: { 'content-type': 'text/plain' } });
  },
  endless(request) {
    let i = 0;
    return new Response(new ReadableStream({
      pull(c) { c.enqueue(new Uint8Array(16384).fill(97)); i++; },
      cancel(reason) { console.log('endless cancelled after ' + (i > 0 ? 'some' : 'no') + ' chunks: ' + (reason && reason.name)); },
    }));
  },
  failing() {
    let i = 0;
    return new Response(new ReadableStream({ pull(c) { if (i++ === 0) c.enqueue(enc.encode('partial')); else c.error(new Error('generator failed')); } }));
  },
  lazy() {
    // An idle worker's streams are accessors until first use.
    const d = Object.getOwnPropertyDescriptor(globalThis, 'ReadableStream');
    return [typeof d.get, typeof ReadableStream, typeof Object.getOwnPropertyDescriptor(globalThis, 'ReadableStream').value, ReadableStream.name, FixedLengthStream.name, CompressionStream.name];
  },
};
export default {
  async fetch(request) {
    const probe = probes[new URL(request.url).pathname.slice(1)];
    if (!probe) return new Response('no such probe', { status: 404 });
    const result = await probe(request);
    return result instanceof Response ? result : Response.json(result);
  },
};
`;

let served: Served;
before(async () => {
  // A larger CPU limit than the default 50 ms: the first compression in an isolate runs fflate
  // cold (loaded, then interpreted before V8 optimises it), which alone can take tens of ms.
  served = await serve({ s: moduleWorker(PROBES, { limits: { cpuMs: 1000 } }) });
});
after(() => served.close());

async function probe(name: string, init?: RequestInit): Promise<unknown> {
  const response = await served.fetch('s', '/' + name, init);
  const body = await response.text();
  assert.equal(response.status, 200, body);
  return JSON.parse(body);
}

test('stream globals are made on first use', async () => {
  assert.deepEqual(await probe('lazy'), ['function', 'function', 'function', 'ReadableStream', 'FixedLengthStream', 'CompressionStream']);
});

test('tee gives both branches every chunk', async () => {
  assert.deepEqual(await probe('tee'), [['x', 'y', 'z'], ['x', 'y', 'z']]);
});

test('pipeThrough a TransformStream, and pipeTo a WritableStream with a queuing strategy', async () => {
  assert.deepEqual(await probe('pipeThrough'), ['A', 'B', '!']);
  assert.deepEqual(await probe('pipeTo'), [1, 2, 3, 'closed']);
});

test('BYOB reads fill the given buffer, on byte streams and on request.body', async () => {
  assert.deepEqual(await probe('byob'), [true, [[1, 2, 3], [4, 5], [1, 2, 3], [4, 5]]]);
  assert.deepEqual(await probe('byobOnBody', { method: 'POST', body: 'z'.repeat(5000) }), [5000, true]);
});

test('async iteration and ReadableStream.from', async () => {
  assert.deepEqual(await probe('iterate'), [1, 2, 1, true]);
  assert.deepEqual(await probe('from'), [['s'], 'bytes']);
});

test('errors and cancellation', async () => {
  assert.deepEqual(await probe('errors'), [
    'TypeError: broken', 'enough', true, true,
    'TypeError: This stream has already been locked for exclusive reading by another reader',
    'RangeError: nope', 'AbortError',
    'TypeError: This ReadableStream is disturbed (has already been read from), and cannot be used as a body.',
  ]);
});

test('TextEncoderStream and TextDecoderStream handle sequences split across chunks', async () => {
  assert.deepEqual(await probe('textStreams'), ['héllo wörld €', [0x61, 0xf0, 0x9f, 0x98, 0x80, 0x62], 'utf-8', 'utf-8', true, true]);
});

test('compression round trips in the isolate, and refuses unknown formats and bad input', async () => {
  assert.deepEqual(await probe('roundTrip'), [
    ['gzip', true, true], ['deflate', true, true], ['deflate-raw', true, true],
    "TypeError: Failed to construct 'CompressionStream': The provided value 'br' is not a valid enum value of type CompressionFormat.",
    'TypeError', true,
  ]);
});

test("compression interoperates with Node's zlib in both directions", async () => {
  const input = Buffer.from('streamed through a worker '.repeat(5000));
  const codecs = {
    gzip: [gzipSync, gunzipSync],
    deflate: [deflateSync, inflateSync],
    'deflate-raw': [deflateRawSync, inflateRawSync],
  } as const;
  for (const [format, [compress, decompress]] of Object.entries(codecs)) {
    const packed = await served.fetch('s', `/compression?format=${format}`, { method: 'POST', body: input });
    assert.equal(packed.status, 200);
    assert.deepEqual(decompress(Buffer.from(await packed.arrayBuffer())), input, format);
    const unpacked = await served.fetch('s', `/decompression?format=${format}`, { method: 'POST', body: compress(input) });
    assert.deepEqual(Buffer.from(await unpacked.arrayBuffer()), input, format);
  }
});

test('FixedLengthStream enforces its length and gives the response a Content-Length', async () => {
  assert.deepEqual(await probe('fixedLength'), [
    'TypeError: FixedLengthStream did not see all expected bytes before close().',
    'TypeError: FixedLengthStream did not see all expected bytes before close().',
    'TypeError: Attempt to write too many bytes through a FixedLengthStream.',
    'TypeError: Attempt to write too many bytes through a FixedLengthStream.',
    'TypeError: FixedLengthStream requires a non-negative integer expected length.',
  ]);
  const response = await served.fetch('s', '/fixedResponse');
  assert.equal(response.headers.get('content-length'), '11');
  assert.equal(response.headers.get('transfer-encoding'), null);
  assert.equal(await response.text(), 'hello world');
});

test('IdentityTransformStream passes bytes, has a byte readable side, refuses strings', async () => {
  assert.deepEqual(await probe('identity'), [
    'by', 'tes',
    "TypeError: This TransformStream is being used as a byte stream, but received a string on its writable side. If you wish to write a string, you'll probably want to explicitly UTF-8-encode it with TextEncoder.",
    true,
  ]);
});

test('bodies are streams: .body, bodyUsed, clone, stream bodies in Request and Response', async () => {
  assert.deepEqual(await probe('bodies', { method: 'POST', body: 'request body' }), [
    true, false, 'abc', true,
    'TypeError: Body has already been used. It can only be used once. Use tee() first if you need to read it twice.',
    'xy', 'xy', 'up',
    'TypeError: This ReadableStream is currently locked to a reader.',
    'TypeError: This ReadableStream did not return bytes.',
    'request body',
  ]);
});

/** POSTs `chunks` one by one, each written only after the previous one's echo has arrived. */
function interactiveUpload(path: string, chunks: string[]): Promise<string> {
  const url = new URL(served.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: url.hostname, port: url.port, path, method: 'POST', agent: false,
      headers: { host: `s.localhost:${url.port}`, 'transfer-encoding': 'chunked' },
    }, (res) => {
      let echoed = '';
      let next = 1;
      res.setEncoding('utf8');
      res.on('data', (data: string) => {
        echoed += data;
        // Lock step: the next chunk goes up only once this one came back, which proves the
        // response streams while the upload is still open.
        if (next < chunks.length && echoed.length >= chunks.slice(0, next).join('').length) req.write(chunks[next++]);
        else if (next === chunks.length) { next++; req.end(); }
      });
      res.on('end', () => resolve(echoed));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.write(chunks[0]);
  });
}

test('a worker echoes a streamed upload back while it is still arriving', async () => {
  const chunks = ['first,', 'second,', 'third'];
  assert.equal(await interactiveUpload('/echo', chunks), 'first,second,third|18');
});

test('a worker generates a streamed download, sent chunked', async () => {
  const response = await served.fetch('s', '/download?chunks=500');
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('transfer-encoding'), 'chunked');
  const lines = (await response.text()).trimEnd().split('\n');
  assert.equal(lines.length, 500);
  assert.equal(lines[499], 'chunk 499');
});

test('a client that disconnects cancels the response stream in the isolate', async () => {
  const url = new URL(served.url);
  const summaries = () => served.logs.filter((e) => e.type === 'request').length;
  const before = summaries();
  await new Promise<void>((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path: '/endless', agent: false, headers: { host: `s.localhost:${url.port}` } }, (res) => {
      let got = 0;
      res.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got > 256 * 1024) { req.destroy(); resolve(); }
      });
      res.on('error', () => {});
    });
    req.on('error', (e) => (req.destroyed ? undefined : reject(e)));
    req.end();
  });
  const line = await served.waitForLog((e) => e.type === 'console' && e.message.startsWith('endless cancelled'));
  assert.equal(line.message, 'endless cancelled after some chunks: AbortError');
  // The request's work ends (its summary line is logged) once the stream is cancelled.
  await served.waitForLog(() => summaries() > before);
});

test('a stream that errors mid-body cuts the connection and is logged as the worker\'s exception', async () => {
  await assert.rejects(served.fetch('s', '/failing'));
  const logged = await served.waitForLog((e) => e.type === 'exception' && e.message.includes('generator failed'));
  assert.equal(logged.level, 'error');
});
