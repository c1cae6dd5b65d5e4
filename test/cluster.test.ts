// Three `isolet serve --database` nodes on loopback over one PostgreSQL database: a change
// acknowledged by any node's admin API is served by every node (deploy, bulk deploy, rollback,
// secrets, routes, delete), a notification dropped on purpose is caught by the reconcile, and a node
// killed under load loses nothing it acknowledged.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { PostgresStore } from '../src/store/postgres-store.ts';
import { TestPostgres } from './support/postgres.ts';
import { CLUSTER_SECRETS_KEY, startNode, stopNode, waitServes, type ClusterNode } from './support/cluster.ts';
import { ServeProcess, textWorker, moduleDeployment } from './server-support.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const postgres = new TestPostgres();
let database: string;
let nodes: ClusterNode[] = [];
let a: ClusterNode, b: ClusterNode, c: ClusterNode;

before(async () => {
  database = await postgres.database();
  // The first node makes the schema; the others start together and find it made.
  a = await startNode(database, 'a');
  [b, c] = await Promise.all([startNode(database, 'b'), startNode(database, 'c')]);
  nodes = [a, b, c];
});

after(async () => {
  await Promise.all(nodes.map(stopNode));
  await postgres.close();
});

test('/healthz names the node, the database state and the change applied', async () => {
  for (const node of nodes) {
    const health = await node.health();
    assert.equal(health.ok, true);
    assert.equal(health.node, node.id);
    assert.equal(health.database, 'connected');
    assert.equal(typeof health.change, 'number');
  }
  const admin = await a.api('GET', '/healthz');
  assert.equal(admin.body.node, 'a');
});

test('a node is refused without the cluster\'s secrets key, with another one, or with a URL that is not PostgreSQL', { timeout: 120_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'isolet-node-refused-'));
  try {
    // Started side by side: each refusal is at start, before anything is written.
    const keyless = new ServeProcess(dataDir, { ISOLET_DATABASE_URL: database }, ['--processes', '0']);
    const wrongKey = new ServeProcess(dataDir, { ISOLET_DATABASE_URL: database, ISOLET_SECRETS_KEY: randomBytes(32).toString('base64') }, ['--processes', '0']);
    const notPostgres = new ServeProcess(dataDir, {}, ['--processes', '0', '--database', 'mysql://root:hunter2@db/isolet']);
    assert.equal((await keyless.exited).code, 1);
    assert.match(keyless.stderr, /With --database every node needs the cluster's secrets key: set ISOLET_SECRETS_KEY/);
    assert.equal((await wrongKey.exited).code, 1);
    assert.match(wrongKey.stderr, /secrets key does not match the one the database at postgres:\/\/.* was made with: every node of a cluster needs the same key/);
    assert.equal((await notPostgres.exited).code, 2);
    assert.match(notPostgres.stderr, /--database must be a PostgreSQL URL/);
    assert.doesNotMatch(notPostgres.stderr, /hunter2/, 'the password is not repeated');
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('a deploy through node A is served by B and C; a rollback through B by A and C', { timeout: 120_000 }, async () => {
  assert.equal((await a.api('POST', '/v1/accounts', { name: 'acme' })).status, 201);
  assert.equal((await a.api('PUT', '/v1/workers/hello?account=acme', textWorker('hello v1'))).status, 201);
  for (const node of nodes) await waitServes(node, 'hello.localhost', 200, 'hello v1');
  assert.equal((await a.api('PUT', '/v1/workers/hello?account=acme', textWorker('hello v2'))).status, 201);
  for (const node of nodes) await waitServes(node, 'hello.localhost', 200, 'hello v2');
  const rolled = await b.api('POST', '/v1/workers/hello/rollback', {});
  assert.equal(rolled.status, 200, rolled.text);
  for (const node of nodes) await waitServes(node, 'hello.localhost', 200, 'hello v1');
  // Every node reads the same history.
  for (const node of nodes) {
    const versions = await node.api('GET', '/v1/workers/hello/versions');
    assert.deepEqual(versions.body.map((v: { number: number; active: boolean }) => [v.number, v.active]), [[2, false], [1, true]]);
  }
});

test('a bulk deploy through node C is served by A and B, each worker as C answered it', { timeout: 120_000 }, async () => {
  const names = ['fleet-0', 'fleet-1', 'fleet-2'];
  const answer = await c.api('POST', '/v1/workers?account=acme', { workers: [...names.map((name) => ({ name, ...textWorker(`${name} v1`) })), { name: 'Bad_Name', ...textWorker('x') }] });
  assert.equal(answer.status, 200, answer.text);
  assert.deepEqual(answer.body.results.map((r: { name: string; status: number }) => [r.name, r.status]), [...names.map((name) => [name, 201]), ['Bad_Name', 400]]);
  for (const node of nodes) for (const name of names) await waitServes(node, `${name}.localhost`, 200, `${name} v1`);
});

test('a secret set through C, a route set through A and a delete through B reach every node', { timeout: 120_000 }, async () => {
  const source = 'export default { fetch(request, env) { return new Response(`key=${env.KEY ?? "none"}`); } };';
  assert.equal((await a.api('PUT', '/v1/workers/env?account=acme', moduleDeployment(source))).status, 201);
  for (const node of nodes) await waitServes(node, 'env.localhost', 200, 'key=none');
  assert.equal((await c.api('PUT', '/v1/workers/env/secrets/KEY', { value: 's3cret' })).status, 204);
  for (const node of nodes) await waitServes(node, 'env.localhost', 200, 'key=s3cret');

  assert.equal((await a.api('PUT', '/v1/workers/env?account=acme', moduleDeployment(source, { routes: ['shop.example.com/*'] }))).status, 201);
  for (const node of nodes) await waitServes(node, 'shop.example.com', 200, 'key=s3cret');

  assert.equal((await b.api('DELETE', '/v1/workers/env')).status, 204);
  for (const node of nodes) {
    await waitServes(node, 'env.localhost', 404);
    await waitServes(node, 'shop.example.com', 404);
  }
});

/** Opens a tail on a node; resolves with every line it got once the server ends it. */
function tail(node: ClusterNode, worker: string, token: string): Promise<{ opened: Promise<number>; lines: Promise<Record<string, unknown>[]> }> {
  return new Promise((resolve) => {
    let opened!: (status: number) => void;
    const openedPromise = new Promise<number>((r) => (opened = r));
    const lines = new Promise<Record<string, unknown>[]>((done, fail) => {
      const req = httpRequest(`${node.admin}/v1/workers/${worker}/tail`, { headers: { authorization: `Bearer ${token}` } }, (res) => {
        opened(res.statusCode ?? 0);
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => done(text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>)));
        res.on('error', fail);
      });
      req.on('error', fail);
      req.end();
    });
    lines.catch(() => {});
    resolve({ opened: openedPromise, lines });
  });
}

