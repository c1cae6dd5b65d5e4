// New code is tried apart: a default-tier worker's new version serves its first requests in the
// untried runtime process, which runs at a lower CPU priority, and moves to its home once they
// ended cleanly. Code that crashes V8, loops or blows its memory from its first request on
// never reaches the processes of tenants that are serving: their requests in flight finish and
// their processes are never restarted for it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getPriority } from 'node:os';
import { UNTRIED_NICE } from '../src/supervisor/placement.ts';
import type { WorkerDefinition } from '../src/runtime/types.ts';
import { answer, get, holding, testPool } from './support/pool.ts';

const pool = (untriedRequests?: number) => testPool({ untriedRequests });

function worker(source: string, account?: string, limits?: WorkerDefinition['limits']): WorkerDefinition {
  return { modules: [{ name: 'worker.js', source }], account, limits };
}

/** Serves `/hold` until `/release`; `/loop` loops; `/crash` ends its process with a fatal V8 error; else 'up'. */
const WORKER = `
let release;
export default { async fetch(request) {
  const path = new URL(request.url).pathname;
  if (path === '/hold') { const held = new Promise((resolve) => { release = resolve; setTimeout(resolve, 60_000); }); console.log('holding'); await held; return new Response('released'); }
  if (path === '/release') release?.();
  if (path === '/loop') for (;;) {}
  if (path === '/crash') 'x'.repeat(2 ** 27 + 16).split('');
  return new Response('up');
} };`;

test('a new worker answers its first request from the untried process, which runs at a lower CPU priority, then from its home', { timeout: 60_000 }, async () => {
  const { pool: p, lines } = pool();
  const untried = p.processes('untried');
  assert.equal(untried.length, 1);
  await p.load('fresh', worker(WORKER));
  assert.equal(p.placement('fresh')!.tier, 'untried');
  assert.deepEqual(await answer(p, 'fresh'), { status: 200, text: 'up' });
  const untriedPid = untried[0]!.pid!;
  assert.equal(getPriority(untriedPid), UNTRIED_NICE, 'the untried process is niced');
  for (const slot of p.processes('default')) assert.equal(getPriority(slot.pid!), getPriority(process.pid), 'the default ones are not');

  const home = p.placement('fresh')!;
  assert.equal(home.tier, 'default');
  assert.deepEqual(await answer(p, 'fresh'), { status: 200, text: 'up' });
  assert.ok(p.processes('default').some((slot) => slot.pid === p.placement('fresh')!.pid), 'served from a default process');
  assert.ok(lines.some((line) => line.message.startsWith('worker served cleanly in the untried processes') && line.fields.worker === 'fresh'));

  // A new version is new code: tried again. The same code loaded again (other secrets) is not.
  await p.load('fresh', worker(WORKER.replace("'up'", "'up v2'")), { code: 'v2' });
  assert.equal(p.placement('fresh')!.tier, 'untried');
  assert.equal((await answer(p, 'fresh')).text, 'up v2');
  assert.equal(p.placement('fresh')!.tier, 'default');
  await p.load('fresh', { ...worker(WORKER.replace("'up'", "'up v2'")), vars: { SECRET: 'rotated' } }, { code: 'v2' });
  assert.equal(p.placement('fresh')!.tier, 'default');
  // Code that served before the server started, and a trusted account's, go home at once.
  await p.load('known', worker(WORKER), { tried: true });
  assert.equal(p.placement('known')!.tier, 'default');
  await p.load('vouched', worker(WORKER), { tier: 'trusted' });
  assert.equal(p.placement('vouched')!.tier, 'trusted');
  assert.equal((await answer(p, 'vouched')).text, 'up');
});

test('code that crashes V8 on its first request ends only the untried process: a serving tenant\'s request in flight finishes, and no default process restarts', { timeout: 90_000 }, async () => {
  const { pool: p, logs } = pool();
  await p.load('serving', worker(WORKER, 'alice'));
  assert.equal((await answer(p, 'serving')).text, 'up');
  assert.equal(p.placement('serving')!.tier, 'default');
  const held = answer(p, 'serving', get('/hold'));
  await holding(logs, 'serving');
  const starts = p.processes('default').map((slot) => slot.starts);

  await p.load('bomb', worker(WORKER, 'mallory', { cpuMs: 5000 }));
  const crashed = await answer(p, 'bomb', get('/crash'));
  assert.equal(crashed.status, 502);
  assert.match(crashed.text, /fatal error that ended its runtime process/);
  assert.equal(p.placement('bomb')!.tier, 'untried', 'a crash is not a clean request: still untried');
  assert.equal(p.processes('untried')[0]!.starts, 2, 'the untried process was restarted');

  assert.equal((await answer(p, 'serving', get('/release'))).text, 'up');
  assert.deepEqual(await held, { status: 200, text: 'released' });
  assert.deepEqual(p.processes('default').map((slot) => slot.starts), starts, 'no default process restarted');
});

