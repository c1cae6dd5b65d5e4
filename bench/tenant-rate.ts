// Cost per request against how often each tenant is served. With thousands of tenants most are
// served rarely: a request then meets an isolate whose caches went cold and, when it waited
// longer than the Runtime's idle delay, one that the idle reducer may have collected
// (src/runtime/idle-memory.ts). This measures, in one process, hello-world tenants served in
// rotation at a fixed request rate, so that each tenant's requests come `tenants / rate`
// seconds apart, with the idle reducer off and on:
//
// - isolate CPU per request (from the request log) and the process's CPU per request (all its
//   threads: the host, the isolates, V8's helpers and the reducer's collections);
// - the process's CPU over 5 s of no requests right after every tenant was served twice, which
//   is what the reducer spends on tenants going quiet.
//
// Each configuration gets a fresh Runtime; a first paced pass (not measured) gives every tenant
// the same idle time before the measured one.
//
//   node --no-node-snapshot bench/tenant-rate.ts [--tenants 1500] [--rates 3000,250] [--idle-ms 3000] [--seconds 12] [--write]

import { Runtime } from '../src/runtime/runtime.ts';
import { HELLO_WORKER } from './support/hello.ts';
import { drainBody, numberArg, fmt, fmtInt, progress, runStandalone, sleep, table, type BenchResult } from './lib.ts';

interface Row {
  rate: number;
  intervalS: number;
  reducer: boolean;
  requests: number;
  isolateCpuUs: number;
  processCpuUs: number;
  /** Times a thread of the process gave up its core (waited, or was preempted), per request. */
  switches: number;
  quietCpuMs: number;
}

/** Context switches of every thread of this process so far (getrusage counts them all). */
function switchesSoFar(): number {
  const usage = process.resourceUsage();
  return usage.voluntaryContextSwitches + usage.involuntaryContextSwitches;
}

function cpuUs(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return used.user + used.system;
}

async function measure(tenants: number, rate: number, seconds: number, idleMs: number): Promise<Row> {
  let isolateCpuMs = 0;
  let logged = 0;
  let counting = false;
  const runtime = new Runtime({
    log: (entry) => {
      if (!counting || entry.type !== 'request' || typeof entry.cpuMs !== 'number') return;
      isolateCpuMs += entry.cpuMs;
      logged++;
    },
    maxIsolates: tenants + 10,
    memoryBudgetMb: 1_048_576,
    reduceIdleMemoryAfterMs: idleMs,
  });
  try {
    for (let i = 0; i < tenants; i++) await runtime.load(`t${i}`, { modules: [{ name: 'worker.js', source: HELLO_WORKER }] });
    const one = async (i: number) => drainBody(await runtime.fetch(`t${i}`, { method: 'GET', url: `http://t${i}.localhost/`, headers: [], body: null }));
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < tenants; i += 50) await Promise.all(Array.from({ length: Math.min(50, tenants - i) }, (_, j) => one(i + j)));
    }
    const quietStart = process.cpuUsage();
    await sleep(5000);
    const quietCpuMs = cpuUs(quietStart) / 1000;
    // Each tenant at most once a pass, so that its requests are `tenants / rate` s apart.
    const perPass = Math.min(tenants, Math.round(rate * seconds));
    let next = 0;
    let processCpuUs = 0;
    let switches = 0;
    for (let pass = 0; pass < 2; pass++) {
      counting = pass === 1;
      const start = performance.now();
      const cpuStart = process.cpuUsage();
      const switchesStart = switchesSoFar();
      const pending: Promise<void>[] = [];
      for (let n = 0; n < perPass; n++) {
        const wait = start + (n * 1000) / rate - performance.now();
        if (wait > 1) await sleep(wait);
        pending.push(one(next++ % tenants));
      }
      await Promise.all(pending);
      if (counting) {
        processCpuUs = cpuUs(cpuStart) / perPass;
        switches = (switchesSoFar() - switchesStart) / perPass;
      }
    }
    return { rate, intervalS: tenants / rate, reducer: idleMs > 0, requests: logged, isolateCpuUs: (isolateCpuMs * 1000) / logged, processCpuUs, switches, quietCpuMs };
  } finally {
    await runtime.close();
  }
}

async function main(args: string[]): Promise<BenchResult> {
  const tenants = numberArg(args, '--tenants', 1500);
  const ratesAt = args.indexOf('--rates');
  const rates = (ratesAt >= 0 ? args[ratesAt + 1]! : '3000,250').split(',').map(Number);
  const idleMs = numberArg(args, '--idle-ms', 3000);
  const seconds = numberArg(args, '--seconds', 12);
  if (!(idleMs > 0)) throw new Error('--idle-ms is the idle reducer\'s delay in the rows with it on: give a number of milliseconds above 0.');
  const rows: Row[] = [];
  for (const rate of rates) {
    for (const reducer of [false, true]) {
      progress(`tenant-rate: ${tenants} tenants at ${rate} req/s, idle reducer ${reducer ? `after ${idleMs} ms` : 'off'}`);
      rows.push(await measure(tenants, rate, seconds, reducer ? idleMs : 0));
    }
  }
  const slow = rows.filter((r) => r.intervalS * 1000 > idleMs);
  const worst = Math.max(...rates.map((rate) => {
    const on = rows.find((r) => r.rate === rate && r.reducer)!;
    const off = rows.find((r) => r.rate === rate && !r.reducer)!;
    return on.processCpuUs / off.processCpuUs;
  }));
  return {
    name: 'tenant-rate',
    title: 'Cost per request against how often each tenant is served',
    markdown: [
      `${fmtInt(tenants)} hello-world tenants in one Runtime, served in rotation at a fixed rate, so each tenant's requests come tenants / rate seconds apart; the idle reducer off, or on with a ${fmt(idleMs / 1000, 1)} s delay. CPU per request: the isolates' (request log) and the whole process's; thread switches: how often a thread of the process gave up its core (to wait, or preempted), per request. Quiet: the process's CPU over the 5 s after every tenant was served, with no requests.`,
      '',
      table(
        ['req/s', 'each tenant every', 'idle reducer', 'isolate CPU µs/req', 'process CPU µs/req', 'thread switches/req', 'quiet 5 s, CPU ms'],
        rows.map((r) => [fmtInt(r.rate), `${fmt(r.intervalS, 1)} s`, r.reducer ? 'on' : 'off', fmt(r.isolateCpuUs, 0), fmt(r.processCpuUs, 0), fmt(r.switches, 1), fmt(r.quietCpuMs, 0)]),
      ),
    ].join('\n'),
    targets: [
      {
        name: 'the idle reducer costs a rarely served tenant ≤ 1.5x the CPU per request it costs with the reducer off',
        met: slow.length === 0 ? undefined : worst <= 1.5,
        detail: `worst ${fmt(worst)}x.`,
      },
    ],
    data: { tenants, idleMs, seconds, rows },
  };
}

await runStandalone('tenant-rate', main);
