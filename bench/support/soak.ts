// Hello-world tenants served in rotation for a while, in process, reported every 10 s: req/s,
// the process's RSS, and the requests that did not answer 200 (with the log entries of limits).
// What a short run cannot show: what the engine does once every isolate has run its request path
// many times (docs/BENCHMARKS.md, "Maglev in every isolate"). `--maglev` turns V8's Maglev
// compiler back on after the Runtime turned it off (src/runtime/engine-flags.ts), to compare.
//
//   node --no-node-snapshot bench/support/soak.ts [--seconds 90] [--tenants 1000] [--concurrency 50] [--maglev]

import v8 from 'node:v8';
import { Runtime } from '../../src/runtime/runtime.ts';
import { runtimeImage } from '../../src/runtime/runtime-image.ts';
import type { WorkerLogEntry } from '../../src/runtime/types.ts';
import { HELLO_WORKER } from './hello.ts';
import { numberArg } from '../lib.ts';

const args = process.argv.slice(2);
const seconds = numberArg(args, '--seconds', 90);
const tenants = numberArg(args, '--tenants', 1000);
const concurrency = numberArg(args, '--concurrency', 50);

// The image is made first: making it applies the engine settings, which `--maglev` then undoes
// before any tenant's isolate exists.
await runtimeImage();
if (args.includes('--maglev')) v8.setFlagsFromString('--maglev');

const limits: WorkerLogEntry[] = [];
const runtime = new Runtime({
  log: (entry) => {
    if (entry.type === 'limit') limits.push(entry);
  },
  maxIsolates: tenants + 10,
  reduceIdleMemoryAfterMs: 0,
});
for (let i = 0; i < tenants; i++) await runtime.load(`t${i}`, { modules: [{ name: 'worker.js', source: HELLO_WORKER }] });

const request = (i: number) => ({ method: 'GET', url: `http://t${i}.localhost/`, headers: [['host', `t${i}.localhost`]] as [string, string][], body: null });
let next = 0;
let served = 0;
let failed = 0;
let failedInAll = 0;
const started = Date.now();
const end = started + seconds * 1000;
const report = setInterval(() => {
  const line = {
    at: Math.round((Date.now() - started) / 1000),
    rps: served / 10,
    not200: failed,
    rssMb: Math.round(process.memoryUsage.rss() / 1048576),
    limits: limits.splice(0).map((entry) => entry.message),
  };
  process.stdout.write(JSON.stringify(line) + '\n');
  served = 0;
  failed = 0;
}, 10_000);
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (Date.now() < end) {
      const n = next++ % tenants;
      const response = await runtime.fetch(`t${n}`, request(n));
      if (response.body !== null && !(response.body instanceof Uint8Array)) for await (const _ of response.body);
      if (response.status !== 200) {
        failed++;
        failedInAll++;
      }
      served++;
    }
  }),
);
clearInterval(report);
await runtime.close();
process.stdout.write(`RESULT ${JSON.stringify({ seconds, tenants, not200: failedInAll, rssMb: Math.round(process.memoryUsage.rss() / 1048576) })}\n`);
