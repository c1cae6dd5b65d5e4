// Service bindings between runtime processes (the ProcessPool `isolet serve` runs): calls go
// through the control process, which resolves each against what it deployed; bodies stream both
// ways; a target process that dies mid-call fails only that call.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { ProcessPool } from '../src/supervisor/process-pool.ts';
import { homeIndex } from '../src/supervisor/placement.ts';
import type { RuntimeRequest, WorkerDefinition, WorkerLogEntry } from '../src/runtime/types.ts';
import { bodyText } from './support/fetch-text.ts';

const pools: ProcessPool[] = [];
after(() => Promise.all(pools.map((pool) => pool.close())));

function pool(): { pool: ProcessPool; logs: WorkerLogEntry[] } {
  const logs: WorkerLogEntry[] = [];
  // New code goes home at once: these tests place workers in given processes (untried-code.test.ts tries it).
  const made = new ProcessPool({ processes: 2, untriedRequests: 0, runtime: { limits: { cpuMs: 5000 } }, workerLog: (entry) => logs.push(entry), log: () => {} });
  pools.push(made);
  return { pool: made, logs };
}

function worker(source: string, account: string, bindings?: WorkerDefinition['bindings']): WorkerDefinition {
  return { modules: [{ name: 'worker.js', source }], account, ...(bindings === undefined ? {} : { bindings }) };
}

/** A name whose home is process `index` of the default tier of 2. */
function nameOn(prefix: string, index: number): string {
  for (let n = 0; ; n++) if (homeIndex(`${prefix}${n}`, 'default', 2) === index) return `${prefix}${n}`;
}

const read = bodyText;

function get(path = '/'): RuntimeRequest {
  return { method: 'GET', url: `https://example.com${path}`, headers: [] };
}

test('fetch and RPC between workers in different runtime processes', { timeout: 60_000 }, async () => {
  const { pool: p } = pool();
  const caller = nameOn('caller', 0);
  const target = nameOn('target', 1);
  await p.load(target, worker(`
import { WorkerEntrypoint } from 'cloudflare:workers';
export class Api extends WorkerEntrypoint { add(a, b) { return a + b; } bytes(n) { return new Uint8Array(n).fill(7); } boom() { throw new TypeError('no'); } }
export default { async fetch(request) { return new Response('target got ' + request.method + ' ' + (await request.text()).length); } };`, 'acme'));
  await p.load(caller, worker(`export default { async fetch(request, env) {
    const big = 'x'.repeat(1024 * 1024);
    const r = await env.T.fetch('https://t/', { method: 'POST', body: big });
    const sum = await env.API.add(20, 22);
    const bytes = await env.API.bytes(5);
    let error; try { await env.API.boom(); } catch (e) { error = e.name + ': ' + e.message; }
    return new Response([await r.text(), sum, bytes.constructor.name, bytes.byteLength, bytes.buffer.byteLength, error].join('|'));
  } };`, 'acme', { T: { type: 'service', service: target }, API: { type: 'service', service: target, entrypoint: 'Api' } }));
  const response = await p.fetch(caller, get());
  assert.equal(await read(response), `target got POST ${1024 * 1024}|42|Uint8Array|5|5|TypeError: no`);
  assert.notEqual(p.placement(caller)!.index, p.placement(target)!.index);
});

