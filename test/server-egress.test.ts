// Workers' fetch() on a server: loopback and private networks are refused unless the operator
// allows them (ServerOptions.egress, `isolet serve --egress-allow`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestServer, moduleDeployment } from './server-support.ts';

async function withBackend(run: (port: number) => Promise<void>): Promise<void> {
  const backend = createServer((_req, res) => res.end('backend'));
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  try {
    await run((backend.address() as AddressInfo).port);
  } finally {
    backend.close();
  }
}

function proxy(port: number) {
  return moduleDeployment(`export default { async fetch() {
    try { const r = await fetch('http://127.0.0.1:${port}/'); return new Response('got ' + await r.text()); }
    catch (e) { return new Response(e.name + ': ' + e.message, { status: 502 }); }
  } };`);
}

test('by default a worker cannot reach the server machine\'s loopback', async () => {
  await withBackend(async (port) => {
    const server = await startTestServer();
    try {
      await server.account('examples');
      assert.equal((await server.api('PUT', '/v1/workers/proxy?account=examples', { body: proxy(port) })).status, 201);
      const response = await server.request('proxy.localhost', '/');
      assert.equal(response.status, 502);
      assert.match(await response.text(), /^TypeError: fetch to 127\.0\.0\.1.* refused: loopback/);
    } finally {
      await server.close();
    }
  });
});

test('the operator can allow it', async () => {
  await withBackend(async (port) => {
    const server = await startTestServer({ egress: { allow: ['127.0.0.1'] } });
    try {
      await server.account('examples');
      assert.equal((await server.api('PUT', '/v1/workers/proxy?account=examples', { body: proxy(port) })).status, 201);
      const response = await server.request('proxy.localhost', '/');
      assert.equal(await response.text(), 'got backend');
    } finally {
      await server.close();
    }
  });
});