test('a tail on B ends when its token is revoked through A, and when its worker is deleted through C', { timeout: 120_000 }, async () => {
  const created = await a.api('POST', '/v1/accounts/acme/tokens', { description: 'short-lived' });
  assert.equal(created.status, 201);
  const revoked = await tail(b, 'hello', created.body.token);
  assert.equal(await revoked.opened, 200);
  assert.equal((await a.api('DELETE', `/v1/accounts/acme/tokens/${created.body.id}`)).status, 204);
  assert.equal((await revoked.lines).at(-1)?.reason, 'token-revoked');

  assert.equal((await a.api('PUT', '/v1/workers/brief?account=acme', textWorker('brief'))).status, 201);
  await waitServes(b, 'brief.localhost', 200, 'brief');
  const kept = await a.api('POST', '/v1/accounts/acme/tokens', { description: 'kept' });
  const deleted = await tail(b, 'brief', kept.body.token);
  assert.equal(await deleted.opened, 200);
  assert.equal((await c.api('DELETE', '/v1/workers/brief')).status, 204);
  assert.equal((await deleted.lines).at(-1)?.reason, 'worker-deleted');
});

test('a change whose notification is lost is served by every node after the reconcile', { timeout: 120_000 }, async () => {
  // The change is written as any node writes one, but notified on a channel no node listens
  // on: only the change counter tells the nodes.
  const silent = await PostgresStore.open({ url: database, secretsKey: Buffer.from(CLUSTER_SECRETS_KEY, 'base64'), channel: 'isolet_nobody_listens' });
  try {
    const account = await silent.findAccount('acme');
    const before = Math.max(...(await Promise.all(nodes.map(async (node) => Number((await node.health()).change)))));
    await silent.deploy({ worker: 'quiet', accountId: account!.id, content: textWorker('quiet v1') as never, author: 'admin', message: '' });
    for (const node of nodes) await waitServes(node, 'quiet.localhost', 200, 'quiet v1');
    for (const node of nodes) assert.ok(Number((await node.health()).change) > before);
  } finally {
    await silent.close();
  }
});

test('a node killed under load loses nothing it acknowledged: the others serve every acknowledged version', { timeout: 180_000 }, async () => {
  const acked = new Map<string, number>();
  let stop = false;
  // Load on B and C the whole time.
  let served = 0;
  let failures = 0;
  const load = Promise.all([b, c].map(async (node) => {
    while (!stop) {
      const answer = await node.get('hello.localhost').catch(() => ({ status: 0, text: '' }));
      if (answer.status === 200) served++;
      else failures++;
    }
  }));
  // Deploys through A, one worker after another, until A is killed in the middle of them.
  const deploys = (async () => {
    for (let n = 1; ; n++) {
      const worker = `w${n % 3}`;
      const answer = await a.api('PUT', `/v1/workers/${worker}?account=acme`, textWorker(`${worker} #${n}`)).catch(() => undefined);
      if (answer === undefined || answer.status !== 201) return n;
      acked.set(worker, n);
      if (n === 12) a.process.kill('SIGKILL');
    }
  })();
  await deploys;
  await a.process.exited;
  stop = true;
  await load;
  assert.ok(acked.size === 3, 'deploys were acknowledged before the kill');
  assert.equal(failures, 0, 'B and C kept serving');
  assert.ok(served > 0);
  for (const [worker, n] of acked) {
    for (const node of [b, c]) await waitServes(node, `${worker}.localhost`, 200, new RegExp(`^${worker} #(\\d+)$`));
    for (const node of [b, c]) {
      const answer = await node.get(`${worker}.localhost`);
      // The last acknowledged deploy, or one the kill cut after its commit but before its answer.
      assert.ok(Number(/#(\d+)$/.exec(answer.text)![1]) >= n, `${node.id} serves ${answer.text}, acknowledged #${n}`);
    }
  }
  nodes = nodes.filter((node) => node !== a);
  // A node that comes back catches up with no manual step.
  const back = await startNode(database, 'a');
  nodes.push(back);
  for (const [worker] of acked) await waitServes(back, `${worker}.localhost`, 200, (await b.get(`${worker}.localhost`)).text);
});