test('a target process that dies mid-call fails only that call; the caller and other calls go on', { timeout: 90_000 }, async () => {
  const { pool: p, logs } = pool();
  const caller = nameOn('hub', 0);
  const doomed = nameOn('doomed', 1);
  const steady = nameOn('steady', 0);
  await p.load(doomed, worker(`export default {
    async fetch(request) { console.log('in'); await new Promise((resolve) => setTimeout(resolve, 60_000)); return new Response('late'); },
    async slow() { console.log('in'); await new Promise((resolve) => setTimeout(resolve, 60_000)); return 'late'; },
  };`, 'acme'));
  await p.load(steady, worker(`export default { fetch() { return new Response('steady'); }, ping() { return 'pong'; } };`, 'acme'));
  await p.load(caller, worker(`export default { async fetch(request, env) {
    const path = new URL(request.url).pathname;
    try {
      // A POST: a GET without a body would be sent again to the replacement process, as the front's are.
      if (path === '/fetch') return new Response('got ' + (await env.DOOMED.fetch('https://d/', { method: 'POST', body: 'x' })).status + ' ' + (await env.STEADY.ping()));
      return new Response('got ' + await env.DOOMED.slow());
    } catch (error) { return new Response('failed: ' + error.message + ' / then ' + (await env.STEADY.ping())); }
  } };`, 'acme', { DOOMED: { type: 'service', service: doomed }, STEADY: { type: 'service', service: steady } }));
  const viaFetch = p.fetch(caller, get('/fetch'));
  const viaRpc = p.fetch(caller, get('/rpc'));
  // Both calls are in flight in the doomed worker's process when it is killed.
  const home = p.processes()[p.placement(doomed)!.index]!;
  while (logs.filter((entry) => entry.worker === doomed && entry.message === 'in').length < 2) await new Promise((resolve) => setTimeout(resolve, 25));
  home.kill('SIGKILL');
  const [a, b] = await Promise.all([viaFetch.then(read), viaRpc.then(read)]);
  assert.match(a, /^got 502 pong$/);
  assert.match(b, /^failed: The called worker's runtime process ended while the call was in flight .* \/ then pong$/);
  assert.equal(await read(await p.fetch(steady, get())), 'steady');
});

test('service calls a runtime process forges are refused one by one against what the control process deployed there; a malformed one ends that process', { timeout: 120_000 }, async () => {
  const lines: { level: string; message: string }[] = [];
  const p = new ProcessPool({
    processes: 2,
    spare: false,
    execArgv: ['--import', fileURLToPath(new URL('./support/forging-runtime.ts', import.meta.url))],
    runtime: { limits: { cpuMs: 5000 } },
    workerLog: () => {},
    log: (level, message) => lines.push({ level, message }),
  });
  pools.push(p);
  const mine = nameOn('mine', 0);
  const idle = nameOn('idle', 0);
  const elsewhere = nameOn('other', 1);
  const target = nameOn('api', 1);
  const secret = nameOn('vault', 1);
  await p.load(target, worker(`export default { fetch() { return new Response('api'); }, who() { return 'api'; } };`, 'acme'));
  await p.load(secret, worker(`export default { fetch() { return new Response('vault'); }, who() { return 'vault'; } };`, 'other'));
  const CALLER = `export default { async fetch(request, env) {
    const method = new URL(request.url).searchParams.get('method');
    try { return new Response('ok: ' + await env.API[method]()); } catch (error) { return new Response(error.name + ': ' + error.message); }
  } };`;
  await p.load(mine, worker(CALLER, 'acme', { API: { type: 'service', service: target } }));
  await p.load(idle, worker(CALLER, 'other', { VAULT: { type: 'service', service: secret } }));
  await p.load(elsewhere, worker(CALLER, 'other', { VAULT: { type: 'service', service: secret } }));
  assert.equal((await p.fetch(elsewhere, get('/?method=who'))).status, 200);
  const ask = async (method: string) => read(await p.fetch(mine, get(`/?method=${encodeURIComponent(method)}`)));

  assert.equal(await ask('who'), 'ok: api');
  const refusals: [Record<string, unknown>, RegExp][] = [
    // Another worker's binding, whether its home is another process or this one (never sent here).
    [{ worker: elsewhere, binding: 'VAULT', chain: [elsewhere], method: 'who' }, new RegExp(`^Error: env\\.VAULT was refused: the worker ${elsewhere} is not served by this runtime process`)],
    [{ worker: idle, binding: 'VAULT', chain: [idle], method: 'who' }, new RegExp(`^Error: env\\.VAULT was refused: the worker ${idle} is not served by this runtime process`)],
    // A binding the worker does not have.
    [{ binding: 'VAULT', method: 'who' }, /^TypeError: env\.VAULT is not a service binding of this worker/],
    // A chain that does not end with the caller.
    [{ chain: [], method: 'who' }, /^Error: env\.API was refused: the call does not come from the worker it names/],
    [{ chain: [secret], method: 'who' }, /^Error: env\.API was refused: the call does not come from the worker it names/],
    // One that would already be too deep.
    [{ chain: [...Array.from({ length: 16 }, (_, i) => `w${i}`), mine], method: 'who' }, /^Error: env\.API: service calls nest more than 16 deep/],
  ];
  for (const [forged, message] of refusals) assert.match(await ask(`forge:${JSON.stringify(forged)}`), message);
  assert.ok(!lines.some((line) => line.message.includes('broke the protocol')), 'refusals end nothing');
  assert.equal(await ask('who'), 'ok: api');

  // A chain of the wrong shape breaks the message table: the process is killed and replaced.
  const broken = await p.fetch(mine, get(`/?method=${encodeURIComponent(`forge:${JSON.stringify({ chain: 'not a list' })}`)}`));
  assert.equal(broken.status, 502);
  assert.ok(lines.some((line) => line.message === 'runtime process broke the protocol; killed'));
  assert.equal(await ask('who'), 'ok: api');
});

test('RPC values that would overfill the channel between processes are refused; no process is dropped for it', { timeout: 120_000 }, async () => {
  const ends: unknown[] = [];
  const watched = new ProcessPool({
    processes: 2, untriedRequests: 0, runtime: { limits: { cpuMs: 10_000, memoryMb: 1024 } }, workerLog: () => {},
    log: (level: string, message: string) => { if (/ended/.test(message)) ends.push([level, message]); },
  });
  pools.push(watched);
  const caller = nameOn('flooder', 0);
  const target = nameOn('sink', 1);
  const neighbour = nameOn('bystander', 0);
  await watched.load(target, worker(`export default { fetch() { return new Response('sink'); }, take(value) { return value.length; } };`, 'acme'));
  await watched.load(neighbour, worker(`export default { fetch() { return new Response('still here'); } };`, 'acme'));
  // Twelve calls of 16 MiB at once: 192 MiB for the channel, past the 128 MiB after which it
  // would be taken for broken.
  await watched.load(caller, worker(`export default { async fetch(request, env) {
    const big = 'f'.repeat(16 * 1024 * 1024);
    const calls = [];
    for (let i = 0; i < 12; i++) calls.push(env.SINK.take(big));
    const out = await Promise.allSettled(calls);
    return new Response(out.map((r) => r.status === 'fulfilled' ? 'ok' : r.reason.name + ': ' + r.reason.message).join('\\n'));
  } };`, 'acme', { SINK: { type: 'service', service: target } }));
  const response = await watched.fetch(caller, get());
  assert.equal(response.status, 200);
  const outcomes = (await read(response)).split('\n');
  assert.equal(outcomes.length, 12);
  for (const outcome of outcomes) {
    assert.ok(outcome === 'ok' || /^RangeError: Values waiting to cross between runtime processes \(RPC arguments and results, binding values\) already hold as much as may wait/.test(outcome), outcome);
  }
  assert.ok(outcomes.includes('ok'));
  assert.ok(outcomes.some((outcome) => outcome !== 'ok'), 'some calls are refused');
  assert.deepEqual(ends, []);
  assert.equal(await read(await watched.fetch(neighbour, get())), 'still here');
});
