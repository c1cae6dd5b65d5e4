// Tail filters (status, method, search, sampling) applied by the server, and `isolet tail`
// connecting again when the server restarts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTailFilter, tailQuery, type TailFilterOptions } from '../src/observability/tail-filter.ts';
import { AdminClient } from '../src/cli/api-client.ts';
import type { WorkerLogEntry } from '../src/runtime/types.ts';
import { ADMIN_TOKEN, moduleDeployment, startTestServer, callApi, type TestServer } from './server-support.ts';
import { CliProcess } from './support/cli-process.ts';
import { freePort } from './support/free-port.ts';
import { hostFetch } from './support/serve.ts';

function entry(fields: Partial<WorkerLogEntry>): WorkerLogEntry {
  return { time: '', worker: 'w', level: 'info', type: 'console', message: '', ...fields };
}

const request = (status: number, method = 'GET') => entry({ type: 'request', status, method, message: `${method} http://w/ ${status}` });

test('the filters as a query, and what each lets through', () => {
  const filter = (options: TailFilterOptions, random?: () => number) => parseTailFilter(new URLSearchParams(tailQuery(options)), random)!;
  assert.equal(tailQuery({}), '');
  assert.equal(parseTailFilter(new URLSearchParams('')), undefined);
  assert.equal(tailQuery({ status: ['5xx', '404'], method: ['get'], search: 'a b', sample: 0.5 }), '?status=5xx%2C404&method=get&search=a+b&sample=0.5');

  const error = filter({ status: ['error'] });
  assert.deepEqual([request(200), request(404), request(500), request(503)].map(error), [false, false, true, true]);
  assert.equal(error(entry({ type: 'exception', level: 'error' })), true);
  assert.equal(error(entry({ type: 'limit', level: 'error' })), true);
  assert.equal(error(entry({ type: 'console', level: 'error' })), false, 'a console line carries no outcome');
  const ok = filter({ status: ['ok'] });
  assert.deepEqual([request(200), request(302), request(404), request(500)].map(ok), [true, true, true, false]);
  assert.equal(ok(entry({})), false);
  // A cron trigger's run has an outcome, not a status.
  const run = (outcome: string) => entry({ type: 'scheduled', outcome, level: outcome === 'ok' ? 'info' : 'error' });
  assert.deepEqual([run('ok'), run('exception'), run('exceededCpu')].map(error), [false, true, true]);
  assert.deepEqual([run('ok'), run('exception')].map(ok), [true, false]);
  const some = filter({ status: ['4xx', '503'] });
  assert.deepEqual([request(200), request(404), request(418), request(500), request(503)].map(some), [false, true, true, false, true]);

  const post = filter({ method: ['post', 'PUT'] });
  assert.deepEqual([request(200, 'POST'), request(200, 'put'), request(200, 'GET'), entry({ message: 'POST' })].map(post), [true, true, false, false]);

  const search = filter({ search: 'NeedLe' });
  assert.deepEqual([entry({ message: 'a needle here' }), entry({ message: 'nothing' })].map(search), [true, false]);

  const draws = [0.1, 0.6, 0.29, 0.31];
  const sampled = filter({ sample: 0.3 }, () => draws.shift()!);
  assert.deepEqual([1, 2, 3, 4].map(() => sampled(entry({}))), [true, false, true, false]);

  for (const [query, message] of [
    ['status=bogus', /Invalid status filter 'bogus'/],
    ['status=600', /Invalid status filter '600'/],
    ['method=GE T', /Invalid method filter/],
    ['sample=0', /Invalid sampling rate '0'/],
    ['sample=1.5', /Invalid sampling rate/],
    ['search=', /search text must be 1 to 256/],
  ] as const) assert.throws(() => parseTailFilter(new URLSearchParams(query)), message);
});

const LOGGING = `export default { async fetch(request) {
  const url = new URL(request.url);
  console.log('seen ' + url.pathname);
  if (url.pathname === '/boom') throw new Error('boom');
  return new Response('x', { status: Number(url.searchParams.get('s') ?? 200) });
} };`;

/** Opens a filtered tail and collects its lines until one matches `last`. */
async function collect(t: TestServer, token: string, filter: TailFilterOptions, send: () => Promise<void>, last: (entry: WorkerLogEntry) => boolean): Promise<WorkerLogEntry[]> {
  const stop = new AbortController();
  const entries = await new AdminClient(t.server.adminUrl, token).openTail('logs', stop.signal, filter);
  const seen: WorkerLogEntry[] = [];
  const done = (async () => {
    for await (const entry of entries) {
      seen.push(entry);
      if (last(entry)) break;
    }
  })();
  await send();
  await done;
  stop.abort();
  return seen;
}

