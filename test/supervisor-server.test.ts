// `isolet serve` with runtime processes, end to end: the operator sets an account's tier
// through the admin API and its workers move; a worker that crashes its process answers 502
// over HTTP while another tenant keeps answering, and after two crashes its account's tier is
// 'quarantine' in the store (and stays so across a restart); SIGTERM drains the control process
// and every runtime process.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessPool } from '../src/supervisor/process-pool.ts';
import { MALLOC_TUNABLES } from '../src/runtime/malloc-tunables.ts';
import { ServeProcess, callApi, moduleDeployment, startTestServer, textWorker, type TestServer } from './server-support.ts';
import { hostFetch } from './support/serve.ts';
import { parseExposition } from './support/prometheus-text.ts';

const servers: TestServer[] = [];
const children: ServeProcess[] = [];
const dirs: string[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  for (const child of children) child.kill();
  await Promise.all(children.map((child) => child.exited));
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function start(dataDir?: string): Promise<TestServer> {
  const server = await startTestServer(dataDir === undefined ? { processes: 2 } : { processes: 2, dataDir });
  servers.push(server);
  return server;
}

function poolOf(t: TestServer): ProcessPool {
  const host = t.server.platform.host;
  assert.ok(host instanceof ProcessPool);
  return host;
}

test('the operator sets an account tier; its workers move to that tier\'s processes, and deploys and rollbacks reach them there; a bad tier or an account token is refused', { timeout: 90_000 }, async () => {
  const t = await start();
  const acme = await t.account('acme');
  assert.equal((await t.api('PUT', '/v1/workers/site', { token: acme.token, body: textWorker('acme site') })).status, 201);
  assert.deepEqual((await t.api('GET', '/v1/accounts/acme/tier')).body, { account: 'acme', tier: 'default' });
  // New code answers its first request from the untried process, then from its home.
  assert.equal(poolOf(t).placement('site')!.tier, 'untried');
  assert.equal(await (await t.request('site.localhost', '/')).text(), 'acme site');
  assert.equal(poolOf(t).placement('site')!.tier, 'default');

  const set = await t.api('PUT', '/v1/accounts/acme/tier', { body: { tier: 'trusted' } });
  assert.equal(set.status, 200, set.text);
  assert.deepEqual(set.body, { account: 'acme', tier: 'trusted' });
  assert.equal(poolOf(t).placement('site')!.tier, 'trusted');
  assert.equal(await (await t.request('site.localhost', '/')).text(), 'acme site');
  // A deploy after it lands in the account's tier too.
  assert.equal((await t.api('PUT', '/v1/workers/site', { token: acme.token, body: textWorker('acme v2') })).status, 201);
  assert.equal(poolOf(t).placement('site')!.tier, 'trusted');
  assert.equal(await (await t.request('site.localhost', '/')).text(), 'acme v2');
  // A rollback reaches the worker's process too, before it answers.
  assert.equal((await t.api('POST', '/v1/workers/site/rollback', { token: acme.token, body: {} })).status, 200);
  assert.equal(await (await t.request('site.localhost', '/')).text(), 'acme site');

  const bad = await t.api('PUT', '/v1/accounts/acme/tier', { body: { tier: 'vip' } });
  assert.equal(bad.status, 400);
  assert.match(bad.text, /default, trusted, quarantine/);
  assert.equal((await t.api('PUT', '/v1/accounts/acme/tier', { token: acme.token, body: { tier: 'default' } })).status, 403);
  assert.equal((await t.api('GET', '/v1/accounts/nobody/tier')).status, 404);
});

test('a worker that crashes its process: 502 over HTTP, others served, quarantined after two crashes and still after a restart', { timeout: 120_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'isolet-supervisor-'));
  dirs.push(dataDir);
  const t = await start(dataDir);
  const mallory = await t.account('mallory');
  const alice = await t.account('alice');
  const fatal = moduleDeployment(`export default { fetch(request) {
    if (new URL(request.url).pathname === '/crash') 'x'.repeat(2 ** 27 + 16).split('');
    return new Response('mallory');
  } };`, { limits: { cpuMs: 5000 } });
  assert.equal((await t.api('PUT', '/v1/workers/boom', { token: mallory.token, body: fatal })).status, 201);
  assert.equal((await t.api('PUT', '/v1/workers/calm', { token: alice.token, body: textWorker('alice') })).status, 201);

  for (let crash = 1; crash <= 2; crash++) {
    const crashed = await t.request('boom.localhost', '/crash');
    assert.equal(crashed.status, 502);
    assert.match(await crashed.text(), /fatal error that ended its runtime process/);
    assert.equal(await (await t.request('calm.localhost', '/')).text(), 'alice');
  }
  // The quarantine is stored: the tier reads so, and the crasher is served from the quarantine process.
  let tier = (await t.api('GET', '/v1/accounts/mallory/tier')).body.tier;
  for (let i = 0; tier !== 'quarantine' && i < 100; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    tier = (await t.api('GET', '/v1/accounts/mallory/tier')).body.tier;
  }
  assert.equal(tier, 'quarantine');
  assert.equal(poolOf(t).placement('boom')!.tier, 'quarantine');
  assert.equal(await (await t.request('boom.localhost', '/')).text(), 'mallory');
  assert.ok(t.logs.some((line) => line.message === 'account quarantined' && line.account === mallory.id));
  // The metrics count both fatal restarts and the one quarantine.
  const metrics = parseExposition((await t.api('GET', '/metrics')).text);
  assert.equal(metrics.sum('isolet_quarantines_total'), 1);
  assert.equal(metrics.sum('isolet_runtime_process_restarts_total', { cause: 'fatal' }), 2);
  await t.close();
  servers.splice(servers.indexOf(t), 1);

  const again = await start(dataDir);
  assert.equal(poolOf(again).placement('boom')!.tier, 'quarantine');
  assert.equal(poolOf(again).placement('calm')!.tier, 'default');
  assert.equal(await (await again.request('boom.localhost', '/')).text(), 'mallory');
});

