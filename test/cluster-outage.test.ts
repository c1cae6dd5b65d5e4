// Three nodes while their PostgreSQL restarts under load: traffic keeps flowing on the last
// state each node applied, the admin API answers 503 and says why, /healthz says the database
// is unavailable, a node started again meanwhile serves from its snapshot, and every node
// converges once the database is back. The test runs its own throwaway
// server (it stops and starts it), from the installed binaries.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startThrowawayPostgres, type ThrowawayPostgres } from './support/postgres.ts';
import { restartNode, startNode, stopNode, waitServes, type ClusterNode } from './support/cluster.ts';
import { textWorker } from './server-support.ts';

let server: ThrowawayPostgres | undefined;
let nodes: ClusterNode[] = [];

after(async () => {
  await Promise.all(nodes.map(stopNode));
  await server?.destroy();
});

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('PostgreSQL restarting under load: every node keeps serving, the admin API says 503, a node restarted meanwhile serves its snapshot, and all converge', { timeout: 240_000 }, async () => {
  server = await startThrowawayPostgres();
  const a = await startNode(server.url, 'a');
  const [b, c] = await Promise.all([startNode(server.url, 'b'), startNode(server.url, 'c')]);
  nodes = [a, b, c];
  assert.equal((await a.api('POST', '/v1/accounts', { name: 'acme' })).status, 201);
  assert.equal((await a.api('PUT', '/v1/workers/hello?account=acme', textWorker('hello v1'))).status, 201);
  for (const node of nodes) await waitServes(node, 'hello.localhost', 200, 'hello v1');

  let stop = false;
  const answers = new Map<string, number>();
  // Load on A and B; C is started again while the database is away.
  const load = Promise.all([a, b].map(async (node) => {
    while (!stop) {
      const answer = await node.get('hello.localhost').catch((error) => ({ status: 0, text: String(error) }));
      const key = `${answer.status} ${answer.text}`;
      answers.set(key, (answers.get(key) ?? 0) + 1);
    }
  }));

  await server.stop();
  for (const node of nodes) await until(`node ${node.id} says the database is unavailable`, async () => (await node.health()).database === 'unavailable');
  const refused = await b.api('PUT', '/v1/workers/hello?account=acme', textWorker('hello v2'));
  assert.equal(refused.status, 503);
  assert.equal(refused.body.error.code, 'unavailable');
  assert.match(refused.body.error.message, /database is unavailable.*Nothing was changed.*keeps serving/s);
  assert.equal(refused.headers.get('retry-after'), '1');
  const refusedBulk = await a.api('POST', '/v1/workers?account=acme', { workers: [{ name: 'hello', ...textWorker('hello v2') }] });
  assert.equal(refusedBulk.status, 503, refusedBulk.text);
  assert.equal(refusedBulk.body.error.code, 'unavailable');
  assert.equal(refusedBulk.headers.get('retry-after'), '1');
  for (const node of nodes) assert.deepEqual(await node.get('hello.localhost'), { status: 200, text: 'hello v1' });

  const c2 = await restartNode(server.url, c);
  nodes = [a, b, c2];
  assert.deepEqual(await c2.get('hello.localhost'), { status: 200, text: 'hello v1' }, 'served from the snapshot');
  assert.equal((await c2.health()).database, 'unavailable');
  assert.match(c2.process.stdout + c2.process.stderr, /serving what this node served before, from its snapshot/);

  await server.start();
  for (const node of nodes) await until(`node ${node.id} says the database is back`, async () => (await node.health()).database === 'connected');
  await until('a deploy through B is accepted again', async () => (await b.api('PUT', '/v1/workers/hello?account=acme', textWorker('hello v2'))).status === 201);
  for (const node of nodes) await waitServes(node, 'hello.localhost', 200, 'hello v2');

  stop = true;
  await load;
  // Nothing but the two versions was ever served: no error, no half-applied state.
  for (const key of answers.keys()) assert.match(key, /^200 hello v[12]$/, `answered ${key} (${answers.get(key)} times)`);
  assert.ok((answers.get('200 hello v1') ?? 0) > 0);
});
