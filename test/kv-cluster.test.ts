// KV across the nodes of a cluster (two `isolet serve --database` nodes over one PostgreSQL): a
// write acknowledged through one node, by a worker or the admin API, is read by the next read
// through the other, with no wait; writes through both nodes at once all land.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestPostgres } from './support/postgres.ts';
import { startNode, stopNode, waitServes, type ClusterNode } from './support/cluster.ts';
import { ADMIN_TOKEN, moduleDeployment } from './server-support.ts';

const postgres = new TestPostgres();
let a: ClusterNode;
let b: ClusterNode;

const WORKER = `export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const key = url.searchParams.get('k');
    if (url.pathname === '/put') { await env.KV.put(key, url.searchParams.get('v')); return new Response('ok'); }
    if (url.pathname === '/get') return new Response(String(await env.KV.get(key)));
    if (url.pathname === '/delete') { await env.KV.delete(key); return new Response('ok'); }
    return new Response('ready');
  },
};`;

before(async () => {
  const database = await postgres.database();
  a = await startNode(database, 'a');
  b = await startNode(database, 'b');
});

after(async () => {
  await Promise.all([a, b].filter(Boolean).map(stopNode));
  await postgres.close();
});

test('a KV write through one node is read through the other at once', { timeout: 180_000 }, async () => {
  assert.equal((await a.api('POST', '/v1/accounts', { name: 'acme' })).status, 201);
  const ns = await a.api('POST', '/v1/kv/namespaces?account=acme', { title: 'shared' });
  assert.equal(ns.status, 201, ns.text);
  const id = ns.body.id as string;
  const deployed = await a.api('PUT', '/v1/workers/kvw?account=acme', moduleDeployment(WORKER, { bindings: { KV: { type: 'kv', namespaceId: id } } }));
  assert.equal(deployed.status, 201, deployed.text);
  await waitServes(b, 'kvw.localhost', 200, 'ready');

  for (let i = 0; i < 5; i++) {
    // The worker on A writes, the worker on B reads: no wait in between.
    assert.equal((await a.get('kvw.localhost', `/put?k=key${i}&v=value${i}`)).text, 'ok');
    assert.equal((await b.get('kvw.localhost', `/get?k=key${i}`)).text, `value${i}`);
    // And the other way, through the admin API of B and the worker on A.
    const put = await fetch(`${b.admin}/v1/kv/namespaces/${id}/values/key${i}`, { method: 'PUT', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, body: `changed${i}` });
    assert.equal(put.status, 204);
    assert.equal((await a.get('kvw.localhost', `/get?k=key${i}`)).text, `changed${i}`);
    assert.equal((await b.get('kvw.localhost', `/delete?k=key${i}`)).text, 'ok');
    assert.equal((await a.get('kvw.localhost', `/get?k=key${i}`)).text, 'null');
  }

  // Writes through both nodes at once: every one lands.
  await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).get('kvw.localhost', `/put?k=many${i % 5}&v=${i % 10}`)));
  const keys = await a.api('GET', `/v1/kv/namespaces/${id}/keys`);
  assert.deepEqual(keys.body.keys.map((k: { name: string }) => k.name), ['many0', 'many1', 'many2', 'many3', 'many4']);
});
