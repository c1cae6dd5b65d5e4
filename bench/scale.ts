// Many tenants through the real `isolet serve` (control process + runtime processes), with
// bare node:http in the same run:
//
// - `--zipf-tenants N` hello-world workers (default 100,000) deployed through the admin API
//   (one bundle: validated once; the first 1,000 one PUT each, the rest by POST /v1/workers,
//   1,000 a request), then wrk choosing each request's Host by Zipf(1.1)
//   popularity over all of them: req/s against the same server with 1 tenant, and, measured
//   apart while that load runs, the first request of tenants never requested before (a cold
//   tenant: its code goes to its process and it gets an isolate);
// - the first `--tenants N` of them (default 10,000) under a uniform rotation: req/s,
//   p50/p99, errors, and the RSS of the server with its runtime processes;
// - a runtime process killed with SIGKILL under that load: wrk's errors over the run, and how
//   long until a tenant whose home it was is served again;
// - noisy neighbours, on a server of its own (`--noisy-tenants N`, default 1,000): 90% quiet
//   tenants under load alone, then the same load while the other 10% also get traffic: a
//   third loop forever, a third grow their heap past the memory limit, a third crash their
//   runtime process (a fatal V8 error), spread over `--crash-accounts` accounts. The quiet
//   tenants' p99 and errors, first while the platform reacts (penalties, quarantine), then
//   after.
//
//   node --no-node-snapshot bench/scale.ts [--tenants 10000] [--zipf-tenants 100000] [--noisy-tenants 1000]
//     [--crash-accounts 3] [--noisy-kinds loop,memory,crash] [--processes 2] [--isolate-memory-mb MB] [--untried-requests N] [--seconds 5]
//     [--only many|noisy] [--write]
//
// `--isolate-memory-mb` goes to the many-tenants server: with the default budget (40% of the
// machine) fewer than 10,000 hello-world isolates (1.5 MB each) stay live, and a rotation over
// more tenants than stay live makes every request a cold start.

import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { homeIndex } from '../src/supervisor/placement.ts';
import { defaultProcessCount } from '../src/supervisor/process-pool.ts';
import { positiveArg, BENCH_ADMIN_TOKEN, NODE, ROOT, adminApi, childEnv, fmt, fmtInt, percentile, progress, runStandalone, sleep, spawnTracked, stopChild, table, waitForLine, type BenchResult, type Target } from './lib.ts';
import { CONNECTIONS, WRK_DONE, get, hasWrk, runLoad, startNodeServer, wrkScript, type LoadResult, type Server } from './throughput.ts';

const TARGET_RPS = 3000;
const TARGET_P99_MS = 100;
const TARGET_RECOVERY_MS = 1000;
const TARGET_ZIPF_VS_ONE = 0.5;
const TARGET_COLD_P99_MS = 50;
const TARGET_NOISY_P99_RATIO = 2;
const TARGET_RSS_GB = 16;
const ZIPF_EXPONENT = 1.1;
/** Tenants deployed apart from the Zipf table, each requested once while it runs: the cold first requests. */
const COLD_PROBES = 200;
/** Connections of the noisy tenants' clients, each waiting this long between requests (about a tenth of the quiet load). */
const NOISY_CONNECTIONS = 5;
const NOISY_DELAY_MS = 15;
/** Workers per `POST /v1/workers`; the first EACH are deployed one `PUT` at a time, to compare. */
const BULK = 1000;
const EACH = 1000;

/** A deployment of one module. */
function moduleBundle(source: string): Record<string, unknown> {
  return { modules: [{ name: 'worker.js', source }] };
}

const HELLO = moduleBundle("export default { fetch() { return new Response('Hello World'); } };");
const NOISY = {
  loop: moduleBundle('export default { fetch() { for (;;) {} } };'),
  memory: moduleBundle('export default { fetch() { const keep = []; for (;;) keep.push(new Float64Array(1 << 20)); } };'),
  // Building the array takes longer than the default CPU limit: without more, it is a CPU limit, not a crash.
  crash: { ...moduleBundle("export default { fetch() { 'x'.repeat(2 ** 27 + 16).split(''); return new Response('never'); } };"), limits: { cpuMs: 5000 } },
};
type NoisyKind = keyof typeof NOISY;
const NOISY_TEXT: Record<NoisyKind, string> = {
  loop: '`for (;;) {}`',
  memory: 'allocating past the memory limit',
  crash: 'a fatal V8 error that ends their runtime process (with a 5 s CPU limit to get there)',
};

