// A worker whose requests keep ending at its CPU or memory limit (or crashing its runtime
// process) is refused at admission for a
// while (503 with Retry-After, without running), doubling each time; other workers are served
// as before, and a worker that hits a limit only now and then among good requests is left alone.
// On a clock the test moves, then once through real runtime processes.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Admission } from '../src/supervisor/admission.ts';
import { ProcessPool } from '../src/supervisor/process-pool.ts';
import { terminationResponseBody } from '../src/runtime/termination.ts';
import type { RuntimeResponse } from '../src/runtime/types.ts';
import { CRASHED_ITS_PROCESS } from '../src/supervisor/runtime-process.ts';

const pools: ProcessPool[] = [];
after(async () => {
  await Promise.all(pools.map((pool) => pool.close()));
});

function answer(status: number, text: string): RuntimeResponse {
  return { status, statusText: '', headers: [], body: Buffer.from(text) };
}

const OK = answer(200, 'ok');
const CPU = answer(503, terminationResponseBody({ kind: 'cpu', usedMs: 51, limitMs: 50, phase: 'request' }));
const MEMORY = answer(503, terminationResponseBody({ kind: 'memory', limitMb: 128 }));
const CRASHED = answer(502, `${CRASHED_ITS_PROCESS}a fatal V8 error\n`);

/** Admission on a clock the test moves, counting the requests it lets run per worker. */
function admission(limits = {}) {
  const clock = { now: 0 };
  const gate = new Admission(limits, () => clock.now);
  const ran = new Map<string, number>();
  const send = async (worker: string, result: RuntimeResponse) => {
    const response = await gate.run(worker, async () => {
      ran.set(worker, (ran.get(worker) ?? 0) + 1);
      return result;
    });
    return { status: response.status, retryAfter: response.headers.find(([name]) => name === 'retry-after')?.[1], text: Buffer.from(response.body as Uint8Array).toString() };
  };
  return { clock, send, ran };
}

test('three requests over the CPU limit: the worker gets 503 with Retry-After without running, others are served; the next refusal lasts twice as long', async () => {
  const { clock, send, ran } = admission();
  for (let i = 0; i < 3; i++) assert.equal((await send('looper', CPU)).status, 503);
  assert.equal(ran.get('looper'), 3);

  const refused = await send('looper', OK);
  assert.equal(refused.status, 503);
  assert.equal(refused.retryAfter, '1');
  assert.match(refused.text, /keep exceeding its CPU or memory limit or crashing its process/);
  assert.match(refused.text, /retry after 1 s/);
  assert.equal(ran.get('looper'), 3, 'a refused request does not run');
  assert.equal((await send('quiet', OK)).status, 200, 'another worker is served meanwhile');

  clock.now += 1000;
  assert.equal((await send('looper', CPU)).status, 503, 'run again once the refusal is over');
  assert.equal(ran.get('looper'), 4);
  const again = await send('looper', OK);
  assert.equal(again.status, 503);
  assert.equal(again.retryAfter, '2', 'on probation, one more hit refuses it again, for twice as long');
  assert.equal(ran.get('looper'), 4);
  clock.now += 2000;
  assert.equal((await send('looper', OK)).status, 200);
  // Good requests since the last refusal outweigh one hit: on probation, not refused.
  for (let i = 0; i < 3; i++) await send('looper', OK);
  await send('looper', CPU);
  assert.equal((await send('looper', OK)).status, 200);
});

test('a worker refused once is forgiven after 10 minutes without refusals: three hits again before the next, of the first length', async () => {
  const { clock, send } = admission();
  for (let i = 0; i < 3; i++) await send('reformed', CPU);
  assert.equal((await send('reformed', OK)).retryAfter, '1');
  clock.now += 1000 + 10 * 60_000 + 1;
  await send('reformed', CPU);
  assert.equal((await send('reformed', OK)).status, 200, 'one hit no longer refuses it');
  await send('reformed', CPU);
  await send('reformed', CPU);
  assert.equal((await send('reformed', OK)).retryAfter, '1');
});

