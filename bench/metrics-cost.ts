// What metrics cost the control process, measured in its own CPU time (so a loaded machine
// changes the figures less than it changes req/s): counting one request as `isolet serve`
// does on the request path (ServerMetrics.request, and the Runtime's CPU count from the
// request's log line), folding the waiting counts into the exposed series (every 5 s), and
// rendering /metrics, over 1, 1,000 and 10,000 workers. The HTTP-level cost is the throughput
// bench's "isolet + metrics" rows.
//
//   node --no-node-snapshot bench/metrics-cost.ts [--requests 2000000]

import { ServerMetrics } from '../src/observability/server-metrics.ts';
import { WorkerStats } from '../src/observability/worker-stats.ts';
import { positiveArg, fmt, fmtInt, median, runStandalone, table, type BenchResult } from './lib.ts';

/** A request's counting should stay under a hundredth of the isolate CPU of the cheapest request (about 100 µs, BENCHMARKS "Warm throughput"). */
const TARGET_NS = 1000;

function cpuNs(fn: () => void): number {
  const before = process.cpuUsage();
  fn();
  const used = process.cpuUsage(before);
  return (used.user + used.system) * 1000;
}

async function metricsCost(args: string[]): Promise<BenchResult> {
  const requests = positiveArg(args, '--requests', 2_000_000);
  const rows: string[][] = [];
  const data: Record<string, unknown>[] = [];
  for (const workers of [1, 1000, 10_000]) {
    const metrics = new ServerMetrics({ processMetrics: false });
    const stats = new WorkerStats();
    const names = Array.from({ length: workers }, (_, i) => `w${i}`);
    const perRequest: number[] = [];
    const folds: number[] = [];
    metrics.pull('main', () => stats.take({ liveIsolates: workers, spareIsolates: 2, isolateMemory: workers * 1.5e6, isolateMemoryBudget: workers * 2e6 }));
    for (let round = 0; round < 5; round++) {
      perRequest.push(cpuNs(() => {
        for (let i = 0; i < requests; i++) {
          const worker = names[i % workers]!;
          metrics.request(worker, 200, 0.0004);
          stats.log({ time: '', worker, level: 'info', type: 'request', message: '', cpuMs: 0.12 });
        }
      }) / requests);
      folds.push(cpuNs(() => metrics.fold()) / 1e6);
    }
    const before = process.cpuUsage();
    const { body } = await metrics.render();
    const used = process.cpuUsage(before);
    const render = (used.user + used.system) / 1000;
    const size = body.length;
    metrics.close();
    const row = { workers, nsPerRequest: median(perRequest), foldMs: median(folds.slice(1)), renderMs: render, bytes: size };
    data.push(row);
    rows.push([fmtInt(workers), fmt(row.nsPerRequest, 0), fmt(row.foldMs, 2), fmt(row.renderMs, 1), fmtInt(size)]);
  }
  const worst = Math.max(...data.map((row) => row.nsPerRequest as number));
  return {
    name: 'metrics-cost',
    title: 'What metrics cost the control process',
    markdown: [
      `CPU time of the control process (\`process.cpuUsage\`), median of 5 rounds of ${fmtInt(requests)} requests rotating over the workers. ` +
        'Per request: `ServerMetrics.request` (status class and duration bucket) plus the CPU bucket from its log line (`WorkerStats.log`), what a request costs with `--processes 0`; ' +
        'with runtime processes the CPU count runs in the runtime process instead. Fold: moving the waiting counts into the exposed series (every 5 s and at each scrape), ' +
        'after a round that touched every worker. Render: `/metrics` as text (100 workers with their own series, the rest `_other`).',
      '',
      table(['workers', 'ns per request', 'fold (ms)', 'render (ms)', '/metrics bytes'], rows),
    ].join('\n'),
    targets: [{ name: `counting a request ≤ ${TARGET_NS} ns of CPU`, met: worst <= TARGET_NS, detail: `${fmt(worst, 0)} ns at worst (over ${data.map((row) => fmtInt(row.workers as number)).join(', ')} workers).` }],
    data,
  };
}

if (import.meta.main) await runStandalone('metrics-cost', metricsCost);
