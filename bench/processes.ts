// The data path to runtime processes, chosen by this measurement: hello-world req/s over HTTP
// for the same worker served
//
// - in one process (the Runtime behind the HTTP front: what embedders and `--processes 0` run),
// - through runtime processes under the supervisor: the control process parses HTTP and
//   forwards each request over its process's Unix socket pair as frames (src/supervisor/
//   channel.ts), which is what `isolet serve` runs,
// - through an HTTP proxy: the control process forwards each request as HTTP over a Unix socket
//   to a runtime process that is an HTTP server itself (bench/support/http-proxy.ts),
//
// and bare node:http on the same Node, all in one run, with wrk as bench/throughput.ts drives it
// (warm-up, then rounds in rotating order; the median round is quoted). Handing client sockets
// to runtime processes is not measured: a keep-alive connection carries requests for any
// tenant, so the control process would parse HTTP anyway to route each one.
//
//   node --no-node-snapshot bench/processes.ts [--seconds 5] [--rounds 3] [--write]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RUNTIME_HOST_FLAGS } from '../src/runtime/engine-flags.ts';
import { positiveArg, fmt, fmtInt, median, progress, runStandalone, stopChild, table, type BenchResult } from './lib.ts';
import { CONNECTIONS, get, hasWrk, runLoad, startNodeServer, type LoadResult, type Server } from './throughput.ts';

interface Variant {
  label: string;
  script: string;
  args: string[];
  tenants: number;
}

const VARIANTS: Variant[] = [
  { label: 'node:http (bare)', script: 'bench/support/node-server.ts', args: [], tenants: 1 },
  { label: 'isolet, one process', script: 'bench/support/isolet-server.ts', args: ['--tenants', '1'], tenants: 1 },
  { label: 'isolet, runtime processes (framed channel)', script: 'bench/support/isolet-server.ts', args: ['--tenants', '1', '--processes', '2'], tenants: 1 },
  { label: 'isolet, runtime process behind an HTTP proxy (Unix socket)', script: 'bench/support/http-proxy.ts', args: ['--tenants', '1'], tenants: 1 },
  { label: 'isolet, one process', script: 'bench/support/isolet-server.ts', args: ['--tenants', '100'], tenants: 100 },
  { label: 'isolet, runtime processes (framed channel)', script: 'bench/support/isolet-server.ts', args: ['--tenants', '100', '--processes', '2'], tenants: 100 },
];

export async function processes(args: string[]): Promise<BenchResult> {
  const seconds = positiveArg(args, '--seconds', 5);
  const rounds = positiveArg(args, '--rounds', 3);
  const useWrk = !args.includes('--no-wrk') && hasWrk();
  const dir = mkdtempSync(join(tmpdir(), 'isolet-bench-'));
  const servers: { variant: Variant; server: Server; runs: LoadResult[] }[] = [];
  try {
    for (const variant of VARIANTS) {
      progress(`processes: starting ${variant.label}, ${variant.tenants} tenant(s)`);
      // Servers that host a Runtime start as runtime processes do; bare node:http as it is.
      const server = await startNodeServer(variant.script, variant.args, variant.label, variant.tenants, variant.script === 'bench/support/node-server.ts' ? [] : RUNTIME_HOST_FLAGS);
      const status = await get(server.port, 't0.localhost');
      if (status !== 200) throw new Error(`${variant.label} answered ${status}`);
      servers.push({ variant, server, runs: [] });
    }
    for (const { server } of servers) await runLoad(server, server.tenants, Math.min(3, seconds), dir, useWrk);
    for (let round = 0; round < rounds; round++) {
      const order = servers.map((_, i) => servers[(i + round) % servers.length]!);
      for (const entry of order) {
        progress(`processes: round ${round + 1}/${rounds}: ${entry.variant.label}, ${entry.variant.tenants} tenant(s)`);
        entry.runs.push(await runLoad(entry.server, entry.server.tenants, seconds, dir, useWrk));
      }
    }
  } finally {
    for (const { server } of servers) await stopChild(server.child, 5000);
    rmSync(dir, { recursive: true, force: true });
  }

  const nodeRps = median(servers[0]!.runs.map((r) => r.rps));
  const oneProcess = new Map(servers.filter((s) => s.variant.label === 'isolet, one process').map((s) => [s.variant.tenants, median(s.runs.map((r) => r.rps))]));
  const rows = servers.map(({ variant, runs }) => {
    const rps = median(runs.map((r) => r.rps));
    const mid = [...runs].sort((a, b) => a.rps - b.rps)[runs.length >> 1]!;
    const errors = runs.reduce((sum, r) => sum + r.errors, 0);
    const base = oneProcess.get(variant.tenants);
    return [
      variant.label,
      variant.tenants,
      fmtInt(rps),
      runs.map((r) => fmtInt(r.rps)).join(' / '),
      fmt(mid.p50_us / 1000),
      fmt(mid.p99_us / 1000),
      fmt(mid.serverCores),
      errors,
      fmt(rps / nodeRps),
      variant.label.startsWith('node') || base === undefined ? '' : fmt(rps / base),
    ];
  });
  const markdown = [
    `\`wrk -t1 -c${CONNECTIONS} -d${seconds}s\`${useWrk ? '' : ' (stand-in: bench/support/load.ts)'}, ${rounds} rounds in rotating order after a warm-up, median round quoted; ` +
      'requests rotate over the tenants by Host. Server CPU counts the server process and its runtime processes (1.00 = one core).',
    '',
    table(['server', 'active tenants', 'req/s (median)', 'each round', 'p50 ms', 'p99 ms', 'server CPU (cores)', 'errors', 'vs node:http', 'vs one process'], rows),
  ].join('\n');
  return {
    name: 'processes',
    title: 'Runtime processes: the data path',
    markdown,
    targets: [],
    data: servers.map(({ variant, runs }) => ({ label: variant.label, tenants: variant.tenants, runs })),
  };
}

if (import.meta.main) await runStandalone('processes', processes);
