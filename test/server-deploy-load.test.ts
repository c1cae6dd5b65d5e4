// Zero-downtime deploys: 20 deploys in a row while clients send requests without pause. Every
// request succeeds, each answer comes from a version that was active at some point, and once
// a deploy has answered, new requests see that version.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { startTestServer, moduleDeployment, type TestServer } from './server-support.ts';

let t: TestServer;
let token: string;

before(async () => {
  t = await startTestServer({ logWorkers: true });
  token = (await t.account('acme')).token;
});

after(async () => {
  await t.close();
});

function version(n: number): Record<string, unknown> {
  // Some top-level work, so that starting each new isolate is not instant.
  return moduleDeployment(
    `const table = Array.from({ length: 2000 }, (_, i) => i * ${n});
     export default { async fetch(request) { await request.text(); return new Response(${JSON.stringify(`v${n}`)} + ":" + table.length); } };`,
    { message: `v${n}`, limits: { cpuMs: 5000 } },
  );
}

function get(agent: Agent, port: number, host: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/', method: 'GET', headers: { host }, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

test('20 deploys under continuous traffic: no request fails, each sees a version that was active, and the new one serves as soon as the deploy answers', async () => {
  const DEPLOYS = 20;
  const MAX_REQUESTS = 4000;
  assert.equal((await t.api('PUT', '/v1/workers/busy', { token, body: version(0) })).status, 201);

  // Versions the store has made active so far (a deploy's version counts from when it is sent).
  const activated = new Set<string>(['v0']);
  let deploying = true;
  let sent = 0;
  const failures: string[] = [];
  const seen = new Map<string, number>();

  const client = async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      while (deploying && sent < MAX_REQUESTS) {
        sent++;
        const { status, text } = await get(agent, t.server.port, 'busy.localhost');
        const marker = text.split(':')[0]!;
        if (status !== 200) failures.push(`${status} ${text}`);
        else if (!activated.has(marker)) failures.push(`answer from ${marker}, never deployed`);
        seen.set(marker, (seen.get(marker) ?? 0) + 1);
      }
    } finally {
      agent.destroy();
    }
  };
  const clients = [client(), client(), client()];

  for (let n = 1; n <= DEPLOYS; n++) {
    activated.add(`v${n}`);
    const answer = await t.api('PUT', '/v1/workers/busy', { token, body: version(n) });
    assert.equal(answer.status, 201, answer.text);
    assert.equal(answer.body.version.number, n + 1);
    // Any request sent after the answer sees this version (a fresh connection, so no reuse can mislead).
    const fresh = await t.request('busy.localhost', '/');
    assert.equal(await fresh.text(), `v${n}:2000`);
  }
  deploying = false;
  await Promise.all(clients);

  if (failures.length) console.log(JSON.stringify(t.logs.filter((e) => e.type === 'exception' || e.level === 'error'), null, 1));
  assert.deepEqual(failures, []);
  assert.ok(sent > DEPLOYS, `the clients sent ${sent} requests`);
  const final = await t.request('busy.localhost', '/');
  assert.equal(final.status, 200);
  assert.equal(await final.text(), `v${DEPLOYS}:2000`);
  const versions = await t.api('GET', '/v1/workers/busy/versions', { token });
  assert.equal(versions.body.length, DEPLOYS + 1);
  assert.equal(versions.body[0].active, true);
});
