// A cluster on one machine: three `isolet serve --database` nodes over a throwaway PostgreSQL
// (started from the installed binaries, like the tests'), and the shipped HAProxy front.
//
// - Propagation: `--deploys N` (default 200) deploys of one worker, through the nodes' admin
//   APIs in turn; for each, the time from the admin API's answer until every node has answered
//   200 with the new version (each node polled back to back). p50 and p99 of that time.
// - The front: wrk rotating over `--tenants N` (default 300) hello-world tenants through HAProxy
//   (deploy/haproxy.cfg) over the three nodes, against one node alone on the same machine.
//
//   node --no-node-snapshot bench/cluster.ts [--deploys 200] [--tenants 300] [--seconds 5] [--processes 1] [--write]

import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest, Agent } from 'node:http';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../test/support/postgres.ts';
import { positiveArg, BENCH_ADMIN_TOKEN, NODE, ROOT, adminApi, childEnv, fmt, fmtInt, freePort, percentile, progress, runStandalone, sleep, spawnTracked, stopChild, table, waitForLine, type BenchResult } from './lib.ts';
import { CONNECTIONS, get, hasWrk, runLoad, type Server } from './throughput.ts';

const SECRETS_KEY = randomBytes(32).toString('base64');
const TARGET_P99_MS = 1000;

interface Node {
  id: string;
  child: ChildProcess;
  port: number;
  admin: string;
}

async function startNode(database: string, id: string, dir: string, processes: number): Promise<Node> {
  const child = spawnTracked(
    NODE,
    ['--no-node-snapshot', join(ROOT, 'bin/isolet.js'), 'serve', '--data', join(dir, id), '--port', '0', '--admin-port', '0', '--node-id', id,
      '--processes', String(processes), '--max-workers', '100000', '--max-deploys', '16', '--max-account-deploys', '16', '--max-connections-per-ip', '10000'],
    { env: childEnv({ ISOLET_ADMIN_TOKEN: BENCH_ADMIN_TOKEN, ISOLET_SECRETS_KEY: SECRETS_KEY, ISOLET_DATABASE_URL: database }) },
  );
  const ready = await waitForLine(child, /"message":"listening on http:\/\/127\.0\.0\.1:(\d+)".*\n.*"message":"admin API on (http:\/\/127\.0\.0\.1:\d+)"/, 120_000);
  // One log line per request: read and dropped, so a full pipe never stalls the node.
  child.stdout!.resume();
  child.stderr!.resume();
  return { id, child, port: Number(ready[1]), admin: ready[2]! };
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 });

/** GET / with the Host; resolves with status and body. */
function getText(port: number, host: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/', headers: { host }, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', () => resolve({ status: 0, text: '' }));
    req.end();
  });
}

function worker(text: string): Record<string, unknown> {
  return { modules: [{ name: 'worker.js', source: `export default { fetch() { return new Response(${JSON.stringify(text)}); } };` }] };
}