/** RSS of one process, in bytes (0 once it is gone). */
function ownRss(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** RSS of a process and its descendants, in bytes. */
function treeRss(pid: number): number {
  try {
    let bytes = ownRss(pid);
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      for (const child of children === '' ? [] : children.split(' ')) bytes += treeRss(Number(child));
    }
    return bytes;
  } catch {
    return 0;
  }
}

interface Isolet {
  server: Server;
  admin: string;
  /** Runtime processes' pids, as the server logged their starts. */
  pids: number[];
  /** The latest pid of each runtime process by its label (`default/0`, `untried/0`, ...). */
  labelled: Map<string, number>;
  /** The supervisor's lines about processes that ended, and accounts it quarantined. */
  events: { restarts: number; quarantined: string[]; inFlightOnLastEnd: number };
}

async function startIsolet(dir: string, name: string, processes: number, maxWorkers: number, isolateMemoryMb?: number, untriedRequests?: number): Promise<Isolet> {
  const child = spawnTracked(
    NODE,
    ['--no-node-snapshot', join(ROOT, 'bin/isolet.js'), 'serve', '--data', join(dir, name), '--port', '0', '--admin-port', '0', '--processes', String(processes),
      '--max-workers', String(maxWorkers), '--max-deploys', '16', '--max-account-deploys', '16',
      ...(isolateMemoryMb === undefined ? [] : ['--isolate-memory-mb', String(isolateMemoryMb)]),
      ...(untriedRequests === undefined ? [] : ['--untried-requests', String(untriedRequests)])],
    { env: childEnv({ ISOLET_ADMIN_TOKEN: BENCH_ADMIN_TOKEN }) },
  );
  const pids: number[] = [];
  const labelled = new Map<string, number>();
  const events = { restarts: 0, quarantined: [] as string[], inFlightOnLastEnd: NaN };
  child.stdout!.on('data', (chunk: Buffer) => {
    for (const match of chunk.toString().matchAll(/"runtime process started","process":"([^"]+)","pid":(\d+)/g)) {
      pids.push(Number(match[2]));
      labelled.set(match[1]!, Number(match[2]));
    }
  });
  let partial = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    const text = lines.join('\n');
    for (const match of text.matchAll(/"runtime process ended; restarting".*?"requestsFailed":(\d+)/g)) {
      events.restarts++;
      events.inFlightOnLastEnd = Number(match[1]);
    }
    for (const match of text.matchAll(/"account quarantined: its code crashed runtime processes repeatedly".*?"account":"([^"]+)"/g)) events.quarantined.push(match[1]!);
  });
  const ready = await waitForLine(child, /"message":"listening on http:\/\/127\.0\.0\.1:(\d+)".*\n.*"message":"admin API on (http:\/\/127\.0\.0\.1:\d+)"/, 60_000);
  return { server: { name: 'isolet serve', tenants: 0, child, port: Number(ready[1]), workerLines: [] }, admin: ready[2]!, pids, labelled, events };
}

async function createAccount(admin: string, name: string): Promise<void> {
  const answer = await adminApi(admin, 'POST', '/v1/accounts', { name });
  if (answer.status !== 201) throw new Error(`could not create the account ${name}: ${answer.status} ${answer.text}`);
}

type Deployment = { name: string; account: string; bundle: Record<string, unknown> };

/** Deploys every worker with `PUT /v1/workers/:name`, 8 at a time; returns the seconds it took. */
async function deployEach(admin: string, workers: Deployment[]): Promise<number> {
  const start = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < workers.length) {
      const { name, account, bundle } = workers[next++]!;
      const answer = await adminApi(admin, 'PUT', `/v1/workers/${name}?account=${account}`, bundle);
      if (answer.status !== 201) throw new Error(`deploy ${name}: ${answer.status} ${answer.text}`);
    }
  }));
  return (performance.now() - start) / 1000;
}

