// Service bindings between runtime processes (the ProcessPool `isolet serve` runs): calls go
// through the control process, which resolves each against what it deployed; bodies stream both
// ways; a target process that dies mid-call fails only that call.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessPool } from '../src/supervisor/process-pool.ts';
import { homeIndex } from '../src/supervisor/placement.ts';
import type { RuntimeRequest, RuntimeResponse, WorkerDefinition, WorkerLogEntry } from '../src/runtime/types.ts';

const pools: ProcessPool[] = [];
after(() => Promise.all(pools.map((pool) => pool.close())));

function pool(): { pool: ProcessPool; logs: WorkerLogEntry[] } {
  const logs: WorkerLogEntry[] = [];
  const made = new ProcessPool({ processes: 2, runtime: { limits: { cpuMs: 5000 } }, workerLog: (entry) => logs.push(entry), log: () => {} });
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

async function read(response: RuntimeResponse): Promise<string> {
  if (response.body === null) return '';
  if (response.body instanceof Uint8Array) return Buffer.from(response.body).toString();
  const chunks: Uint8Array[] = [];
  for await (const chunk of response.body) chunks.push(chunk);
  return Buffer.concat(chunks).toString();
}

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
