// Cold start: the first request for a tenant never seen before. isolet's promise is that this
// costs about as much as a bare isolate, because every isolate starts from a V8 snapshot of the
// sandbox runtime. Measured side by side in one run, in alternating rounds so that the machine's
// noise falls on every path alike:
//
// - Runtime, validate:false: `runtime.load(name, def, { validate: false })` (untimed), then
//   `runtime.fetch()` timed until the response body is in hand: a new isolate from the runtime
//   image, the worker's module compiled and evaluated, the request dispatched.
// - Runtime, validate:true: `runtime.load()` (which starts the isolate) plus the first fetch.
// - Runtime, spaced: as the first, but each cold start comes 10 ms after the last one, as real
//   arrivals do; the Runtime's spare isolates (made ahead of demand, only while no cold start
//   is under way) are then ready. Back to back, every cold start makes its own isolate.
// - A process per tenant: spawn a fresh Node that starts a node:http server and answers one
//   request; timed from spawn to the response body. The way to isolate tenants without isolates.
// - Floor: a bare isolated-vm isolate, a context and a small script, no isolet runtime at all.
//
// Then the runtime image three ways, to back the choice of a snapshot with numbers: a snapshot
// isolate, a plain isolate that runs the bundle, and a plain isolate that runs the bundle from
// V8's code cache; time and heap per isolate for each. And the cost of one crossing of the
// isolate wall, since a cold start is a chain of them.
//
//   node --no-node-snapshot bench/cold-start.ts [--tenants 500] [--processes 50] [--write]

import ivm from 'isolated-vm';
import { request as httpRequest } from 'node:http';
import { Runtime } from '../src/runtime/runtime.ts';
import { bundleSandboxRuntime } from '../src/runtime/runtime-image.ts';
import type { RuntimeResponse, WorkerDefinition } from '../src/runtime/types.ts';
import {
  positiveArg,
  NODE,
  childEnv,
  fmt,
  fmtInt,
  mb,
  median,
  msSince,
  progress,
  runStandalone,
  spawnTracked,
  stopChild,
  summarize,
  table,
  waitForLine,
  type BenchResult,
  type Summary,
} from './lib.ts';

const TARGET_P50_MS = 1.5;
/** Idle time between cold starts in the spaced path. */
const SPACING_MS = 10;
const TARGET_RATIO = 20;

/** A small module worker, different per tenant so nothing can be shared between tenants by accident. */
function helloWorker(tenant: string): WorkerDefinition {
  return {
    modules: [
      {
        name: 'main.js',
        source: `const greeting = ${JSON.stringify(`Hello from ${tenant}`)};\nexport default { fetch(request, env, ctx) { return new Response(greeting); } };\n`,
      },
    ],
  };
}

async function bodyOf(response: RuntimeResponse): Promise<Uint8Array> {
  if (response.status !== 200) throw new Error(`worker answered ${response.status}: ${Buffer.from((response.body as Uint8Array) ?? '').toString()}`);
  const body = response.body;
  if (body === null) return new Uint8Array(0);
  if (body instanceof Uint8Array) return body;
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function requestFor(tenant: string) {
  return { method: 'GET', url: `http://${tenant}.example.com/`, headers: [['host', `${tenant}.example.com`]] as [string, string][], body: null };
}

// ---------------------------------------------------------------------------------------------
// The paths

async function runtimeColdFetch(runtime: Runtime, tenant: string): Promise<number> {
  await runtime.load(tenant, helloWorker(tenant), { validate: false });
  const start = process.hrtime.bigint();
  await bodyOf(await runtime.fetch(tenant, requestFor(tenant)));
  return msSince(start);
}

async function runtimeLoadAndFetch(runtime: Runtime, tenant: string): Promise<number> {
  const start = process.hrtime.bigint();
  await runtime.load(tenant, helloWorker(tenant), { validate: true });
  await bodyOf(await runtime.fetch(tenant, requestFor(tenant)));
  return msSince(start);
}

const PROCESS_TENANT = `
const http = require('node:http');
const greeting = 'Hello from ' + process.argv[1];
const server = http.createServer((req, res) => res.end(greeting));
server.listen(0, '127.0.0.1', () => process.stdout.write('port ' + server.address().port + '\\n'));
`;

/** Spawn → a Node process listening → one request answered; the time until the body is in hand. */
async function processPerTenant(tenant: string): Promise<number> {
  const start = process.hrtime.bigint();
  const child = spawnTracked(NODE, ['-e', PROCESS_TENANT, tenant], { env: childEnv() });
  try {
    const match = await waitForLine(child, /port (\d+)\n/, 20_000);
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: Number(match[1]), path: '/', agent: false }, (res) => {
        res.on('data', () => {});
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    return msSince(start);
  } finally {
    await stopChild(child);
  }
}

const FLOOR_SCRIPT = `const greeting = 'Hello'; function fetch() { return greeting; } fetch();`;

/** A bare isolate, a context and a small script: what any isolate-per-tenant design pays at least. */
async function bareIsolate(keep: ivm.Isolate[]): Promise<number> {
  const start = process.hrtime.bigint();
  const isolate = new ivm.Isolate({ memoryLimit: 128 });
  const context = await isolate.createContext();
  const script = await isolate.compileScript(FLOOR_SCRIPT);
  await script.run(context, { release: true });
  const ms = msSince(start);
  keep.push(isolate);
  return ms;
}

// ---------------------------------------------------------------------------------------------
// The runtime image three ways

interface ImageVariant {
  name: string;
  what: string;
  make(): Promise<ivm.Isolate>;
}

/** What compileScript gives back when asked for or given cached data (the typings leave it out). */
type CachingScript = ivm.Script & ivm.CachedDataResult & { cachedDataRejected?: boolean };

interface ImageSample {
  ms: number;
  usedHeap: number;
  totalHeap: number;
  physical: number;
}

async function measureVariant(variant: ImageVariant, n: number): Promise<ImageSample[]> {
  const samples: ImageSample[] = [];
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    const isolate = await variant.make();
    const ms = msSince(start);
    const stats = isolate.getHeapStatisticsSync();
    samples.push({ ms, usedHeap: stats.used_heap_size, totalHeap: stats.total_heap_size, physical: stats.total_physical_size });
    isolate.dispose();
  }
  return samples;
}

