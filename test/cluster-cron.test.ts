// Cron triggers, tails and charts in a cluster: two nodes over one PostgreSQL store both fire
// every tick, and each (worker, cron, tick) runs on exactly one of them, whichever claims it
// first; a tail on either node sees the runs and the requests of both, and a worker's last hour
// adds up both. Ticks are fired by hand on both nodes at once, as their clocks would at the top
// of a minute.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { TestPostgres } from './support/postgres.ts';
import { ADMIN_TOKEN, moduleDeployment, startTestServer, type TestServer } from './server-support.ts';
import { Tail } from './support/tail.ts';
import { formatEntry } from '../src/cli/commands/tail.ts';
import type { WorkerLogEntry } from '../src/runtime/types.ts';

const postgres = new TestPostgres();
const nodes: TestServer[] = [];

before(async () => {
  const database = await postgres.database();
  const env = { ISOLET_ADMIN_TOKEN: ADMIN_TOKEN, ISOLET_SECRETS_KEY: randomBytes(32).toString('base64') };
  for (const nodeId of ['node-a', 'node-b']) nodes.push(await startTestServer({ database, env, nodeId, cronTimer: false, reconcileMs: 200, seriesSyncMs: 50 }));
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

/** Waits until the tail holds `count` entries that match; fails after a bound for a loaded machine. */
async function waitCount(tail: Tail, match: (entry: WorkerLogEntry) => boolean, count: number, what: string): Promise<WorkerLogEntry[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = tail.entries.filter(match);
    if (found.length >= count) return found;
    assert.ok(Date.now() < deadline, `${what}: ${found.length} of ${count} entries after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('a tail on either node sees the cron runs and the requests of both, each once, with the node that served it', { timeout: 120_000 }, async () => {
  const [a, b] = nodes as [TestServer, TestServer];
  const account = await a.api('POST', '/v1/accounts', { body: { name: 'acme' } });
  assert.ok(account.status === 201 || account.status === 409, account.text);
  const deployed = await a.api('PUT', '/v1/workers/watched?account=acme', {
    body: moduleDeployment(`export default {
      fetch(request) { const path = new URL(request.url).pathname; console.log(path === '/big' ? 'x'.repeat(20000) + 'é' : 'served ' + path); return new Response('ok'); },
      scheduled(controller) { console.log('tick', controller.scheduledTime); },
    };`, { crons: ['* * * * *'] }),
  });
  assert.equal(deployed.status, 201, deployed.text);
  const deadline = Date.now() + 30_000;
  while (![...b.server.platform.scheduledWorkers()].some((worker) => worker.name === 'watched')) {
    assert.ok(Date.now() < deadline, 'node b never served the worker');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const onA = await Tail.open(a.server.adminUrl, 'watched', ADMIN_TOKEN);
  const onB = await Tail.open(b.server.adminUrl, 'watched', ADMIN_TOKEN);
  try {
    // Each node learns of the other's tail by a broadcast: until then, send again.
    const seen = (tail: Tail, prefix: string) => tail.entries.find((e) => e.type === 'console' && e.message.startsWith(prefix));
    for (let i = 0; !seen(onA, 'served /from-b-'); i++) {
      assert.equal((await b.request('watched.localhost', `/from-b-${i}`)).status, 200);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(Date.now() < deadline + 30_000, 'the tail on a never saw a request served by b');
    }
    for (let i = 0; !seen(onB, 'served /from-a-'); i++) {
      assert.equal((await a.request('watched.localhost', `/from-a-${i}`)).status, 200);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(Date.now() < deadline + 30_000, 'the tail on b never saw a request served by a');
    }
    assert.equal(seen(onA, 'served /from-b-')?.node, 'node-b', 'a line from another node names it');
    assert.equal(seen(onB, 'served /from-a-')?.node, 'node-a');
    assert.match(formatEntry(seen(onA, 'served /from-b-')!), /  \[node-b\] served \/from-b-/, 'isolet tail shows the node');

    const first = Date.UTC(2031, 0, 1, 0, 0);
    const ticks = [0, 1, 2, 3, 4, 5].map((i) => first + i * 60_000);
    const ranOn: Record<string, number> = { a: 0, b: 0 };
    for (const tick of ticks) {
      const [runsA, runsB] = await Promise.all([a.server.scheduler.tick(tick), b.server.scheduler.tick(tick)]);
      ranOn.a! += runsA.filter((run) => run.worker === 'watched').length;
      ranOn.b! += runsB.filter((run) => run.worker === 'watched').length;
    }
    assert.equal(ranOn.a! + ranOn.b!, ticks.length);
    for (const [tail, name] of [[onA, 'a'], [onB, 'b']] as const) {
      const lines = await waitCount(tail, (e) => e.type === 'console' && e.message.startsWith('tick '), ticks.length, `ticks on ${name}`);
      assert.deepEqual(lines.map((e) => e.message).sort(), ticks.map((t) => `tick ${t}`).sort(), `the tail on ${name} has every run once`);
      const summaries = await waitCount(tail, (e) => e.type === 'scheduled', ticks.length, `scheduled lines on ${name}`);
      assert.equal(summaries.length, ticks.length);
    }

    // A line too long for one broadcast arrives cut, and says so.
    assert.equal((await b.request('watched.localhost', '/big')).status, 200);
    const [big] = await waitCount(onA, (e) => e.type === 'console' && e.message.startsWith('xxx'), 1, 'the long line');
    assert.equal(big!.truncated, true);
    assert.match(big!.message, /cut: too long to share between nodes/);
  } finally {
    onA.close();
    onB.close();
  }
});

test('a worker\'s last hour on either node adds up what both served', { timeout: 120_000 }, async () => {
  const [a, b] = nodes as [TestServer, TestServer];
  const account = await a.api('POST', '/v1/accounts', { body: { name: 'acme' } });
  assert.ok(account.status === 201 || account.status === 409, account.text);
  assert.equal((await a.api('PUT', '/v1/workers/charted?account=acme', { body: moduleDeployment('export default { fetch() { return new Response("ok"); } };') })).status, 201);
  const deadline = Date.now() + 30_000;
  while ((await b.request('charted.localhost', '/')).status !== 200) {
    assert.ok(Date.now() < deadline, 'node b never served the worker');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  for (let i = 0; i < 3; i++) assert.equal((await a.request('charted.localhost', '/')).status, 200);
  for (let i = 0; i < 4; i++) assert.equal((await b.request('charted.localhost', '/')).status, 200);
  // b served one more while it waited for the deploy.
  const served = 3 + 4 + 1;
  for (const node of [a, b]) {
    for (;;) {
      const answer = await node.api('GET', '/v1/workers/charted/metrics');
      assert.equal(answer.status, 200, answer.text);
      const requests = answer.body.points.reduce((sum: number, point: { requests: number }) => sum + point.requests, 0);
      if (requests === served) break;
      assert.ok(requests < served, `counted ${requests} of ${served}`);
      assert.ok(Date.now() < deadline + 30_000, `node ${node.server.nodeId} counted ${requests} of ${served}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const totals = await node.api('GET', '/v1/metrics/workers');
    assert.equal(totals.body.workers.find((row: { worker: string }) => row.worker === 'charted')?.requests, served);
  }
});
