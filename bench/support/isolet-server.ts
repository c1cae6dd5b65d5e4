// A Runtime behind the HTTP front on 127.0.0.1, serving the same hello-world worker as
// `--tenants` tenants named t0, t1, ... (routed by the first label of Host, as the server
// does). Prints `listening PORT` once every tenant's isolate is up. For bench/throughput.ts.
//
//   node --no-node-snapshot bench/support/isolet-server.ts --tenants 100

import type { AddressInfo } from 'node:net';
import { Runtime } from '../../src/runtime/runtime.ts';
import { createHttpFront } from '../../src/http/front.ts';

import { HELLO_WORKER } from './hello.ts';

const args = process.argv.slice(2);
const at = args.indexOf('--tenants');
const tenants = at >= 0 ? Number(args[at + 1]) : 1;

// Per-request summary lines are dropped (the references log nothing either); anything else a
// worker logs (a limit, an exception) goes to stderr, so an error in a run can be explained.
const runtime = new Runtime({
  log: (entry) => {
    if (entry.type !== 'request') process.stderr.write(`isolet-server: ${JSON.stringify(entry)}\n`);
  },
  maxIsolates: Math.max(tenants + 10, 100),
  // Servers take turns under load and sit idle between their rounds; an idle server's isolates
  // would give memory back (full collections) in the middle of another server's round.
  reduceIdleMemoryAfterMs: 0,
});
for (let i = 0; i < tenants; i++) {
  await runtime.load(`t${i}`, { modules: [{ name: 'worker.js', source: HELLO_WORKER }] }, { validate: true });
}
const server = createHttpFront(runtime, {
  worker: (req) => {
    const host = req.headers.host ?? '';
    const dot = host.indexOf('.');
    return dot > 0 ? host.slice(0, dot) : undefined;
  },
  log: () => {},
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port} isolates ${runtime.liveIsolates}\n`);
});
process.on('SIGTERM', () => process.exit(0));
