// Runtime.close() waits for the isolates still being made on another thread (a spare refill, a
// cold start): V8 crashes a process that exits while one is being made, which is how `isolet dev`
// sometimes died of SIGSEGV on Ctrl-C instead of exiting 0 (test/cli-dev.test.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../src/runtime/runtime.ts';

const HELLO = { modules: [{ name: 'main.js', source: 'export default { fetch() { return new Response("hi"); } };' }] };

interface SparePool {
  making: Promise<unknown> | undefined;
  count: number;
}

/** Waits until the runtime's spare pool is making an isolate (it refills after a spare is taken). */
async function sparePoolMaking(runtime: Runtime): Promise<SparePool> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const pool = (runtime as unknown as { spares?: SparePool }).spares;
    if (pool?.making !== undefined) return pool;
    assert.ok(Date.now() < deadline, 'the spare pool never started making an isolate');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('close() returns only once the spare being made is made, and disposes it', { timeout: 60_000 }, async () => {
  const runtime = new Runtime({ spareIsolates: 1 });
  await runtime.load('hello', HELLO, { validate: false });
  // The first request takes the spare; the pool starts making the next one.
  assert.equal((await runtime.fetch('hello', { method: 'GET', url: 'http://x/', headers: [] })).status, 200);
  const pool = await sparePoolMaking(runtime);
  await runtime.close();
  assert.equal(pool.making, undefined, 'nothing is being made once close() has returned');
  assert.equal(pool.count, 0, 'and what was made was not kept');
});

test('close() returns only once a cold start under way has made its isolate', { timeout: 60_000 }, async () => {
  const runtime = new Runtime({ spareIsolates: 0 });
  await runtime.load('cold', HELLO, { validate: false });
  const answer = runtime.fetch('cold', { method: 'GET', url: 'http://x/', headers: [] }).catch(() => undefined);
  const deadline = Date.now() + 30_000;
  let creating: Promise<unknown> | undefined;
  while ((creating = (runtime as unknown as { workers: Map<string, { creating?: Promise<unknown> }> }).workers.get('cold')?.creating) === undefined) {
    assert.ok(Date.now() < deadline, 'the cold start never began');
    await new Promise((resolve) => setImmediate(resolve));
  }
  let settled = false;
  creating.then(() => (settled = true), () => (settled = true));
  await runtime.close();
  assert.equal(settled, true, 'the isolate was made before close() returned');
  await answer;
});
