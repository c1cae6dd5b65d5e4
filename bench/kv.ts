// KV through isolet serve (in this process, its workers in 2 runtime processes, the store on
// SQLite; `--processes 0` runs the workers in the server's own process): a worker makes `--ops`
// KV calls one after another in each request, `--concurrency` requests at a time for `--seconds`
// each case. A call crosses the isolate wall, the channel to
// the control process and the store, and back; its latency is the request's time divided by
// the calls it made. Cases: get of a 100-byte value, put of one, list of 100 keys, get and put
// of 1 MiB.
//
//   node --no-node-snapshot bench/kv.ts [--ops 50] [--concurrency 4] [--seconds 3] [--processes 2] [--write]

import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../src/server/server.ts';
import { numberArg, fmt, fmtInt, percentile, progress, runStandalone, table, type BenchResult } from './lib.ts';

const TOKEN = 'isl_bench-kv-admin-token-0123456789abcdef';

const WORKER = `export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const n = Number(url.searchParams.get('n'));
    const kv = env.KV;
    switch (url.pathname) {
      case '/get': for (let i = 0; i < n; i++) await kv.get('small' + (i % 100)); break;
      case '/put': for (let i = 0; i < n; i++) await kv.put('small' + (i % 100), 'v'.repeat(100)); break;
      case '/list': for (let i = 0; i < n; i++) await kv.list({ prefix: 'small', limit: 100 }); break;
      case '/get-big': for (let i = 0; i < n; i++) await kv.get('big', 'arrayBuffer'); break;
      case '/put-big': { const big = new Uint8Array(1024 * 1024); for (let i = 0; i < n; i++) await kv.put('big', big); break; }
    }
    return new Response('ok');
  },
};`;

type CaseResult = { ops: number; opsPerS: number; p50: number; p99: number };

async function main(args: string[]): Promise<BenchResult> {
  const ops = numberArg(args, '--ops', 50);
  const concurrency = numberArg(args, '--concurrency', 4);
  const processes = numberArg(args, '--processes', 2);
  const seconds = numberArg(args, '--seconds', 3);
  const rows: (string | number)[][] = [];
  const data: Record<string, Record<string, CaseResult>> = {};
  // The same cases with the workers in runtime processes (as served) and in the server's own
  // process: the difference is what the crossing to the control process costs.
  for (const where of [processes, 0]) {
    const label = where === 0 ? 'in the server\'s process' : `${where} runtime processes`;
    data[label] = await run(where, label);
  }
  async function run(where: number, label: string): Promise<Record<string, CaseResult>> {
    const results: Record<string, CaseResult> = {};
    const dir = mkdtempSync(join(tmpdir(), 'isolet-bench-kv-'));
    const server = await startServer({
      dataDir: dir, port: 0, adminPort: 0, processes: where, env: { ISOLET_ADMIN_TOKEN: TOKEN }, logSink: () => {}, logWorkers: false,
      limits: { cpuMs: 30_000 }, quotas: { cpuMs: 30_000 },
    });
    const api = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(server.adminUrl + path, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
      return response.status === 204 ? undefined : response.json();
    };
    const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
    try {
      await api('POST', '/v1/accounts', { name: 'bench' });
      const ns = (await api('POST', '/v1/kv/namespaces?account=bench', { title: 'bench' })) as { id: string };
      await api('PUT', '/v1/workers/kv?account=bench', { modules: [{ name: 'w.js', source: WORKER }], bindings: { KV: { type: 'kv', namespaceId: ns.id } }, limits: { cpuMs: 30_000 } });
      const request = (path: string) =>
        new Promise<void>((resolve, reject) => {
          const req = httpRequest({ host: '127.0.0.1', port: server.port, path, headers: { host: `kv.localhost:${server.port}` }, agent }, (res) => {
            let text = '';
            res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
            res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${path}: ${res.statusCode} ${text.slice(0, 200)}`))));
            res.on('error', reject);
          });
          req.on('error', reject);
          req.end();
        });
      const cases: [string, string, number][] = [
        ['put, 100-byte value', '/put', ops],
        ['get, 100-byte value', '/get', ops],
        ['list, 100 keys', '/list', ops],
        ['put, 1 MiB value', '/put-big', Math.max(1, Math.round(ops / 10))],
        ['get, 1 MiB value', '/get-big', Math.max(1, Math.round(ops / 10))],
      ];
      for (const [name, path, n] of cases) {
        progress(`${label}: ${name}`);
        await request(`${path}?n=${n}`);
        const perOp: number[] = [];
        let done = 0;
        const started = performance.now();
        const deadline = started + seconds * 1000;
        await Promise.all(Array.from({ length: concurrency }, async () => {
          while (performance.now() < deadline) {
            const t0 = performance.now();
            await request(`${path}?n=${n}`);
            perOp.push((performance.now() - t0) / n);
            done += n;
          }
        }));
        const elapsed = (performance.now() - started) / 1000;
        perOp.sort((a, b) => a - b);
        const result = { ops: done, opsPerS: done / elapsed, p50: percentile(perOp, 50), p99: percentile(perOp, 99) };
        results[name] = result;
        rows.push([name, label, fmtInt(result.ops), fmtInt(result.opsPerS), fmt(result.p50, 2), fmt(result.p99, 2)]);
      }
    } finally {
      agent.destroy();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
    return results;
  }
  const markdown = [
    `One worker on \`isolet serve\` (SQLite store, in this process), its workers in ${processes} runtime processes as served, then in the server's own process (\`--processes 0\`); ${concurrency} requests at a time for ${seconds} s a case, each request making ${ops} KV calls one after another (a tenth as many for 1 MiB values). From a runtime process a call goes from the isolate over the channel to the control process, to the store and back. Latency per call is a request's time divided by its calls, so it includes waiting behind the other requests' calls (the store writes one at a time).`,
    '',
    table(['case', 'workers', 'calls', 'calls/s', 'ms per call (p50)', 'ms per call (p99)'], rows),
  ].join('\n');
  return { name: 'kv', title: 'KV calls through isolet serve', markdown, targets: [], data };
}

await runStandalone('kv', main);
