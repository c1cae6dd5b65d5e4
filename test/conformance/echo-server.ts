// The server fetch() probes talk to: /echo answers with the request as JSON, /redirect sends to
// /echo, anything else is a 404. On 127.0.0.1, on a free port.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface EchoServer {
  port: number;
  close(): Promise<void>;
}

export async function startEchoServer(): Promise<EchoServer> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/redirect') {
        res.writeHead(302, { location: '/echo?redirected=1', 'content-length': '0' });
        res.end();
      } else if (path === '/echo') {
        // The connection-level headers each client adds differ (undici vs workerd); leave them out.
        const headers = Object.fromEntries(
          Object.entries(req.headers).filter(([name]) => !['host', 'connection', 'user-agent', 'accept-encoding', 'accept', 'accept-language', 'sec-fetch-mode', 'cf-ray', 'cf-connecting-ip', 'cf-ew-via', 'cdn-loop'].includes(name) && !name.startsWith('cf-')),
        );
        const body = JSON.stringify({ method: req.method, url: req.url, headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(200, { 'content-type': 'application/json', 'x-echo': 'yes', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      } else {
        res.writeHead(404, { 'content-type': 'text/plain', 'content-length': '9' });
        res.end('not found');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
