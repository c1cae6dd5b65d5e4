// Warm throughput of a hello-world worker over HTTP, side by side in one run:
//
// - isolet: the Runtime behind the HTTP front (bench/support/isolet-server.ts), in its own
//   process, with 1, 100 and 1,000 active tenants; requests rotate over the tenants by Host.
// - node:http: a bare hello world on the same Node 24 (bench/support/node-server.ts).
// - workerd: Cloudflare's runtime serving the same worker from a capnp config.
// - the floor of an isolate per tenant on Node (bench/support/floor-server.ts): node:http plus
//   one call into the tenant's isolate per request, with `apply` and with `applySync`, 1 and
//   1,000 tenants: how much of the gap to node:http is isolet's own work.
//
// Load: `wrk -t1 -c50 -d5s` with a Lua script that rotates the Host header (the same script
// for every server, so the load generator costs the same everywhere); a warm-up run per
// server first, then 3 rounds that alternate between the servers in a rotating order; the
// median round is quoted. Each measured run comes right after `--round-warm-up` seconds of
// the same load on the same server, not counted: between its rounds a server sits idle for
// as long as the other dozen servers take, and what is measured is a server under load, not
// one waking up (with 1,000 tenants, runs straight after such a pause served a fifth fewer
// requests). Without wrk a Node load generator (bench/support/load.ts) stands in.
// Also: runtime.fetch() in process with no HTTP (bench/support/inproc.ts), after
// `--inproc-warm-up` seconds of the same rotation, to split the front's cost from the
// runtime's and the isolates' CPU from the host's, and each server's CPU use while loaded.
//
//   node --no-node-snapshot bench/throughput.ts [--seconds 5] [--rounds 3] [--round-warm-up 5]
//     [--inproc-warm-up 15] [--profile DIR] [--write]

