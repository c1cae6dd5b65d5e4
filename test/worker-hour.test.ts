// Each worker's last hour (GET /v1/workers/:name/metrics, /v1/metrics/workers) is written to the
// store: it outlives a restart, adds up what several server instances counted, and goes with a
// deleted worker. The cluster's side (two nodes adding up) is in cluster-cron.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkerSeries } from '../src/observability/worker-series.ts';
import { startTestServer, textWorker, type TestServer } from './server-support.ts';

test('WorkerSeries gives the minutes it changed once, again after a failed write, and adds other instances\' counts', () => {
  let now = Date.parse('2026-01-01T10:00:30Z');
  const minute = Math.floor(now / 60_000);
  const series = new WorkerSeries(() => now);
  series.add('w', { requests: 2, cpuMs: 1 });
  series.add('w', { requests: 1, errors: 1 });
  const changed = series.takeChanged();
  assert.deepEqual(changed, [{ worker: 'w', minute, requests: 3, errors: 1, cpuMs: 1, coldStarts: 0 }]);
  assert.deepEqual(series.takeChanged(), [], 'nothing changed since');
  series.changedAgain(changed);
  assert.deepEqual(series.takeChanged(), changed, 'a write that failed is tried again');
  now += 60_000;
  series.add('w', { coldStarts: 1 });
  assert.deepEqual(series.takeChanged().map((row) => row.minute), [minute + 1], 'only the minute that changed');

  const others = [
    { worker: 'w', minute, requests: 10, errors: 0, cpuMs: 5, coldStarts: 1 },
    { worker: 'v', minute: minute + 1, requests: 4, errors: 4, cpuMs: 0, coldStarts: 0 },
    { worker: 'v', minute: minute - 120, requests: 99, errors: 0, cpuMs: 0, coldStarts: 0 },
  ];
  const points = series.read('w', others);
  assert.deepEqual(points.at(-2), { time: '2026-01-01T10:00:00.000Z', requests: 13, errors: 1, cpuMs: 6, coldStarts: 1 });
  assert.deepEqual(series.totals(others), [
    { worker: 'w', requests: 13, errors: 1, cpuMs: 6, coldStarts: 2 },
    { worker: 'v', requests: 4, errors: 4, cpuMs: 0, coldStarts: 0 },
  ], 'minutes older than the hour are left out');
});

const requestsIn = (answer: { body: { points: { requests: number }[] } }) => answer.body.points.reduce((sum, point) => sum + point.requests, 0);

test('a worker\'s last hour outlives a restart of the server, and goes with the worker', { timeout: 120_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'isolet-hour-'));
  let server: TestServer | undefined;
  try {
    server = await startTestServer({ dataDir });
    const acme = await server.account('acme');
    assert.equal((await server.api('PUT', '/v1/workers/counted', { token: acme.token, body: textWorker('hi') })).status, 201);
    for (let i = 0; i < 3; i++) assert.equal((await server.request('counted.localhost', '/')).status, 200);
    await server.close();

    server = await startTestServer({ dataDir, seriesSyncMs: 50 });
    const before = await server.api('GET', '/v1/workers/counted/metrics');
    assert.equal(before.status, 200, before.text);
    assert.equal(requestsIn(before), 3, 'the requests counted before the restart');
    assert.equal((await server.request('counted.localhost', '/')).status, 200);
    assert.equal(requestsIn(await server.api('GET', '/v1/workers/counted/metrics')), 4, 'and the ones since');
    const all = await server.api('GET', '/v1/metrics/workers', { token: acme.token });
    assert.deepEqual(all.body.workers.map((row: { worker: string; requests: number }) => [row.worker, row.requests]), [['counted', 4]]);

    // Written (every 50 ms here), then deleted with the worker: the name's next owner starts at zero.
    const deadline = Date.now() + 30_000;
    while ((await server.server.platform.store.workerMinutes(0, 'nobody')).reduce((sum, row) => sum + row.requests, 0) < 4) {
      assert.ok(Date.now() < deadline, 'the new count was never written');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal((await server.api('DELETE', '/v1/workers/counted', { token: acme.token })).status, 204);
    const other = await server.account('other');
    assert.equal((await server.api('PUT', '/v1/workers/counted', { token: other.token, body: textWorker('mine') })).status, 201);
    assert.equal(requestsIn(await server.api('GET', '/v1/workers/counted/metrics', { token: other.token })), 0);
  } finally {
    await server?.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});