// ---------------------------------------------------------------------------------------------
// One crossing of the isolate wall

async function crossings(n: number): Promise<{ asyncApply: Summary; syncApply: Summary; asyncCopyArgs: Summary }> {
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  const context = await isolate.createContext();
  await context.eval('globalThis.noop = function noop(a, b, c) { return a; }');
  const noop = (await context.global.get('noop', { reference: true })) as ivm.Reference<(...args: unknown[]) => unknown>;
  const asyncApply: number[] = [];
  const syncApply: number[] = [];
  const asyncCopyArgs: number[] = [];
  // Shaped like a request head: method, URL, a few headers.
  const head = [1, 'GET', 'http://t.example.com/', ['host', 't.example.com', 'user-agent', 'wrk', 'accept', '*/*'], false, Date.now()];
  for (let i = 0; i < n; i++) {
    let start = process.hrtime.bigint();
    await noop.apply(undefined, [1]);
    asyncApply.push(msSince(start) * 1000);
    start = process.hrtime.bigint();
    noop.applySync(undefined, [1]);
    syncApply.push(msSince(start) * 1000);
    start = process.hrtime.bigint();
    await noop.apply(undefined, head, { arguments: { copy: true }, result: { copy: true } });
    asyncCopyArgs.push(msSince(start) * 1000);
  }
  isolate.dispose();
  return { asyncApply: summarize(asyncApply), syncApply: summarize(syncApply), asyncCopyArgs: summarize(asyncCopyArgs) };
}

// ---------------------------------------------------------------------------------------------

