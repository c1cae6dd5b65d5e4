// Blob and File in a worker, through real HTTP: construction from every kind of part, slicing,
// the readers, Blob bodies in and out (body.blob(), new Response(blob)), and File's defaults
// under the frozen clock. Where workerd differs from the File API spec, isolet follows workerd
// (probed in test/conformance/workers/formdata.js): Blob.text() keeps a leading BOM, a File's
// lastModified is not truncated to an integer, `endings` is not implemented (an Error), body.blob()
// keeps the Content-Type as written, and structuredClone copies a Blob but not a File.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serve, moduleWorker, type Served } from './support/serve.ts';

const WORKER = `
const name = (e) => e && e.constructor ? e.constructor.name : String(e);
const err = (f) => { try { f(); return 'no error'; } catch (e) { return name(e); } };
export default {
  async fetch(request) {
    const url = new URL(request.url);
    switch (url.pathname) {
      case '/parts': {
        const b = new Blob(['ab', new Uint8Array([99]), new Uint16Array([0x6564]).buffer, new Blob(['f']), 7, '\\ud800'], { type: 'Text/Plain' });
        return Response.json([b.size, b.type, await b.text(), [...await b.bytes()].slice(-3)]);
      }
      case '/slice': {
        const b = new Blob(['abcdef']);
        return Response.json([await b.slice(1, -1).text(), await b.slice(-2).text(), await b.slice(4, 2).text(), b.slice(0, 1, 'A/B').type, await b.slice(1).slice(1, 3).text()]);
      }
      case '/readers': {
        const b = new Blob([new Uint8Array([0xef, 0xbb, 0xbf, 0x41])]);
        const ab = await b.arrayBuffer();
        const u8 = await b.bytes();
        u8[3] = 0x42;
        const streamed = await new Response(b.stream()).arrayBuffer();
        return Response.json([[...(await b.text())].map((c) => c.codePointAt(0)), ab.byteLength, [...new Uint8Array(streamed)], await b.text() === '\\ufeffA']);
      }
      case '/file': {
        const now = Date.now();
        const f = new File(['x'], 'a.txt');
        const g = new File([], 'b', { type: 'a/b', lastModified: 1.5 });
        return Response.json([f.name, f.type, f.lastModified === now, f instanceof Blob, g.lastModified, g.type, err(() => new File(['x'])), Object.prototype.toString.call(f)]);
      }
      case '/errors':
        return Response.json([err(() => new Blob('abc')), err(() => new Blob([], { endings: 'native' })), new Blob(undefined).size, new Blob([], { type: 'é' }).type]);
      case '/clone': {
        const c = structuredClone(new Blob(['q'], { type: 't/q' }));
        return Response.json([c instanceof Blob, c.type, await c.text(), err(() => structuredClone(new File([], 'f')))]);
      }
      case '/echo-blob': {
        const b = await request.blob();
        return new Response(b);
      }
      case '/blob-info': {
        const b = await request.blob();
        return Response.json([b.type, b.size]);
      }
      case '/typed':
        return new Response(new Blob(['<p>hi</p>'], { type: 'text/html' }));
      case '/untyped':
        return new Response(new Blob(['raw']));
      case '/big': {
        const part = new Uint8Array(1024 * 1024).fill(120);
        return new Response(new Blob([part, part, part, 'end']));
      }
    }
    return new Response('not found', { status: 404 });
  },
};
`;

let served: Served;
// A generous CPU limit: /big writes 3 MiB into fresh memory, and first touches of memory are CPU
// time too (about 5 ms per MiB on a virtual machine with costly page faults); this file tests
// Blobs, not the CPU limit.
before(async () => { served = await serve({ blobs: moduleWorker(WORKER, { limits: { cpuMs: 1000 } }) }); });
after(() => served.close());

const json = async (path: string): Promise<unknown> => (await served.fetch('blobs', path)).json();

test('a Blob from strings, buffers, views and Blobs', async () => {
  // A lone surrogate in a string part is U+FFFD (a USVString), 3 bytes.
  assert.deepEqual(await json('/parts'), [10, 'text/plain', 'abcdef7\ufffd', [0xef, 0xbf, 0xbd]]);
});

test('slice() counts from the end, clamps, and takes a new type', async () => {
  assert.deepEqual(await json('/slice'), ['bcde', 'ef', '', 'a/b', 'cd']);
});

test('text(), arrayBuffer(), bytes() and stream(); bytes() are a copy', async () => {
  assert.deepEqual(await json('/readers'), [[0xfeff, 0x41], 4, [0xef, 0xbb, 0xbf, 0x41], true]);
});

test('File: name, type, lastModified from the frozen clock', async () => {
  assert.deepEqual(await json('/file'), ['a.txt', '', true, true, 1.5, 'a/b', 'TypeError', '[object File]']);
});

test('constructor errors and type normalisation', async () => {
  assert.deepEqual(await json('/errors'), ['TypeError', 'Error', 0, '']);
});

test('structuredClone copies a Blob, not a File', async () => {
  assert.deepEqual(await json('/clone'), [true, 't/q', 'q', 'DOMException']);
});

test('request.blob() keeps the Content-Type; new Response(blob) sends it back', async () => {
  const body = new Uint8Array([1, 2, 3, 250]);
  const echoed = await served.fetch('blobs', '/echo-blob', { method: 'POST', body, headers: { 'content-type': 'Application/Octet-Stream' } });
  assert.equal(echoed.headers.get('content-type'), 'Application/Octet-Stream');
  assert.deepEqual([...new Uint8Array(await echoed.arrayBuffer())], [1, 2, 3, 250]);
  const info = await served.fetch('blobs', '/blob-info', { method: 'POST', body: 'x' });
  assert.deepEqual(await info.json(), ['', 1]);
});

test('a Blob body has its type as Content-Type, or none', async () => {
  const typed = await served.fetch('blobs', '/typed');
  assert.equal(typed.headers.get('content-type'), 'text/html');
  assert.equal(await typed.text(), '<p>hi</p>');
  const untyped = await served.fetch('blobs', '/untyped');
  assert.equal(untyped.headers.get('content-type'), null);
  assert.equal(await untyped.text(), 'raw');
});

test('a large Blob body streams out whole', async () => {
  const response = await served.fetch('blobs', '/big');
  const bytes = new Uint8Array(await response.arrayBuffer());
  assert.equal(bytes.byteLength, 3 * 1024 * 1024 + 3);
  assert.equal(new TextDecoder().decode(bytes.subarray(-3)), 'end');
});
