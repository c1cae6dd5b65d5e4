// Memory per idle isolate: process RSS with 1,000 live isolates, measured in a fresh child
// process for each kind so that every measurement starts clean:
//
// - idle:     a Runtime (maxIsolates ≥ 1,000) with 1,000 hello-world tenants, each sent one
//             request so that each has a live isolate, then left idle past the Runtime's
//             default idle delay, after which an isolate gives back the memory it no longer
//             needs (src/runtime/idle-memory.ts). What a tenant costs while idle.
// - runtime:  the same with that reduction turned off, read half a second after the requests:
//             what a tenant costs just after it served.
// - serving:  the same, then served in rotation (every tenant 30 more times, 50 requests in
//             flight) and read at once: what a tenant costs while it serves, its young
//             generation in use. Also the isolates' CPU per request meanwhile (from the request
//             log), which a smaller young generation would raise with more scavenges.
// - snapshot: isolates from the runtime image's snapshot with a context, no worker and no
//             Runtime bookkeeping: the sandbox runtime's own share.
// - bare:     plain isolated-vm isolates with a context and a small script: the reference.
//
// RSS is read after a forced GC of the host heap (`--expose-gc`) and a pause, before and after
// the isolates are made; per isolate = delta / count. Each kind runs twice, alternating, and
// the median is quoted.
//
//   node --no-node-snapshot bench/memory.ts [--isolates 1000] [--write]

import ivm from 'isolated-vm';
import { join } from 'node:path';
import { DEFAULT_REDUCE_IDLE_MEMORY_AFTER_MS, Runtime } from '../src/runtime/runtime.ts';
import { runtimeImage } from '../src/runtime/runtime-image.ts';
import type { RuntimeResponse } from '../src/runtime/types.ts';
import { HELLO_WORKER } from './support/hello.ts';
import {
  NODE,
  RUNTIME_HOST_NODE_ARGS,
  ROOT,
  childEnv,
  fmt,
  mb,
  median,
  progress,
  runStandalone,
  sleep,
  spawnTracked,
  stopChild,
  table,
  waitForLine,
  type BenchResult,
} from './lib.ts';

const TARGET_MB = 1.5;
const SERVING_TARGET_MB = 1.6;
const KINDS = ['idle', 'runtime', 'serving', 'snapshot', 'bare'] as const;
/** Rounds of requests over every tenant in the `serving` kind. */
const SERVING_ROUNDS = 30;
type Kind = (typeof KINDS)[number];

interface Measurement {
  kind: Kind;
  count: number;
  rssBefore: number;
  rssAfter: number;
  hostHeapBefore: number;
  hostHeapAfter: number;
  /** Sum of the isolates' own heap statistics (kinds where the isolates are reachable). */
  isolateHeapPhysical: number | null;
  isolateHeapUsed: number | null;
  /** Isolates made by the measurement that are still alive at the end (per isolate = RSS delta / this). */
  liveIsolates: number;
  /** The isolates' CPU per request while served in rotation (`serving` only), in µs. */
  isolateCpuPerRequestUs: number | null;
  /** Runtime log lines at level error (an isolate over a limit, a crash) during the measurement. */
  errorLogs: string[];
  seconds: number;
}

// ---------------------------------------------------------------------------------------------
// In the child

async function settle(): Promise<{ rss: number; heap: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await sleep(200);
  }
  const usage = process.memoryUsage();
  return { rss: usage.rss, heap: usage.heapUsed };
}

async function drain(response: RuntimeResponse): Promise<void> {
  if (response.status !== 200) throw new Error(`worker answered ${response.status}`);
  const body = response.body;
  if (body === null || body instanceof Uint8Array) return;
  for await (const _ of body);
}

