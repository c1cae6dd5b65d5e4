// The wrangler project in docs/example-project, run unmodified as its README section says: a
// guestbook worker with a KV namespace, a service binding to an auth worker (RPC to its
// WorkerEntrypoint), a cron trigger and static assets. Copied to a temporary folder, where the
// only edit is the one a user makes: the id `isolet kv namespace create` prints goes into
// wrangler.toml. Everything a user does goes through the CLI (bin/isolet.js) and real HTTP.
//
// The server is `isolet serve`'s own startServer, in this process with two runtime processes,
// and its cron timer off: the test fires the tick itself (scheduler.tick), the way the timer
// does at the minute, so no test waits for a clock. Then the README's `isolet dev -c
// wrangler.toml -c ../auth/wrangler.toml --test-scheduled` on the same project: assets, KV,
// signing through the service binding to the auth worker running beside it, the cron through
// /__scheduled, and the local KV read with `isolet kv key get --local`. Waits are for output or
// answers, never for time.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliProcess, ROOT } from './support/cli-process.ts';
import { Tail } from './support/tail.ts';
import { startTestServer, type TestServer } from './server-support.ts';

const PROJECT = join(ROOT, 'docs', 'example-project');
const PLACEHOLDER = '<the id from isolet kv namespace create>';
/** 03:00 UTC, when the project's cron ("0 3 * * *") is due. */
const NIGHT = Date.UTC(2030, 0, 1, 3, 0);

/** A copy of the project in a temporary folder, as a user's checkout. */
async function checkout(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'isolet-wrangler-project-'));
  await cp(PROJECT, dir, { recursive: true });
  return dir;
}

/** A bounded request; the answer's status, headers and text. */
async function get(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: string }> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(60_000) });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

