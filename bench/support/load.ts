// A small HTTP load generator for when wrk is not installed: `--connections` keep-alive
// connections, each sending its next GET as soon as the last response ended, for `--seconds`,
// rotating the Host header over `--hosts` names (t0.localhost, t1.localhost, ...). Prints one
// `RESULT {json}` line in the shape bench/throughput.ts reads from wrk. It costs more CPU per
// request than wrk, so its numbers are only comparable with each other.
//
//   node bench/support/load.ts --port 8080 --hosts 100 --connections 50 --seconds 5

import { Agent, request } from 'node:http';
import { numberArg } from '../lib.ts';

const args = process.argv.slice(2);
const port = numberArg(args, '--port', 0);
const hostCount = numberArg(args, '--hosts', 1);
const connections = numberArg(args, '--connections', 50);
const seconds = numberArg(args, '--seconds', 5);

const hosts = Array.from({ length: hostCount }, (_, i) => `t${i}.localhost:${port}`);
const agent = new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
const latencies: number[] = [];
let requests = 0;
let statusErrors = 0;
let otherErrors = 0;
let next = 0;
const start = process.hrtime.bigint();
const end = start + BigInt(seconds * 1e9);

function one(): Promise<void> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const req = request({ host: '127.0.0.1', port, path: '/', agent, headers: { host: hosts[next++ % hosts.length] } }, (res) => {
      if (res.statusCode !== 200) statusErrors++;
      res.on('data', () => {});
      res.on('end', () => {
        requests++;
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e3);
        resolve();
      });
    });
    req.on('error', () => {
      otherErrors++;
      resolve();
    });
    req.end();
  });
}

async function connection(): Promise<void> {
  while (process.hrtime.bigint() < end) await one();
}

await Promise.all(Array.from({ length: connections }, connection));
const durationUs = Number(process.hrtime.bigint() - start) / 1e3;
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)] ?? 0;
const mean = latencies.reduce((a, b) => a + b, 0) / (latencies.length || 1);
process.stdout.write(
  'RESULT ' +
    JSON.stringify({ requests, duration_us: durationUs, errors_status: statusErrors, errors_other: otherErrors, p50_us: pct(50), p99_us: pct(99), mean_us: mean }) +
    '\n',
);
agent.destroy();
