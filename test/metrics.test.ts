// Metrics: GET /metrics on the admin listener (who may read it, what it counts, bounded worker
// labels) and each worker's last hour (GET /v1/workers/:name/metrics), with workers in the
// server's own process and in runtime processes (whose counts arrive in batches).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BucketHistogram } from '../src/observability/bucket-histogram.ts';
import { WorkerLabels, OTHER_WORKERS } from '../src/observability/worker-labels.ts';
import { WorkerSeries } from '../src/observability/worker-series.ts';
import { checkStatsBatch, CPU_BUCKETS_MS, COLD_START_BUCKETS_MS, reportStats, WorkerStats, type StatsBatch } from '../src/observability/worker-stats.ts';
import { RUNTIME_PROCESS_SPARE_ISOLATES } from '../src/supervisor/process-pool.ts';
import { timedStore } from '../src/observability/timed-store.ts';
import { Registry } from 'prom-client';
import { parseExposition, type Exposition } from './support/prometheus-text.ts';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_TOKEN, ServeProcess, callApi, moduleDeployment, startTestServer, textWorker, type TestServer } from './server-support.ts';

const SCRAPE_TOKEN = 'scrape-token-0123456789abcdef';

async function scrape(t: TestServer, token: string = SCRAPE_TOKEN): Promise<Exposition> {
  const answer = await t.api('GET', '/metrics', { token });
  assert.equal(answer.status, 200, answer.text);
  assert.match(answer.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseExposition(answer.text);
}

/** Scrapes until `ready` holds (runtime processes send their counts once a second). */
async function scrapeUntil(t: TestServer, ready: (metrics: Exposition) => boolean): Promise<Exposition> {
  for (let i = 0; ; i++) {
    const metrics = await scrape(t);
    if (ready(metrics)) return metrics;
    if (i >= 300) assert.fail('the metrics never showed what was expected');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('WorkerLabels gives the busiest workers their own label and the rest share one', () => {
  const labels = new WorkerLabels(2);
  assert.equal(labels.label('a'), 'a');
  assert.equal(labels.label('b'), 'b');
  assert.equal(labels.label('c'), OTHER_WORKERS);
  // c was the busiest of the window, b the least: b's place goes to c.
  assert.deepEqual(labels.rebalance(new Map([['a', 5], ['b', 1], ['c', 9]])), ['b']);
  assert.equal(labels.label('c'), 'c');
  assert.equal(labels.label('b'), OTHER_WORKERS);
  // A tie keeps the holder; an idle window takes nobody's place.
  assert.deepEqual(labels.rebalance(new Map([['a', 3], ['b', 3], ['c', 3]])), []);
  assert.deepEqual(labels.rebalance(new Map()), []);
  assert.equal(labels.label('a'), 'a');
});

test('BucketHistogram shows added bucket counts as a Prometheus histogram', async () => {
  const registry = new Registry();
  const histogram = new BucketHistogram({ name: 'x_seconds', help: 'x', labelNames: ['worker'], buckets: [0.1, 1] });
  registry.registerMetric(histogram.asMetric());
  histogram.add({ worker: 'w' }, [2, 1, 1], 3.5);
  histogram.add({ worker: 'w' }, [1, 0, 0], 0.05);
  const metrics = parseExposition(await registry.metrics());
  assert.equal(metrics.types.get('x_seconds'), 'histogram');
  assert.deepEqual(metrics.find('x_seconds_bucket', { worker: 'w' }).map((s) => [s.labels.le, s.value]), [['0.1', 3], ['1', 4], ['+Inf', 5]]);
  assert.equal(metrics.sum('x_seconds_sum'), 3.55);
  assert.equal(metrics.sum('x_seconds_count'), 5);
  histogram.remove({ worker: 'w' });
  assert.equal(parseExposition(await registry.metrics()).find('x_seconds_count').length, 0);
});

test('a stats batch from a runtime process is checked as hostile', () => {
  const stats = new WorkerStats();
  stats.log({ time: '', worker: 'w', level: 'info', type: 'request', message: '', cpuMs: 3 });
  stats.started('w', 12);
  stats.ended('w', 'cpu');
  const batch = stats.take({ liveIsolates: 1, spareIsolates: 2, isolateMemory: 1000, isolateMemoryBudget: 4000 })!;
  assert.deepEqual(checkStatsBatch(JSON.parse(JSON.stringify(batch))), batch);
  assert.equal(batch.workers.w!.cpu.counts[CPU_BUCKETS_MS.indexOf(5)], 1);
  assert.equal(batch.workers.w!.coldStarts.counts[COLD_START_BUCKETS_MS.indexOf(25)], 1);
  assert.deepEqual(stats.take({ liveIsolates: 1, spareIsolates: 2, isolateMemory: 1000, isolateMemoryBudget: 4000 }).workers, {});
  const bad = [
    null,
    { workers: {}, isolates: { live: -1, spare: 0, memoryBytes: 0, budgetBytes: 0 } },
    { workers: {}, isolates: { live: Infinity, spare: 0, memoryBytes: 0, budgetBytes: 0 } },
    { workers: {}, isolates: { live: 1, spare: 0, memoryBytes: 0, budgetBytes: -1 } },
    { workers: {}, isolates: { live: 1, spare: 0, memoryBytes: 0 } },
    { workers: { w: { ...batch.workers.w, cpu: { counts: [1], sum: 0 } } }, isolates: batch.isolates },
    { workers: { w: { ...batch.workers.w, ended: { 'made-up': 1 } } }, isolates: batch.isolates },
    { workers: { ['x'.repeat(64)]: batch.workers.w }, isolates: batch.isolates },
  ];
  for (const value of bad) assert.throws(() => checkStatsBatch(value), /malformed message: stats/);
});

test('reportStats sends what changed at once, and unchanged gauges again now and then, for a reader that missed them', async () => {
  const gauges = { liveIsolates: 0, spareIsolates: 3, isolateMemory: 0, isolateMemoryBudget: 100 };
  const sent: StatsBatch[] = [];
  const stop = reportStats(new WorkerStats(), gauges, (batch) => sent.push(batch), 5);
  const until = async (count: number) => {
    for (let waited = 0; sent.length < count; waited += 5) {
      assert.ok(waited < 10_000, `${count} batches sent`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  await until(1);
  assert.equal(sent[0]!.isolates.spare, 3);
  // Nothing changes: the same gauges come again after a few intervals.
  await until(2);
  assert.deepEqual(sent[1]!.isolates, sent[0]!.isolates);
  stop();
});

test('WorkerSeries keeps an hour of minutes per worker', () => {
  let now = Date.parse('2026-01-01T10:00:30Z');
  const series = new WorkerSeries(() => now);
  series.add('w', { requests: 2, errors: 1, cpuMs: 1.5 });
  now += 60_000;
  series.add('w', { requests: 1, coldStarts: 1 });
  const points = series.read('w');
  assert.equal(points.length, 60);
  assert.deepEqual(points.at(-2), { time: '2026-01-01T10:00:00.000Z', requests: 2, errors: 1, cpuMs: 1.5, coldStarts: 0 });
  assert.deepEqual(points.at(-1), { time: '2026-01-01T10:01:00.000Z', requests: 1, errors: 0, cpuMs: 0, coldStarts: 1 });
  assert.deepEqual(series.totals(), [{ worker: 'w', requests: 3, errors: 1, cpuMs: 1.5, coldStarts: 1 }]);
  // An hour later the slot is reused, not added to.
  now += 60 * 60_000;
  series.add('w', { requests: 7 });
  assert.equal(series.read('w').at(-1)!.requests, 7);
  assert.equal(series.totals()[0]!.requests, 7);
  now += 60 * 60_000;
  assert.deepEqual(series.totals(), []);
});

test('timedStore times every store call by its name, and failures apart', async () => {
  const seen: [string, boolean][] = [];
  class Engine {
    #rows = 1;
    async count(): Promise<number> {
      return this.#rows;
    }
    async broken(): Promise<never> {
      throw new Error('down');
    }
    plain(): string {
      return 'sync';
    }
  }
  const store = timedStore(new Engine() as never, (operation, seconds, ok) => {
    assert.ok(seconds >= 0);
    seen.push([operation, ok]);
  }) as unknown as Engine;
  assert.equal(await store.count(), 1);
  await assert.rejects(store.broken(), /down/);
  assert.equal(store.plain(), 'sync');
  assert.deepEqual(seen, [['count', true], ['broken', false]]);
});

test('GET /metrics: the admin token or the scrape token, never an account token', async (t) => {
  const server = await startTestServer({ metricsToken: SCRAPE_TOKEN });
  t.after(() => server.close());
  const acme = await server.account('acme');
  await scrape(server, SCRAPE_TOKEN);
  await scrape(server, ADMIN_TOKEN);
  for (const token of [null, acme.token, 'wrong-token-0123456789abcdef']) {
    const answer = await server.api('GET', '/metrics', { token });
    assert.equal(answer.status, 401);
    assert.match(answer.body.error.message, /admin token or the scrape token/);
  }
  // The scrape token opens nothing else.
  assert.equal((await server.api('GET', '/v1/workers', { token: SCRAPE_TOKEN })).status, 401);
});

test('a scrape token shorter than 16 characters is refused at start', async () => {
  await assert.rejects(startTestServer({ metricsToken: 'short' }), /scrape token is too short/);
});

test('/metrics counts requests by status class, CPU, cold starts, limit kills, deploys and store calls', async (t) => {
  const server = await startTestServer({ metricsToken: SCRAPE_TOKEN });
  t.after(() => server.close());
  const acme = await server.account('acme');
  const deploy = async (name: string, body: Record<string, unknown>) => {
    const answer = await server.api('PUT', `/v1/workers/${name}`, { token: acme.token, body });
    assert.equal(answer.status, 201, answer.text);
  };
  await deploy('ok', textWorker('hello'));
  await deploy('fails', moduleDeployment(`export default { fetch() { throw new Error('boom'); } };`));
  await deploy('spins', moduleDeployment(`export default { fetch() { for (;;) {} } };`, { limits: { cpuMs: 20 } }));
  for (let i = 0; i < 5; i++) assert.equal((await server.request('ok.localhost', '/')).status, 200);
  for (let i = 0; i < 3; i++) assert.equal((await server.request('fails.localhost', '/')).status, 500);
  assert.equal((await server.request('spins.localhost', '/')).status, 503);
  await server.api('POST', '/v1/workers/ok/rollback', { token: acme.token, body: {} });

  const metrics = await scrape(server);
  assert.equal(metrics.types.get('isolet_requests_total'), 'counter');
  assert.equal(metrics.sum('isolet_requests_total', { worker: 'ok', status: '2xx' }), 5);
  assert.equal(metrics.sum('isolet_requests_total', { worker: 'fails', status: '5xx' }), 3);
  assert.equal(metrics.sum('isolet_requests_total', { worker: 'spins', status: '5xx' }), 1);
  assert.equal(metrics.sum('isolet_request_duration_seconds_count', { worker: 'ok' }), 5);
  assert.equal(metrics.sum('isolet_request_cpu_seconds_count', { worker: 'ok' }), 5);
  assert.equal(metrics.sum('isolet_request_cpu_seconds_bucket', { worker: 'ok', le: '+Inf' }), 5);
  // The request stopped for CPU is charged what its limit line says, at least its 20 ms, whichever
  // watchdog stopped it (on a loaded machine the native one may act before the event loop's).
  const spinsLimit = server.logs.find((line) => line.worker === 'spins' && line.type === 'limit');
  assert.ok(spinsLimit && (spinsLimit.usedMs as number) >= 20, JSON.stringify(spinsLimit));
  assert.equal(metrics.sum('isolet_request_cpu_seconds_count', { worker: 'spins' }), 1);
  const spinsCpu = metrics.sum('isolet_request_cpu_seconds_sum', { worker: 'spins' });
  assert.ok(spinsCpu >= 0.02 - 1e-9 && spinsCpu >= (spinsLimit.usedMs as number) / 1000 - 1e-6, `cpu ${spinsCpu} s, limit line ${spinsLimit.usedMs} ms`);
  assert.equal(metrics.sum('isolet_cold_start_duration_seconds_count', { worker: 'ok' }), 1);
  assert.equal(metrics.sum('isolet_limit_kills_total', { worker: 'spins', kind: 'cpu' }), 1);
  assert.equal(metrics.sum('isolet_deploys_total', { kind: 'deploy' }), 3);
  // ok had one version only: its rollback was refused, and is not counted.
  assert.equal(metrics.sum('isolet_deploys_total', { kind: 'rollback' }), 0);
  assert.ok(metrics.sum('isolet_store_operation_duration_seconds_count', { operation: 'deploy', outcome: 'ok' }) >= 3);
  assert.ok(metrics.sum('isolet_isolates', { process: 'main', state: 'live' }) >= 1);
  assert.ok(metrics.sum('isolet_isolate_memory_bytes', { process: 'main' }) > 0);
  assert.ok(metrics.sum('isolet_control_cpu_seconds_total') > 0, 'the control process\'s own metrics');
  assert.equal(metrics.find('isolet_control_event_loop_delay_seconds').length, 3);
  assert.ok(metrics.sum('isolet_control_resident_memory_bytes') > 0);

  // Each worker's last hour, for the owner or the operator.
  const own = await server.api('GET', '/v1/workers/fails/metrics', { token: acme.token });
  assert.equal(own.status, 200, own.text);
  assert.equal(own.body.intervalSeconds, 60);
  assert.equal(own.body.points.length, 60);
  const total = (field: string) => own.body.points.reduce((sum: number, point: Record<string, number>) => sum + point[field]!, 0);
  assert.equal(total('requests'), 3);
  assert.equal(total('errors'), 3);
  assert.equal(total('coldStarts'), 1);
  const other = await server.account('other');
  assert.equal((await server.api('GET', '/v1/workers/fails/metrics', { token: other.token })).status, 404);
  const all = await server.api('GET', '/v1/metrics/workers');
  assert.equal(all.status, 200);
  assert.deepEqual(all.body.workers.map((row: { worker: string }) => row.worker), ['ok', 'fails', 'spins']);
  assert.equal(all.body.workers[0].requests, 5);
  // An account sees its own workers only; the operator may ask for one account's.
  const theirs = await server.api('GET', '/v1/metrics/workers', { token: other.token });
  assert.deepEqual(theirs.body.workers, []);
  assert.equal((await server.api('GET', '/v1/metrics/workers', { token: acme.token })).body.workers.length, 3);
  assert.deepEqual((await server.api('GET', '/v1/metrics/workers?account=other')).body.workers, []);

  // A deleted worker's numbers go with it: the next owner of the name starts from nothing.
  assert.equal((await server.api('DELETE', '/v1/workers/fails', { token: acme.token })).status, 204);
  assert.equal((await server.api('PUT', '/v1/workers/fails', { token: other.token, body: textWorker('mine now') })).status, 201);
  const fresh = await server.api('GET', '/v1/workers/fails/metrics', { token: other.token });
  assert.equal(fresh.body.points.reduce((sum: number, point: { requests: number }) => sum + point.requests, 0), 0);
  assert.equal((await scrape(server)).find('isolet_requests_total', { worker: 'fails' }).length, 0);
});

test('isolates evicted to make room are counted by the bound reached, and isolates stopped for memory by kind', { timeout: 120_000 }, async (t) => {
  const names = ['one', 'two', 'three'];
  for (const [bound, options] of [['isolate-cap', { maxIsolates: 1 }], ['memory-budget', { memoryBudgetMb: 1 }]] as const) {
    const server = await startTestServer({ metricsToken: SCRAPE_TOKEN, ...options });
    t.after(() => server.close());
    const acme = await server.account('acme');
    for (const name of names) assert.equal((await server.api('PUT', `/v1/workers/${name}`, { token: acme.token, body: textWorker(name) })).status, 201);
    // Each worker in turn needs an isolate, and there is room for one at most: the idle one before
    // it makes way (an isolate still finishing its request is never evicted, so go round again).
    let metrics = await scrape(server);
    for (let round = 0; round < 20 && metrics.sum('isolet_isolate_evictions_total', { reason: bound }) < 2; round++) {
      for (const name of names) assert.equal(await (await server.request(`${name}.localhost`, '/')).text(), name);
      metrics = await scrape(server);
    }
    assert.ok(metrics.sum('isolet_isolate_evictions_total', { reason: bound }) >= 2, `${bound}: ${metrics.sum('isolet_isolate_evictions_total', { reason: bound })} evictions`);
    assert.equal(metrics.sum('isolet_isolate_evictions_total') - metrics.sum('isolet_isolate_evictions_total', { reason: bound }), 0, 'no eviction for the other bound');
    for (const sample of metrics.find('isolet_isolate_evictions_total')) assert.ok(names.includes(sample.labels.worker!), sample.labels.worker);
  }

  const server = await startTestServer({ metricsToken: SCRAPE_TOKEN });
  t.after(() => server.close());
  const acme = await server.account('acme');
  const hog = moduleDeployment(`export default { fetch() { return new Response(String(new ArrayBuffer(1024 * 1024 * 1024).byteLength)); } };`, { limits: { memoryMb: 32 } });
  assert.equal((await server.api('PUT', '/v1/workers/hog', { token: acme.token, body: hog })).status, 201);
  assert.equal((await server.request('hog.localhost', '/')).status, 503);
  const metrics = await scrape(server);
  assert.equal(metrics.sum('isolet_limit_kills_total', { worker: 'hog', kind: 'memory' }), 1);
  assert.equal(metrics.sum('isolet_limit_kills_total', { worker: 'hog', kind: 'cpu' }), 0);
});

test('past --metrics-workers the quieter workers share worker="_other"', async (t) => {
  const server = await startTestServer({ metricsWorkers: 1 });
  t.after(() => server.close());
  const acme = await server.account('acme');
  for (const name of ['first', 'second']) {
    assert.equal((await server.api('PUT', `/v1/workers/${name}`, { token: acme.token, body: textWorker(name) })).status, 201);
  }
  await server.request('first.localhost', '/');
  await server.request('second.localhost', '/');
  await server.request('second.localhost', '/');
  const metrics = await scrape(server, ADMIN_TOKEN);
  assert.equal(metrics.sum('isolet_requests_total', { worker: 'first' }), 1);
  assert.equal(metrics.sum('isolet_requests_total', { worker: OTHER_WORKERS }), 2);
  assert.equal(metrics.find('isolet_requests_total', { worker: 'second' }).length, 0);
});

test('runtime processes send their counts in batches; restarts and isolates are counted', { timeout: 120_000 }, async (t) => {
  const server = await startTestServer({ processes: 1, metricsToken: SCRAPE_TOKEN });
  t.after(() => server.close());
  const acme = await server.account('acme');
  assert.equal((await server.api('PUT', '/v1/workers/hello', { token: acme.token, body: textWorker('hi') })).status, 201);
  for (let i = 0; i < 4; i++) assert.equal((await server.request('hello.localhost', '/')).status, 200);
  let metrics = await scrapeUntil(server, (m) => m.sum('isolet_request_cpu_seconds_count', { worker: 'hello' }) === 4);
  assert.equal(metrics.sum('isolet_requests_total', { worker: 'hello', status: '2xx' }), 4);
  // Two cold starts: its first request in the untried process (new code is tried there), the next at home.
  assert.equal(metrics.sum('isolet_cold_start_duration_seconds_count', { worker: 'hello' }), 2);
  assert.equal(metrics.sum('isolet_isolates', { process: 'default/0', state: 'live' }), 1);

  // The process's isolates and what they hold, from its batches.
  await scrapeUntil(server, (m) => m.sum('isolet_isolates', { process: 'default/0', state: 'spare' }) > 0 && m.sum('isolet_isolate_memory_bytes', { process: 'default/0' }) > 0);

  const pool = server.server.platform.host as import('../src/supervisor/process-pool.ts').ProcessPool;
  // The spare process is ready: it replaces the one killed, as a crash in production would find it.
  for (let i = 0; pool.spare?.ready !== true; i++) {
    if (i >= 600) assert.fail('the spare runtime process never became ready');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  pool.processes('default')[0]!.kill('SIGKILL');
  metrics = await scrapeUntil(server, (m) => m.sum('isolet_runtime_process_restarts_total', { tier: 'default', cause: 'signal' }) === 1);
  assert.equal(metrics.sum('isolet_isolates', { process: 'default/0', state: 'live' }), 0);
  assert.equal(metrics.sum('isolet_isolate_memory_bytes', { process: 'default/0' }), 0);
  assert.ok(server.logs.some((line) => line.message === 'runtime process started' && line.starts === 2 && line.spare === true), 'the spare took the killed process\'s place');
  // The replacement made its spare isolates while it waited as the pool's spare; it reports them
  // once adopted (its earlier batches went to no one).
  await scrapeUntil(server, (m) => m.sum('isolet_isolates', { process: 'default/0', state: 'spare' }) === RUNTIME_PROCESS_SPARE_ISOLATES);
  // The replacement serves, and its first request is a cold start again; the slot's gauges
  // follow the replacement's batches.
  assert.equal((await server.request('hello.localhost', '/')).status, 200);
  await scrapeUntil(server, (m) => m.sum('isolet_cold_start_duration_seconds_count', { worker: 'hello' }) === 3);
  await scrapeUntil(server, (m) => m.sum('isolet_isolates', { process: 'default/0', state: 'live' }) === 1 && m.sum('isolet_isolates', { process: 'default/0', state: 'spare' }) > 0 && m.sum('isolet_isolate_memory_bytes', { process: 'default/0' }) > 0);
});

test('isolet serve takes the scrape token from a file, keeping it out of the process list; a bad file is refused at start', { timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'isolet-metrics-'));
  const tokenFile = join(dir, 'scrape-token');
  await writeFile(tokenFile, `${SCRAPE_TOKEN}\n`, { mode: 0o600 });
  const serve = new ServeProcess(join(dir, 'data'), {}, ['--processes', '0', '--metrics-token-file', tokenFile]);
  t.after(async () => {
    serve.kill();
    await serve.exited;
    await rm(dir, { recursive: true, force: true });
  });
  const { admin } = await serve.ready();
  assert.equal((await callApi(admin, 'GET', '/metrics', { token: SCRAPE_TOKEN })).status, 200);
  assert.equal((await callApi(admin, 'GET', '/metrics', { token: `${SCRAPE_TOKEN}x` })).status, 401);
  assert.doesNotMatch(await readFile(`/proc/${serve.child.pid}/cmdline`, 'latin1'), new RegExp(SCRAPE_TOKEN));

  const refused = async (args: string[], said: RegExp) => {
    const child = new ServeProcess(join(dir, 'other'), {}, ['--processes', '0', ...args]);
    const exit = await child.exited;
    assert.equal(exit.code, 2, child.stderr);
    assert.match(child.stderr, said);
    assert.doesNotMatch(child.stderr, /hunter2/);
  };
  await refused(['--metrics-token-file', join(dir, 'missing')], /--metrics-token-file: cannot read .*missing \(ENOENT\)/);
  await refused(['--metrics-token-file', tokenFile, '--metrics-token', SCRAPE_TOKEN], /--metrics-token and --metrics-token-file both given/);
  await writeFile(join(dir, 'two-lines'), `${SCRAPE_TOKEN}\nmore\n`);
  await refused(['--metrics-token-file', join(dir, 'two-lines')], /must hold the value on one line/);
  await writeFile(join(dir, 'database'), 'postgres://isolet:pw@127.0.0.1:1/isolet\n');
  await refused(['--database-file', join(dir, 'database'), '--database', 'postgres://x@y/z'], /--database and --database-file both given/);
  // The file's URL is checked as --database's is (and its password never shown).
  await writeFile(join(dir, 'not-postgres'), 'mysql://root:hunter2@db/isolet\n');
  await refused(['--database-file', join(dir, 'not-postgres')], /--database must be a PostgreSQL URL/);
});
