// Cold starts beside warm tenants: 100 warm hello-world tenants served in process
// (bench/support/inproc.ts, 4 requests in flight) while new tenants arrive 20 a second, each
// loaded and sent one request. Two ways, in alternating rounds: isolates made on threads of
// their own (Isolate.createOffThread, what the Runtime does on isolet's build), and
// made on the serving thread (`--sync-create`: the constructor, as on the prebuilt binary).
// Reports the warm requests' latency; then, with no warm load, the CPU of the serving thread
// itself per cold start: what wall-clock percentiles on a shared machine blur, since that
// thread's CPU is time in which no other request is served.
//
//   node --no-node-snapshot bench/cold-beside-warm.ts [--rounds 3] [--seconds 8] [--write]

import { join } from 'node:path';
import { numberArg, NODE, ROOT, RUNTIME_HOST_NODE_ARGS, childEnv, fmt, median, progress, runStandalone, spawnTracked, stopChild, table, waitForLine, type BenchResult } from './lib.ts';

const WAYS = [
  { name: 'off-thread', args: [] as string[], what: 'isolates made on their own threads (isolet build)' },
  { name: 'on the serving thread', args: ['--sync-create'], what: '`new Isolate()` on the serving thread (prebuilt isolated-vm)' },
];

interface Run {
  requests: number;
  duration_us: number;
  p50_us: number;
  p99_us: number;
  max_us: number;
  main_thread_cpu_us: number;
  cold: number;
  cold_p50_us: number;
}

export async function coldBesideWarm(args: string[]): Promise<BenchResult> {
  const rounds = numberArg(args, '--rounds', 3);
  const seconds = numberArg(args, '--seconds', 8);
  const tenants = 100;
  const coldPerSecond = 20;
  const runs = new Map<string, Run[]>(WAYS.map((way) => [way.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const way of round % 2 === 0 ? WAYS : [...WAYS].reverse()) {
      progress(`cold-beside-warm: ${way.name} (${round + 1}/${rounds})`);
      const child = spawnTracked(
        NODE,
        [...RUNTIME_HOST_NODE_ARGS, join(ROOT, 'bench/support/inproc.ts'), '--seconds', String(seconds), '--concurrency', '4', '--tenants', String(tenants), '--cold-per-second', String(coldPerSecond), ...way.args],
        { env: childEnv() },
      );
      const match = await waitForLine(child, /RESULT (\{.*\})\n/, 300_000);
      await stopChild(child);
      runs.get(way.name)!.push(JSON.parse(match[1]!) as Run);
    }
  }
  const alone = new Map<string, number>();
  for (const way of WAYS) {
    progress(`cold-beside-warm: ${way.name}, cold starts alone`);
    const child = spawnTracked(
      NODE,
      [...RUNTIME_HOST_NODE_ARGS, join(ROOT, 'bench/support/inproc.ts'), '--seconds', '5', '--concurrency', '0', '--tenants', '1', '--cold-per-second', String(coldPerSecond), ...way.args],
      { env: childEnv() },
    );
    const match = await waitForLine(child, /RESULT (\{.*\})\n/, 300_000);
    await stopChild(child);
    const run = JSON.parse(match[1]!) as Run;
    alone.set(way.name, run.main_thread_cpu_us / Math.max(1, run.cold));
  }
  const ms = (us: number) => fmt(us / 1000, 1);
  const rows = WAYS.map((way) => {
    const rs = runs.get(way.name)!;
    return {
      way,
      p50: median(rs.map((r) => r.p50_us)),
      p99: median(rs.map((r) => r.p99_us)),
      max: median(rs.map((r) => r.max_us)),
      rps: median(rs.map((r) => r.requests / (r.duration_us / 1e6))),
      cold: median(rs.map((r) => r.cold)),
      coldP50: median(rs.map((r) => r.cold_p50_us)),
      mainCpuPerSecond: median(rs.map((r) => r.main_thread_cpu_us / r.duration_us)),
      each: rs.map((r) => ms(r.p99_us)).join(' / '),
    };
  });
  const [off, on] = rows as [(typeof rows)[0], (typeof rows)[0]];
  const markdown = [
    `${tenants} warm hello-world tenants, \`runtime.fetch()\` in process with 4 in flight, while ${coldPerSecond} new tenants a second arrive (each \`load\` + one request), ${seconds} s a round, ${rounds} rounds alternating the two ways, median round (ms):`,
    '',
    table(
      ['isolates', 'warm p50', 'warm p99', 'p99 each round', 'warm max', 'warm req/s', 'cold starts', 'cold start p50', 'serving thread busy (CPU s per s)'],
      rows.map((r) => [r.way.what, ms(r.p50), `**${ms(r.p99)}**`, r.each, ms(r.max), fmt(r.rps, 0), fmt(r.cold, 0), ms(r.coldP50), fmt(r.mainCpuPerSecond, 2)]),
    ),
    '',
    `Warm p99 off the serving thread over on it: ${fmt(off.p99 / on.p99, 2)}x.`,
    '',
    `The serving thread's own CPU per cold start (\`load\` + first request, ${coldPerSecond} a second with nothing else to serve, 5 s): ` +
      WAYS.map((way) => `${ms(alone.get(way.name)!)} ms ${way.name === 'off-thread' ? 'with isolates made off it' : 'with `new Isolate()` on it'}`).join(', ') + '.',
  ].join('\n');
  return {
    name: 'cold-beside-warm',
    title: 'Cold starts beside warm tenants',
    markdown,
    targets: [],
    data: { rounds, seconds, runs: Object.fromEntries(runs), servingThreadCpuPerColdStartUs: Object.fromEntries(alone) },
  };
}

if (import.meta.main) await runStandalone('cold-beside-warm', coldBesideWarm);
