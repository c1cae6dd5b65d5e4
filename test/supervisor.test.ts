// The supervisor with real runtime processes: placement by tier, deploys that reach a worker's
// home process whole, a process killed or crashed by a worker's fatal V8 error (only what was
// in flight on it fails, a GET of another tenant is sent again to its replacement, its tenants
// are served again, others never notice), quarantine after
// two crashes, bodies streamed both ways, and a drain that ends every process.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { homeIndex, type Tier } from '../src/supervisor/placement.ts';
import { defaultMemoryBudgetMb, LEAST_ISOLATE_MB } from '../src/runtime/runtime.ts';
import { processesFor, RUNTIME_PROCESS_SPARE_ISOLATES } from '../src/supervisor/process-pool.ts';

const MB = 1024 * 1024;
import type { LivenessOptions } from '../src/supervisor/liveness.ts';
import { answer, get, holding, testPool } from './support/pool.ts';
import { bodyText } from './support/fetch-text.ts';
import type { WorkerDefinition } from '../src/runtime/types.ts';

/**
 * A pool of 2 default processes. New code goes home at once unless `untriedRequests` says
 * otherwise: most tests here are about homes and tiers; untried-code.test.ts tries it.
 */
function pool(quarantined: { account: string; worker: string }[] = [], admission?: { inFlight: number; queued: number }, liveness?: LivenessOptions, untriedRequests = 0): ReturnType<typeof testPool> {
  return testPool({ untriedRequests, admission, liveness, onQuarantine: (account, worker) => quarantined.push({ account, worker }) });
}

function worker(source: string, account?: string): WorkerDefinition {
  return { modules: [{ name: 'worker.js', source }], account };
}

function text(body: string): WorkerDefinition {
  return worker(`export default { fetch() { return new Response(${JSON.stringify(body)}); } };`);
}

const read = bodyText;

/** Names whose homes are the given processes of a tier of 2, in order. */
function namesOn(prefix: string, tier: Tier, indexes: number[]): string[] {
  return indexes.map((index) => {
    for (let n = 0; ; n++) if (homeIndex(`${prefix}${n}`, tier, 2) === index) return `${prefix}${n}`;
  });
}

/** A worker that holds a request (and logs that it does) until another asks it to let go. */
const HOLDER = `
let release;
export default { async fetch(request) {
  const path = new URL(request.url).pathname;
  if (path === '/hold') { const held = new Promise((resolve) => { release = resolve; setTimeout(resolve, 60_000); }); console.log('holding'); await held; return new Response('released'); }
  if (path === '/release') release?.();
  return new Response('up');
} };`;

const FATAL = `export default { fetch(request) {
  if (new URL(request.url).pathname === '/crash') 'x'.repeat(2 ** 27 + 16).split('');
  return new Response('alive');
} };`;

test('placement: a worker has one home in its tier, stable across loads; tiers never share a process', { timeout: 60_000 }, async () => {
  const { pool: p } = pool();
  const names = Array.from({ length: 12 }, (_, i) => `tenant${i}`);
  for (const name of names) await p.load(name, text(name));
  for (const name of names.slice(0, 4)) await p.load(`${name}t`, text(name), { tier: 'trusted' });
  const before = names.map((name) => p.placement(name)!.index);
  assert.deepEqual(before, names.map((name) => homeIndex(name, 'default', 2)));
  assert.ok(new Set(before).size === 2, 'twelve workers spread over both processes');
  for (const name of names) await p.load(name, text(`${name} v2`));
  assert.deepEqual(names.map((name) => p.placement(name)!.index), before);

  // Every worker answers from its own process; trusted workers from the trusted tier's.
  for (const name of names) assert.deepEqual(await answer(p, name), { status: 200, text: `${name} v2` });
  for (const name of names.slice(0, 4)) assert.equal((await answer(p, `${name}t`)).text, name);
  const defaultPids = new Set(p.processes('default').map((slot) => slot.pid));
  const trustedPids = names.slice(0, 4).map((name) => p.placement(`${name}t`)!.pid);
  for (const pid of trustedPids) {
    assert.ok(pid !== undefined && !defaultPids.has(pid), 'a trusted worker runs in no default process');
    assert.equal(p.placement(`${names[0]}t`)!.tier, 'trusted');
  }
});