test('an upload whose top-level code crashes V8 is refused with the reason, other tenants keep answering, and two such uploads quarantine the account', { timeout: 120_000 }, async () => {
  const t = await start();
  const eve = await t.account('eve');
  const bob = await t.account('bob');
  assert.equal((await t.api('PUT', '/v1/workers/steady', { token: bob.token, body: textWorker('bob') })).status, 201);
  const crashing = moduleDeployment(`'x'.repeat(2 ** 27 + 16).split(''); export default { fetch() { return new Response('never'); } };`, { limits: { startupCpuMs: 5000 } });
  for (let upload = 1; upload <= 2; upload++) {
    // Deployed by the operator for eve, so it may have room to run on a loaded machine.
    const refused = await t.api('PUT', '/v1/workers/trojan?account=eve', { body: crashing });
    assert.equal(refused.status, 400, refused.text);
    assert.match(refused.body.error.message, /could not be checked: the runtime process ended .*cannot be deployed/);
    assert.equal(await (await t.request('steady.localhost', '/')).text(), 'bob');
  }
  assert.equal((await t.api('GET', '/v1/workers/trojan', { token: eve.token })).status, 404, 'nothing was stored');
  let tier = (await t.api('GET', '/v1/accounts/eve/tier')).body.tier;
  for (let i = 0; tier !== 'quarantine' && i < 100; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    tier = (await t.api('GET', '/v1/accounts/eve/tier')).body.tier;
  }
  assert.equal(tier, 'quarantine');
  // Its next upload is tried in the quarantine process: the default ones no longer restart for it.
  const starts = poolOf(t).processes('default').map((slot) => slot.starts);
  assert.equal((await t.api('PUT', '/v1/workers/trojan?account=eve', { body: crashing })).status, 400);
  assert.deepEqual(poolOf(t).processes('default').map((slot) => slot.starts), starts);
});

test('SIGTERM drains isolet serve (whose runtime processes hold no secrets in their environment): a request in flight finishes, the server exits 0 and so does every runtime process', { timeout: 120_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'isolet-supervisor-'));
  dirs.push(dataDir);
  // The control process's environment holds secrets, some isolet knows of and one it does not.
  const secrets = {
    ISOLET_METRICS_TOKEN: 'scrape-token-0123456789abcdef',
    PGPASSWORD: 'pg-password-1f3a',
    OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer collector-secret-77c1',
    ACME_PAYMENTS_API_KEY: 'sk_live_9d2e',
  };
  const serve = new ServeProcess(dataDir, { ...secrets, TZ: 'Europe/Paris' }, ['--processes', '2', '--max-cpu-ms', '2000']);
  children.push(serve);
  const { port, admin } = await serve.ready();
  const slow = moduleDeployment(`export default { async fetch() { console.log('holding'); await new Promise((r) => setTimeout(r, 500)); return new Response('finished'); } };`, { limits: { cpuMs: 2000 } });
  assert.equal((await callApi(admin, 'POST', '/v1/accounts', { body: { name: 'ops' } })).status, 201);
  assert.equal((await callApi(admin, 'PUT', '/v1/workers/slow?account=ops', { body: slow })).status, 201);
  const pids = [...serve.stdout.matchAll(/"runtime process started".*?"pid":(\d+)/g)].map((m) => Number(m[1]));
  assert.equal(pids.length, 3, `2 of the default tier and the untried one: ${serve.stdout}`);
  // Runtime processes get none of the control process's secrets in their environment, only what
  // Node needs to behave as the operator set it up.
  assert.match(readFileSync(`/proc/${serve.child.pid}/environ`, 'latin1'), /ACME_PAYMENTS_API_KEY=/, 'the control process has them');
  for (const pid of pids) {
    const environ = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').filter((entry) => entry !== '');
    for (const name of ['ISOLET_ADMIN_TOKEN', 'ISOLET_SECRETS_KEY', ...Object.keys(secrets)]) {
      assert.ok(!environ.some((entry) => entry.startsWith(`${name}=`)), `runtime process ${pid} has ${name}`);
    }
    for (const value of Object.values(secrets)) assert.ok(!environ.some((entry) => entry.includes(value)));
    assert.ok(environ.includes('TZ=Europe/Paris'), environ.join(' '));
    // Its malloc keeps freed memory for the next body (src/runtime/malloc-tunables.ts), unless
    // whoever runs the tests set their own. glibc splits the value at its colons in place as it
    // reads it at start-up, so the entries after it are the rest of the value.
    assert.ok(environ.join(':').includes(`GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES ?? MALLOC_TUNABLES}`), environ.join(' '));
  }
  const inFlight = hostFetch(port, 'slow.localhost', '/');
  await serve.waitFor('stdout', /"message":"holding"/);
  serve.kill('SIGTERM');
  const response = await inFlight;
  assert.equal(response.status, 200);
  assert.equal(await response.text(), 'finished');
  assert.equal((await serve.exited).code, 0);
  for (const pid of pids) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `runtime process ${pid} is gone`);
});