import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { HELLO_WORKER } from './support/hello.ts';
import { RUNTIME_HOST_FLAGS } from '../src/runtime/engine-flags.ts';
import {
  positiveArg,
  NODE,
  RUNTIME_HOST_NODE_ARGS,
  ROOT,
  childEnv,
  fmt,
  fmtInt,
  freePort,
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

/** One tenant against bare node:http and against workerd, and 1,000 tenants against node:http. */
const TARGET_ONE_VS_NODE = 0.6;
const TARGET_ONE_VS_WORKERD = 1.2;
const TARGET_THOUSAND_VS_NODE = 0.25;
/** The isolates' CPU per request with 1,000 tenants in rotation (in process, 50 in flight), µs. */
const TARGET_THOUSAND_ISOLATE_CPU_US = 50;
export const CONNECTIONS = 50;
const FLOOR_ASYNC = 'floor: node:http + apply';
const FLOOR_SYNC = 'floor: node:http + applySync';

export interface Server {
  name: string;
  tenants: number;
  child: ChildProcess;
  port: number;
  /** Lines the isolet server wrote about its workers (limits, exceptions): why a request failed. */
  workerLines: string[];
}

export interface LoadResult {
  requests: number;
  duration_us: number;
  errors: number;
  /** Errors by kind (wrk: connect, read, write, status = non-2xx/3xx, timeout), for the table. */
  errorKinds: Record<string, number>;
  p50_us: number;
  p99_us: number;
  /** CPU the server process used during the run, in cores (1.0 = one core busy all along). */
  serverCores: number;
  rps: number;
}

function label(server: Server): string {
  return server.name === 'isolet' ? `isolet, ${server.tenants} tenant${server.tenants === 1 ? '' : 's'}` : server.name;
}

export function hasWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (error) {
    // wrk --version exits 1 after printing its banner; only a missing binary is ENOENT.
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** wrk's `done`: one JSON line with the counts and percentiles, which runLoad reads. */
export const WRK_DONE = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests":%d,"duration_us":%d,"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
`;

/**
 * wrk script: requests formatted once per host in init(), rotated per request (hosts
 * `<prefix>0.localhost` ...); with `delayMs`, each connection waits that long between requests.
 */
export function wrkScript(dir: string, hosts: number, port: number, prefix = 't', delayMs = 0): string {
  const file = join(dir, `rotate-${prefix}${hosts}-${port}-${delayMs}.lua`);
  writeFileSync(
    file,
    `local hosts = ${hosts}
local requests = {}
local counter = 0
init = function(args)
  for i = 0, hosts - 1 do
    requests[i] = wrk.format("GET", "/", { ["Host"] = "${prefix}" .. i .. ".localhost:${port}" })
  end
end
request = function()
  local r = requests[counter % hosts]
  counter = counter + 1
  return r
end
${delayMs > 0 ? `delay = function() return ${delayMs} end
` : ''}${WRK_DONE}`,
  );
  return file;
}

/** utime + stime of a process (all its threads) and its descendants alive now (runtime processes), in seconds. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    let seconds = (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      for (const child of children === '' ? [] : children.split(' ')) seconds += cpuSeconds(Number(child));
    }
    return seconds;
  } catch {
    return NaN;
  }
}

/** `script`: a wrk script of the caller's (ending in WRK_DONE) in place of rotating over `hosts` t0, t1, ... */
export async function runLoad(server: Server, hosts: number, seconds: number, dir: string, useWrk: boolean, script?: string, connections = CONNECTIONS): Promise<LoadResult> {
  const cpuBefore = cpuSeconds(server.child.pid!);
  if (script !== undefined && !useWrk) throw new Error('this load needs wrk (apt-get install -y wrk)');
  const child = useWrk
    ? spawnTracked('wrk', [`-t1`, `-c${connections}`, `-d${seconds}s`, '-s', script ?? wrkScript(dir, hosts, server.port), `http://127.0.0.1:${server.port}/`])
    : spawnTracked(NODE, [join(ROOT, 'bench/support/load.ts'), '--port', String(server.port), '--hosts', String(hosts), '--connections', String(connections), '--seconds', String(seconds)], {
        env: childEnv(),
      });
  const match = await waitForLine(child, /RESULT (\{.*\})\n/, (seconds + 30) * 1000);
  const cpuAfter = cpuSeconds(server.child.pid!);
  await stopChild(child);
  const raw = JSON.parse(match[1]!) as Record<string, number>;
  const errorKinds: Record<string, number> = {};
  for (const [key, value] of Object.entries(raw)) if (key.startsWith('errors_') && value > 0) errorKinds[key.slice(7)] = value;
  const errors = Object.values(errorKinds).reduce((sum, value) => sum + value, 0);
  const durationS = raw.duration_us! / 1e6;
  return {
    requests: raw.requests!,
    duration_us: raw.duration_us!,
    errors,
    errorKinds,
    p50_us: raw.p50_us!,
    p99_us: raw.p99_us!,
    serverCores: (cpuAfter - cpuBefore) / durationS,
    rps: raw.requests! / durationS,
  };
}

export async function startNodeServer(script: string, args: string[], name: string, tenants: number, nodeFlags: readonly string[] = []): Promise<Server> {
  const child = spawnTracked(NODE, ['--no-node-snapshot', ...nodeFlags, join(ROOT, script), ...args], { env: childEnv() });
  const workerLines: string[] = [];
  let partial = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('isolet-server: ') && workerLines.length < 20) workerLines.push(line.slice(15));
  });
  const match = await waitForLine(child, /listening (\d+)/, 180_000);
  return { name, tenants, child, port: Number(match[1]), workerLines };
}

export function get(port: number, host: string): Promise<number> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/', headers: { host }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

function workerdBinary(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const mod = require('workerd') as { default?: string };
    return mod.default;
  } catch {
    return undefined;
  }
}