/** Deploys every worker with `POST /v1/workers`, BULK per request, 2 requests at a time; returns the seconds it took. */
async function deployBulk(admin: string, workers: Deployment[]): Promise<number> {
  const start = performance.now();
  const batches: Deployment[][] = [];
  for (let i = 0; i < workers.length; i += BULK) batches.push(workers.slice(i, i + BULK));
  let next = 0;
  let done = 0;
  await Promise.all(Array.from({ length: 2 }, async () => {
    while (next < batches.length) {
      const batch = batches[next++]!;
      const account = batch[0]!.account;
      const answer = await adminApi(admin, 'POST', `/v1/workers?account=${account}`, { workers: batch.map(({ name, bundle }) => ({ name, ...bundle })) });
      const refused = answer.status === 200 ? (JSON.parse(answer.text) as { results: { name: string; status: number }[] }).results.find((r) => r.status !== 201) : undefined;
      if (answer.status !== 200 || refused !== undefined) throw new Error(`bulk deploy: ${answer.status} ${refused?.name ?? ''} ${answer.text.slice(0, 500)}`);
      done += batch.length;
      if (Math.floor(done / 10_000) !== Math.floor((done - batch.length) / 10_000)) progress(`scale: ${done} deployed`);
    }
  }));
  return (performance.now() - start) / 1000;
}

/** Sends one request to each host, `concurrency` at a time. */
/**
 * Sends each tenant a request, twice over: new code serves its first request in the untried
 * process and moves home after it, so the second is its cold start at home. A tenant is then
 * warm where the measured load will find it.
 */
async function touchAll(port: number, hosts: string[], concurrency = 16): Promise<void> {
  for (let round = 0; round < 2; round++) {
    let next = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < hosts.length) await get(port, hosts[next++]!);
    }));
  }
}

/**
 * wrk script: each request's Host is t<rank-1> with rank drawn from Zipf(exponent) over
 * `tenants` (inverse CDF by binary search over a table built in init); requests are formatted
 * on first use. Seeded, so every run draws the same sequence.
 */
function zipfScript(dir: string, tenants: number, port: number): string {
  const file = join(dir, `zipf-${tenants}-${port}.lua`);
  writeFileSync(
    file,
    `local n = ${tenants}
local cdf = {}
local requests = {}
init = function(args)
  math.randomseed(1234)
  local total = 0
  for k = 1, n do
    total = total + k ^ (-${ZIPF_EXPONENT})
    cdf[k] = total
  end
  for k = 1, n do cdf[k] = cdf[k] / total end
end
request = function()
  local u = math.random()
  local lo, hi = 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  local r = requests[lo]
  if r == nil then
    r = wrk.format("GET", "/", { ["Host"] = "t" .. (lo - 1) .. ".localhost:${port}" })
    requests[lo] = r
  end
  return r
end
${WRK_DONE}`,
  );
  return file;
}

/** Tenants a Zipf draw of `requests` over `tenants` is expected to touch: sum over ranks of 1 - (1 - p)^requests. */
function expectedDistinct(tenants: number, requests: number): number {
  let total = 0;
  for (let k = 1; k <= tenants; k++) total += k ** -ZIPF_EXPONENT;
  let distinct = 0;
  for (let k = 1; k <= tenants; k++) distinct += 1 - (1 - k ** -ZIPF_EXPONENT / total) ** requests;
  return distinct;
}

/** First requests of never-requested tenants, one at a time while `until` is pending: their latencies in ms, and non-200 answers. */
async function probeCold(port: number, names: string[], until: Promise<unknown>): Promise<{ ms: number[]; failed: number }> {
  let done = false;
  void until.finally(() => (done = true));
  const ms: number[] = [];
  let failed = 0;
  for (const name of names) {
    if (done) break;
    const start = performance.now();
    const status = await get(port, `${name}.localhost`);
    ms.push(performance.now() - start);
    if (status !== 200) failed++;
    await sleep(10);
  }
  return { ms, failed };
}

function loadRow(label: string, tenants: number | string, run: LoadResult, base?: number): (string | number)[] {
  return [label, tenants, fmtInt(run.rps), fmt(run.p50_us / 1000), fmt(run.p99_us / 1000), run.errors, base === undefined ? '' : fmt(run.rps / base)];
}

function errorsText(run: LoadResult): string {
  return Object.entries(run.errorKinds).map(([kind, n]) => `${kind} ${n}`).join(', ') || 'none';
}

interface Options {
  tenants: number;
  zipfTenants: number;
  noisyTenants: number;
  crashAccounts: number;
  /** What the noisy tenants do, in turn. */
  noisyKinds: NoisyKind[];
  processes: number;
  /** `isolet serve --isolate-memory-mb` for the many-tenants server (default: the server's default). */
  isolateMemoryMb: number | undefined;
  /** `isolet serve --untried-requests` for both servers (default: the server's default). */
  untriedRequests: number | undefined;
  seconds: number;
  dir: string;
  /** Servers started, stopped by the caller however the run ends. */
  children: Server[];
}

