// Cron triggers in a cluster: two nodes over one PostgreSQL store both fire every tick, and each
// (worker, cron, tick) runs on exactly one of them, whichever claims it first. Ticks are fired by
// hand on both nodes at once, as their clocks would at the top of a minute.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { TestPostgres } from './support/postgres.ts';
import { ADMIN_TOKEN, moduleDeployment, startTestServer, type TestServer } from './server-support.ts';

const postgres = new TestPostgres();
const nodes: TestServer[] = [];

before(async () => {
  const database = await postgres.database();
  const env = { ISOLET_ADMIN_TOKEN: ADMIN_TOKEN, ISOLET_SECRETS_KEY: randomBytes(32).toString('base64') };
  for (const nodeId of ['node-a', 'node-b']) nodes.push(await startTestServer({ database, env, nodeId, cronTimer: false, reconcileMs: 200 }));
});

after(async () => {
  for (const node of nodes) await node.close();
  await postgres.close();
});

test('two nodes sharing a store run each tick of each cron once between them', { timeout: 120_000 }, async () => {
  const [a, b] = nodes as [TestServer, TestServer];
  assert.equal((await a.api('POST', '/v1/accounts', { body: { name: 'acme' } })).status, 201);
  const deployed = await a.api('PUT', '/v1/workers/ticker?account=acme', {
    body: moduleDeployment('export default { scheduled(controller) { console.log("ran", controller.cron, controller.scheduledTime); } };', { crons: ['* * * * *', '*/2 * * * *'] }),
  });
  assert.equal(deployed.status, 201, deployed.text);
  // The other node follows the deploy through the store's change feed.
  const deadline = Date.now() + 30_000;
  while (![...b.server.platform.scheduledWorkers()].some((worker) => worker.name === 'ticker')) {
    assert.ok(Date.now() < deadline, 'node b never served the worker');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  const first = Date.UTC(2030, 0, 1, 0, 0);
  const ticks = [0, 1, 2, 3, 4, 5].map((i) => first + i * 60_000);
  const expected: string[] = [];
  for (const tick of ticks) {
    const [onA, onB] = await Promise.all([a.server.scheduler.tick(tick), b.server.scheduler.tick(tick)]);
    const runs = [...onA, ...onB];
    const due = tick % 120_000 === 0 ? ['* * * * *', '*/2 * * * *'] : ['* * * * *'];
    assert.deepEqual(runs.map((run) => run.cron).sort(), due.sort(), `tick ${new Date(tick).toISOString()}: each due cron once`);
    assert.ok(runs.every((run) => run.outcome === 'ok'));
    for (const cron of due) expected.push(`ran ${cron} ${tick}`);
  }

  // Each handler ran once: the console lines of both nodes, together, are one per run.
  const ran = [...a.logs, ...b.logs].filter((line) => line.type === 'console' && String(line.message).startsWith('ran ')).map((line) => String(line.message));
  assert.deepEqual(ran.sort(), expected.sort());
  const scheduledLines = [...a.logs, ...b.logs].filter((line) => line.type === 'scheduled' && line.worker === 'ticker');
  assert.equal(scheduledLines.length, expected.length);

  // Either node lists every run, and says which node ran it.
  const listed = await b.api('GET', '/v1/workers/ticker/crons');
  assert.equal(listed.status, 200);
  assert.equal(listed.body.runs.length, expected.length);
  assert.ok(listed.body.runs.every((run: { node: string; outcome: string }) => (run.node === 'node-a' || run.node === 'node-b') && run.outcome === 'ok'));
});