test('the server sends a tail only the lines its filters let through', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const acme = await server.account('acme');
  assert.equal((await server.api('PUT', '/v1/workers/logs', { token: acme.token, body: moduleDeployment(LOGGING) })).status, 201);
  const get = async (path: string, init?: RequestInit) => void (await (await server.request('logs.localhost', path, init)).text());

  const failures = await collect(server, acme.token, { status: ['5xx'] }, async () => {
    for (const path of ['/a?s=200', '/b?s=404', '/c?s=503', '/boom', '/end?s=599']) await get(path);
  }, (e) => e.status === 599);
  assert.deepEqual(failures.map((e) => [e.type, e.status]), [['request', 503], ['request', 500], ['request', 599]]);

  const posts = await collect(server, acme.token, { method: ['POST'], search: 'marked' }, async () => {
    await get('/marked-get');
    await get('/other', { method: 'POST', body: 'x' });
    await get('/marked-post', { method: 'POST', body: 'x' });
  }, (e) => e.type === 'request');
  assert.deepEqual(posts.map((e) => e.url), ['http://logs.localhost/marked-post']);

  const searched = await collect(server, acme.token, { search: 'SEEN /find' }, async () => {
    await get('/skip');
    await get('/find-me');
  }, () => true);
  assert.deepEqual(searched.map((e) => e.message), ['seen /find-me']);

  const refused = await server.api('GET', '/v1/workers/logs/tail?status=bogus', { token: acme.token });
  assert.equal(refused.status, 400);
  assert.match(refused.body.error.message, /Invalid status filter 'bogus'/);
});

test('isolet tail says when the server went away and connects again once it is back', { timeout: 180_000 }, async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'isolet-tail-'));
  const [port, adminPort] = [await freePort(), await freePort()];
  const ports = ['--port', String(port), '--admin-port', String(adminPort), '--processes', '0'];
  const start = () => new CliProcess(['serve', '--data', dataDir, '--ip', '127.0.0.1', '--admin-ip', '127.0.0.1', ...ports], { env: { ISOLET_ADMIN_TOKEN: ADMIN_TOKEN } });
  let serve = start();
  // Its ports were free when picked, but another process's outgoing connection may hold one for
  // a moment (both are in the ephemeral range): a start refused with EADDRINUSE is tried again.
  const listening = async (): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        await serve.waitFor('stdout', /"message":"admin API on/);
        return;
      } catch (error) {
        if (attempt >= 20 || !/EADDRINUSE/.test(serve.stderr)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
        serve = start();
      }
    }
  };
  let tail: CliProcess | undefined;
  t.after(async () => {
    tail?.kill();
    serve.kill();
    await Promise.all([tail?.exited, serve.exited]);
    await rm(dataDir, { recursive: true, force: true });
  });
  await listening();
  const admin = `http://127.0.0.1:${adminPort}`;
  assert.equal((await callApi(admin, 'POST', '/v1/accounts', { body: { name: 'acme' } })).status, 201);
  assert.equal((await callApi(admin, 'PUT', '/v1/workers/logs?account=acme', { body: moduleDeployment(LOGGING) })).status, 201);

  tail = new CliProcess(['tail', 'logs', '--status', 'ok', '--api', admin, '--token', ADMIN_TOKEN]);
  await tail.waitFor('stderr', /^Tailing logs: waiting for logs/m);
  await (await hostFetch(port, 'logs.localhost', '/first')).text();
  await tail.waitFor('stdout', /GET \/first 200/);

  // The server stops: the tail says its stream was cut and keeps trying.
  serve.kill('SIGTERM');
  await serve.exited;
  await tail.waitFor('stderr', /isolet tail: the log stream of logs was cut \(.*\); connecting again in 0\.25 s/);
  await tail.waitFor('stderr', /isolet tail: cannot open the log stream of logs \(connection refused\); trying again in \d/);

  serve = start();
  await listening();
  await tail.waitFor('stderr', /^isolet tail: connected again; tailing logs$/m);
  await (await hostFetch(port, 'logs.localhost', '/second?s=503')).text();
  await (await hostFetch(port, 'logs.localhost', '/third')).text();
  await tail.waitFor('stdout', /GET \/third 200/);
  assert.doesNotMatch(tail.stdout, /second|seen/, 'the filter holds after connecting again');
  tail.kill('SIGINT');
  assert.equal((await tail.exited).code, 0);
  // Everything isolet serve wrote is JSON lines, its start-up announcements included.
  for (const line of (serve.stdout + serve.stderr).split('\n').filter((l) => l !== '')) assert.doesNotThrow(() => JSON.parse(line), line);
});
