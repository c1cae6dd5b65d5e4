// runtime.fetch() in a loop, in process, no HTTP: how many requests a second the Runtime
// alone serves for a warm hello-world worker, with `--concurrency` requests in flight, rotating
// over `--tenants` tenants. Splits the HTTP front's share of the cost from the runtime's, and,
// from the request log's CPU figures, the isolates' share of the CPU from the host's. Prints
// one `RESULT {json}` line.
//
// With `--cold-per-second N`, new tenants arrive meanwhile, N a second, each loaded and sent
// one request (a cold start): what cold starts cost the warm tenants' latency. `--sync-create`
// makes the isolates on the serving thread, as the prebuilt isolated-vm does (the reference);
// `--sync-dispose` tears them down there. `--max-isolates` below `--tenants` makes the rotation
// evict: every request is then a cold start and an eviction. `--warm-seconds` keeps the same
// load going that long before measuring (beyond the warm-up of five requests a tenant): with
// many tenants an isolate's cost per request falls over its first seconds of serving, as its
// young generation settles (docs/BENCHMARKS.md, "Young generations collected at a tenth").
//
//   node --no-node-snapshot bench/support/inproc.ts --seconds 3 --concurrency 50 [--tenants 1]
//     [--warm-seconds 0] [--cold-per-second 0] [--max-isolates N] [--sync-create] [--sync-dispose]

import ivm from 'isolated-vm';
import { Runtime } from '../../src/runtime/runtime.ts';
import type { RuntimeRequest } from '../../src/runtime/types.ts';
import { HELLO_WORKER } from './hello.ts';
import { numberArg } from '../lib.ts';

const args = process.argv.slice(2);
const seconds = numberArg(args, '--seconds', 3);
const concurrency = numberArg(args, '--concurrency', 50);
const tenants = Math.max(1, numberArg(args, '--tenants', 1));
const coldPerSecond = numberArg(args, '--cold-per-second', 0);
const warmSeconds = numberArg(args, '--warm-seconds', 0);
{
  const isolates = ivm.Isolate as { createOffThread?: (options: ivm.IsolateOptions) => Promise<ivm.Isolate> };
  const make = args.includes('--sync-create') ? async (options: ivm.IsolateOptions) => new ivm.Isolate(options) : isolates.createOffThread!.bind(ivm.Isolate);
  if (args.includes('--sync-dispose')) {
    // isolated-vm's classes and isolates are sealed: each isolate is handed out behind a proxy
    // that lacks the method, and the Runtime (src/runtime/isolate-teardown.ts) then disposes it as
    // on the prebuilt binary.
    const hidden: ProxyHandler<ivm.Isolate> = {
      get(target, key) {
        if (key === 'disposeOffThread') return undefined;
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    };
    isolates.createOffThread = async (options) => new Proxy(await make(options), hidden);
  } else if (args.includes('--sync-create')) {
    delete isolates.createOffThread;
  }
}

// CPU the isolates used for the requests, summed from the per-request log lines while measuring.
let measuring = false;
let isolateCpuMs = 0;
const runtime = new Runtime({
  log: (entry) => {
    if (measuring && entry.type === 'request' && typeof entry.cpuMs === 'number') isolateCpuMs += entry.cpuMs;
  },
  maxIsolates: numberArg(args, '--max-isolates', tenants + 10 + Math.ceil(coldPerSecond * seconds)),
  reduceIdleMemoryAfterMs: 0,
});
const tenantRequests: RuntimeRequest[] = [];
for (let i = 0; i < tenants; i++) {
  await runtime.load(`t${i}`, { modules: [{ name: 'worker.js', source: HELLO_WORKER }] });
  tenantRequests.push({
    method: 'GET',
    url: `http://t${i}.localhost/`,
    headers: [
      ['host', `t${i}.localhost`],
      ['user-agent', 'bench'],
    ],
    body: null,
  });
}
let next = 0;

async function drain(body: Uint8Array | AsyncIterable<Uint8Array> | null): Promise<void> {
  if (body === null || body instanceof Uint8Array) return;
  for await (const _ of body);
}

// Warm-up, then measure.
async function serveNext(): Promise<void> {
  const n = next++ % tenants;
  await drain((await runtime.fetch(`t${n}`, tenantRequests[n]!)).body);
}
for (let i = 0; i < Math.max(2000, tenants * 5); i++) await serveNext();
if (warmSeconds > 0) {
  const warmEnd = process.hrtime.bigint() + BigInt(Math.round(warmSeconds * 1e9));
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (process.hrtime.bigint() < warmEnd) await serveNext();
  }));
}
const latencies: number[] = [];
let requests = 0;
const start = process.hrtime.bigint();
const end = start + BigInt(seconds * 1e9);
const cpuBefore = process.cpuUsage();
const mainCpuBefore = process.threadCpuUsage();
measuring = true;
const coldLatencies: number[] = [];
async function coldStarts(): Promise<void> {
  if (!(coldPerSecond > 0)) return;
  const starts: Promise<void>[] = [];
  for (let i = 0; process.hrtime.bigint() < end; i++) {
    const at = start + BigInt(Math.round((i * 1e9) / coldPerSecond));
    const wait = Number(at - process.hrtime.bigint()) / 1e6;
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    starts.push((async () => {
      const name = `cold${i}`;
      const t0 = process.hrtime.bigint();
      await runtime.load(name, { modules: [{ name: 'worker.js', source: HELLO_WORKER }] }, { validate: false });
      const response = await runtime.fetch(name, { method: 'GET', url: `http://${name}.localhost/`, headers: [['host', `${name}.localhost`]], body: null });
      await drain(response.body);
      if (response.status !== 200) throw new Error(`cold start: status ${response.status}`);
      coldLatencies.push(Number(process.hrtime.bigint() - t0) / 1e3);
    })());
  }
  await Promise.all(starts);
}
await Promise.all([
  coldStarts(),
  ...Array.from({ length: concurrency }, async () => {
    while (process.hrtime.bigint() < end) {
      const t0 = process.hrtime.bigint();
      const n = next++ % tenants;
      const response = await runtime.fetch(`t${n}`, tenantRequests[n]!);
      await drain(response.body);
      if (response.status !== 200) throw new Error(`status ${response.status}`);
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e3);
      requests++;
    }
  }),
]);
const durationUs = Number(process.hrtime.bigint() - start) / 1e3;
const cpu = process.cpuUsage(cpuBefore);
const mainCpu = process.threadCpuUsage(mainCpuBefore);
measuring = false;
latencies.sort((a, b) => a - b);
coldLatencies.sort((a, b) => a - b);
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
const pct = (p: number) => percentile(latencies, p);
process.stdout.write(
  'RESULT ' +
    JSON.stringify({
      requests, duration_us: durationUs, p50_us: pct(50), p99_us: pct(99), max_us: pct(100), cpu_us: cpu.user + cpu.system, main_thread_cpu_us: mainCpu.user + mainCpu.system, isolate_cpu_us: isolateCpuMs * 1000,
      cold: coldLatencies.length, cold_p50_us: percentile(coldLatencies, 50), cold_p99_us: percentile(coldLatencies, 99),
    }) +
    '\n',
);
await runtime.close();
process.exit(0);
