// Many tenants through the real `isolet serve` (control process + runtime processes), with
// bare node:http in the same run:
//
// - `--tenants N` hello-world workers (default 10,000) deployed through the admin API, then
//   wrk rotating uniformly over all of them: req/s, p50/p99, errors, and the RSS of the server
//   with its runtime processes;
// - a runtime process killed with SIGKILL under that load: wrk's errors over the run, and how
//   long until a tenant whose home it was is served again.
//
// Not measured yet (the issue's other scenarios): Zipf popularity over 100,000 tenants, and
// noisy neighbours.
//
//   node --no-node-snapshot bench/scale.ts [--tenants 10000] [--processes 2] [--seconds 5] [--write]

import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { homeIndex } from '../src/supervisor/placement.ts';
import { defaultProcessCount } from '../src/supervisor/process-pool.ts';
import { NODE, ROOT, childEnv, fmt, fmtInt, progress, runStandalone, sleep, spawnTracked, stopChild, table, waitForLine, type BenchResult } from './lib.ts';
import { CONNECTIONS, get, hasWrk, numberArg, runLoad, startNodeServer, type LoadResult, type Server } from './throughput.ts';

const TOKEN = 'isl_bench-admin-token-0123456789abcdef';
const TARGET_RPS = 3000;
const TARGET_P99_MS = 100;
const TARGET_RECOVERY_MS = 1000;

/** RSS of a process and its descendants, in bytes. */
function treeRss(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    let bytes = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      for (const child of children === '' ? [] : children.split(' ')) bytes += treeRss(Number(child));
    }
    return bytes;
  } catch {
    return 0;
  }
}

async function api(admin: string, method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  const response = await fetch(admin + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, text: await response.text() };
}