test('deploys and rollbacks reach the home process whole: a request sees one version, and the new one after load resolves', { timeout: 60_000 }, async () => {
  const { pool: p } = pool();
  const version = (n: number) => worker(`const v = ${n}; export default { fetch() { return new Response('v' + v + ':' + 'v' + v); } };`);
  await p.load('site', version(1));
  assert.equal((await answer(p, 'site')).text, 'v1:v1');
  for (let n = 2; n <= 6; n++) {
    const during = Array.from({ length: 10 }, () => answer(p, 'site'));
    await p.load('site', version(n));
    assert.equal((await answer(p, 'site')).text, `v${n}:v${n}`, 'after load resolves every request sees the new version');
    for (const seen of await Promise.all(during)) assert.match(seen.text, new RegExp(`^v(${n - 1}:v${n - 1}|${n}:v${n})$`));
  }
  // A rollback is a load of the older definition.
  await p.load('site', version(1));
  assert.equal((await answer(p, 'site')).text, 'v1:v1');
  await p.unload('site');
  await assert.rejects(p.fetch('site', get()), { code: 'ERR_UNKNOWN_WORKER' });
});

test('bodies stream both ways through the runtime process', { timeout: 60_000 }, async () => {
  const { pool: p } = pool();
  await p.load('echo', worker(`export default { async fetch(request) {
    if (request.method === 'POST') return new Response(request.body);
    const { readable, writable } = new TransformStream();
    (async () => { const w = writable.getWriter(); for (let i = 0; i < 64; i++) await w.write(new Uint8Array(64 * 1024).fill(97 + (i % 26))); await w.close(); })();
    return new Response(readable);
  } };`));
  const size = 3 * 1024 * 1024 + 7;
  async function* upload(): AsyncIterable<Uint8Array> {
    for (let sent = 0; sent < size; sent += 100_000) yield new Uint8Array(Math.min(100_000, size - sent)).fill(120);
  }
  const echoed = await p.fetch('echo', { method: 'POST', url: 'https://echo.example/', headers: [], body: upload() });
  assert.equal(echoed.status, 200);
  const text = await read(echoed);
  assert.equal(text.length, size);
  assert.ok(/^x+$/.test(text));
  const streamed = await p.fetch('echo', get());
  assert.ok(!(streamed.body instanceof Uint8Array) && streamed.body !== null, 'a large response streams');
  assert.equal((await read(streamed)).length, 64 * 64 * 1024);
  // A reader that stops early cancels the worker's stream, and the process serves on.
  const cut = await p.fetch('echo', get());
  for await (const _chunk of cut.body as AsyncIterable<Uint8Array>) break;
  assert.equal((await answer(p, 'echo', { ...get(), method: 'POST', body: 'again' })).text, 'again');
});

test('a runtime process killed with SIGKILL: only its request in flight fails (502, saying why), a GET in flight is sent again to its replacement, the other process keeps answering, and it is restarted with its workers', { timeout: 90_000 }, async () => {
  const { pool: p, lines, logs } = pool();
  const [victim, bystander] = namesOn('kill', 'default', [0, 1]);
  await p.load(victim!, worker(HOLDER));
  await p.load(bystander!, worker(HOLDER));
  assert.equal((await answer(p, victim!)).text, 'up');
  assert.equal((await answer(p, bystander!)).text, 'up');
  const slot = p.processes('default')[0]!;
  const firstPid = slot.pid;

  // A POST may have changed something before the process died: it is not sent again.
  const held = answer(p, victim!, { ...get('/hold'), method: 'POST' });
  await holding(logs, victim!);
  const heldGet = answer(p, victim!, get('/hold'));
  await holding(logs, victim!, 2);
  const heldElsewhere = answer(p, bystander!, get('/hold'));
  await holding(logs, bystander!);
  slot.kill('SIGKILL');
  const failed = await held;
  assert.equal(failed.status, 502);
  assert.match(failed.text, /runtime process serving this worker ended while the request was in flight \(killed by SIGKILL\)/);
  // Meanwhile the other process answers, and its held request is untouched.
  assert.equal((await answer(p, bystander!)).text, 'up');

  // The GET runs again on the new process, which got the worker's code again.
  await holding(logs, victim!, 3);
  assert.notEqual(slot.pid, firstPid);
  assert.equal(slot.starts, 2);
  assert.equal((await answer(p, victim!, get('/release'))).text, 'up');
  assert.deepEqual(await heldGet, { status: 200, text: 'released' });
  assert.deepEqual(await answer(p, victim!), { status: 200, text: 'up' });
  const ended = lines.find((line) => line.message === 'runtime process ended; restarting');
  assert.ok(ended);
  assert.equal(ended.fields.signal, 'SIGKILL');
  assert.equal(ended.fields.restartInMs, 0);
  assert.equal(ended.fields.requestsFailed, 1, 'the POST; the GET was sent again');

  // The bystander's request, in flight all along on the other process, finishes normally.
  assert.equal((await answer(p, bystander!, get('/release'))).text, 'up');
  assert.deepEqual(await heldElsewhere, { status: 200, text: 'released' });
  assert.equal(p.processes('default')[1]!.starts, 1);
});

