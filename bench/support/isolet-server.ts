// A Runtime behind the HTTP front on 127.0.0.1, serving the same hello-world worker as
// `--tenants` tenants named t0, t1, ... (routed by the first label of Host, as the server
// does). Prints `listening PORT` once every tenant's isolate is up. For bench/throughput.ts and
// bench/processes.ts: with `--processes N` the workers run in N runtime processes under the
// supervisor (ProcessPool), as `isolet serve` runs them; with `--socket PATH` it listens on that
// Unix socket instead of a port (behind bench/support/http-proxy.ts); with `--metrics` each
// request is counted as `isolet serve` counts it (src/observability/observed-fetch.ts, and the
// Runtime's CPU and isolate counts), to measure what metrics cost; with `--no-inline` no request
// starts on the serving thread (RuntimeOptions.inlineRuns; in process only).
//
//   node --no-node-snapshot bench/support/isolet-server.ts --tenants 100 [--processes 2] [--socket PATH] [--metrics] [--no-inline]

import type { AddressInfo } from 'node:net';
import { Runtime } from '../../src/runtime/runtime.ts';
import { createHttpFront } from '../../src/http/front.ts';
import type { WorkerLogEntry } from '../../src/runtime/types.ts';
import { ProcessPool } from '../../src/supervisor/process-pool.ts';
import { ServerMetrics } from '../../src/observability/server-metrics.ts';
import { observedFetch } from '../../src/observability/observed-fetch.ts';
import { WorkerStats } from '../../src/observability/worker-stats.ts';

import { HELLO_WORKER } from './hello.ts';

const args = process.argv.slice(2);
const at = args.indexOf('--tenants');
const tenants = at >= 0 ? Number(args[at + 1]) : 1;
const processesAt = args.indexOf('--processes');
const processes = processesAt >= 0 ? Number(args[processesAt + 1]) : 0;
const socketAt = args.indexOf('--socket');
const socket = socketAt >= 0 ? args[socketAt + 1] : undefined;
const metrics = args.includes('--metrics') ? new ServerMetrics() : undefined;
const inlineRuns = !args.includes('--no-inline');
const stats = metrics === undefined ? undefined : new WorkerStats();

// Per-request summary lines are dropped (the references log nothing either); anything else a
// worker logs (a limit, an exception) goes to stderr, so an error in a run can be explained.
const log = (entry: WorkerLogEntry) => {
  stats?.log(entry);
  if (entry.type !== 'request') process.stderr.write(`isolet-server: ${JSON.stringify(entry)}\n`);
};
const maxIsolates = Math.max(tenants + 10, 100);
const definition = { modules: [{ name: 'worker.js', source: HELLO_WORKER }] };
let runtime: { fetch: Runtime['fetch']; liveIsolates?: number };
if (processes > 0) {
  const pool = new ProcessPool({ processes, runtime: { maxIsolates, reduceIdleMemoryAfterMs: 0 }, workerLog: log, log: () => {}, stats: metrics && ((process, batch) => metrics.merge(process, batch)) });
  for (let i = 0; i < tenants; i++) await pool.load(`t${i}`, definition);
  // Each tenant's first request starts its isolate in its home process.
  for (let i = 0; i < tenants; i++) await pool.fetch(`t${i}`, { method: 'GET', url: 'http://t.localhost/', headers: [] });
  runtime = pool;
} else {
  const local = new Runtime({
    log,
    maxIsolates,
    // Servers take turns under load and sit idle between their rounds; an idle server's isolates
    // would give memory back (full collections) in the middle of another server's round.
    reduceIdleMemoryAfterMs: 0,
    isolateEvents: stats,
    inlineRuns,
  });
  if (metrics !== undefined) metrics.pull('main', () => stats!.take(local));
  for (let i = 0; i < tenants; i++) await local.load(`t${i}`, definition, { validate: true });
  runtime = local;
}
const fetcher = metrics === undefined ? runtime : { fetch: observedFetch((name, request) => runtime.fetch(name, request), metrics) };
const server = createHttpFront(fetcher, {
  worker: (req) => {
    const host = req.headers.host ?? '';
    const dot = host.indexOf('.');
    return dot > 0 ? host.slice(0, dot) : undefined;
  },
  log: () => {},
});
server.keepAliveTimeout = 60_000;
const listening = () => process.stdout.write(`listening ${socket ?? (server.address() as AddressInfo).port} isolates ${runtime.liveIsolates ?? tenants}\n`);
if (socket !== undefined) server.listen(socket, listening);
else server.listen(0, '127.0.0.1', listening);
process.on('SIGTERM', () => process.exit(0));