async function measureInChild(kind: Kind, count: number): Promise<Measurement> {
  const keep: unknown[] = [];
  const errorLogs: string[] = [];
  let runtime: Runtime | undefined;
  let isolates: ivm.Isolate[] = [];
  let rotationCpuMs = 0;
  let rotationRequests = 0;
  let rotating = false;
  const image = await runtimeImage();
  // Warm-up: one isolate of the kind, so one-time costs (image, code, thread pool) are in "before".
  if (kind === 'runtime' || kind === 'idle' || kind === 'serving') {
    runtime = new Runtime({
      log: (entry) => {
        if (entry.level === 'error') errorLogs.push(`${entry.worker}: ${entry.message}`);
        if (rotating && entry.type === 'request' && typeof entry.cpuMs === 'number') rotationCpuMs += entry.cpuMs;
      },
      maxIsolates: count + 10,
      reduceIdleMemoryAfterMs: kind === 'idle' ? DEFAULT_REDUCE_IDLE_MEMORY_AFTER_MS : 0,
    });
    await runtime.load('warmup', { modules: [{ name: 'worker.js', source: HELLO_WORKER }] });
    await drain(await runtime.fetch('warmup', { method: 'GET', url: 'http://warmup.localhost/', headers: [['host', 'warmup.localhost']], body: null }));
  } else {
    const warm = await makeIsolate(kind, image.snapshot);
    warm.isolate.dispose();
  }
  const before = await settle();
  const start = process.hrtime.bigint();
  if (runtime) {
    for (let i = 0; i < count; i++) {
      const name = `t${i}`;
      await runtime.load(name, { modules: [{ name: 'worker.js', source: HELLO_WORKER }] }, { validate: false });
      await drain(await runtime.fetch(name, { method: 'GET', url: `http://${name}.localhost/`, headers: [['host', `${name}.localhost`]], body: null }));
    }
    if (kind === 'serving') {
      rotating = true;
      let next = 0;
      const total = count * SERVING_ROUNDS;
      await Promise.all(Array.from({ length: 50 }, async () => {
        while (next < total) {
          const name = `t${next++ % count}`;
          await drain(await runtime!.fetch(name, { method: 'GET', url: `http://${name}.localhost/`, headers: [['host', `${name}.localhost`]], body: null }));
          rotationRequests++;
        }
      }));
      rotating = false;
    }
  } else {
    for (let i = 0; i < count; i++) {
      const made = await makeIsolate(kind, image.snapshot);
      isolates.push(made.isolate);
      keep.push(made.context);
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (kind !== 'serving') await sleep(500); // let post-request work (heap checks, request summaries) finish
  // Idle: past the delay, then time for the reductions (two at a time, a few ms each).
  if (kind === 'idle') await sleep(DEFAULT_REDUCE_IDLE_MEMORY_AFTER_MS + 1000 + count * 5);
  const after = await settle();
  let physical: number | null = null;
  let used: number | null = null;
  if (isolates.length) {
    physical = 0;
    used = 0;
    for (const isolate of isolates) {
      const stats = isolate.getHeapStatisticsSync();
      physical += stats.total_physical_size;
      used += stats.used_heap_size;
    }
  }
  if (runtime) {
    // Read after the RSS: the tenants' heaps as V8 reports them.
    physical = 0;
    used = 0;
    for (let i = 0; i < count; i++) {
      const usage = await runtime.memoryUsage(`t${i}`);
      physical += usage?.heapPhysical ?? 0;
      used += usage?.heapUsed ?? 0;
    }
  }
  const live = runtime ? runtime.liveIsolates - 1 : isolates.length;
  return {
    kind,
    count,
    rssBefore: before.rss,
    rssAfter: after.rss,
    hostHeapBefore: before.heap,
    hostHeapAfter: after.heap,
    isolateHeapPhysical: physical,
    isolateHeapUsed: used,
    liveIsolates: live,
    isolateCpuPerRequestUs: rotationRequests > 0 ? (rotationCpuMs * 1000) / rotationRequests : null,
    errorLogs: errorLogs.slice(0, 5),
    seconds,
  };
}

const SMALL_SCRIPT = `const greeting = 'Hello World'; globalThis.handler = { fetch() { return greeting; } };`;

async function makeIsolate(kind: Kind, snapshot: ivm.ExternalCopy<ArrayBuffer>): Promise<{ isolate: ivm.Isolate; context: ivm.Context }> {
  if (kind === 'snapshot') {
    const isolate = new ivm.Isolate({ memoryLimit: 128, snapshot });
    return { isolate, context: await isolate.createContext() };
  }
  const isolate = new ivm.Isolate({ memoryLimit: 128 });
  const context = await isolate.createContext();
  const script = await isolate.compileScript(SMALL_SCRIPT);
  await script.run(context, { release: true });
  return { isolate, context };
}

// ---------------------------------------------------------------------------------------------
// In the parent

async function runChild(kind: Kind, count: number): Promise<Measurement> {
  const child = spawnTracked(NODE, [...RUNTIME_HOST_NODE_ARGS, '--expose-gc', join(ROOT, 'bench/memory.ts'), '--child', kind, '--isolates', String(count)], {
    env: childEnv(),
  });
  const match = await waitForLine(child, /RESULT (\{.*\})\n/, 300_000);
  await stopChild(child);
  return JSON.parse(match[1]!) as Measurement;
}

export async function memory(args: string[]): Promise<BenchResult> {
  const at = args.indexOf('--isolates');
  const count = at >= 0 ? Number(args[at + 1]) : 1000;
  const repeats = 2;
  const runs = new Map<Kind, Measurement[]>(KINDS.map((k) => [k, []]));
  for (let r = 0; r < repeats; r++) {
    for (const kind of KINDS) {
      progress(`memory: ${kind} (${r + 1}/${repeats})`);
      runs.get(kind)!.push(await runChild(kind, count));
    }
  }
  const perIsolate = (m: Measurement) => (m.rssAfter - m.rssBefore) / Math.max(1, m.liveIsolates);
  const summary = KINDS.map((kind) => {
    const ms = runs.get(kind)!;
    return {
      kind,
      perIsolate: median(ms.map(perIsolate)),
      each: ms.map(perIsolate),
      hostHeapPer: median(ms.map((m) => (m.hostHeapAfter - m.hostHeapBefore) / m.count)),
      isolatePhysicalPer: ms[0]!.isolateHeapPhysical === null ? null : median(ms.map((m) => m.isolateHeapPhysical! / m.count)),
      isolateUsedPer: ms[0]!.isolateHeapUsed === null ? null : median(ms.map((m) => m.isolateHeapUsed! / m.count)),
      rssAfter: median(ms.map((m) => m.rssAfter)),
      live: ms[0]!.liveIsolates,
      cpuPerRequest: ms[0]!.isolateCpuPerRequestUs === null ? null : median(ms.map((m) => m.isolateCpuPerRequestUs!)),
      seconds: median(ms.map((m) => m.seconds)),
    };
  });
  const what: Record<Kind, string> = {
    idle: `isolet \`Runtime\`, one hello-world tenant per isolate, each served one request, then idle past the ${DEFAULT_REDUCE_IDLE_MEMORY_AFTER_MS / 1000} s delay after which idle isolates give memory back`,
    runtime: 'the same with that reduction off, half a second after the requests',
    serving: `the same, then served in rotation (${SERVING_ROUNDS} requests each, 50 in flight), read at once`,
    snapshot: 'isolate from the runtime snapshot + context (no worker, no Runtime)',
    bare: 'bare isolated-vm isolate + context + small script',
  };
  const runtimeRow = summary.find((s) => s.kind === 'idle')!;
  const servedRow = summary.find((s) => s.kind === 'runtime')!;
  const servingRow = summary.find((s) => s.kind === 'serving')!;
  const bareRow = summary.find((s) => s.kind === 'bare')!;
  const markdown = [
    `Process RSS per live idle isolate with ${count.toLocaleString('en-US')} of them, each kind in a fresh child process (\`--expose-gc\`, GC before each reading), ${repeats} runs each, median (MB):`,
    '',
    table(
      ['kind', 'what', 'live', 'RSS per isolate', 'each run', 'host JS heap per isolate', 'isolate heap (physical) per isolate', 'isolate heap (used) per isolate', 'RSS after', 'isolate CPU per request (µs)'],
      summary.map((s) => [
        s.kind,
        what[s.kind],
        s.live,
        `**${mb(s.perIsolate)}**`,
        s.each.map((x) => mb(x)).join(' / '),
        mb(s.hostHeapPer, 3),
        s.isolatePhysicalPer === null ? 'n/a' : mb(s.isolatePhysicalPer),
        s.isolateUsedPer === null ? 'n/a' : mb(s.isolateUsedPer),
        mb(s.rssAfter, 0),
        s.cpuPerRequest === null ? '' : fmt(s.cpuPerRequest, 1),
      ]),
    ),
    '',
    ...KINDS.flatMap((kind) =>
      runs.get(kind)!.flatMap((m) => (m.liveIsolates !== m.count ? [`Note: a ${kind} run ended with ${m.liveIsolates} of ${m.count} isolates alive${m.errorLogs.length ? ` (${m.errorLogs.join('; ')})` : ''}; its per-isolate figure divides by the live ones.`, ''] : [])),
    ),
    `An idle isolet tenant over the bare reference: +${mb(runtimeRow.perIsolate - bareRow.perIsolate)} MB per isolate (${fmt((runtimeRow.perIsolate / bareRow.perIsolate - 1) * 100, 0)}%); just after its request, ${mb(servedRow.perIsolate)} MB.`,
  ].join('\n');
  return {
    name: 'memory',
    title: 'Memory per idle isolate',
    markdown,
    targets: [
      {
        name: `≤ ${TARGET_MB} MB RSS per idle hello-world isolate`,
        met: runtimeRow.perIsolate / (1024 * 1024) <= TARGET_MB,
        detail:
          `${mb(runtimeRow.perIsolate)} MB per idle isolate (${mb(servedRow.perIsolate)} MB just after its request; bare isolated-vm reference: ${mb(bareRow.perIsolate)} MB)` +
          (runtimeRow.perIsolate / (1024 * 1024) <= TARGET_MB ? '.' : `; ${mb(runtimeRow.perIsolate - TARGET_MB * 1024 * 1024)} MB over.`),
      },
      {
        name: `≤ ${SERVING_TARGET_MB} MB RSS per serving hello-world isolate`,
        met: servingRow.perIsolate / (1024 * 1024) <= SERVING_TARGET_MB,
        detail:
          `${mb(servingRow.perIsolate)} MB per isolate served in rotation (isolate CPU ${fmt(servingRow.cpuPerRequest ?? NaN, 1)} µs per request)` +
          (servingRow.perIsolate / (1024 * 1024) <= SERVING_TARGET_MB ? '.' : `; ${mb(servingRow.perIsolate - SERVING_TARGET_MB * 1024 * 1024)} MB over (see "The young generation of a serving isolate").`),
      },
    ],
    data: { count, runs: Object.fromEntries(runs), summary },
  };
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const childAt = args.indexOf('--child');
  if (childAt >= 0) {
    const kind = args[childAt + 1] as Kind;
    const at = args.indexOf('--isolates');
    const result = await measureInChild(kind, at >= 0 ? Number(args[at + 1]) : 1000);
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
    process.exit(0);
  } else {
    await runStandalone('memory', memory);
  }
}