export async function scale(args: string[]): Promise<BenchResult> {
  const tenants = numberArg(args, '--tenants', 10_000);
  const processes = numberArg(args, '--processes', defaultProcessCount());
  const seconds = numberArg(args, '--seconds', 5);
  const useWrk = !args.includes('--no-wrk') && hasWrk();
  const dir = mkdtempSync(join(tmpdir(), 'isolet-scale-'));
  const servers: Server[] = [];
  try {
    progress(`scale: isolet serve --processes ${processes}`);
    const child = spawnTracked(
      NODE,
      ['--no-node-snapshot', join(ROOT, 'bin/isolet.js'), 'serve', '--data', join(dir, 'data'), '--port', '0', '--admin-port', '0', '--processes', String(processes),
        '--max-workers', String(tenants + 10), '--max-deploys', '16', '--max-account-deploys', '16'],
      { env: childEnv({ ISOLET_ADMIN_TOKEN: TOKEN }) },
    );
    const pids: number[] = [];
    child.stdout!.on('data', (chunk: Buffer) => {
      for (const match of chunk.toString().matchAll(/"runtime process started".*?"pid":(\d+)/g)) pids.push(Number(match[1]));
    });
    const ready = await waitForLine(child, /listening on http:\/\/127\.0\.0\.1:(\d+)\nadmin API on (http:\/\/127\.0\.0\.1:\d+)/, 60_000);
    const port = Number(ready[1]);
    const admin = ready[2]!;
    let inFlightOnKilled = NaN;
    child.stderr!.on('data', (chunk: Buffer) => {
      const match = /"runtime process ended; restarting".*?"requestsFailed":(\d+)/.exec(chunk.toString());
      if (match) inFlightOnKilled = Number(match[1]);
    });
    const isolet: Server = { name: 'isolet serve', tenants, child, port, workerLines: [] };
    servers.push(isolet);
    if ((await api(admin, 'POST', '/v1/accounts', { name: 'bench' })).status !== 201) throw new Error('could not create the account');

    progress(`scale: deploying ${tenants} tenants`);
    const deployStart = performance.now();
    let next = 0;
    const hello = { modules: [{ name: 'worker.js', source: "export default { fetch() { return new Response('Hello World'); } };" }] };
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < tenants) {
        const name = `t${next++}`;
        const answer = await api(admin, 'PUT', `/v1/workers/${name}?account=bench`, hello);
        if (answer.status !== 201) throw new Error(`deploy ${name}: ${answer.status} ${answer.text}`);
      }
    }));
    const deploySeconds = (performance.now() - deployStart) / 1000;
    servers.push(await startNodeServer('bench/support/node-server.ts', [], 'node:http', 1));

    progress('scale: warm-up (every tenant once, then a short run)');
    let warmed = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (warmed < tenants) await get(port, `t${warmed++}.localhost`);
    }));
    await runLoad(isolet, tenants, 3, dir, useWrk);
    await runLoad(servers[1]!, 1, 3, dir, useWrk);
    progress('scale: uniform rotation');
    const uniform = await runLoad(isolet, tenants, seconds, dir, useWrk);
    const rss = treeRss(child.pid!);
    const node = await runLoad(servers[1]!, 1, seconds, dir, useWrk);

    progress('scale: SIGKILL of a runtime process under load');
    const victim = pids[0]!;
    const homed = Array.from({ length: tenants }, (_, i) => `t${i}`).find((name) => homeIndex(name, 'default', processes) === 0)!;
    const underKill = runLoad(isolet, tenants, seconds, dir, useWrk);
    await sleep((seconds * 1000) / 3);
    const killedAt = performance.now();
    process.kill(victim, 'SIGKILL');
    let recoveryMs = NaN;
    for (let i = 0; i < 1000; i++) {
      if ((await get(port, `${homed}.localhost`)) === 200) {
        recoveryMs = performance.now() - killedAt;
        break;
      }
      await sleep(5);
    }
    const killed: LoadResult = await underKill;

    const rows = [
      ['node:http (bare)', 1, fmtInt(node.rps), fmt(node.p50_us / 1000), fmt(node.p99_us / 1000), node.errors, '', ''],
      [`isolet serve, ${processes} runtime processes`, tenants, fmtInt(uniform.rps), fmt(uniform.p50_us / 1000), fmt(uniform.p99_us / 1000), uniform.errors, fmt(uniform.rps / node.rps), fmt(rss / 1024 / 1024 / 1024)],
      ['... a runtime process SIGKILLed a third into the run', tenants, fmtInt(killed.rps), fmt(killed.p50_us / 1000), fmt(killed.p99_us / 1000), killed.errors, fmt(killed.rps / node.rps), ''],
    ];
    const markdown = [
      `${tenants} hello-world tenants deployed through the admin API in ${fmt(deploySeconds, 1)} s (${fmtInt(tenants / deploySeconds)}/s, 8 at a time), then ` +
        `\`wrk -t1 -c${CONNECTIONS} -d${seconds}s\`${useWrk ? '' : ' (stand-in: bench/support/load.ts)'} rotating uniformly over all of them by Host, after a warm-up that touched each. ` +
        "The server logs one line per request to stdout, as `isolet serve` does. RSS is the server's and its runtime processes'.",
      '',
      table(['server', 'tenants', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'vs node:http', 'RSS GB'], rows),
      '',
      `SIGKILL of runtime process pid ${victim} under that load: ${killed.errors} errors over the run (${Object.entries(killed.errorKinds).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}; ` +
        `the supervisor counted ${inFlightOnKilled} requests in flight on it); ` +
        `a tenant whose home it was answered 200 again ${fmtInt(recoveryMs)} ms after the kill.`,
    ].join('\n');
    return {
      name: 'scale',
      title: 'Many tenants through isolet serve',
      markdown,
      targets: [
        { name: `${tenants} tenants, uniform: ≥ ${TARGET_RPS} req/s`, met: uniform.rps >= TARGET_RPS, detail: `${fmtInt(uniform.rps)} req/s.` },
        { name: `p99 ≤ ${TARGET_P99_MS} ms, zero errors`, met: uniform.p99_us / 1000 <= TARGET_P99_MS && uniform.errors === 0, detail: `p99 ${fmt(uniform.p99_us / 1000)} ms, ${uniform.errors} errors.` },
        { name: `a killed runtime process's tenants served again within ${TARGET_RECOVERY_MS} ms`, met: recoveryMs <= TARGET_RECOVERY_MS, detail: `${fmtInt(recoveryMs)} ms.` },
      ],
      data: { tenants, processes, deploySeconds, uniform, node, killed, recoveryMs, inFlightOnKilled, rss },
    };
  } finally {
    for (const server of servers) await stopChild(server.child, 10_000);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await runStandalone('scale', scale);