export async function cluster(args: string[]): Promise<BenchResult> {
  const deploys = positiveArg(args, '--deploys', 200);
  const tenants = positiveArg(args, '--tenants', 300);
  const seconds = positiveArg(args, '--seconds', 5);
  const processes = positiveArg(args, '--processes', 1);
  const useWrk = !args.includes('--no-wrk') && hasWrk();
  const haproxy = spawnSync('sh', ['-c', 'command -v haproxy || ls /usr/sbin/haproxy'], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  if (!haproxy) throw new Error('HAProxy is needed: apt-get install -y haproxy');
  const dir = mkdtempSync(join(tmpdir(), 'isolet-cluster-'));
  let postgres: ThrowawayPostgres | undefined;
  const children: ChildProcess[] = [];
  try {
    progress('cluster: a throwaway PostgreSQL and three nodes');
    postgres = await startThrowawayPostgres();
    const first = await startNode(postgres.url, 'a', dir, processes);
    const nodes = [first, ...(await Promise.all(['b', 'c'].map((id) => startNode(postgres!.url, id, dir, processes))))];
    children.push(...nodes.map((n) => n.child));
    if ((await adminApi(first.admin, 'POST', '/v1/accounts', { name: 'bench' })).status !== 201) throw new Error('could not create the account');

    progress(`cluster: ${deploys} deploys, each until every node serves it`);
    const samples: number[] = [];
    const perNode: number[][] = nodes.map(() => []);
    for (let n = 1; n <= deploys; n++) {
      const through = nodes[n % nodes.length]!;
      const body = `v${n}`;
      const answer = await adminApi(through.admin, 'PUT', '/v1/workers/prop?account=bench', worker(body));
      const answered = performance.now();
      if (answer.status !== 201) throw new Error(`deploy ${n}: ${answer.status} ${answer.text}`);
      const times = await Promise.all(nodes.map(async (node) => {
        for (;;) {
          const got = await getText(node.port, 'prop.localhost');
          if (got.status === 200 && got.text === body) return performance.now() - answered;
          if (performance.now() - answered > 30_000) throw new Error(`node ${node.id} did not serve ${body} within 30 s`);
        }
      }));
      times.forEach((t, i) => perNode[i]!.push(t));
      samples.push(Math.max(...times));
    }
    const sorted = [...samples].sort((x, y) => x - y);
    const p50 = percentile(sorted, 50);
    const p99 = percentile(sorted, 99);
    const max = sorted.at(-1)!;

    progress(`cluster: deploying ${tenants} tenants`);
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < tenants) {
        const name = `t${next++}`;
        const answer = await adminApi(nodes[next % 3]!.admin, 'PUT', `/v1/workers/${name}?account=bench`, worker('Hello World'));
        if (answer.status !== 201) throw new Error(`deploy ${name}: ${answer.status} ${answer.text}`);
      }
    }));

    progress('cluster: HAProxy over the three nodes');
    const front = await freePort();
    const proxy = spawnTracked(haproxy, ['-db', '-f', join(ROOT, 'deploy', 'haproxy.cfg')], {
      env: { ...process.env, ISOLET_FRONT: `127.0.0.1:${front}`, ...Object.fromEntries(nodes.map((node) => [`ISOLET_NODE_${node.id.toUpperCase()}`, `127.0.0.1:${node.port}`])) },
    });
    proxy.stdout!.resume();
    proxy.stderr!.resume();
    children.push(proxy);
    for (let i = 0; i < 300 && (await get(front, 't0.localhost')) !== 200; i++) await sleep(100);

    // Every tenant once everywhere it will be asked for (its home node through the front; node a alone).
    await Promise.all(Array.from({ length: 8 }, async (_, k) => {
      for (let i = k; i < tenants; i += 8) {
        await get(front, `t${i}.localhost:${front}`);
        await get(first.port, `t${i}.localhost:${first.port}`);
      }
    }));
    const viaFront: Server = { name: 'HAProxy over 3 nodes', tenants, child: proxy, port: front, workerLines: [] };
    const alone: Server = { name: 'one node', tenants, child: first.child, port: first.port, workerLines: [] };
    await runLoad(viaFront, tenants, 2, dir, useWrk);
    await runLoad(alone, tenants, 2, dir, useWrk);
    progress('cluster: measuring');
    const frontLoad = await runLoad(viaFront, tenants, seconds, dir, useWrk);
    const aloneLoad = await runLoad(alone, tenants, seconds, dir, useWrk);

    const markdown = [
      `Three nodes (\`isolet serve --database\`, \`--processes ${processes}\` each) and a throwaway PostgreSQL on the same 2-core machine, all on loopback.`,
      '',
      `**Propagation**: ${deploys} deploys of one worker, through the three nodes' admin APIs in turn; for each, the time from the admin API's answer until every node (each polled back to back over keep-alive) answered 200 with the new version.`,
      '',
      table(['', 'p50 ms', 'p99 ms', 'max ms'], [
        ['slowest of the 3 nodes', fmt(p50), fmt(p99), fmt(max)],
        ...nodes.map((node, i) => {
          const s = [...perNode[i]!].sort((x, y) => x - y);
          return [`node ${node.id}`, fmt(percentile(s, 50)), fmt(percentile(s, 99)), fmt(s.at(-1)!)];
        }),
      ]),
      '',
      `The node that answered already serves the version (it loads it before it answers); the others learn of it by LISTEN/NOTIFY and load it from the database.`,
      '',
      `**The front**: \`wrk -t1 -c${CONNECTIONS} -d${seconds}s\`${useWrk ? '' : ' (stand-in: bench/support/load.ts)'} rotating over ${tenants} hello-world tenants by Host, after a warm-up.`,
      '',
      table(['target', 'req/s', 'p50 ms', 'p99 ms', 'errors'], [
        ['HAProxy (deploy/haproxy.cfg) over 3 nodes', fmtInt(frontLoad.rps), fmt(frontLoad.p50_us / 1000), fmt(frontLoad.p99_us / 1000), frontLoad.errors],
        ['one node alone', fmtInt(aloneLoad.rps), fmt(aloneLoad.p50_us / 1000), fmt(aloneLoad.p99_us / 1000), aloneLoad.errors],
      ]),
      '',
      `Through the front: ${fmt(frontLoad.rps / aloneLoad.rps)}x one node alone. On one machine three nodes share the same two cores and HAProxy takes its share, so this measures what the front and the extra processes cost, not what more machines would add.`,
    ].join('\n');
    return {
      name: 'cluster',
      title: 'A cluster: change propagation and the front',
      markdown,
      targets: [
        {
          name: `every node serves a deploy within ${TARGET_P99_MS} ms of the answer, p99 over ${deploys} deploys`,
          met: p99 < TARGET_P99_MS,
          detail: `p99 ${fmt(p99)} ms (${fmt(TARGET_P99_MS / p99, 1)}x below the target), p50 ${fmt(p50)} ms.`,
        },
      ],
      data: { deploys, samples, p50, p99, max, tenants, frontLoad, aloneLoad, processes },
    };
  } finally {
    for (const child of children.reverse()) await stopChild(child, 10_000);
    await postgres?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await runStandalone('cluster', cluster);