test('a killed runtime process is replaced as soon as the kernel is ending it, not once its teardown closes its channel', { timeout: 90_000, skip: process.platform !== 'linux' && 'reads /proc' }, async (t) => {
  // A process that frees gigabytes closes its channel only once they are freed (exit-watch.ts).
  // Here a grandchild holds the channel open for as long, and pings are too rare to notice.
  const dir = mkdtempSync(join(tmpdir(), 'isolet-exit-'));
  const marker = join(dir, 'holder');
  const holdChannel = `import { openSync, writeSync, closeSync } from 'node:fs';
import { spawn } from 'node:child_process';
let fd; try { fd = openSync(${JSON.stringify(marker)}, 'wx'); } catch {}
if (fd !== undefined) { const holder = spawn('sleep', ['120'], { stdio: ['ignore', 'ignore', 'ignore', 3] }); holder.unref(); writeSync(fd, String(holder.pid)); closeSync(fd); }`;
  const { pool: p, lines, logs } = testPool({
    processes: 1, spare: false, untriedRequests: 0, liveness: { intervalMs: 600_000, timeoutMs: 600_000 },
    execArgv: ['--import', `data:text/javascript,${encodeURIComponent(holdChannel)}`],
  });
  let holderPid = 0;
  t.after(() => {
    try {
      if (holderPid > 0) process.kill(holderPid, 'SIGKILL');
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  });
  await p.load('watched', worker(HOLDER));
  assert.equal((await answer(p, 'watched')).text, 'up');
  holderPid = Number(readFileSync(marker, 'utf8'));
  assert.ok(holderPid > 0);
  const heldGet = answer(p, 'watched', get('/hold'));
  await holding(logs, 'watched');
  const slot = p.processes('default')[0]!;
  slot.kill('SIGKILL');
  // The GET in flight runs again on the replacement while the old channel is still open.
  await holding(logs, 'watched', 2);
  assert.equal(slot.starts, 2);
  assert.doesNotThrow(() => process.kill(holderPid, 0), 'the old process\'s channel was still open');
  assert.equal((await answer(p, 'watched', get('/release'))).text, 'up');
  assert.deepEqual(await heldGet, { status: 200, text: 'released' });
  const ended = lines.filter((line) => line.message === 'runtime process ended; restarting');
  assert.deepEqual(ended.map((line) => [line.fields.signal, line.fields.requestsFailed]), [['SIGKILL', 0]]);
});

test('a runtime process that stops answering (SIGSTOP) is killed as hung and restarted: its request in flight gets 502, the other process never notices', { timeout: 90_000 }, async () => {
  // Short beats so the test is quick; a loaded machine only delays the verdict, never makes a healthy process miss 2 s of pings.
  const { pool: p, lines, logs } = pool([], undefined, { intervalMs: 100, timeoutMs: 2_000 });
  const [victim, bystander] = namesOn('hang', 'default', [0, 1]);
  await p.load(victim!, worker(HOLDER));
  await p.load(bystander!, worker(HOLDER));
  assert.equal((await answer(p, victim!)).text, 'up');
  assert.equal((await answer(p, bystander!)).text, 'up');
  const slot = p.processes('default')[0]!;
  const stoppedPid = slot.pid!;

  const held = answer(p, victim!, get('/hold'));
  await holding(logs, victim!);
  process.kill(stoppedPid, 'SIGSTOP');
  try {
    const failed = await held;
    assert.equal(failed.status, 502);
    assert.match(failed.text, /killed by SIGKILL/);
  } finally {
    // Never leave a stopped process behind if the supervisor did not kill it.
    try { process.kill(stoppedPid, 'SIGKILL'); } catch {}
  }
  const hung = lines.find((line) => line.message === 'runtime process stopped answering; killed');
  assert.ok(hung, 'the hang is logged');
  assert.equal(hung.fields.pid, stoppedPid);
  assert.ok((hung.fields.silentMs as number) >= 2_000);
  assert.equal(hung.fields.inFlight, 1);
  // Served again from a new process; the other process was never touched.
  assert.deepEqual(await answer(p, victim!), { status: 200, text: 'up' });
  assert.notEqual(slot.pid, stoppedPid);
  assert.equal((await answer(p, bystander!)).text, 'up');
  assert.equal(p.processes('default')[1]!.starts, 1);
});

test('a worker whose code is a fatal V8 error: its request gets 502 naming it, another tenant keeps being served, and two crashes move its account to quarantine', { timeout: 120_000 }, async () => {
  const quarantined: { account: string; worker: string }[] = [];
  const { pool: p, lines } = pool(quarantined);
  // One tenant shares the crasher's process, another lives on the other one.
  const [crasher, sameProcess, elsewhere] = [namesOn('fatal', 'default', [0])[0]!, namesOn('near', 'default', [0])[0]!, namesOn('other', 'default', [1])[0]!];
  await p.load(crasher, worker(FATAL, 'mallory'));
  await p.load(`${crasher}b`, { ...text('mallory too'), account: 'mallory' });
  await p.load(sameProcess, text('near'));
  await p.load(elsewhere, text('elsewhere'));
  assert.equal((await answer(p, crasher)).text, 'alive');
  assert.equal((await answer(p, sameProcess)).text, 'near');

  for (let crash = 1; crash <= 2; crash++) {
    const outcome = await answer(p, crasher, get('/crash'));
    assert.equal(outcome.status, 502);
    assert.match(outcome.text, /worker's code caused a fatal error that ended its runtime process/);
    // The tenant on the other process never noticed; the one on the same process is served by its restart.
    assert.equal((await answer(p, elsewhere)).text, 'elsewhere');
    assert.equal((await answer(p, sameProcess)).text, 'near');
  }
  const ends = lines.filter((line) => line.message === 'runtime process ended; restarting');
  assert.equal(ends.length, 2);
  assert.equal(ends[0]!.fields.worker, crasher);
  assert.equal(ends[0]!.fields.account, 'mallory');
  assert.deepEqual(quarantined, [{ account: 'mallory', worker: crasher }]);
  assert.ok(lines.some((line) => line.level === 'warn' && line.message.startsWith('account quarantined')));

  // Every worker of the account now runs in the quarantine tier's process, apart from the others.
  assert.equal(p.placement(crasher)!.tier, 'quarantine');
  assert.equal(p.placement(`${crasher}b`)!.tier, 'quarantine');
  assert.equal(p.placement(sameProcess)!.tier, 'default');
  assert.equal((await answer(p, `${crasher}b`)).text, 'mallory too');
  assert.equal((await answer(p, crasher)).text, 'alive');
  const quarantinePid = p.placement(crasher)!.pid;
  assert.ok(quarantinePid !== undefined && !p.processes('default').some((slot) => slot.pid === quarantinePid));
  // A third crash takes down only the quarantine process.
  const defaultStarts = p.processes('default').map((slot) => slot.starts);
  assert.equal((await answer(p, crasher, get('/crash'))).status, 502);
  assert.equal((await answer(p, sameProcess)).text, 'near');
  assert.deepEqual(p.processes('default').map((slot) => slot.starts), defaultStarts);
});

test('close drains: a request in flight finishes, then every runtime process exits', { timeout: 60_000 }, async () => {
  const { pool: p, logs } = pool();
  await p.load('slow', worker(`export default { async fetch() { console.log('holding'); await new Promise((r) => setTimeout(r, 300)); return new Response('finished'); } };`));
  const pids = p.processes('default').map((slot) => slot.pid!);
  const inFlight = answer(p, 'slow');
  await holding(logs, 'slow');
  await p.close();
  assert.deepEqual(await inFlight, { status: 200, text: 'finished' });
  for (const pid of pids) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
});

test('a worker past its requests in flight and its queue gets 503 with Retry-After at once; its queue is served in turn, and other workers never wait', { timeout: 60_000 }, async () => {
  const { pool: p, logs } = pool([], { inFlight: 2, queued: 1 });
  // Holds a request until its client goes away (a pending timer keeps it from counting as never answered).
  await p.load('busy', worker(`export default { async fetch(request) {
    if (new URL(request.url).pathname === '/hold') { console.log('holding'); await new Promise((resolve) => { request.signal.addEventListener('abort', resolve); setTimeout(resolve, 60_000); }); return new Response('let go'); }
    return new Response('up');
  } };`));
  await p.load('quiet', text('quiet'));
  const clients = [new AbortController(), new AbortController()];
  const first = clients.map((client) => answer(p, 'busy', { ...get('/hold'), signal: client.signal }));
  while (logs.filter((entry) => entry.worker === 'busy' && entry.message === 'holding').length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
  const queued = answer(p, 'busy', get('/'));
  const refused = await p.fetch('busy', get('/'));
  assert.equal(refused.status, 503);
  assert.deepEqual(refused.headers.find(([name]) => name === 'retry-after'), ['retry-after', '1']);
  assert.match(await read(refused), /2 requests in flight and 1 waiting, the most it may have/);
  // Another worker is admitted at once.
  assert.equal((await answer(p, 'quiet')).text, 'quiet');
  // The first client leaves: its slot goes to the queued request.
  clients[0]!.abort();
  assert.deepEqual(await queued, { status: 200, text: 'up' });
  clients[1]!.abort();
  await Promise.all(first);
  assert.equal((await answer(p, 'busy')).text, 'up');
});

test('a process restarted too often backs off: logged, and its workers get 503 with Retry-After until it is back', { timeout: 90_000 }, async () => {
  const { pool: p, lines } = pool();
  const [name] = namesOn('flaky', 'default', [0]);
  await p.load(name!, text('back'));
  const slot = p.processes('default')[0]!;
  // Five kills in a row: the fourth restart waits 1 s, the fifth 2 s (room enough to be seen on a loaded machine).
  const servedAgain = async () => {
    let back = await answer(p, name!);
    while (back.status === 503) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      back = await answer(p, name!);
    }
    return back;
  };
  for (let kill = 1; kill <= 5; kill++) {
    assert.deepEqual(await servedAgain(), { status: 200, text: 'back' });
    const ended = lines.filter((line) => line.message === 'runtime process ended; restarting').length;
    slot.kill('SIGKILL');
    while (lines.filter((line) => line.message === 'runtime process ended; restarting').length === ended) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  // Restarts past three a minute wait: the process is reported, and its workers are told when to come back.
  const backoffs = lines.filter((line) => line.message === 'runtime process restarted too often: backing off');
  assert.deepEqual(backoffs.map((line) => [line.level, line.fields.restartInMs]), [['warn', 1000], ['warn', 2000]]);
  const refused = await p.fetch(name!, get());
  assert.equal(refused.status, 503);
  assert.match(refused.headers.find(([header]) => header === 'retry-after')![1], /^[12]$/);
  assert.match(await read(refused), /crashed repeatedly and restarts in [12] s/);
  // Then it is back, with the worker's code sent again.
  assert.deepEqual(await servedAgain(), { status: 200, text: 'back' });
  assert.equal(slot.starts, 6);
});

test('a tier whose workers would not fit in its processes gets more, and a moved worker answers from its new home', { timeout: 90_000 }, async () => {
  // Three live isolates per process at most: a process fits 2.4 workers (processesFor), so 7 need 3.
  const { pool: p, lines } = testPool({ processes: 1, runtime: { limits: { cpuMs: 5000 }, maxIsolates: 3 }, spare: false, untriedRequests: 0 });
  const names = Array.from({ length: 7 }, (_, i) => `grown${i}`);
  await p.load(names[0]!, text(names[0]!));
  assert.deepEqual(await answer(p, names[0]!), { status: 200, text: names[0] });
  for (const name of names.slice(1)) await p.load(name, text(name));
  assert.equal(p.processes('default').length, 3);
  assert.ok(lines.some((line) => line.message.startsWith('tier grew') && line.fields.processes === 3), 'the growth is logged');
  // Homes are the rendezvous hash over the grown tier: the first worker moved if it scores highest on a new process.
  assert.deepEqual(names.map((name) => p.placement(name)!.index), names.map((name) => homeIndex(name, 'default', 3)));
  for (const name of names) assert.deepEqual(await answer(p, name), { status: 200, text: name });
  const pids = new Set(names.map((name) => p.placement(name)!.pid));
  assert.equal(pids.size, 3, 'the workers are spread over the three processes');
});

test('processesFor: enough processes for the workers, but no more than the shared memory budget can fill', () => {
  // Each process holds at most 80% of maxIsolates on average.
  assert.equal(processesFor(7, 3), 3);
  assert.equal(processesFor(100_000, 2500), 50);
  // 9,400 MB holds at most 9,400 / LEAST_ISOLATE_MB isolates (6,714): 4 processes fit them.
  assert.equal(Math.floor(9400 / LEAST_ISOLATE_MB), 6714);
  assert.equal(processesFor(100_000, 2500, 9400), 4);
  assert.equal(processesFor(3000, 2500, 9400), 2);
  assert.equal(processesFor(0, 2500, 9400), 0);
  // A budget that holds more isolates than there are workers does not add processes.
  assert.equal(processesFor(7, 3, 1_000_000), 3);
});

test('a tier grows no further than its shared memory budget can fill, and every worker is still served', { timeout: 90_000 }, async () => {
  // 5 MB holds 3 isolates of LEAST_ISOLATE_MB: 2 processes of 3 isolates fit them, where the 7
  // workers alone would need 3 (the test above the previous one).
  const { pool: p, lines } = testPool({ processes: 1, runtime: { limits: { cpuMs: 5000 }, maxIsolates: 3 }, sharedMemoryBudgetMb: 5, spare: false, untriedRequests: 0 });
  const names = Array.from({ length: 7 }, (_, i) => `capped${i}`);
  for (const name of names) await p.load(name, text(name));
  assert.equal(p.processes('default').length, 2);
  assert.deepEqual(lines.filter((line) => line.message.startsWith('tier grew')).map((line) => line.fields.processes), [2]);
  assert.deepEqual(names.map((name) => p.placement(name)!.index), names.map((name) => homeIndex(name, 'default', 2)));
  for (const name of names) assert.deepEqual(await answer(p, name), { status: 200, text: name });
});

test('with a memory budget per process, a tier grows to no more processes than the machine holds budgets of, and says so', { timeout: 90_000 }, async () => {
  // 250 MB holds two budgets of 100 MB: 7 workers, which would need 3 processes of 3 isolates, get 2.
  const { pool: p, lines } = testPool({ processes: 1, runtime: { limits: { cpuMs: 5000 }, maxIsolates: 3, memoryBudgetMb: 100 }, machineMemoryMb: 250, spare: false, untriedRequests: 0 });
  const names = Array.from({ length: 7 }, (_, i) => `budgeted${i}`);
  for (const name of names) await p.load(name, text(name));
  assert.equal(p.processes('default').length, 2);
  const stopped = lines.filter((line) => line.message.startsWith('tier not grown'));
  assert.deepEqual(stopped.map((line) => [line.level, line.fields.processes, line.fields.wouldNeed, line.fields.memoryBudgetMb]), [['warn', 2, 3, 100]]);
  for (const name of names) assert.deepEqual(await answer(p, name), { status: 200, text: name });
});

test('a runtime process keeps no esbuild service once its runtime image is made', { timeout: 60_000, skip: !existsSync('/proc/self/task') && 'needs /proc' }, async () => {
  const { pool: p } = testPool({ processes: 1, spare: false, untriedRequests: 0 });
  await p.load('lean', text('lean'));
  assert.deepEqual(await answer(p, 'lean'), { status: 200, text: 'lean' });
  const pid = p.placement('lean')!.pid!;
  // A thread that ends between the listing and the read has no children to tell.
  const childrenOf = (task: string) => {
    try {
      return readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(' ').filter(Boolean);
    } catch {
      return [];
    }
  };
  const children = () => readdirSync(`/proc/${pid}/task`).flatMap(childrenOf);
  // The service is stopped before the process says it is ready; its exit is reaped soon after.
  for (let waited = 0; children().length > 0 && waited < 10_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(children().map((child) => { try { return readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0')[0]; } catch { return child; } }), []);
  // The image is made: later isolates need no bundling.
  await p.load('lean2', text('lean2'));
  assert.deepEqual(await answer(p, 'lean2'), { status: 200, text: 'lean2' });
  assert.deepEqual(children(), []);
});

test('a runtime process makes its spare isolates while it waits, before any request', { timeout: 60_000 }, async () => {
  const spares = new Map<string, number>();
  const { pool: p } = testPool({ processes: 1, spare: false, untriedRequests: 0, stats: (label, batch) => void spares.set(label, batch.isolates.spare) });
  for (let waited = 0; spares.get('default/0') !== RUNTIME_PROCESS_SPARE_ISOLATES && waited < 45_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(spares.get('default/0'), RUNTIME_PROCESS_SPARE_ISOLATES, 'made ahead of the first request');
  // Each of the first tenants starts from one (then refilled when no cold start is under way).
  const names = Array.from({ length: 4 }, (_, i) => `ahead${i}`);
  for (const name of names) await p.load(name, text(name));
  assert.deepEqual(await Promise.all(names.map((name) => answer(p, name))), names.map((name) => ({ status: 200, text: name })));
});

test('after a takeover the next spare starts a few seconds later, leaving the machine to the process that took over', { timeout: 90_000 }, async () => {
  let pool: ReturnType<typeof testPool>['pool'] | undefined;
  const takeovers: { spareAtTakeover: unknown }[] = [];
  const { pool: p } = testPool({
    processes: 1, untriedRequests: 0,
    // Read as the slot logs its start, in the same turn as the takeover.
    log: (_level, message, fields) => {
      if (message === 'runtime process started' && fields.spare === true) takeovers.push({ spareAtTakeover: pool!.spare });
    },
  });
  pool = p;
  for (let waited = 0; p.spare?.ready !== true; waited += 20) {
    assert.ok(waited < 60_000, 'the spare becomes ready');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const firstSpare = p.spare!.pid;
  await p.load('taken', text('taken'));
  assert.deepEqual(await answer(p, 'taken'), { status: 200, text: 'taken' });
  p.processes('default')[0]!.kill('SIGKILL');
  for (let waited = 0; takeovers.length === 0; waited += 10) {
    assert.ok(waited < 30_000, 'the spare takes over');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(p.processes('default')[0]!.pid, firstSpare);
  assert.deepEqual(takeovers, [{ spareAtTakeover: undefined }], 'no spare is started in the same turn');
  assert.deepEqual(await answer(p, 'taken'), { status: 200, text: 'taken' });
  // Then a new one is started, and becomes ready.
  for (let waited = 0; p.spare?.ready !== true; waited += 20) {
    assert.ok(waited < 60_000, 'a new spare becomes ready');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.notEqual(p.spare!.pid, firstSpare);
});

test('when a tier grows, every running process gets the new share of the memory budget', { timeout: 90_000 }, async () => {
  const budgets = new Map<string, number>();
  const { pool: p } = testPool({ processes: 1, runtime: { limits: { cpuMs: 5000 }, maxIsolates: 3 }, spare: false, untriedRequests: 0, stats: (label, batch) => void budgets.set(label, batch.isolates.budgetBytes) });
  await p.load('share0', text('share0'));
  assert.deepEqual(await answer(p, 'share0'), { status: 200, text: 'share0' });
  // A process reports its budget with its next stats batch, within a second or so of a change.
  const untilReported = async (label: string, bytes: number) => {
    for (let waited = 0; budgets.get(label) !== bytes && waited < 30_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(budgets.get(label), bytes, `${label} reports the budget it holds to`);
  };
  await untilReported('default/0', defaultMemoryBudgetMb(1) * MB);
  // 7 workers need 3 processes (as in the test above): the first one, running, gets a third of the share it had.
  for (let i = 1; i < 7; i++) await p.load(`share${i}`, text(`share${i}`));
  assert.equal(p.processes('default').length, 3);
  for (let i = 0; i < 7; i++) assert.deepEqual(await answer(p, `share${i}`), { status: 200, text: `share${i}` });
  for (const label of ['default/0', 'default/1', 'default/2']) await untilReported(label, defaultMemoryBudgetMb(3) * MB);
});