describe('the example wrangler project on isolet serve', { timeout: 300_000 }, () => {
  let dir: string;
  let t: TestServer;
  let token: string;

  before(async () => {
    dir = await checkout();
    t = await startTestServer({ processes: 2, cronTimer: false });
    token = (await t.account('acme')).token;
  });
  after(async () => {
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function isolet(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const cli = new CliProcess(args, { cwd, env: { ISOLET_API: t.server.adminUrl, ISOLET_API_TOKEN: token } });
    const { code } = await cli.exited;
    return { code, stdout: cli.stdout, stderr: cli.stderr };
  }

  const guestbook = (path: string, init?: RequestInit) => req(`guestbook.localhost`, path, init);
  const req = async (host: string, path: string, init?: RequestInit) => {
    const response = await t.request(`${host}:${t.server.port}`, path, init);
    return { status: response.status, headers: response.headers, body: await response.text() };
  };

  test('the namespace is made and its id put in wrangler.toml; both workers deploy unmodified', async () => {
    const created = await isolet(['kv', 'namespace', 'create', 'guestbook', '--json'], dir);
    assert.equal(created.code, 0, created.stderr);
    const id = JSON.parse(created.stdout).id as string;
    const config = join(dir, 'guestbook', 'wrangler.toml');
    const toml = await readFile(config, 'utf8');
    assert.ok(toml.includes(PLACEHOLDER));
    assert.ok((await readFile(join(ROOT, 'README.md'), 'utf8')).includes(`# guestbook/wrangler.toml\n${toml}`), 'README shows this wrangler.toml as it is');
    await writeFile(config, toml.replace(PLACEHOLDER, id));

    for (const worker of ['auth', 'guestbook']) {
      const deployed = await isolet(['deploy'], join(dir, worker));
      assert.equal(deployed.code, 0, `${worker}: ${deployed.stderr}`);
      assert.equal(deployed.stderr, '', `${worker}: no notes, every key of the project is one isolet takes`);
      assert.match(deployed.stdout, new RegExp(`^Deployed ${worker} version 1 `, 'm'));
    }
    const shown = await t.api('GET', '/v1/workers/guestbook', { token });
    assert.deepEqual(shown.body.crons, ['0 3 * * *']);
  });

  test('the page is a static asset, answered without the worker, with ETag and 304', async () => {
    const tail = await Tail.open(t.server.adminUrl, 'guestbook', token);
    try {
      const page = await guestbook('/');
      assert.equal(page.status, 200);
      assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.match(page.body, /<h1>Guestbook<\/h1>/);
      const etag = page.headers.get('etag');
      assert.match(etag ?? '', /^"[0-9a-f]{64}"$/);
      const again = await guestbook('/', { headers: { 'if-none-match': etag! } });
      assert.equal(again.status, 304);
      // The worker's next request is its first: neither answer above entered it.
      assert.equal((await guestbook('/api/stats')).status, 200);
      const first = await tail.waitFor((entry) => entry.type === 'request');
      assert.match(first.message, /^GET http:\/\/guestbook\.localhost:\d+\/api\/stats 200$/);
      // What matches no file goes through the worker to env.ASSETS.fetch, which has no such file.
      assert.equal((await guestbook('/no-such-page')).status, 404);
    } finally {
      tail.close();
    }
  });

  test('signing calls the auth worker over the service binding; entries are written to KV and read back', async () => {
    const stranger = await guestbook('/api/entries', { method: 'POST', headers: { authorization: 'Bearer guess' }, body: 'hi' });
    assert.equal(stranger.status, 401);
    assert.equal(stranger.body, 'sign in first');

    const signed = await guestbook('/api/entries', { method: 'POST', headers: { authorization: 'Bearer let-me-in' }, body: 'hello from ada' });
    assert.equal(signed.status, 201, signed.body);
    assert.equal(JSON.parse(signed.body).name, 'ada', 'the name the auth worker gave');
    const entries = JSON.parse((await guestbook('/api/entries')).body);
    assert.deepEqual(entries.map((entry: { name: string; message: string }) => [entry.name, entry.message]), [['ada', 'hello from ada']]);
    // The auth worker has no public API of its own.
    const auth = await req('auth.localhost', '/');
    assert.equal(auth.status, 404);
    assert.equal(auth.body, 'auth answers RPC calls only');
  });

  test('the cron runs scheduled() at its minute: the count it writes to KV is read by the worker and the CLI', async () => {
    const tail = await Tail.open(t.server.adminUrl, 'guestbook', token);
    try {
      assert.deepEqual(await t.server.scheduler.tick(NIGHT - 60_000), [], 'nothing is due at 02:59');
      const runs = await t.server.scheduler.tick(NIGHT);
      assert.deepEqual(runs.map((run) => [run.worker, run.cron, run.scheduledTime, run.outcome]), [['guestbook', '0 3 * * *', NIGHT, 'ok']]);
      const line = await tail.waitFor((entry) => entry.type === 'scheduled');
      assert.equal(line.outcome, 'ok');
    } finally {
      tail.close();
    }
    const stats = { entries: 1, cron: '0 3 * * *', countedAt: NIGHT };
    assert.deepEqual(JSON.parse((await guestbook('/api/stats')).body), stats);
    const read = await isolet(['kv', 'key', 'get', 'stats', '--binding', 'GUESTBOOK'], join(dir, 'guestbook'));
    assert.equal(read.code, 0, read.stderr);
    assert.deepEqual(JSON.parse(read.stdout), stats);
    const listed = await t.api('GET', '/v1/workers/guestbook/crons', { token });
    assert.deepEqual(listed.body.runs.map((run: { scheduledTime: string; outcome: string }) => [run.scheduledTime, run.outcome]), [[new Date(NIGHT).toISOString(), 'ok']]);
  });
});

describe('the example wrangler project in isolet dev', { timeout: 180_000 }, () => {
  let dir: string;
  let dev: CliProcess | undefined;

  before(async () => {
    dir = await checkout();
  });
  after(async () => {
    dev?.kill();
    await dev?.exited;
    await rm(dir, { recursive: true, force: true });
  });

  test('the whole project, as the README runs it: assets, KV, signing through the auth worker beside it, the cron on demand, the local KV from the CLI', async () => {
    // Unedited: dev keeps KV locally under whatever id wrangler.toml names.
    const cwd = join(dir, 'guestbook');
    const command = ['dev', '-c', 'wrangler.toml', '-c', '../auth/wrangler.toml', '--test-scheduled'];
    assert.ok((await readFile(join(ROOT, 'README.md'), 'utf8')).includes(`cd guestbook && npx isolet ${command.join(' ')}\n`), 'README shows this command');
    dev = new CliProcess([...command, '--port', '0'], { cwd });
    const base = await dev.listening();

    const page = await get(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.body, /<h1>Guestbook<\/h1>/);
    const etag = page.headers.get('etag');
    assert.match(etag ?? '', /^"[0-9a-f]{64}"$/);
    assert.equal((await get(`${base}/`, { headers: { 'if-none-match': etag! } })).status, 304);

    assert.deepEqual(JSON.parse((await get(`${base}/api/stats`)).body), { entries: 0, countedAt: null });
    const stranger = await get(`${base}/api/entries`, { method: 'POST', headers: { authorization: 'Bearer guess' }, body: 'hi' });
    assert.equal(stranger.status, 401);
    const signed = await get(`${base}/api/entries`, { method: 'POST', headers: { authorization: 'Bearer let-me-in' }, body: 'hello from ada' });
    assert.equal(signed.status, 201, signed.body);
    assert.equal(JSON.parse(signed.body).name, 'ada', 'the name the auth worker gave');
    const entries = JSON.parse((await get(`${base}/api/entries`)).body);
    assert.deepEqual(entries.map((entry: { name: string; message: string }) => [entry.name, entry.message]), [['ada', 'hello from ada']]);

    const ran = await get(`${base}/__scheduled?cron=0+3+*+*+*&time=${NIGHT}`);
    assert.equal(ran.status, 200);
    assert.equal(ran.body, 'Ran scheduled event');
    const stats = { entries: 1, cron: '0 3 * * *', countedAt: NIGHT };
    assert.deepEqual(JSON.parse((await get(`${base}/api/stats`)).body), stats);

    const local = new CliProcess(['kv', 'key', 'get', 'stats', '--binding', 'GUESTBOOK', '--local'], { cwd });
    assert.equal((await local.exited).code, 0, local.stderr);
    assert.deepEqual(JSON.parse(local.stdout), stats);

    dev.child.kill('SIGTERM');
    assert.equal((await dev.exited).code, 0);
  });
});
