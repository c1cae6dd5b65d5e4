// KV values at Cloudflare's limit through isolet serve (its workers in 2 runtime processes, the
// store on SQLite) under the default limits (50 ms of CPU, 128 MB): each request puts a 25 MiB
// value, from the request's own body (`env.KV.put(key, request.body)`) or from an ArrayBuffer
// (`await request.arrayBuffer()`), and one request gets it back as a stream. The CPU each request
// was charged (its log line) and how many were answered 200: what moving the value across the
// isolate wall costs the tenant. The first put of each case is the first request of a new worker.
//
//   node --no-node-snapshot bench/kv-large.ts [--requests 5] [--mib 25] [--write]

import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startServer } from '../src/server/server.ts';
import { DEFAULT_LIMITS } from '../src/runtime/types.ts';
import { numberArg, fmt, percentile, progress, runStandalone, table, type BenchResult } from './lib.ts';

const TOKEN = 'isl_bench-kv-large-admin-token-0123456789ab';

const WORKER = `export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === '/body') await env.KV.put('v', request.body);
    else if (url.pathname === '/buffer') await env.KV.put('v', await request.arrayBuffer());
    else if (url.pathname === '/get') return new Response(await env.KV.get('v', 'stream'));
    return new Response('ok');
  },
};`;

type CaseResult = { ok: number; requests: number; cpuMs: number[] };

async function main(args: string[]): Promise<BenchResult> {
  const requests = numberArg(args, '--requests', 5);
  const mib = numberArg(args, '--mib', 25);
  const size = mib * 1024 * 1024;
  const block = randomBytes(64 * 1024);
  const lines: Record<string, unknown>[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'isolet-bench-kv-large-'));
  const server = await startServer({
    dataDir: dir, port: 0, adminPort: 0, processes: 2, env: { ISOLET_ADMIN_TOKEN: TOKEN },
    logSink: (entry) => void lines.push(entry as unknown as Record<string, unknown>), limits: { ...DEFAULT_LIMITS },
  });
  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(server.adminUrl + path, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    return response.status === 204 ? undefined : response.json();
  };
  /** One request to `worker`, with `size` bytes as its body when `upload`; resolves with its status once the answer is read. */
  const send = (worker: string, path: string, upload: boolean) =>
    new Promise<number>((resolve, reject) => {
      const req = httpRequest({
        host: '127.0.0.1', port: server.port, path, method: upload ? 'PUT' : 'GET',
        headers: { host: `${worker}.localhost:${server.port}`, ...(upload ? { 'content-length': String(size) } : {}) },
      }, (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve(res.statusCode!));
        res.on('error', reject);
      });
      req.on('error', reject);
      let sent = 0;
      const write = (): void => {
        while (upload && sent < size) {
          const chunk = block.subarray(0, Math.min(block.length, size - sent));
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', write);
        }
        req.end();
      };
      write();
    });
  const results: Record<string, CaseResult> = {};
  const rows: (string | number)[][] = [];
  try {
    await api('POST', '/v1/accounts', { name: 'bench' });
    const ns = (await api('POST', '/v1/kv/namespaces?account=bench', { title: 'big' })) as { id: string };
    const cases: [string, string, boolean][] = [
      [`put of request.body, ${mib} MiB`, '/body', true],
      [`put of an ArrayBuffer, ${mib} MiB`, '/buffer', true],
      [`get as a stream, ${mib} MiB`, '/get', false],
    ];
    for (const [label, path, upload] of cases) {
      // A worker of its own per case: its first request is the first of a new isolate.
      const worker = `big${path.slice(1)}`;
      await api('PUT', `/v1/workers/${worker}?account=bench`, { modules: [{ name: 'w.js', source: WORKER }], bindings: { KV: { type: 'kv', namespaceId: ns.id } } });
      if (!upload) await send(worker, '/buffer', true);
      progress(label);
      const result: CaseResult = { ok: 0, requests, cpuMs: [] };
      for (let i = 0; i < requests; i++) {
        const before = lines.length;
        if ((await send(worker, path, upload)) === 200) result.ok++;
        // The request's own log line, which may come a moment after its answer.
        for (let wait = 0; wait < 100; wait++) {
          const line = lines.slice(before).find((l) => l.type === 'request' && l.worker === worker && l.url !== undefined && String(l.url).endsWith(path));
          if (line) {
            result.cpuMs.push(line.cpuMs as number);
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
      results[label] = result;
      const sorted = [...result.cpuMs].sort((a, b) => a - b);
      rows.push([label, `${result.ok} of ${requests}`, fmt(result.cpuMs[0] ?? NaN, 1), fmt(percentile(sorted, 50), 1), fmt(sorted.at(-1) ?? NaN, 1)]);
    }
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const markdown = [
    `One worker per case on \`isolet serve\` (2 runtime processes, SQLite store) under the default limits (${DEFAULT_LIMITS.cpuMs} ms of CPU, ${DEFAULT_LIMITS.memoryMb} MB); ${requests} requests one after another, each moving a ${mib} MiB value over HTTP: a put of the request's body as it is, a put of it read whole into an ArrayBuffer, and a get streamed back. CPU is what each request was charged (its log line); a request over the limit ends with 503. The first request of a put is the first of a new worker's isolate; the get's worker served one put before.`,
    '',
    table(['case', 'answered 200', 'CPU ms, first request', 'CPU ms (p50)', 'CPU ms (max)'], rows),
  ].join('\n');
  return { name: 'kv-large', title: 'KV values of 25 MiB under the default limits', markdown, targets: [], data: results };
}

await runStandalone('kv-large', main);
