// The floor of an isolate per tenant on Node, for bench/throughput.ts: a bare node:http server
// (bench/support/node-server.ts's answer, byte for byte) that, for each request, makes one call
// into its tenant's own isolate (isolated-vm, the build isolet runs on, under isolet's engine
// flags), which returns the body. No Request or Response objects, no limits, no accounting: what
// any runtime built this way pays before doing a runtime's work. `--async` calls with `apply`
// (the call runs on the isolate's thread and its result comes back as a task, as isolet's
// requests run while the serving thread is busy), else with `applySync` on the serving thread (as
// isolet's inline runs). Tenants t0, t1, ... by the first label of Host, as isolet routes them.
// Prints `listening PORT`.
//
//   node --no-node-snapshot bench/support/floor-server.ts [--tenants 1] [--async]

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import ivm from 'isolated-vm';
import { applyEngineFlags } from '../../src/runtime/engine-flags.ts';
import { HELLO_BODY, HELLO_CONTENT_TYPE } from './hello.ts';

const args = process.argv.slice(2);
const at = args.indexOf('--tenants');
const tenants = Math.max(1, at >= 0 ? Number(args[at + 1]) : 1);
const async = args.includes('--async');

applyEngineFlags();
const handlers: ivm.Reference<(url: string) => string>[] = [];
for (let i = 0; i < tenants; i++) {
  const isolate = new ivm.Isolate({ memoryLimit: 128 });
  const context = await isolate.createContext();
  handlers.push(await context.eval(`(url) => ${JSON.stringify(HELLO_BODY)}`, { reference: true }));
}

const server = createServer((req, res) => {
  const host = req.headers.host ?? '';
  const tenant = Number(host.slice(1, host.indexOf('.'))) || 0;
  const handler = handlers[tenant % tenants]!;
  const send = (text: string) => {
    const body = Buffer.from(text);
    res.writeHead(200, { 'content-type': HELLO_CONTENT_TYPE, 'content-length': body.byteLength });
    res.end(body);
  };
  if (!async) return send(handler.applySync(undefined, [req.url!]));
  handler.apply(undefined, [req.url!]).then(send, () => {
    res.writeHead(500);
    res.end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