interface Part {
  markdown: string[];
  targets: Target[];
  data: Record<string, unknown>;
}

/** Zipf over many tenants with cold first requests, a uniform rotation, and a SIGKILL, on one server. */
async function manyTenants(o: Options): Promise<Part> {
  const { tenants, zipfTenants, processes, seconds, dir } = o;
  progress(`scale: isolet serve --processes ${processes}`);
  const isolet = await startIsolet(dir, 'many', processes, zipfTenants + COLD_PROBES + 10, o.isolateMemoryMb, o.untriedRequests);
  o.children.push(isolet.server);
  const { server, admin } = isolet;
  await createAccount(admin, 'bench');
  progress(`scale: deploying ${zipfTenants + COLD_PROBES} tenants`);
  const coldNames = Array.from({ length: COLD_PROBES }, (_, i) => `c${i}`);
  const all: Deployment[] = [
    ...Array.from({ length: zipfTenants }, (_, i) => ({ name: `t${i}`, account: 'bench', bundle: HELLO })),
    ...coldNames.map((name) => ({ name, account: 'bench', bundle: HELLO })),
  ];
  const eachCount = Math.min(EACH, all.length);
  const eachSeconds = await deployEach(admin, all.slice(0, eachCount));
  const bulkSeconds = await deployBulk(admin, all.slice(eachCount));
  const deployed = all.length;
  const deploySeconds = eachSeconds + bulkSeconds;
  const node = await startNodeServer('bench/support/node-server.ts', [], 'node:http', 1);
  o.children.push(node);

  progress('scale: 1 tenant');
  await runLoad(server, 1, 3, dir, true);
  const one = await runLoad(server, 1, seconds, dir, true);
  const nodeRun = await runLoad(node, 1, seconds, dir, true);

  progress(`scale: Zipf(${ZIPF_EXPONENT}) over ${zipfTenants} tenants`);
  const zipf = zipfScript(dir, zipfTenants, server.port);
  await runLoad(server, zipfTenants, 3, dir, true, zipf);
  const zipfLoad = runLoad(server, zipfTenants, seconds, dir, true, zipf);
  await sleep(500);
  const cold = await probeCold(server.port, coldNames, zipfLoad);
  const zipfRun = await zipfLoad;
  const coldSorted = [...cold.ms].sort((a, b) => a - b);
  const coldP50 = percentile(coldSorted, 50);
  const coldP99 = percentile(coldSorted, 99);

  progress(`scale: uniform rotation over ${tenants} tenants (warm-up touches each first)`);
  await touchAll(server.port, Array.from({ length: tenants }, (_, i) => `t${i}.localhost`));
  await runLoad(server, tenants, 3, dir, true);
  const uniform = await runLoad(server, tenants, seconds, dir, true);
  const rss = treeRss(server.child.pid!);
  const controlRss = ownRss(server.child.pid!);

  progress('scale: SIGKILL of a runtime process under load');
  // The default tier grew to fit the tenants (its processes' start lines say how far): homes are hashed over all of them.
  const victim = isolet.labelled.get('default/0')!;
  const defaultProcesses = [...isolet.labelled.keys()].filter((label) => label.startsWith('default/')).length;
  const homed = Array.from({ length: tenants }, (_, i) => `t${i}`).find((name) => homeIndex(name, 'default', defaultProcesses) === 0)!;
  const underKill = runLoad(server, tenants, seconds, dir, true);
  await sleep((seconds * 1000) / 3);
  const killedAt = performance.now();
  process.kill(victim, 'SIGKILL');
  let recoveryMs = NaN;
  for (let i = 0; i < 1000; i++) {
    if ((await get(server.port, `${homed}.localhost`)) === 200) {
      recoveryMs = performance.now() - killedAt;
      break;
    }
    await sleep(5);
  }
  const killed = await underKill;
  const inFlightOnKilled = isolet.events.inFlightOnLastEnd;
  await stopChild(server.child, 10_000);

  const zipfVsOne = zipfRun.rps / one.rps;
  return {
    markdown: [
      `${fmtInt(deployed)} hello-world tenants (one bundle, so validated once) deployed through the admin API in ${fmt(deploySeconds, 1)} s: ` +
        `the first ${fmtInt(eachCount)} one \`PUT /v1/workers/:name\` each, 8 at a time (${fmtInt(eachCount / eachSeconds)}/s), ` +
        `the other ${fmtInt(deployed - eachCount)} by \`POST /v1/workers\`, ${BULK} a request, 2 at a time (${fmtInt((deployed - eachCount) / bulkSeconds)}/s); ` +
        `on \`isolet serve --processes ${processes}${o.isolateMemoryMb === undefined ? '' : ` --isolate-memory-mb ${o.isolateMemoryMb}`}\`${o.isolateMemoryMb === undefined ? ' (its default isolate memory budget: 40% of the machine, shared among the runtime processes)' : ' (isolate memory sized by the operator, per runtime process)'}. Load: \`wrk -t1 -c${CONNECTIONS} -d${seconds}s\` choosing each request's Host, after a 3 s warm-up with the same choice. ` +
        "The server logs one line per request to stdout, as `isolet serve` does. RSS is the server's and its runtime processes'.",
      '',
      table(['load', 'tenants', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'vs 1 tenant'], [
        loadRow('node:http (bare)', 1, nodeRun),
        loadRow('isolet serve, 1 tenant', 1, one, one.rps),
        loadRow(`isolet serve, Zipf(${ZIPF_EXPONENT})`, fmtInt(zipfTenants), zipfRun, one.rps),
        loadRow('isolet serve, uniform rotation (after touching each)', fmtInt(tenants), uniform, one.rps),
        loadRow('... a runtime process SIGKILLed a third into the run', fmtInt(tenants), killed, one.rps),
      ]),
      '',
      `Zipf: ${fmtInt(zipfRun.requests)} requests drawn over ${fmtInt(zipfTenants)} tenants touch about ${fmtInt(expectedDistinct(zipfTenants, zipfRun.requests))} of them. ` +
        `Cold tenants' first requests, one at a time (10 ms apart, each on a new connection) while that load ran: ${cold.ms.length} of them, ` +
        `p50 ${fmt(coldP50)} ms, p99 ${fmt(coldP99)} ms, max ${fmt(coldSorted.at(-1) ?? NaN)} ms, ${cold.failed} not 200.`,
      '',
      `Uniform: RSS ${fmt(rss / 1024 ** 3)} GB with every tenant deployed (the control process ${fmt(controlRss / 1024 ** 3)} GB of it). SIGKILL of runtime process pid ${victim} under that load: ${killed.errors} errors over the run (${errorsText(killed)}; ` +
        `the supervisor failed ${inFlightOnKilled} requests that were in flight on it: those not sent again to its replacement, a GET or HEAD whose client had left included); a tenant whose home it was answered 200 again ${fmtInt(recoveryMs)} ms after the kill.`,
    ],
    targets: [
      { name: `${fmtInt(tenants)} tenants, uniform: ≥ ${TARGET_RPS} req/s`, met: uniform.rps >= TARGET_RPS, detail: `${fmtInt(uniform.rps)} req/s.` },
      { name: `p99 ≤ ${TARGET_P99_MS} ms, zero errors`, met: uniform.p99_us / 1000 <= TARGET_P99_MS && uniform.errors === 0, detail: `p99 ${fmt(uniform.p99_us / 1000)} ms, ${uniform.errors} errors.` },
      { name: `${fmtInt(tenants)} tenants, uniform: RSS ≤ ${TARGET_RSS_GB} GB`, met: rss <= TARGET_RSS_GB * 1024 ** 3, detail: `${fmt(rss / 1024 ** 3)} GB, the server and its runtime processes (the control process ${fmt(controlRss / 1024 ** 3)} GB).` },
      { name: `${fmtInt(zipfTenants)} tenants, Zipf(${ZIPF_EXPONENT}): ≥ ${TARGET_ZIPF_VS_ONE}x the 1-tenant req/s`, met: zipfVsOne >= TARGET_ZIPF_VS_ONE, detail: `${fmt(zipfVsOne)}x (${fmtInt(zipfRun.rps)} vs ${fmtInt(one.rps)} req/s).` },
      { name: `a cold tenant's first request: p99 ≤ ${TARGET_COLD_P99_MS} ms`, met: coldP99 <= TARGET_COLD_P99_MS && cold.failed === 0, detail: `p99 ${fmt(coldP99)} ms (p50 ${fmt(coldP50)} ms) over ${cold.ms.length}, ${cold.failed} not 200.` },
      { name: `a killed runtime process's tenants served again within ${TARGET_RECOVERY_MS} ms`, met: recoveryMs <= TARGET_RECOVERY_MS, detail: `${fmtInt(recoveryMs)} ms.` },
    ],
    data: { tenants, zipfTenants, processes, deploySeconds, eachCount, eachSeconds, bulkSeconds, one, node: nodeRun, zipf: zipfRun, cold, uniform, killed, recoveryMs, inFlightOnKilled, rss, controlRss },
  };
}

