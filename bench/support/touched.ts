// Memory one request touches in its tenant's isolate: the working set that decides what a rarely
// served tenant costs. With many tenants nothing of an isolate is left in the CPU's caches or TLB
// between two of its requests, so every page a request touches is a miss, and this VM walks
// page tables slowly (docs/BENCHMARKS.md, "What a request to a rarely served tenant touches").
//
// How: the kernel's Referenced bits. Clear them (/proc/self/clear_refs), serve one request to
// each of K distinct idle tenants, then sum Referenced in /proc/self/smaps_rollup. The pages
// every request shares (Node's and V8's code, the host's heap) are counted once whatever K is,
// so the slope between K = 11 and K = 41 is what each tenant's request touches of its own.
// `--bare` serves a bare isolated-vm isolate (a function returning the body), `--async` with
// `apply` rather than `applySync`: the floor of any runtime with an isolate per tenant.
// Prints one `RESULT {json}` line.
//
//   node --no-node-snapshot --min-semi-space-size=16 bench/support/touched.ts [--tenants 200] [--bare [--async]]

import { readFileSync, writeFileSync } from 'node:fs';
import { Runtime } from '../../src/runtime/runtime.ts';
import { drainBody, median, numberArg, sleep } from '../lib.ts';
import { bareTenants } from './bare-tenants.ts';
import { HELLO_WORKER } from './hello.ts';

const args = process.argv.slice(2);
const tenants = Math.max(50, numberArg(args, '--tenants', 200));
const bare = args.includes('--bare');
const useApply = args.includes('--async');
/** Requests each tenant gets before measuring: past the first few, where code is compiled and feedback allocated. */
const WARM_ROUNDS = 40;
const REPEATS = 5;
const SETTLE_MS = 50;

async function tenantServer(): Promise<(i: number) => Promise<unknown>> {
  if (bare) {
    const handlers = await bareTenants(tenants);
    return async (i) => (useApply ? await handlers[i]!.apply(undefined, ['/']) : handlers[i]!.applySync(undefined, ['/']));
  }
  // Requests start on the isolates' threads, as under load (no inline runs).
  const runtime = new Runtime({ log: () => {}, maxIsolates: tenants + 10, reduceIdleMemoryAfterMs: 0, inlineRuns: false });
  for (let i = 0; i < tenants; i++) await runtime.load(`t${i}`, { modules: [{ name: 'worker.js', source: HELLO_WORKER }] });
  return async (i) => drainBody(await runtime.fetch(`t${i}`, { method: 'GET', url: `http://t${i}.localhost/`, headers: [['host', `t${i}.localhost`]], body: null }));
}

function referencedKb(): number {
  const match = /^Referenced:\s+(\d+) kB/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'));
  if (match === null) throw new Error('/proc/self/smaps_rollup has no Referenced line: this needs Linux 4.14 or later.');
  return Number(match[1]);
}

const serve = await tenantServer();
for (let round = 0; round < WARM_ROUNDS; round++) for (let i = 0; i < tenants; i++) await serve(i);

/** Median KB referenced after one request to each of `distinct` tenants, idle before. */
async function touched(distinct: number): Promise<number> {
  const readings: number[] = [];
  for (let repeat = 0; repeat < REPEATS; repeat++) {
    await sleep(300);
    writeFileSync('/proc/self/clear_refs', '1');
    for (let j = 0; j < distinct; j++) await serve((repeat * 50 + j) % tenants);
    // The bits can reach the guest's page tables a moment after the access on this VM.
    await sleep(SETTLE_MS);
    readings.push(referencedKb());
  }
  return median(readings);
}

const one = await touched(1);
const eleven = await touched(11);
const fortyOne = await touched(41);
process.stdout.write(`RESULT ${JSON.stringify({ kind: bare ? (useApply ? 'bare-apply' : 'bare-applySync') : 'isolet', tenants, oneKb: one, elevenKb: eleven, fortyOneKb: fortyOne, perTenantKb: (fortyOne - eleven) / 30 })}\n`);
process.exit(0);
