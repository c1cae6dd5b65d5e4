// A request body belongs to its request, not to whichever request's code reads it: the sandbox
// reads it through its own request's id. A body handed from one request to another (read whole,
// or sent on as the other's response) is still that body, one read in ctx.waitUntil() work
// still reads, and one read after its request ended fails with an error that says so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../src/runtime/runtime.ts';
import { DEFAULT_LIMITS, type RuntimeResponse, type WorkerLogEntry } from '../src/runtime/types.ts';
import { operations, type OpContext, type OpRequest } from '../src/runtime/host-ops.ts';

const WORKER = `
let park;
let parked = new Promise((resolve) => (park = resolve));
let kept;
let late;
export default {
  async fetch(request, env, ctx) {
    const { pathname } = new URL(request.url);
    if (pathname === '/park') {
      // Stays in flight, its body unread, until another request has taken it.
      await new Promise((resolve) => park({ body: request.body, resolve }));
      return new Response('parked');
    }
    if (pathname === '/take-whole') {
      const { body, resolve } = await parked;
      parked = new Promise((resolve) => (park = resolve));
      const text = await new Response(body).text();
      resolve();
      return new Response(text);
    }
    if (pathname === '/take-stream') {
      const { body, resolve } = await parked;
      parked = new Promise((resolve) => (park = resolve));
      // Sent on as this request's response; the parked request ends once it is all read.
      return new Response(body.pipeThrough(new TransformStream({ flush: () => resolve() })));
    }
    if (pathname === '/wait-until') {
      late = request.text();
      ctx.waitUntil(late);
      return new Response('accepted');
    }
    if (pathname === '/late') return new Response(await late);
    if (pathname === '/keep') {
      kept = request.body;
      return new Response('kept');
    }
    if (pathname === '/read-kept') {
      try {
        return new Response(await new Response(kept).text());
      } catch (error) {
        return new Response(error.name + ': ' + error.message, { status: 500 });
      }
    }
    return new Response(await request.text());
  },
};`;

let runtime: Runtime;
const ended: string[] = [];
let onEnded: (() => void) | undefined;
before(async () => {
  const log = (entry: WorkerLogEntry) => {
    if (entry.type !== 'request') return;
    ended.push(String(entry.url));
    onEnded?.();
  };
  runtime = new Runtime({ log, reduceIdleMemoryAfterMs: 0 });
  await runtime.load('owner', { modules: [{ name: 'main.js', source: WORKER }] });
});
after(() => runtime.close());

/** A body that arrives in two chunks, the second only when `release` is called (if given). */
function post(path: string, text: string, release?: Promise<void>): Promise<RuntimeResponse> {
  const half = Math.floor(text.length / 2);
  return runtime.fetch('owner', {
    method: 'POST',
    url: `http://owner.test${path}`,
    headers: [],
    body: (async function* () {
      yield Buffer.from(text.slice(0, half));
      if (release) await release;
      yield Buffer.from(text.slice(half));
    })(),
  });
}

async function text(response: RuntimeResponse): Promise<string> {
  if (response.body === null) return '';
  if (response.body instanceof Uint8Array) return Buffer.from(response.body).toString();
  let out = '';
  for await (const chunk of response.body) out += Buffer.from(chunk).toString();
  return out;
}

/** Resolves once the host has ended the request to `path` (its log line is written then). */
async function requestEnded(path: string): Promise<void> {
  while (!ended.includes(`http://owner.test${path}`)) await new Promise<void>((resolve) => (onEnded = resolve));
}

test('a body read whole by another request is its own request\'s body', async () => {
  const first = post('/park', 'the parked request body, '.repeat(2000));
  const second = await post('/take-whole', 'the second request body');
  assert.equal(await text(second), 'the parked request body, '.repeat(2000));
  assert.equal(await text(await first), 'parked');
});

test('a body sent on as another request\'s response is its own request\'s body', async () => {
  const first = post('/park', 'the parked request body, '.repeat(2000));
  const second = await post('/take-stream', 'the second request body');
  assert.equal(second.status, 200);
  assert.equal(await text(second), 'the parked request body, '.repeat(2000));
  assert.equal(await text(await first), 'parked');
});

test('a body read in ctx.waitUntil() after the response is whole', async () => {
  let release!: () => void;
  const arrived = new Promise<void>((resolve) => (release = resolve));
  const response = await post('/wait-until', 'read after the response was sent', arrived);
  assert.equal(await text(response), 'accepted');
  release();
  assert.equal(await text(await post('/late', '')), 'read after the response was sent');
});

test('a body read after its request ended fails with an error that says why', async () => {
  assert.equal(await text(await post('/keep', 'never read in time')), 'kept');
  await requestEnded('/keep');
  const response = await post('/read-kept', 'the reader\'s own body');
  assert.equal(response.status, 500);
  assert.match(await text(response), /^TypeError: This request body can no longer be read: the request it came with has ended/);
});

test('body operations read only a request of the calling isolate, named by a number', async () => {
  // What tenant code could send if it reached the bridge itself.
  const own: OpRequest = {
    id: 1, chain: ['w'], signal: new AbortController().signal, subrequests: 0,
    readBody: async () => new ArrayBuffer(1), readWholeBody: async () => new ArrayBuffer(2),
  };
  const ctx: OpContext = {
    worker: 'w', account: 'w', limits: DEFAULT_LIMITS, request: own, scope: new Map(), chargeCpu: () => {}, takePayload: async () => null,
    requestById: (id) => (id === 1 ? own : undefined),
  };
  const call = (op: 'body.read' | 'body.readWhole', ...args: unknown[]) => Promise.resolve().then(() => operations[op](ctx, args));
  assert.equal(((await call('body.read', 1)) as ArrayBuffer).byteLength, 1);
  assert.equal(((await call('body.readWhole', 1, 'bytes')) as ArrayBuffer).byteLength, 2);
  for (const id of ['1', null, 2, -1, 1.5]) {
    await assert.rejects(call('body.read', id), { name: 'TypeError' }, String(id));
    await assert.rejects(call('body.readWhole', id, 'bytes'), { name: 'TypeError' }, String(id));
  }
  await assert.rejects(call('body.readWhole', 1, 'json'), { name: 'TypeError', message: /'text' or 'bytes'/ });
});