async function startWorkerd(dir: string): Promise<Server | undefined> {
  const binary = workerdBinary();
  if (!binary) return undefined;
  const port = await freePort();
  writeFileSync(join(dir, 'worker.js'), HELLO_WORKER + '\n');
  writeFileSync(
    join(dir, 'config.capnp'),
    `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .hello) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);

const hello :Workerd.Worker = (
  modules = [ (name = "worker", esModule = embed "worker.js") ],
  compatibilityDate = "2024-09-01",
);
`,
  );
  const child = spawnTracked(binary, ['serve', join(dir, 'config.capnp')], { env: childEnv() });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  child.stdout?.resume();
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`workerd exited (${child.exitCode}): ${stderr}`);
    if ((await get(port, 't0.localhost')) === 200) return { name: 'workerd', tenants: 1, child, port, workerLines: [] };
    await sleep(50);
  }
  throw new Error(`workerd did not answer on ${port}: ${stderr}`);
}

export async function throughput(args: string[]): Promise<BenchResult> {
  const seconds = positiveArg(args, '--seconds', 5);
  const rounds = positiveArg(args, '--rounds', 3);
  const roundWarmUp = positiveArg(args, '--round-warm-up', 5);
  const inprocWarmUp = positiveArg(args, '--inproc-warm-up', 15);
  const profileAt = args.indexOf('--profile');
  const profileDir = profileAt >= 0 ? args[profileAt + 1] : undefined;
  const useWrk = !args.includes('--no-wrk') && hasWrk();
  const tenantCounts = [1, 100, 1000];
  const dir = mkdtempSync(join(tmpdir(), 'isolet-bench-'));
  const notes: string[] = [];
  if (!useWrk) {
    notes.push('wrk is not installed (`apt-get install -y wrk`): the Node load generator bench/support/load.ts stood in; it costs more CPU per request than wrk, on the same cores as the servers, so absolute numbers are lower and only the ratios mean much.');
  }
  progress(`throughput: load generator ${useWrk ? 'wrk' : 'bench/support/load.ts'}`);

  try {
    progress('throughput: starting servers');
    const servers: Server[] = [];
    const profileFlags = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    for (const n of tenantCounts) {
      servers.push(await startNodeServer('bench/support/isolet-server.ts', ['--tenants', String(n)], `isolet`, n, [...RUNTIME_HOST_FLAGS, ...profileFlags]));
    }
    // The same with each request counted as isolet serve counts it: what metrics cost.
    for (const n of [1, 1000]) {
      servers.push(await startNodeServer('bench/support/isolet-server.ts', ['--tenants', String(n), '--metrics'], 'isolet + metrics', n, [...RUNTIME_HOST_FLAGS, ...profileFlags]));
    }
    servers.push(await startNodeServer('bench/support/node-server.ts', [], 'node:http', 1));
    for (const n of [1, 1000]) {
      servers.push(await startNodeServer('bench/support/floor-server.ts', ['--tenants', String(n), '--async'], FLOOR_ASYNC, n, RUNTIME_HOST_FLAGS));
      servers.push(await startNodeServer('bench/support/floor-server.ts', ['--tenants', String(n)], FLOOR_SYNC, n, RUNTIME_HOST_FLAGS));
    }
    let workerd: Server | undefined;
    try {
      workerd = await startWorkerd(dir);
    } catch (error) {
      notes.push(`workerd could not start: ${(error as Error).message.split('\n')[0]}`);
    }
    if (workerd) servers.push(workerd);
    else if (!notes.some((n) => n.startsWith('workerd'))) notes.push('workerd is not installed (`npm install`): skipped.');

    for (const server of servers) {
      const status = await get(server.port, 't0.localhost');
      if (status !== 200) throw new Error(`${label(server)} answered ${status}`);
    }

    const results = new Map<Server, LoadResult[]>(servers.map((s) => [s, []]));
    progress('throughput: warm-up');
    for (const server of servers) await runLoad(server, server.tenants, Math.min(3, seconds), dir, useWrk);
    for (let round = 0; round < rounds; round++) {
      // Rotate the order each round so no server always runs right after the same neighbour.
      const order = servers.map((_, i) => servers[(i + round) % servers.length]!);
      for (const server of order) {
        progress(`throughput: round ${round + 1}/${rounds}: ${label(server)}`);
        await runLoad(server, server.tenants, roundWarmUp, dir, useWrk);
        results.get(server)!.push(await runLoad(server, server.tenants, seconds, dir, useWrk));
      }
    }
    for (const server of servers) await stopChild(server.child, 5000);

    progress('throughput: runtime.fetch in process');
    const inprocRuns: { tenants: number; concurrency: number; rps: number; p50: number; cores: number; cpuPerRequest: number; isolateCpuPerRequest: number }[] = [];
    // One at a time, then 50 in flight over 1, 10, 100 and 1,000 tenants: how the cost of a
    // request grows with the number of tenants it rotates over, split into the isolates' CPU
    // (from the request log) and the host's.
    for (const [tenants, concurrency] of [[1, 1], [1, CONNECTIONS], [10, CONNECTIONS], [100, CONNECTIONS], [1000, CONNECTIONS]] as const) {
      progress(`throughput: runtime.fetch in process, ${tenants} tenant(s), ${concurrency} in flight`);
      const child = spawnTracked(
        NODE,
        [...RUNTIME_HOST_NODE_ARGS, join(ROOT, 'bench/support/inproc.ts'), '--seconds', '3', '--warm-seconds', String(inprocWarmUp), '--concurrency', String(concurrency), '--tenants', String(tenants)],
        { env: childEnv() },
      );
      const match = await waitForLine(child, /RESULT (\{.*\})\n/, 120_000 + inprocWarmUp * 1000);
      await stopChild(child);
      const raw = JSON.parse(match[1]!) as Record<string, number>;
      inprocRuns.push({
        tenants,
        concurrency,
        rps: raw.requests! / (raw.duration_us! / 1e6),
        p50: raw.p50_us! / 1000,
        cores: raw.cpu_us! / raw.duration_us!,
        cpuPerRequest: raw.cpu_us! / raw.requests!,
        isolateCpuPerRequest: raw.isolate_cpu_us! / raw.requests!,
      });
    }

    // ---- report
    const summary = servers.map((server) => {
      const runs = results.get(server)!;
      const rps = median(runs.map((r) => r.rps));
      const mid = [...runs].sort((a, b) => a.rps - b.rps)[runs.length >> 1]!;
      const kinds: Record<string, number> = {};
      for (const run of runs) for (const [kind, n] of Object.entries(run.errorKinds)) kinds[kind] = (kinds[kind] ?? 0) + n;
      const errors = Object.entries(kinds).map(([kind, n]) => `${n} ${kind}`).join(', ') || '0';
      return { server, runs, rps, mid, cores: median(runs.map((r) => r.serverCores)), errors };
    });
    const nodeRps = summary.find((s) => s.server.name === 'node:http')?.rps ?? NaN;
    const workerdRps = summary.find((s) => s.server.name === 'workerd')?.rps ?? NaN;
    const isolet = (n: number) => summary.find((s) => s.server.name === 'isolet' && s.server.tenants === n)!;
    const counted = (n: number) => summary.find((s) => s.server.name === 'isolet + metrics' && s.server.tenants === n)!;
    const floor = (name: string, n: number) => summary.find((s) => s.server.name === name && s.server.tenants === n)!;
    const againstFloor = [1, 1000].map((n) =>
      `${fmtInt(n)} tenant${n === 1 ? '' : 's'}: isolet ${fmt(isolet(n).rps / floor(FLOOR_ASYNC, n).rps)}x of the floor with \`apply\` ` +
      `(${fmtInt(floor(FLOOR_ASYNC, n).rps)} req/s, ${fmt(floor(FLOOR_ASYNC, n).rps / nodeRps)}x node:http) and ` +
      `${fmt(isolet(n).rps / floor(FLOOR_SYNC, n).rps)}x of the floor with \`applySync\` (${fmtInt(floor(FLOOR_SYNC, n).rps)} req/s, ${fmt(floor(FLOOR_SYNC, n).rps / nodeRps)}x node:http)`);
    const metricsCost = [1, 1000].map((n) => {
      const [plain, withMetrics] = [isolet(n), counted(n)];
      const perCore = (x: typeof plain) => x.rps / x.cores;
      return `${fmtInt(n)} tenant${n === 1 ? '' : 's'}: ${fmtInt(withMetrics.rps)} vs ${fmtInt(plain.rps)} req/s (${fmt((withMetrics.rps / plain.rps - 1) * 100, 1)}%), ` +
        `${fmtInt(perCore(withMetrics))} vs ${fmtInt(perCore(plain))} req per CPU-second (${fmt((perCore(withMetrics) / perCore(plain) - 1) * 100, 1)}%)`;
    });

    const rows = summary.map((s) => [
      s.server.name,
      fmtInt(s.server.tenants),
      `**${fmtInt(s.rps)}**`,
      s.runs.map((r) => fmtInt(r.rps)).join(' / '),
      fmt(s.mid.p50_us / 1000),
      fmt(s.mid.p99_us / 1000),
      fmt(s.cores),
      fmtInt(s.rps / s.cores),
      s.errors,
      s.server.name === 'node:http' ? '1' : fmt(s.rps / nodeRps),
      s.server.name === 'workerd' ? '1' : fmt(s.rps / workerdRps),
    ]);
    const markdown = [
      `\`wrk -t1 -c${CONNECTIONS} -d${seconds}s\`${useWrk ? '' : ' (stand-in: bench/support/load.ts)'} against a hello-world worker on 127.0.0.1, ` +
        `a warm-up run per server, then ${rounds} alternating rounds, each server's run right after ${roundWarmUp} s of the same load that is not counted; req/s is the median round. ` +
        'Latency percentiles are from the median round; errors are summed over the rounds (wrk\'s kinds: status = a non-2xx/3xx answer, timeout = none within 2 s); server CPU is the server process\'s CPU time over the run (all threads; 1.00 = one core). ' +
        'The load generator and the server share the machine\'s cores.',
      '',
      table(
        ['server', 'active tenants', 'req/s (median)', 'each round', 'p50 ms', 'p99 ms', 'server CPU (cores)', 'req per CPU-second', 'errors', 'vs node:http', 'vs workerd'],
        rows,
      ),
      '',
      `The floor rows (bench/support/floor-server.ts) are node:http making, per request, one call into its tenant's own ` +
        `isolate (the same isolated-vm build and engine flags) that returns the body: what a runtime built on isolates in ` +
        `Node pays before any of its own work (no Request or Response objects, limits or accounting). ${againstFloor.join('; ')}.`,
      '',
      `What metrics cost on the request path ("isolet + metrics": each request counted as \`isolet serve\` counts it, ` +
        `src/observability/observed-fetch.ts, with the Runtime's CPU and isolate counts): ${metricsCost.join('; ')}.`,
      '',
      `In process, no HTTP (\`runtime.fetch()\` of a warm hello-world worker, bench/support/inproc.ts, 3 s after ${inprocWarmUp} s of the same requests): ` +
        `${fmtInt(inprocRuns[0]!.rps)} req/s one at a time (p50 ${fmt(inprocRuns[0]!.p50 * 1000, 0)} µs, ${fmt(inprocRuns[0]!.cores)} cores), ` +
        `${fmtInt(inprocRuns[1]!.rps)} req/s with ${CONNECTIONS} in flight (${fmt(inprocRuns[1]!.cores)} cores). ` +
        `With ${CONNECTIONS} in flight rotating over more tenants, CPU per request (µs; isolates = the tenants' isolates' CPU from the request log, host = the rest of the process):`,
      '',
      table(
        ['tenants', 'req/s', 'cores', 'CPU per request', 'isolates', 'host'],
        inprocRuns.slice(1).map((r) => [
          fmtInt(r.tenants),
          fmtInt(r.rps),
          fmt(r.cores),
          fmt(r.cpuPerRequest, 1),
          fmt(r.isolateCpuPerRequest, 1),
          fmt(r.cpuPerRequest - r.isolateCpuPerRequest, 1),
        ]),
      ),
      ...(notes.length ? ['', ...notes.map((n) => `Note: ${n}`)] : []),
      ...servers.filter((server) => server.workerLines.length > 0).flatMap((server) => [
        '',
        `What the isolet server (${server.tenants} tenants) logged about its workers during the runs (first ${server.workerLines.length}):`,
        '',
        ...server.workerLines.map((line) => '    ' + line.slice(0, 400)),
      ]),
    ].join('\n');

    const one = isolet(1);
    const thousand = isolet(1000);
    const inprocThousand = inprocRuns.find((r) => r.tenants === 1000)!;
    return {
      name: 'throughput',
      title: 'Warm throughput (hello world over HTTP)',
      markdown,
      targets: [
        {
          name: `1 tenant: isolet / node:http ≥ ${TARGET_ONE_VS_NODE}`,
          met: Number.isFinite(nodeRps) ? one.rps / nodeRps >= TARGET_ONE_VS_NODE : undefined,
          detail:
            `${fmt(one.rps / nodeRps)} (${fmtInt(one.rps)} vs ${fmtInt(nodeRps)} req/s); the floor of an isolate per tenant ` +
            `(one bare call into the isolate per request) ${fmt(floor(FLOOR_ASYNC, 1).rps / nodeRps)} with \`apply\`, ${fmt(floor(FLOOR_SYNC, 1).rps / nodeRps)} with \`applySync\`.`,
        },
        {
          name: `1 tenant: isolet / workerd ≥ ${TARGET_ONE_VS_WORKERD}`,
          met: Number.isFinite(workerdRps) ? one.rps / workerdRps >= TARGET_ONE_VS_WORKERD : undefined,
          detail: Number.isFinite(workerdRps)
            ? `${fmt(one.rps / workerdRps)} (${fmtInt(one.rps)} vs ${fmtInt(workerdRps)} req/s); the floor ${fmt(floor(FLOOR_ASYNC, 1).rps / workerdRps)} with \`apply\`, ${fmt(floor(FLOOR_SYNC, 1).rps / workerdRps)} with \`applySync\`.`
            : 'workerd did not run.',
        },
        {
          name: `1,000 tenants: isolet / node:http ≥ ${TARGET_THOUSAND_VS_NODE}`,
          met: Number.isFinite(nodeRps) ? thousand.rps / nodeRps >= TARGET_THOUSAND_VS_NODE : undefined,
          detail: `${fmt(thousand.rps / nodeRps)} (${fmtInt(thousand.rps)} vs ${fmtInt(nodeRps)} req/s; each round ${thousand.runs.map((r) => fmtInt(r.rps)).join(' / ')}).`,
        },
        {
          name: `1,000 tenants: the isolates' CPU per request ≤ ${TARGET_THOUSAND_ISOLATE_CPU_US} µs (in process, ${CONNECTIONS} in flight)`,
          met: inprocThousand.isolateCpuPerRequest <= TARGET_THOUSAND_ISOLATE_CPU_US,
          detail: `${fmt(inprocThousand.isolateCpuPerRequest, 1)} µs (the whole process: ${fmt(inprocThousand.cpuPerRequest, 1)} µs).`,
        },
      ],
      data: {
        loadGenerator: useWrk ? 'wrk' : 'node',
        seconds,
        rounds,
        servers: summary.map((s) => ({ name: s.server.name, tenants: s.server.tenants, rps: s.rps, runs: s.runs, cores: s.cores })),
        inproc: inprocRuns,
        againstFloor,
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await runStandalone('throughput', throughput);