/** Quiet tenants alone, then while a tenth of the tenants loop, hog memory or crash their process, on a server of their own. */
async function noisyNeighbours(o: Options): Promise<Part> {
  const { noisyTenants, crashAccounts, processes, seconds, dir } = o;
  progress(`scale: noisy neighbours, ${noisyTenants} tenants`);
  const noisy = await startIsolet(dir, 'noisy', processes, noisyTenants + 10, undefined, o.untriedRequests);
  o.children.push(noisy.server);
  const noisyCount = Math.round(noisyTenants / 10);
  const quietCount = noisyTenants - noisyCount;
  const kinds = o.noisyKinds;
  const crashers = Array.from({ length: noisyCount }, (_, i) => i).filter((i) => kinds[i % kinds.length] === 'crash');
  const crashAccountCount = Math.max(1, Math.min(crashAccounts, crashers.length));
  for (const account of ['quiet', 'noisy', ...Array.from({ length: crashAccountCount }, (_, i) => `crash${i}`)]) await createAccount(noisy.admin, account);
  await deployEach(noisy.admin, [
    ...Array.from({ length: quietCount }, (_, i) => ({ name: `q${i}`, account: 'quiet', bundle: HELLO })),
    ...Array.from({ length: noisyCount }, (_, i) => {
      const kind = kinds[i % kinds.length]!;
      const account = kind === 'crash' ? `crash${crashers.indexOf(i) % crashAccountCount}` : 'noisy';
      return { name: `n${i}`, account, bundle: NOISY[kind] };
    }),
  ]);
  const quietScript = wrkScript(dir, quietCount, noisy.server.port, 'q');
  const noisyScript = wrkScript(dir, noisyCount, noisy.server.port, 'n', NOISY_DELAY_MS);
  await touchAll(noisy.server.port, Array.from({ length: quietCount }, (_, i) => `q${i}.localhost`));
  await runLoad(noisy.server, quietCount, 3, dir, true, quietScript);
  progress('scale: quiet tenants alone');
  const quietAlone = await runLoad(noisy.server, quietCount, seconds, dir, true, quietScript);
  progress('scale: quiet tenants while the noisy ones get traffic');
  const noisyLoad = runLoad(noisy.server, noisyCount, seconds * 2 + 2, dir, true, noisyScript, NOISY_CONNECTIONS);
  const quietReacting = await runLoad(noisy.server, quietCount, seconds, dir, true, quietScript);
  const quietAfter = await runLoad(noisy.server, quietCount, seconds, dir, true, quietScript);
  const noisyRun = await noisyLoad;
  const events = { ...noisy.events, quarantined: [...new Set(noisy.events.quarantined)] };
  await stopChild(noisy.server.child, 10_000);

  const ratio = quietAfter.p99_us / quietAlone.p99_us;
  return {
    markdown: [
      `Noisy neighbours (a server of their own): ${quietCount} quiet tenants under \`wrk -c${CONNECTIONS}\` rotating over them, alone; then the same while ${noisyCount} noisy tenants ` +
        `(in turn: ${kinds.map((kind) => NOISY_TEXT[kind]).join('; ')}${crashers.length > 0 ? `; crashers in ${crashAccountCount} account${crashAccountCount === 1 ? '' : 's'}` : ''}) ` +
        `get traffic from \`wrk -c${NOISY_CONNECTIONS}\` with ${NOISY_DELAY_MS} ms between each connection's requests: the first ${seconds} s while the platform reacts, then the next ${seconds} s.`,
      '',
      table(['quiet tenants', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'p99 vs alone'], [
        ['alone', fmtInt(quietAlone.rps), fmt(quietAlone.p50_us / 1000), fmt(quietAlone.p99_us / 1000), quietAlone.errors, '1'],
        [`noisy ones too, first ${seconds} s`, fmtInt(quietReacting.rps), fmt(quietReacting.p50_us / 1000), fmt(quietReacting.p99_us / 1000), `${quietReacting.errors} (${errorsText(quietReacting)})`, fmt(quietReacting.p99_us / quietAlone.p99_us)],
        [`noisy ones too, next ${seconds} s`, fmtInt(quietAfter.rps), fmt(quietAfter.p50_us / 1000), fmt(quietAfter.p99_us / 1000), `${quietAfter.errors} (${errorsText(quietAfter)})`, fmt(ratio)],
      ]),
      '',
      `The noisy tenants' clients: ${fmtInt(noisyRun.requests)} requests, ${noisyRun.errors} not 2xx (${errorsText(noisyRun)}). ` +
        `Runtime processes ended: ${events.restarts}; accounts quarantined: ${events.quarantined.join(', ') || 'none'}.`,
    ],
    targets: [
      {
        name: `noisy neighbours: the quiet tenants' p99 ≤ ${TARGET_NOISY_P99_RATIO}x alone, zero errors`,
        met: ratio <= TARGET_NOISY_P99_RATIO && quietAfter.errors === 0,
        detail: `${fmt(ratio)}x (${fmt(quietAfter.p99_us / 1000)} vs ${fmt(quietAlone.p99_us / 1000)} ms), ${quietAfter.errors} errors once the platform reacted; ` +
          `while it reacted ${fmt(quietReacting.p99_us / quietAlone.p99_us)}x, ${quietReacting.errors} errors.`,
      },
    ],
    data: { noisyTenants, crashAccounts: crashAccountCount, quietAlone, quietReacting, quietAfter, noisy: noisyRun, events },
  };
}

