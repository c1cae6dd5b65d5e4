// What inline runs save (src/runtime/inline-runs.ts): hello-world tenants served in rotation at a
// fixed request rate below what the serving thread can take, in one process, with requests
// started on the serving thread when allowed (the default) and never (`inlineRuns: false`),
// alternating, each configuration in a fresh Runtime. Measures the process's CPU per request
// (all threads), the share of requests that started inline, and the latency of each request
// (runtime.fetch to its body's end). Under saturating load (bench/throughput.ts) the serving
// thread is busy and requests go to the isolates' threads either way.
//
//   node --no-node-snapshot bench/inline-runs.ts [--seconds 6] [--rounds 2] [--write]

import { Runtime } from '../src/runtime/runtime.ts';
import { InlineRuns } from '../src/runtime/inline-runs.ts';
import { HELLO_WORKER } from './support/hello.ts';
import { drainBody, numberArg, fmt, fmtInt, percentile, progress, runStandalone, sleep, table, type BenchResult } from './lib.ts';

interface Row {
  tenants: number;
  rate: number;
  inline: boolean;
  requests: number;
  inlineShare: number;
  processCpuUs: number;
  p50Us: number;
  p99Us: number;
}

async function measure(tenants: number, rate: number, seconds: number, inline: boolean): Promise<Row> {
  const gate = new InlineRuns();
  const runtime = new Runtime({ log: () => {}, maxIsolates: tenants + 10, memoryBudgetMb: 1_048_576, reduceIdleMemoryAfterMs: 0, inlineRuns: inline ? gate : false });
  try {
    for (let i = 0; i < tenants; i++) await runtime.load(`t${i}`, { modules: [{ name: 'worker.js', source: HELLO_WORKER }] });
    const latencies: number[] = [];
    const one = async (i: number, timed: boolean) => {
      const start = performance.now();
      await drainBody(await runtime.fetch(`t${i}`, { method: 'GET', url: `http://t${i}.localhost/`, headers: [['host', `t${i}.localhost`]], body: null }));
      if (timed) latencies.push((performance.now() - start) * 1000);
    };
    // Every tenant served a few times first: a worker runs inline after a few quick requests.
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < tenants; i += 50) await Promise.all(Array.from({ length: Math.min(50, tenants - i) }, (_, j) => one(i + j, false)));
    }
    await sleep(300);
    const total = Math.round(rate * seconds);
    const runsBefore = gate.runs;
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    const pending: Promise<void>[] = [];
    for (let n = 0; n < total; n++) {
      const wait = start + (n * 1000) / rate - performance.now();
      if (wait > 1) await sleep(wait);
      pending.push(one(n % tenants, true));
    }
    await Promise.all(pending);
    const used = process.cpuUsage(cpuStart);
    latencies.sort((a, b) => a - b);
    return {
      tenants, rate, inline, requests: total, inlineShare: (gate.runs - runsBefore) / total,
      processCpuUs: (used.user + used.system) / total, p50Us: percentile(latencies, 50), p99Us: percentile(latencies, 99),
    };
  } finally {
    await runtime.close();
  }
}

async function main(args: string[]): Promise<BenchResult> {
  const seconds = numberArg(args, '--seconds', 6);
  const rounds = numberArg(args, '--rounds', 2);
  const cases = [{ tenants: 1, rate: 3_000 }, { tenants: 100, rate: 2_000 }, { tenants: 1_000, rate: 1_000 }];
  const rows: Row[] = [];
  for (const { tenants, rate } of cases) {
    for (let round = 0; round < rounds; round++) {
      for (const inline of round % 2 === 0 ? [true, false] : [false, true]) {
        progress(`inline-runs: ${tenants} tenants at ${rate} req/s, inline ${inline ? 'allowed' : 'off'}, round ${round + 1}`);
        rows.push(await measure(tenants, rate, seconds, inline));
      }
    }
  }
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  };
  const summary = cases.map(({ tenants, rate }) => {
    const of = (inline: boolean) => rows.filter((r) => r.tenants === tenants && r.inline === inline);
    return { tenants, rate, on: median(of(true).map((r) => r.processCpuUs)), off: median(of(false).map((r) => r.processCpuUs)) };
  });
  return {
    name: 'inline-runs',
    title: 'Requests started on the serving thread, at rates it has room for',
    markdown: [
      `Hello-world tenants in one Runtime, served in rotation at a fixed rate (${seconds} s a run, after every tenant was served 4 times), with inline runs allowed (the default) and off, alternating over ${rounds} rounds. Process CPU per request: all its threads. Inline: the share of requests whose dispatch ran on the serving thread. Latency: runtime.fetch() to the end of the body.`,
      '',
      table(
        ['tenants', 'req/s', 'inline runs', 'requests inline', 'process CPU µs/req', 'p50 µs', 'p99 µs'],
        rows.map((r) => [fmtInt(r.tenants), fmtInt(r.rate), r.inline ? 'allowed' : 'off', `${fmt(r.inlineShare * 100, 0)}%`, fmt(r.processCpuUs, 0), fmt(r.p50Us, 0), fmt(r.p99Us, 0)]),
      ),
      '',
      ...summary.map((s) => `- ${fmtInt(s.tenants)} ${s.tenants === 1 ? 'tenant' : 'tenants'} at ${fmtInt(s.rate)} req/s: ${fmt(s.on, 0)} µs of CPU a request with inline runs against ${fmt(s.off, 0)} without (${fmt(s.on / s.off, 2)}x, medians).`),
    ].join('\n'),
    targets: [],
    data: { seconds, rounds, rows },
  };
}

await runStandalone('inline-runs', main);
