// TextDecoder's encodings in a worker, through real HTTP. UTF-8 is decoded in the isolate; every
// other encoding of the Encoding Standard is decoded by the host (src/api/encoding/host.ts, Node's
// ICU decoders), so each is checked here against Node's own TextDecoder on the same bytes:
// labels, fatal, ignoreBOM, and streaming that splits multi-byte sequences across calls.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serve, moduleWorker, type Served } from './support/serve.ts';

const WORKER = `
const name = (e) => e && e.constructor ? e.constructor.name : String(e);
// Made in top-level code, as libraries do: the label crosses to the host before any request.
const topLevel = new TextDecoder('windows-1252');
export default {
  async fetch(request) {
    const url = new URL(request.url);
    const label = url.searchParams.get('label');
    const bytes = new Uint8Array(await request.arrayBuffer());
    const options = { fatal: url.searchParams.has('fatal'), ignoreBOM: url.searchParams.has('ignoreBOM') };
    try {
      switch (url.pathname) {
        case '/decode': {
          const d = new TextDecoder(label, options);
          return Response.json({ encoding: d.encoding, text: d.decode(bytes) });
        }
        case '/stream': {
          // One byte at a time, then a flush: every multi-byte sequence is split.
          const d = new TextDecoder(label, options);
          let text = '';
          for (const b of bytes) text += d.decode(new Uint8Array([b]), { stream: true });
          text += d.decode();
          // The decoder is reusable after a flush.
          const again = d.decode(bytes);
          return Response.json({ encoding: d.encoding, text, again });
        }
        case '/decoder-stream': {
          const stream = new Response(bytes).body.pipeThrough(new TextDecoderStream(label, options));
          let text = '';
          for await (const chunk of stream) text += chunk;
          return Response.json({ text });
        }
        case '/budget': {
          // Past the per-isolate budget (32 MiB at once, then 16 MiB/s) decoding is a RangeError.
          const d = new TextDecoder('windows-1252');
          const mib = new Uint8Array(1024 * 1024).fill(0x41);
          let decoded = 0;
          try {
            for (let i = 0; i < 128; i++) { d.decode(mib); decoded++; }
          } catch (e) {
            return Response.json([decoded, name(e)]);
          }
          return Response.json([decoded, 'no error']);
        }
        case '/top-level':
          return Response.json([topLevel.encoding, topLevel.decode(bytes)]);
        case '/many': {
          // More streaming decoders than the host keeps: the oldest lose their state, and
          // continuing one of those is a TypeError (never silently wrong text).
          const decoders = [];
          for (let i = 0; i < 70; i++) {
            const d = new TextDecoder('shift_jis');
            d.decode(new Uint8Array([0x82]), { stream: true });
            decoders.push(d);
          }
          const last = decoders[69].decode(new Uint8Array([0xa0]));
          let first;
          try { first = decoders[0].decode(new Uint8Array([0xa0])); } catch (e) { first = name(e); }
          const reused = decoders[0].decode(new Uint8Array([0x82, 0xa0]));
          return Response.json([last, first, reused]);
        }
      }
    } catch (e) {
      return Response.json({ error: name(e) });
    }
    return new Response('not found', { status: 404 });
  },
};
`;

let served: Served;
before(async () => {
  served = await serve({
    // 3 MiB through the decoder in one request is CPU a loaded test machine can stretch past
    // the default 50 ms; this file is about decoding, not limits.
    enc: moduleWorker(WORKER, { limits: { cpuMs: 1000 } }),
    // The budget test decodes 32 MiB in one request: more CPU than the default 50 ms.
    budget: moduleWorker(WORKER, { limits: { cpuMs: 2000 } }),
  });
});
after(() => served.close());

async function call(path: string, label: string, bytes: Uint8Array, flags: string[] = []): Promise<Record<string, string>> {
  const query = new URLSearchParams({ label });
  for (const f of flags) query.set(f, '');
  const response = await served.fetch('enc', `${path}?${query}`, { method: 'POST', body: bytes });
  return response.json() as Promise<Record<string, string>>;
}

// A sample of each encoding: bytes a real document in it could hold.
const SAMPLES: [string, number[]][] = [
  ['windows-1252', [0x80, 0xe9, 0x41, 0x9f]],
  ['latin1', [0x80, 0xe9, 0x41]],
  ['iso-8859-2', [0xa1, 0xb1, 0xe6]],
  ['iso-8859-15', [0xa4, 0xbd]],
  ['koi8-r', [0xc1, 0xc2, 0xd7]],
  ['windows-1251', [0xc0, 0xe0, 0xb8]],
  ['macintosh', [0x80, 0xa5]],
  ['x-user-defined', [0x41, 0x80, 0xff]],
  ['shift_jis', [0x82, 0xa0, 0x82, 0xa2, 0x41, 0x93, 0xfa, 0x96, 0x7b]],
  ['euc-jp', [0xa4, 0xa2, 0xc6, 0xfc, 0x41]],
  ['iso-2022-jp', [0x1b, 0x24, 0x42, 0x24, 0x22, 0x1b, 0x28, 0x42, 0x41]],
  ['gbk', [0xc4, 0xe3, 0xba, 0xc3]],
  ['gb18030', [0xc4, 0xe3, 0x81, 0x30, 0x81, 0x30, 0x41]],
  ['big5', [0xa4, 0xa4, 0xa4, 0xe5]],
  ['euc-kr', [0xc7, 0xd1, 0xb1, 0xdb]],
  ['utf-16le', [0xff, 0xfe, 0x41, 0, 0x3d, 0xd8, 0, 0xde]],
  ['utf-16be', [0xfe, 0xff, 0, 0x41, 0xd8, 0x3d, 0xde, 0]],
  ['utf-8', [0xef, 0xbb, 0xbf, 0x68, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80]],
];