test('code another worker was seen to run cleanly goes home at once; code whose worker crashed a process is tried again', { timeout: 90_000 }, async () => {
  const { pool: p } = pool();
  // One bundle deployed for many customers: the first to be asked for tries it.
  await p.load('customer-a', worker(WORKER, 'a', { cpuMs: 5000 }), { code: 'template' });
  await p.load('customer-c', worker(WORKER, 'c', { cpuMs: 5000 }), { code: 'template' });
  assert.equal(p.placement('customer-a')!.tier, 'untried');
  assert.equal((await answer(p, 'customer-a')).text, 'up');
  assert.equal(p.placement('customer-a')!.tier, 'default');
  // Loaded with it, before its trial ended: home from its first request on.
  assert.equal(p.placement('customer-c')!.tier, 'default');
  assert.equal((await answer(p, 'customer-c')).text, 'up');
  // Loaded after: home at once.
  await p.load('customer-b', worker(WORKER, 'b', { cpuMs: 5000 }), { code: 'template' });
  assert.equal(p.placement('customer-b')!.tier, 'default', 'the same code, tried by another worker: home at once');
  assert.equal((await answer(p, 'customer-b')).text, 'up');
  // Other code is still tried.
  await p.load('other', worker(WORKER.replace("'up'", "'other'"), 'c'), { code: 'another' });
  assert.equal(p.placement('other')!.tier, 'untried');

  // A worker of the template crashes its home process: the template is new code again.
  assert.equal((await answer(p, 'customer-b', get('/crash'))).status, 502);
  await p.load('customer-d', worker(WORKER, 'd'), { code: 'template' });
  assert.equal(p.placement('customer-d')!.tier, 'untried');
});

test('a request that ends at a limit starts the count again; an upload is checked in the untried process', { timeout: 90_000 }, async () => {
  const { pool: p } = pool(2);
  await p.load('looper', worker(WORKER, 'bob', { cpuMs: 50 }));
  assert.equal((await answer(p, 'looper')).text, 'up');
  assert.equal(p.placement('looper')!.tier, 'untried', 'one clean request of two');
  const stopped = await answer(p, 'looper', get('/loop'));
  assert.equal(stopped.status, 503);
  assert.equal(p.placement('looper')!.tier, 'untried');
  assert.equal((await answer(p, 'looper')).text, 'up');
  assert.equal(p.placement('looper')!.tier, 'untried', 'the limit started the count again: one of two');
  assert.equal((await answer(p, 'looper')).text, 'up');
  assert.equal(p.placement('looper')!.tier, 'default');

  // An upload whose top-level code crashes V8 ends the untried process, never a default one.
  const starts = p.processes('default').map((slot) => slot.starts);
  await assert.rejects(
    p.validate('trojan', worker(`'x'.repeat(2 ** 27 + 16).split(''); export default { fetch() { return new Response('never'); } };`, 'eve', { startupCpuMs: 5000 })),
    /could not be checked/,
  );
  assert.deepEqual(p.processes('default').map((slot) => slot.starts), starts);
  assert.equal((await answer(p, 'looper')).text, 'up');
});

test('untriedRequests 0: no untried process, new code goes home at once', { timeout: 60_000 }, async () => {
  const { pool: p } = pool(0);
  assert.equal(p.processes('untried').length, 0);
  await p.load('direct', worker(WORKER));
  assert.equal(p.placement('direct')!.tier, 'default');
  assert.equal((await answer(p, 'direct')).text, 'up');
});

test('an upload waits out the untried process\'s back-off, which others\' crashes caused, instead of failing', { timeout: 120_000 }, async () => {
  // Each crash takes seconds of CPU to reach V8's fatal error: on a loaded machine four of them
  // have taken more than the default minute, and the oldest restart was forgotten.
  const { pool: p, lines } = testPool({ restartWindowMs: 10 * 60_000 });
  // Four accounts' new code crashes the untried process once each: the fourth restart in a minute backs off.
  for (let i = 0; i < 4; i++) {
    await p.load(`bomb${i}`, worker(WORKER, `mallory${i}`, { cpuMs: 5000 }));
    assert.equal((await answer(p, `bomb${i}`, get('/crash'))).status, 502);
  }
  assert.ok(lines.some((line) => line.message.startsWith('runtime process restarted too often') && line.fields.process === 'untried/0'));
  assert.equal((await answer(p, 'bomb0')).status, 503, 'the untried process is backing off');
  // The check of an upload waits for the restart and then runs.
  await p.validate('newcomer', worker(WORKER, 'carol'));
  await p.load('newcomer', worker(WORKER, 'carol'));
  assert.deepEqual(await answer(p, 'newcomer'), { status: 200, text: 'up' });
});
