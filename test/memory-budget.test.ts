// The Runtime's memory budget: past it, idle isolates are disposed, the least recently used first
// for a tenant asked for more often, while a tenant asked for no more often passes through on
// probation (a rotation over more tenants than fit keeps those that fit); an isolate with a request in flight or waitUntil work never is; a disposed
// tenant starts again on its next request. Sizes come from a measured isolate, not constants,
// so the tests hold on any V8 build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../src/runtime/runtime.ts';
import type { RuntimeResponse } from '../src/runtime/types.ts';

const MB = 1024 * 1024;

const COUNTER = `let hits = 0;
export default { fetch() { hits++; return new Response(String(hits)); } };`;

/** Answers after \`?ms=\` milliseconds. */
const SLOW = `export default {
  async fetch(request) {
    const ms = Number(new URL(request.url).searchParams.get('ms'));
    await new Promise((resolve) => setTimeout(resolve, ms));
    return new Response('slow');
  },
};`;

/** Answers at once and works on for \`?ms=\` milliseconds in waitUntil. */
const LINGERING = `export default {
  fetch(request, env, ctx) {
    const ms = Number(new URL(request.url).searchParams.get('ms'));
    ctx.waitUntil(new Promise((resolve) => setTimeout(resolve, ms)).then(() => console.log('waitUntil done')));
    return new Response('lingering');
  },
};`;

async function text(response: RuntimeResponse): Promise<string> {
  const body = response.body;
  if (body === null) return '';
  if (body instanceof Uint8Array) return Buffer.from(body).toString();
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks).toString();
}

/**
 * One request. The isolate's measurements (when it starts, after its response) are tasks on
 * its own thread, which runs them in order: reading its memory afterwards waits for them.
 */
async function serve(runtime: Runtime, name: string, query = ''): Promise<string> {
  const response = await runtime.fetch(name, { method: 'GET', url: `http://${name}.localhost/${query}`, headers: [] });
  assert.equal(response.status, 200, `${name}: ${await text(response)}`);
  const body = await text(response);
  await runtime.memoryUsage(name);
  return body;
}

async function live(runtime: Runtime, name: string): Promise<boolean> {
  return (await runtime.memoryUsage(name)) !== undefined;
}

/** What one served COUNTER isolate holds, as the budget counts it. */
async function isolateSize(): Promise<number> {
  const runtime = new Runtime({ spareIsolates: 0, reduceIdleMemoryAfterMs: 0, log: () => {} });
  try {
    await runtime.load('probe', { modules: [{ name: 'main.js', source: COUNTER }] });
    await serve(runtime, 'probe');
    assert.ok(runtime.isolateMemory > 0, 'a served isolate has been measured');
    return runtime.isolateMemory;
  } finally {
    await runtime.close();
  }
}

test('past the memory budget, the least recently used idle isolate goes for a tenant asked for more often; a one-off request passes through', async () => {
  const size = await isolateSize();
  const runtime = new Runtime({ memoryBudgetMb: (size * 3.5) / MB, spareIsolates: 0, reduceIdleMemoryAfterMs: 0, log: () => {} });
  const alive = (names: string[]) => Promise.all(names.map((name) => live(runtime, name)));
  try {
    for (const name of ['a', 'b', 'c', 'd', 'e']) await runtime.load(name, { modules: [{ name: 'main.js', source: COUNTER }] }, { validate: false });
    for (const name of ['a', 'b', 'c']) assert.equal(await serve(runtime, name), '1');
    assert.equal(runtime.liveIsolates, 3, 'three fit');
    assert.equal(await serve(runtime, 'a'), '2'); // least recently used now: b, then c
    // d is asked for once, as often as b: it is served on probation, and b stays.
    assert.equal(await serve(runtime, 'd'), '1');
    assert.deepEqual(await alive(['a', 'b', 'c']), [true, true, true], 'a one-off request pushes out no one');
    assert.ok(runtime.isolateMemory <= size * 4.5, `past the budget by one isolate at most (${runtime.isolateMemory} of ${size * 3.5} bytes)`);
    // So is e: the isolate on probation goes first, and b stays again.
    assert.equal(await serve(runtime, 'e'), '1');
    assert.deepEqual(await alive(['a', 'b', 'c', 'd']), [true, true, true, false], 'd, on probation, went first');
    // d asked for again is asked for more often than b, the least recently used, which goes for it.
    assert.equal(await serve(runtime, 'd'), '1');
    assert.deepEqual(await alive(['a', 'b', 'c', 'd', 'e']), [true, false, true, true, false], 'b went for d (and e, on probation, before it)');
    assert.ok(runtime.isolateMemory <= size * 3.5, `the budget holds (${runtime.isolateMemory} of ${size * 3.5} bytes)`);
    // b starts again from its code: a fresh isolate, its old state gone; c, now the least recently used, goes for it.
    assert.equal(await serve(runtime, 'b'), '1');
    assert.equal(await serve(runtime, 'b'), '2');
    assert.deepEqual(await alive(['a', 'b', 'c', 'd']), [true, true, false, true]);
  } finally {
    await runtime.close();
  }
});