/** `--noisy-kinds loop,memory,crash` (the default): what the noisy tenants do, in turn. */
function noisyKindsArg(args: string[]): NoisyKind[] {
  const at = args.indexOf('--noisy-kinds');
  const kinds = (at >= 0 ? (args[at + 1] ?? '') : 'loop,memory,crash').split(',');
  const unknown = kinds.filter((kind) => !Object.hasOwn(NOISY, kind));
  if (unknown.length > 0 || kinds.length === 0) throw new Error(`--noisy-kinds takes ${Object.keys(NOISY).join(', ')}; not ${unknown.join(', ')}`);
  return kinds as NoisyKind[];
}

export async function scale(args: string[]): Promise<BenchResult> {
  const tenants = positiveArg(args, '--tenants', 10_000);
  if (args.includes('--no-wrk') || !hasWrk()) throw new Error('the scale benchmark needs wrk for its Zipf and noisy loads: apt-get install -y wrk');
  const onlyAt = args.indexOf('--only');
  const only = onlyAt >= 0 ? args[onlyAt + 1] : undefined;
  const o: Options = {
    tenants,
    zipfTenants: Math.max(tenants, positiveArg(args, '--zipf-tenants', 100_000)),
    noisyTenants: Math.max(10, positiveArg(args, '--noisy-tenants', 1000)),
    crashAccounts: positiveArg(args, '--crash-accounts', 3),
    noisyKinds: noisyKindsArg(args),
    processes: positiveArg(args, '--processes', defaultProcessCount()),
    isolateMemoryMb: args.includes('--isolate-memory-mb') ? positiveArg(args, '--isolate-memory-mb', 0) : undefined,
    untriedRequests: args.includes('--untried-requests') ? positiveArg(args, '--untried-requests', 0) : undefined,
    seconds: positiveArg(args, '--seconds', 5),
    dir: mkdtempSync(join(tmpdir(), 'isolet-scale-')),
    children: [],
  };
  try {
    const parts: Part[] = [];
    if (only !== 'noisy') parts.push(await manyTenants(o));
    if (only !== 'many') parts.push(await noisyNeighbours(o));
    return {
      name: 'scale',
      title: 'Many tenants through isolet serve',
      markdown: parts.flatMap((part, i) => [...(i > 0 ? [''] : []), ...part.markdown]).join('\n'),
      targets: parts.flatMap((part) => part.targets),
      data: Object.assign({}, ...parts.map((part) => part.data)),
    };
  } finally {
    for (const child of o.children) await stopChild(child.child, 10_000);
    rmSync(o.dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await runStandalone('scale', scale);
