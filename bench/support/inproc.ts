// runtime.fetch() in a loop, in process, no HTTP: how many requests a second the Runtime
// alone serves for a warm hello-world worker, with `--concurrency` requests in flight, rotating
// over `--tenants` tenants. Splits the HTTP front's share of the cost from the runtime's, and,
// from the request log's CPU figures, the isolates' share of the CPU from the host's. Prints
// one `RESULT {json}` line.
//
//   node --no-node-snapshot bench/support/inproc.ts --seconds 3 --concurrency 50 [--tenants 1]

import { Runtime } from '../../src/runtime/runtime.ts';
import type { RuntimeRequest } from '../../src/runtime/types.ts';
import { HELLO_WORKER } from './hello.ts';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const seconds = arg('--seconds', 3);
const concurrency = arg('--concurrency', 50);
const tenants = Math.max(1, arg('--tenants', 1));

// CPU the isolates used for the requests, summed from the per-request log lines while measuring.
let measuring = false;
let isolateCpuMs = 0;
const runtime = new Runtime({
  log: (entry) => {
    if (measuring && entry.type === 'request' && typeof entry.cpuMs === 'number') isolateCpuMs += entry.cpuMs;
  },
  maxIsolates: tenants + 10,
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
for (let i = 0; i < Math.max(2000, tenants * 5); i++) {
  const n = next++ % tenants;
  await drain((await runtime.fetch(`t${n}`, tenantRequests[n]!)).body);
}
const latencies: number[] = [];
let requests = 0;
const start = process.hrtime.bigint();
const end = start + BigInt(seconds * 1e9);
const cpuBefore = process.cpuUsage();
measuring = true;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
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
);
const durationUs = Number(process.hrtime.bigint() - start) / 1e3;
const cpu = process.cpuUsage(cpuBefore);
measuring = false;
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)] ?? 0;
process.stdout.write(
  'RESULT ' +
    JSON.stringify({ requests, duration_us: durationUs, p50_us: pct(50), p99_us: pct(99), cpu_us: cpu.user + cpu.system, isolate_cpu_us: isolateCpuMs * 1000 }) +
    '\n',
);
await runtime.close();
process.exit(0);