test('a budget made smaller while isolates are live disposes the least recently used idle ones at once', async () => {
  const size = await isolateSize();
  const runtime = new Runtime({ memoryBudgetMb: (size * 10) / MB, spareIsolates: 0, reduceIdleMemoryAfterMs: 0, log: () => {} });
  try {
    for (const name of ['a', 'b', 'c', 'd']) await runtime.load(name, { modules: [{ name: 'main.js', source: COUNTER }] }, { validate: false });
    for (const name of ['a', 'b', 'c', 'd']) assert.equal(await serve(runtime, name), '1');
    assert.equal(await serve(runtime, 'a'), '2'); // least recently used now: b, then c
    assert.equal(runtime.liveIsolates, 4);
    runtime.setMemoryBudget((size * 2.5) / MB);
    assert.equal(runtime.isolateMemoryBudget, Math.max(1, (size * 2.5) / MB) * MB);
    assert.deepEqual(
      await Promise.all(['a', 'b', 'c', 'd'].map((name) => live(runtime, name))),
      [true, false, false, true],
      'b and c, the least recently used, went',
    );
    assert.ok(runtime.isolateMemory <= size * 2.5, `the new budget holds (${runtime.isolateMemory} of ${size * 2.5} bytes)`);
    assert.equal(await serve(runtime, 'a'), '3', 'a kept its state');
    for (const bad of [0, -1, Number.NaN, Infinity]) assert.throws(() => runtime.setMemoryBudget(bad), RangeError);
  } finally {
    await runtime.close();
  }
});

test('a rotation over more tenants than fit keeps those that fit, within the budget, rather than starting every one again', async () => {
  const size = await isolateSize();
  const budget = size * 5.5;
  const runtime = new Runtime({ memoryBudgetMb: budget / MB, spareIsolates: 0, reduceIdleMemoryAfterMs: 0, log: () => {} });
  try {
    const names = Array.from({ length: 20 }, (_, i) => `t${i}`);
    for (const name of names) await runtime.load(name, { modules: [{ name: 'main.js', source: COUNTER }] }, { validate: false });
    const answers: string[][] = [];
    for (let round = 0; round < 3; round++) {
      const round_: string[] = [];
      for (const name of names) {
        round_.push(await serve(runtime, name));
        // One isolate on probation may be past the budget while it serves.
        assert.ok(runtime.isolateMemory <= budget + size * 1.5, `after ${name}: ${runtime.isolateMemory} of ${budget} bytes`);
        assert.ok(runtime.liveIsolates <= 7, `after ${name}: ${runtime.liveIsolates} live`);
      }
      answers.push(round_);
    }
    assert.ok(answers[0]!.every((answer) => answer === '1'), 'the first round starts every tenant');
    // Least recently used alone would push out, for each newcomer, the tenant asked for next, so
    // that every request started an isolate; the tenants that fit keep theirs instead.
    for (const [round, expected] of [[1, '2'], [2, '3']] as const) {
      const warm = answers[round]!.filter((answer) => answer === expected).length;
      assert.ok(warm >= 4, `round ${round + 1}: ${warm} tenants were served by the isolate they had (${answers[round]!.join(' ')})`);
      assert.ok(answers[round]!.every((answer) => answer === expected || answer === '1'), answers[round]!.join(' '));
    }
  } finally {
    await runtime.close();
  }
});

test('an isolate with a request in flight, or waitUntil work, is never disposed for the budget', async () => {
  const size = await isolateSize();
  const logs: string[] = [];
  const runtime = new Runtime({
    memoryBudgetMb: (size * 1.5) / MB,
    spareIsolates: 0,
    reduceIdleMemoryAfterMs: 0,
    log: (entry) => void (entry.type === 'console' && logs.push(`${entry.worker}: ${entry.message}`)),
  });
  try {
    await runtime.load('slow', { modules: [{ name: 'main.js', source: SLOW }] });
    await runtime.load('lingering', { modules: [{ name: 'main.js', source: LINGERING }] });
    for (const name of ['x', 'y', 'z']) await runtime.load(name, { modules: [{ name: 'main.js', source: COUNTER }] }, { validate: false });
    // Both are over the budget already, and the least recently used: the first to go, were they idle.
    const slow = runtime.fetch('slow', { method: 'GET', url: 'http://slow.localhost/?ms=1500', headers: [] });
    assert.equal(await serve(runtime, 'lingering', '?ms=1500'), 'lingering');
    for (const name of ['x', 'y', 'z']) {
      assert.equal(await serve(runtime, name), '1');
      assert.ok(await live(runtime, 'slow'), `slow is in flight, kept after ${name}`);
      assert.ok(await live(runtime, 'lingering'), `lingering has waitUntil work, kept after ${name}`);
    }
    assert.equal(await text(await slow), 'slow');
    // Idle now, and over the budget: the next measurement lets them go, least recently used first.
    while (!logs.includes('lingering: waitUntil done')) await new Promise((resolve) => setTimeout(resolve, 20));
    await serve(runtime, 'x');
    assert.equal(await live(runtime, 'slow'), false);
    assert.equal(await live(runtime, 'lingering'), false);
    assert.equal(await live(runtime, 'x'), true);
  } finally {
    await runtime.close();
  }
});