test('every encoding decodes as Node decodes it, whole and one byte at a time', async () => {
  for (const [label, list] of SAMPLES) {
    const bytes = new Uint8Array(list);
    const node = new TextDecoder(label);
    const expected = node.decode(bytes);
    assert.deepEqual(await call('/decode', label, bytes), { encoding: node.encoding, text: expected }, label);
    assert.deepEqual(await call('/stream', label, bytes), { encoding: node.encoding, text: expected, again: expected }, `${label} streamed`);
    assert.deepEqual(await call('/decoder-stream', label, bytes), { text: expected }, `${label} TextDecoderStream`);
  }
});

test('labels: aliases, whitespace and case; unknown and replacement labels are RangeErrors', async () => {
  const empty = new Uint8Array(0);
  for (const [label, name] of [[' Latin1 ', 'windows-1252'], ['ASCII', 'windows-1252'], ['sjis', 'shift_jis'], ['utf-16', 'utf-16le'], ['csbig5', 'big5'], ['x-gbk', 'gbk'], ['UTF8', 'utf-8']]) {
    assert.equal((await call('/decode', label, empty)).encoding, name, label);
  }
  for (const label of ['nope', 'iso-2022-kr', 'replacement', 'utf-32', 'x'.repeat(200)]) {
    assert.deepEqual(await call('/decode', label, empty), { error: 'RangeError' }, label);
  }
});

test('fatal: malformed input is a TypeError; without it, U+FFFD', async () => {
  for (const [label, list] of [['shift_jis', [0x82]], ['utf-16le', [0x41]], ['euc-kr', [0xff, 0x41]], ['utf-8', [0xff]]] as const) {
    const bytes = new Uint8Array(list);
    assert.deepEqual(await call('/decode', label, bytes, ['fatal']), { error: 'TypeError' }, label);
    assert.equal((await call('/decode', label, bytes)).text, new TextDecoder(label).decode(bytes), label);
  }
  // A streamed sequence cut off at the flush.
  assert.deepEqual(await call('/stream', 'shift_jis', new Uint8Array([0x41, 0x82]), ['fatal']), { error: 'TypeError' });
});

test('ignoreBOM keeps the BOM, for UTF-16 as for UTF-8', async () => {
  const le = new Uint8Array([0xff, 0xfe, 0x41, 0]);
  assert.equal((await call('/decode', 'utf-16le', le, ['ignoreBOM'])).text, '\ufeffA');
  assert.equal((await call('/decode', 'utf-16le', le)).text, 'A');
  assert.equal((await call('/stream', 'utf-16le', le, ['ignoreBOM'])).text, '\ufeffA');
});

test('large input crosses in chunks and decodes whole', async () => {
  const bytes = new Uint8Array(3 * 1024 * 1024).fill(0xe9);
  const result = await call('/decode', 'latin1', bytes);
  assert.equal(result.text.length, bytes.length);
  assert.equal(result.text[0], 'é');
});

test('the host keeps at most 64 streaming decoders per isolate; an evicted one throws', async () => {
  const response = await served.fetch('enc', '/many', { method: 'POST', body: new Uint8Array(0) });
  assert.deepEqual(await response.json(), ['あ', 'TypeError', 'あ']);
});

test('a legacy decoder made in top-level code works in requests', async () => {
  const response = await served.fetch('enc', '/top-level', { method: 'POST', body: new Uint8Array([0x80, 0x41]) });
  assert.deepEqual(await response.json(), ['windows-1252', '€A']);
});

test('each isolate has a budget of legacy-decoded bytes (the host decodes on its main thread)', async () => {
  const started = performance.now();
  const response = await served.fetch('budget', '/budget', { method: 'POST', body: new Uint8Array(0) });
  const seconds = (performance.now() - started) / 1000;
  const [decoded, error] = await response.json() as [number, string];
  // The bucket's own promise: 32 MiB of burst, then at most 16 MiB for each second that passed
  // (on a loaded machine more time passes between calls, so more refills: that is allowed).
  assert.ok(decoded >= 32, `the burst is there: ${decoded} MiB`);
  assert.ok(decoded <= 32 + Math.ceil(16 * seconds), `${decoded} MiB in ${seconds.toFixed(2)} s is past the budget`);
  // Decoding 128 MiB this fast is impossible within the budget: unless the machine was so slow
  // that the refill kept up, the worker was stopped with a RangeError.
  if (seconds < (128 - 32) / 16) assert.equal(error, 'RangeError');
});
