// Bytes of V8 heap a hello-world request allocates inside its isolate: the isolate's used heap
// before and after a batch of requests, one at a time, in a warm isolate, for several batches
// (a batch during which the young generation was collected shows a drop and is left out).
// Unlike CPU time, which another process on the machine can double, this does not move with
// the load, so it can tell apart two versions of the request path that CPU figures cannot.
// With many tenants the young generation of each isolate is still being touched for the first
// time, so these bytes are page faults too (docs/BENCHMARKS.md, "Cost per request and the
// number of tenants"). Prints one `RESULT {json}` line: the median bytes per request.
//
//   node --no-node-snapshot bench/support/isolate-alloc.ts [--batch 20] [--batches 10] [worker.js]

import { readFileSync } from 'node:fs';
import type ivm from 'isolated-vm';
import { Runtime } from '../../src/runtime/runtime.ts';
import type { RuntimeRequest } from '../../src/runtime/types.ts';
import { HELLO_WORKER } from './hello.ts';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const [value] = args.splice(i, 2).slice(1);
  return Number(value);
};
const batch = arg('--batch', 20);
const batches = arg('--batches', 10);
const source = args[0] ? readFileSync(args[0], 'utf8') : HELLO_WORKER;

const runtime = new Runtime({ log: () => {}, reduceIdleMemoryAfterMs: 0 });
await runtime.load('t', { modules: [{ name: 'worker.js', source }] });
const request: RuntimeRequest = { method: 'GET', url: 'http://t.localhost/', headers: [['host', 't.localhost'], ['user-agent', 'bench']], body: null };
async function one(): Promise<void> {
  const response = await runtime.fetch('t', request);
  if (response.body !== null && !(response.body instanceof Uint8Array)) for await (const _ of response.body);
}
for (let i = 0; i < 30; i++) await one();
// The Runtime keeps its isolates to itself: reached here for the measurement only.
const isolate = ([...(runtime as unknown as { live: Map<{ isolate: ivm.Isolate }, unknown> }).live.keys()][0])!.isolate;
const perRequest: number[] = [];
for (let b = 0; b < batches; b++) {
  const before = isolate.getHeapStatisticsSync().used_heap_size;
  for (let i = 0; i < batch; i++) await one();
  const grew = isolate.getHeapStatisticsSync().used_heap_size - before;
  if (grew >= 0) perRequest.push(grew / batch);
}
perRequest.sort((a, b) => a - b);
const median = perRequest[Math.floor(perRequest.length / 2)] ?? NaN;
process.stdout.write('RESULT ' + JSON.stringify({ bytes_per_request: Math.round(median), batches: perRequest.map(Math.round) }) + '\n');
await runtime.close();
process.exit(0);
