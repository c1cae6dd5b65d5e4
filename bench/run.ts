// Runs the benchmarks, each in its own child process with a time limit, and writes their
// results (date, machine, command) into docs/BENCHMARKS.md, replacing only the sections of the
// benchmarks that ran.
//
//   npm run bench                        all of them
//   npm run bench -- cold-start memory   some of them
//   npm run bench -- --no-write          print only, leave docs/BENCHMARKS.md alone
//   npm run bench -- --list

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DOC,
  NODE,
  RUNTIME_HOST_NODE_ARGS,
  ROOT,
  childEnv,
  cleanupChildren,
  msSince,
  renderSection,
  spawnTracked,
  stopChild,
  targetLine,
  writeSection,
  type BenchResult,
  type Machine,
} from './lib.ts';

/** Every benchmark, in the order they run and appear in the document, with a time limit each. */
const BENCHMARKS: { name: string; what: string; limitS: number }[] = [
  { name: 'cold-start', what: 'first request for a new tenant: Runtime vs a process per tenant vs a bare isolate; snapshot vs code cache', limitS: 180 },
  { name: 'throughput', what: 'warm hello-world req/s over HTTP: isolet (1/100/1,000 tenants) vs node:http vs workerd vs the floor of an isolate per tenant', limitS: 420 },
  { name: 'cold-beside-warm', what: 'warm tenants\' latency while cold starts go on: isolates made off the serving thread vs on it', limitS: 240 },
  { name: 'inline-runs', what: 'CPU per request with requests started on the serving thread and without, at rates it has room for (1, 100 and 1,000 tenants)', limitS: 240 },
  { name: 'tenant-rate', what: 'CPU per request against how often each tenant is served (1,500 tenants at 3,000 and 250 req/s), the idle reducer off and on', limitS: 300 },
  { name: 'memory', what: 'RSS per idle isolate with 1,000 live: Runtime tenants (idle, just served, serving in rotation) vs snapshot isolates vs bare isolated-vm', limitS: 900 },
  { name: 'processes', what: 'the data path to runtime processes: req/s of a framed Unix socket vs an HTTP proxy vs one process vs node:http', limitS: 300 },
  { name: 'scale', what: 'many tenants through isolet serve: Zipf over 100,000 with cold first requests, uniform over 10,000, a runtime process killed under load, noisy neighbours', limitS: 1800 },
  { name: 'cluster', what: 'three nodes over PostgreSQL: time until every node serves a deploy (p50/p99 over 200), req/s through HAProxy vs one node', limitS: 600 },
  { name: 'api-cost', what: 'what each Web API costs an isolate: its share of the snapshot, and first use of lazily loaded ones', limitS: 120 },
  { name: 'metrics-cost', what: 'the control process\'s CPU per counted request, per fold and per /metrics render, over 1, 1,000 and 10,000 workers', limitS: 180 },
  { name: 'bodies', what: '100 MB bodies through a worker in process (pass-through MB/s vs a Node copy loop, read whole) and a 16 MiB streamed response\'s CPU', limitS: 300 },
  { name: 'kv', what: 'KV calls from a worker through isolet serve (runtime processes, SQLite): calls/s and latency of get, put and list, small and 1 MiB values', limitS: 180 },
  { name: 'kv-large', what: 'KV values of 25 MiB through isolet serve under the default limits: the CPU a put of request.body, a put of an ArrayBuffer and a get are charged', limitS: 180 },
  { name: 'event-loop-hold', what: 'how long one tenant\'s large values (40 MiB digests and encryptions, fetch bodies, headers, RPC and binding arguments) hold the host\'s event loop, and a neighbour\'s latency meanwhile', limitS: 180 },
  { name: 'services', what: 'what a service-binding call costs: a request with one RPC call or one fetch() to another worker, in one Runtime and between runtime processes', limitS: 300 },
];

const args = process.argv.slice(2);
if (args.includes('--list') || args.includes('--help')) {
  process.stdout.write('npm run bench [-- NAME ...] [--no-write]\n\n' + BENCHMARKS.map((b) => `  ${b.name.padEnd(12)} ${b.what}`).join('\n') + '\n');
  process.exit(0);
}
const write = !args.includes('--no-write');
const names = args.filter((a) => !a.startsWith('--'));
const unknown = names.filter((n) => !BENCHMARKS.some((b) => b.name === n));
if (unknown.length) {
  process.stderr.write(`unknown benchmark: ${unknown.join(', ')} (try --list)\n`);
  process.exit(2);
}
const selected = BENCHMARKS.filter((b) => names.length === 0 || names.includes(b.name));
const command = process.env.npm_lifecycle_event === 'bench' ? `npm run bench${args.length ? ' -- ' + args.join(' ') : ''}` : `node --no-node-snapshot bench/run.ts ${args.join(' ')}`.trim();

const dir = mkdtempSync(join(tmpdir(), 'isolet-bench-run-'));
const started = process.hrtime.bigint();
const summary: string[] = [];
let failed = 0;
try {
  for (const bench of selected) {
    process.stderr.write(`\n== ${bench.name}: ${bench.what}\n`);
    const file = join(dir, `${bench.name}.json`);
    const t0 = process.hrtime.bigint();
    const child = spawnTracked(NODE, [...RUNTIME_HOST_NODE_ARGS, join(ROOT, 'bench', `${bench.name}.ts`), '--json', file], {
      env: childEnv(),
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const timer = setTimeout(() => {
      process.stderr.write(`${bench.name}: over its ${bench.limitS} s limit, stopped\n`);
      void stopChild(child);
    }, bench.limitS * 1000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    clearTimeout(timer);
    const seconds = msSince(t0) / 1000;
    let parsed: { result: BenchResult; machine: Machine } | undefined;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8')) as { result: BenchResult; machine: Machine };
    } catch {}
    if (code !== 0 || !parsed) {
      failed++;
      summary.push(`${bench.name}: FAILED (exit ${code}) after ${seconds.toFixed(0)} s`);
      continue;
    }
    const section = renderSection(parsed.result, parsed.machine, command);
    process.stdout.write('\n' + section + '\n');
    if (write) writeSection(section, bench.name);
    summary.push(`${bench.name} (${seconds.toFixed(0)} s):`, ...parsed.result.targets.map(targetLine));
  }
} finally {
  cleanupChildren();
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(`\n${summary.join('\n')}\n\nall done in ${(msSince(started) / 1000).toFixed(0)} s${write ? `; results in ${DOC}` : ''}\n`);
process.exit(failed ? 1 : 0);