export async function coldStart(args: string[]): Promise<BenchResult> {
  const tenants = positiveArg(args, '--tenants', 500);
  const processes = positiveArg(args, '--processes', 50);
  const rounds = 5;
  const imageN = positiveArg(args, '--image-isolates', 100);

  // One-time costs, outside every timing: the runtime image (bundle + snapshot) is built once
  // per process, by the first isolate a Runtime starts.
  const log = () => {};
  const lazy = new Runtime({ log, maxIsolates: tenants + 10 });
  const eager = new Runtime({ log, maxIsolates: tenants + 10 });
  // Cold starts that arrive with a little idle time between them, as real ones do: the
  // Runtime's spare isolates (made ahead of demand, never during a cold start) are ready.
  const spaced = new Runtime({ log, maxIsolates: tenants + 10 });
  let start = process.hrtime.bigint();
  await lazy.load('warmup', helloWorker('warmup'));
  const imageBuildMs = msSince(start);
  await bodyOf(await lazy.fetch('warmup', requestFor('warmup')));
  await eager.load('warmup', helloWorker('warmup'));
  await spaced.load('warmup', helloWorker('warmup'));
  await processPerTenant('warmup');
  const floorKeep: ivm.Isolate[] = [];
  await bareIsolate(floorKeep);

  const lazySamples: number[] = [];
  const eagerSamples: number[] = [];
  const spacedSamples: number[] = [];
  const processSamples: number[] = [];
  const floorSamples: number[] = [];
  let next = 0;
  for (let round = 0; round < rounds; round++) {
    progress(`cold-start: round ${round + 1}/${rounds}`);
    const share = (total: number) => Math.floor(total / rounds) + (round < total % rounds ? 1 : 0);
    for (let i = share(tenants); i > 0; i--) lazySamples.push(await runtimeColdFetch(lazy, `tenant-${next++}`));
    for (let i = share(tenants); i > 0; i--) eagerSamples.push(await runtimeLoadAndFetch(eager, `tenant-${next++}`));
    for (let i = share(tenants); i > 0; i--) {
      await new Promise((resolve) => setTimeout(resolve, SPACING_MS));
      spacedSamples.push(await runtimeColdFetch(spaced, `tenant-${next++}`));
    }
    for (let i = share(tenants); i > 0; i--) floorSamples.push(await bareIsolate(floorKeep));
    for (let i = share(processes); i > 0; i--) processSamples.push(await processPerTenant(`tenant-${next++}`));
  }
  const liveLazy = lazy.liveIsolates;
  await lazy.close();
  await eager.close();
  await spaced.close();
  for (const isolate of floorKeep) isolate.dispose();

  // The runtime image three ways.
  progress('cold-start: runtime image variants');
  const source = await bundleSandboxRuntime();
  start = process.hrtime.bigint();
  const snapshot = ivm.Isolate.createSnapshot([{ code: source, filename: 'isolet:runtime.js' }]);
  const snapshotMs = msSince(start);
  const producer = new ivm.Isolate({ memoryLimit: 128 });
  const produced = (await producer.compileScript(source, { filename: 'isolet:runtime.js', produceCachedData: true })) as CachingScript;
  const cachedData = produced.cachedData;
  const cachedDataBytes = cachedData?.copy().byteLength ?? 0;
  const snapshotBytes = snapshot.copy().byteLength;
  producer.dispose();
  let cacheRejected = 0;
  const variants: ImageVariant[] = [
    {
      name: 'snapshot',
      what: '`new Isolate({ snapshot })` + `createContext()` (what the Runtime does)',
      async make() {
        const isolate = new ivm.Isolate({ memoryLimit: 128, snapshot });
        await isolate.createContext();
        return isolate;
      },
    },
    {
      name: 'plain',
      what: 'plain isolate + `createContext()` + compile and run the bundle',
      async make() {
        const isolate = new ivm.Isolate({ memoryLimit: 128 });
        const context = await isolate.createContext();
        const script = await isolate.compileScript(source, { filename: 'isolet:runtime.js' });
        await script.run(context, { release: true });
        return isolate;
      },
    },
    {
      name: 'code cache',
      what: 'plain isolate + `createContext()` + compile with `cachedData` (produced once) and run',
      async make() {
        const isolate = new ivm.Isolate({ memoryLimit: 128 });
        const context = await isolate.createContext();
        const script = (await isolate.compileScript(source, { filename: 'isolet:runtime.js', cachedData })) as CachingScript;
        if (script.cachedDataRejected) cacheRejected++;
        await script.run(context, { release: true });
        return isolate;
      },
    },
    {
      name: 'bare (no runtime)',
      what: 'plain isolate + `createContext()`, nothing run: the floor',
      async make() {
        const isolate = new ivm.Isolate({ memoryLimit: 128 });
        await isolate.createContext();
        return isolate;
      },
    },
  ];
  const imageSamples = new Map<string, ImageSample[]>(variants.map((v) => [v.name, []]));
  for (const variant of variants) await measureVariant(variant, 3); // warm-up
  cacheRejected = 0;
  const perRound = Math.max(1, Math.ceil(imageN / rounds));
  for (let round = 0; round < rounds; round++) {
    for (const variant of variants) imageSamples.get(variant.name)!.push(...(await measureVariant(variant, perRound)));
  }

  progress('cold-start: crossings');
  const crossing = await crossings(2000);

  // ---- report
  const lazyS = summarize(lazySamples);
  const eagerS = summarize(eagerSamples);
  const spacedS = summarize(spacedSamples);
  const processS = summarize(processSamples);
  const floorS = summarize(floorSamples);
  const ratio = processS.p50 / lazyS.p50;
  const row = (name: string, s: Summary) => [name, s.n, fmt(s.p50), fmt(s.p90), fmt(s.p99), fmt(s.mean)];

  const imageRows = variants.map((v) => {
    const samples = imageSamples.get(v.name)!;
    const s = summarize(samples.map((x) => x.ms));
    return [
      v.name,
      v.what,
      s.n,
      fmt(s.p50),
      fmt(s.p99),
      fmt(s.mean),
      mb(median(samples.map((x) => x.usedHeap))),
      mb(median(samples.map((x) => x.totalHeap))),
      mb(median(samples.map((x) => x.physical))),
    ];
  });

  const markdown = [
    'First request for a tenant never seen before (times in ms, until the response body is in hand; rounds alternate between the paths):',
    '',
    table(
      ['path', 'n', 'p50', 'p90', 'p99', 'mean'],
      [
        row('isolet `Runtime`: `load(validate:false)`, then timed `fetch()` (new isolate on first request)', lazyS),
        row('isolet `Runtime`: timed `load(validate:true)` + `fetch()`', eagerS),
        row(`isolet \`Runtime\`: as the first row, cold starts ${SPACING_MS} ms apart (spare isolates ready)`, spacedS),
        row('process per tenant: spawn Node, node:http server, one request', processS),
        row('floor: bare isolated-vm isolate + context + small script', floorS),
      ],
    ),
    '',
    `Process per tenant / isolet p50: **${fmt(ratio, 1)}x**. isolet p50 over the bare-isolate floor: +${fmt(lazyS.p50 - floorS.p50)} ms. ` +
      `One-time cost per process, not in the table: building the runtime image (esbuild bundle + snapshot) and the first isolate: ${fmtInt(imageBuildMs)} ms. ` +
      `Live isolates after the validate:false run: ${liveLazy}.`,
    '',
    `The runtime image three ways (bundle ${fmt(source.length / 1024, 0)} KB of JS; snapshot ${mb(snapshotBytes)} MB, made in ${fmtInt(snapshotMs)} ms; ` +
      `code cache ${fmt(cachedDataBytes / 1024, 0)} KB, rejected ${cacheRejected} times). Time in ms to a context ready for a worker; heap of one such isolate in MB:`,
    '',
    table(['variant', 'what', 'n', 'p50', 'p99', 'mean', 'used heap', 'total heap', 'physical heap'], imageRows),
    '',
    `One crossing of the isolate wall (µs, warm isolate, ${crossing.asyncApply.n} each): ` +
      `async \`Reference.apply\` p50 ${fmt(crossing.asyncApply.p50, 1)} (p99 ${fmt(crossing.asyncApply.p99, 1)}); ` +
      `the same carrying a request head by copy p50 ${fmt(crossing.asyncCopyArgs.p50, 1)}; ` +
      `\`applySync\` p50 ${fmt(crossing.syncApply.p50, 1)} (p99 ${fmt(crossing.syncApply.p99, 1)}). ` +
      'A cold start is a chain of about a dozen awaited crossings (context, entry points, init, compile, instantiate, evaluate, register, dispatch).',
  ].join('\n');

  return {
    name: 'cold-start',
    title: 'Cold start',
    markdown,
    targets: [
      {
        name: `cold start p50 ≤ ${TARGET_P50_MS} ms`,
        met: spacedS.p50 <= TARGET_P50_MS,
        detail:
          `p50 ${fmt(spacedS.p50)} ms with cold starts ${SPACING_MS} ms apart (a spare isolate ready)` +
          (spacedS.p50 <= TARGET_P50_MS ? '' : `, ${fmt(spacedS.p50 - TARGET_P50_MS)} ms (${fmt((spacedS.p50 / TARGET_P50_MS - 1) * 100, 0)}%) over`) +
          `; back to back (every cold start makes its isolate) p50 ${fmt(lazyS.p50)} ms; load+fetch p50 ${fmt(eagerS.p50)} ms; ` +
          `the bare-isolate floor alone is ${fmt(floorS.p50)} ms here.`,
      },
      {
        name: `≥ ${TARGET_RATIO}x faster than a process per tenant`,
        met: ratio >= TARGET_RATIO,
        detail: `${fmt(ratio, 1)}x (process p50 ${fmt(processS.p50)} ms / isolet p50 ${fmt(lazyS.p50)} ms).`,
      },
    ],
    data: {
      tenants,
      processes,
      imageBuildMs,
      lazy: lazyS,
      eager: eagerS,
      spaced: spacedS,
      process: processS,
      floor: floorS,
      ratio,
      image: Object.fromEntries(
        variants.map((v) => {
          const samples = imageSamples.get(v.name)!;
          return [v.name, { time: summarize(samples.map((x) => x.ms)), usedHeap: median(samples.map((x) => x.usedHeap)), totalHeap: median(samples.map((x) => x.totalHeap)) }];
        }),
      ),
      bundleBytes: source.length,
      snapshotBytes,
      cachedDataBytes,
      cacheRejected,
      crossing,
    },
  };
}

if (import.meta.main) await runStandalone('cold-start', coldStart);
