// The reference: a bare node:http hello world on the same Node, answering with the same bytes
// a Workers `new Response('Hello World')` gets (status, content-type, body). Prints
// `listening PORT`. For bench/throughput.ts.

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HELLO_BODY, HELLO_CONTENT_TYPE } from './hello.ts';

const body = Buffer.from(HELLO_BODY);
const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': HELLO_CONTENT_TYPE, 'content-length': body.byteLength });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
