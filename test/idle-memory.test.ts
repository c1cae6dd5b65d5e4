// Idle isolates give their memory back (src/runtime/idle-memory.ts, and the isolated-vm patch
// native/isolated-vm/reduce-memory.patch behind WorkerIsolate.reduceMemory).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../src/runtime/runtime.ts';
import { IdleMemoryReducer, type IdleReducible } from '../src/runtime/idle-memory.ts';
import type { RuntimeResponse } from '../src/runtime/types.ts';

const MB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Each request leaves megabytes of garbage behind, the way a busy worker's young generation
// fills; module state (the counter) must survive the collections.
const GARBAGE_WORKER = `
let served = 0;
export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/slow') await new Promise((resolve) => setTimeout(resolve, 1500));
    let keep = 0;
    for (let i = 0; i < 100000; i++) keep += { i, j: [i, i + 1] }.j.length;
    served++;
    return new Response(String(served) + ' ' + keep);
  },
};`;

async function text(response: RuntimeResponse): Promise<string> {
  const body = response.body;
  if (body === null) return '';
  if (body instanceof Uint8Array) return new TextDecoder().decode(body);
  const parts: Uint8Array[] = [];
  for await (const chunk of body) parts.push(chunk);
  return Buffer.concat(parts).toString();
}

function get(runtime: Runtime, path = '/'): Promise<RuntimeResponse> {
  return runtime.fetch('busy', { method: 'GET', url: `http://busy.localhost${path}`, headers: [], body: null });
}

async function heapTotal(runtime: Runtime): Promise<number> {
  const usage = await runtime.memoryUsage('busy');
  assert.ok(usage, 'the worker has a live isolate');
  return usage.heapTotal;
}

test('an isolate idle past the delay gives its memory back and keeps its state', { timeout: 60_000 }, async () => {
  const runtime = new Runtime({ log: () => {}, spareIsolates: 0, reduceIdleMemoryAfterMs: 300 });
  try {
    await runtime.load('busy', { modules: [{ name: 'worker.js', source: GARBAGE_WORKER }] });
    // The peak over the requests: on a loaded machine the idle delay can pass between two of
    // them, so the heap after the last one may already be the reduced one.
    let busy = 0;
    for (let i = 1; i <= 5; i++) {
      assert.match(await text(await get(runtime)), new RegExp(`^${i} `));
      busy = Math.max(busy, await heapTotal(runtime));
    }

    let idle = busy;
    for (let waited = 0; waited < 20_000 && idle > busy - MB / 2; waited += 100) {
      await sleep(100);
      idle = await heapTotal(runtime);
    }
    assert.ok(idle <= busy - MB / 2, `heap stayed at ${(idle / MB).toFixed(2)} MB after idling (${(busy / MB).toFixed(2)} MB while busy)`);

    // Same isolate, same module state.
    assert.match(await text(await get(runtime)), /^6 /);
  } finally {
    await runtime.close();
  }
});

test('an idle isolate that grew too little to give anything back is not collected (a collection costs more than it frees)', { timeout: 60_000 }, async () => {
  const runtime = new Runtime({ log: () => {}, spareIsolates: 0, reduceIdleMemoryAfterMs: 200 });
  try {
    await runtime.load('hello', { modules: [{ name: 'worker.js', source: "export default { fetch() { return new Response('hi') } }" }] });
    const request = () => runtime.fetch('hello', { method: 'GET', url: 'http://hello.localhost/', headers: [], body: null });
    assert.equal(await text(await request()), 'hi');
    await sleep(50);
    const usage = await runtime.memoryUsage('hello');
    // Past the idle delay many times over: an idle isolate allocates nothing, so only a
    // collection would change what its heap uses.
    await sleep(1500);
    const later = await runtime.memoryUsage('hello');
    assert.equal(later?.heapUsed, usage?.heapUsed, 'the idle reducer collected an isolate with nothing to give back');
    assert.equal(await text(await request()), 'hi');
  } finally {
    await runtime.close();
  }
});

test('an isolate with a request in flight is not collected for idleness', { timeout: 60_000 }, async () => {
  const runtime = new Runtime({ log: () => {}, spareIsolates: 0, reduceIdleMemoryAfterMs: 200 });
  try {
    await runtime.load('busy', { modules: [{ name: 'worker.js', source: GARBAGE_WORKER }] });
    for (let i = 0; i < 5; i++) await text(await get(runtime));
    // The sweep can run between these requests; what matters is the slow one below.
    const slow = get(runtime, '/slow');
    await sleep(100);
    const during = await heapTotal(runtime);
    await sleep(900); // well past the idle delay, the slow request still running
    assert.ok((await heapTotal(runtime)) >= during, 'the heap shrank while a request was in flight');
    assert.match(await text(await slow), /^\d+ /);
  } finally {
    await runtime.close();
  }
});

test('the reducer takes least recently used isolates first, two at a time, and skips busy ones', async () => {
  const started: string[] = [];
  const finish: Array<() => void> = [];
  const now = Date.now();
  const make = (name: string, lastUsed: number, busy = false): IdleReducible & { name: string } => ({
    name,
    lastUsed,
    reduceMemory() {
      if (busy || started.includes(name)) return undefined;
      started.push(name);
      return new Promise<void>((resolve) => finish.push(resolve));
    },
  });
  const isolates = [make('a', now - 5000), make('b', now - 4000, true), make('c', now - 3000), make('d', now - 2000), make('e', now + 60_000)];
  const reducer = new IdleMemoryReducer(1000, () => isolates);
  reducer.start();
  try {
    for (let waited = 0; waited < 5000 && started.length < 2; waited += 10) await sleep(10);
    assert.deepEqual(started, ['a', 'c'], 'two at a time, oldest first, the busy one skipped');
    finish.shift()!();
    for (let waited = 0; waited < 5000 && started.length < 3; waited += 10) await sleep(10);
    assert.deepEqual(started, ['a', 'c', 'd'], 'a finished reduction makes room for the next');
    finish.splice(0).forEach((resolve) => resolve());
    await sleep(1200);
    assert.ok(!started.includes('e'), 'a recently used isolate is left alone');
  } finally {
    reducer.stop();
  }
});