test('memory limit hits and crashes count the same; a worker\'s own 503s and rare limit hits among good requests do not refuse it', async () => {
  const { send } = admission();
  for (let i = 0; i < 3; i++) await send('hog', MEMORY);
  assert.equal((await send('hog', OK)).status, 503);
  for (let i = 0; i < 3; i++) await send('crasher', CRASHED);
  assert.equal((await send('crasher', OK)).status, 503);
  for (let i = 0; i < 3; i++) await send('gateway', answer(502, 'upstream down'));
  assert.equal((await send('gateway', OK)).status, 200);

  for (let i = 0; i < 10; i++) await send('own-503', answer(503, 'maintenance'));
  assert.equal((await send('own-503', OK)).status, 200);

  // A busy worker whose requests hit the limit now and then (fewer than half of them).
  for (let i = 0; i < 30; i++) {
    const hit = i % 4 === 0;
    const result = await send('busy', hit ? CPU : OK);
    if (!hit) assert.equal(result.status, 200, `request ${i}`);
  }
});

test('limit hits spread out beyond the window do not add up', async () => {
  const { clock, send } = admission({ strikeWindowMs: 10_000 });
  for (let i = 0; i < 6; i++) {
    assert.equal((await send('rare', OK)).status, 200);
    await send('rare', CPU);
    clock.now += 6000;
  }
  assert.equal((await send('rare', OK)).status, 200);
});

test('workers whose requests hit a limit lately take turns, one at a time; others run as before', async () => {
  const gate = new Admission({}, () => 0);
  await gate.run('loop-a', async () => CPU);
  await gate.run('loop-b', async () => CPU);
  const started: string[] = [];
  let finishA!: (response: RuntimeResponse) => void;
  const a = gate.run('loop-a', () => {
    started.push('loop-a');
    return new Promise((resolve) => (finishA = resolve));
  });
  const b = gate.run('loop-b', async () => {
    started.push('loop-b');
    return OK;
  });
  const quiet = await gate.run('quiet', async () => {
    started.push('quiet');
    return OK;
  });
  assert.equal(quiet.status, 200);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual([...started].sort(), ['loop-a', 'quiet'], 'the second suspect waits for the first; a quiet worker does not');
  finishA(OK);
  assert.equal((await a).status, 200);
  assert.equal((await b).status, 200);
  assert.equal(started.at(-1), 'loop-b');
});

test('limitStrikes 0 turns the refusal off', async () => {
  const { send } = admission({ limitStrikes: 0 });
  for (let i = 0; i < 10; i++) await send('looper', CPU);
  assert.equal((await send('looper', OK)).status, 200);
});

test('through runtime processes: a worker that loops forever is refused after three CPU-limit hits, another tenant keeps answering', { timeout: 90_000 }, async () => {
  const pool = new ProcessPool({ processes: 1, spare: false, runtime: { limits: { cpuMs: 5000 } }, workerLog: () => {}, log: () => {} });
  pools.push(pool);
  await pool.load('looper', { modules: [{ name: 'worker.js', source: 'export default { fetch() { for (;;) {} } };' }], limits: { cpuMs: 20 } });
  await pool.load('quiet', { modules: [{ name: 'worker.js', source: "export default { fetch() { return new Response('quiet'); } };" }] });
  const request = { method: 'GET', url: 'https://example.com/', headers: [] };
  for (let i = 0; i < 3; i++) {
    const looped = await pool.fetch('looper', request);
    assert.equal(looped.status, 503);
    assert.match(Buffer.from(looped.body as Uint8Array).toString(), /CPU time limit/);
  }
  const refused = await pool.fetch('looper', request);
  assert.equal(refused.status, 503);
  assert.ok(Number(refused.headers.find(([name]) => name === 'retry-after')?.[1]) >= 1);
  assert.match(Buffer.from(refused.body as Uint8Array).toString(), /is not run for/);
  const quiet = await pool.fetch('quiet', request);
  assert.equal(quiet.status, 200);
  assert.equal(Buffer.from(quiet.body as Uint8Array).toString(), 'quiet');
});
