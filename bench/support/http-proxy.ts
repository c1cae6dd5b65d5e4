// One of the data paths measured for runtime processes (bench/processes.ts): a node:http front
// that forwards every request, as HTTP over a Unix socket, to a runtime process that is itself
// an HTTP server (bench/support/isolet-server.ts --socket). Bodies stream both ways through
// pipe(). Prints `listening PORT`.
//
//   node --no-node-snapshot bench/support/http-proxy.ts --tenants 1

import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RUNTIME_HOST_NODE_ARGS } from '../lib.ts';

const args = process.argv.slice(2);
const at = args.indexOf('--tenants');
const tenants = at >= 0 ? args[at + 1]! : '1';
const socketPath = join(mkdtempSync(join(tmpdir(), 'isolet-proxy-')), 'runtime.sock');
const child = spawn(process.execPath, [...RUNTIME_HOST_NODE_ARGS, join(import.meta.dirname, 'isolet-server.ts'), '--tenants', tenants, '--socket', socketPath], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
await new Promise<void>((resolve) => child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('listening') && resolve()));

const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const server = createServer((req, res) => {
  const upstream = request({ socketPath, agent, method: req.method, path: req.url, headers: req.headers }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  upstream.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(upstream);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`));
process.on('SIGTERM', () => {
  child.kill('SIGTERM');
  process.exit(0);
});
