// A wrangler project with kv_namespaces, unmodified, through real HTTP: in `isolet dev` (local KV
// in .isolet/kv, kept across restarts) and on `isolet serve` (deployed with `isolet deploy`, the
// namespace made with `isolet kv namespace create`; the worker's writes read back through the
// admin API; another account's namespace refused at deploy). Every wait is for output or an
// answer, never for a length of time.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliProcess } from './support/cli-process.ts';
import { hostFetch } from './support/serve.ts';
import { ServeProcess, callApi } from './server-support.ts';

const WORKER = `
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const kv = env.COUNTS;
    const key = url.searchParams.get('k') ?? 'n';
    switch (url.pathname) {
      case '/count': {
        const n = Number((await kv.get(key)) ?? 0) + 1;
        await kv.put(key, String(n));
        return new Response(String(n));
      }
      case '/put':
        await kv.put(key, await request.arrayBuffer(), { metadata: { via: 'worker' }, expirationTtl: 3600 });
        return new Response('stored');
      case '/get':
        return Response.json(await kv.getWithMetadata(key));
      case '/list':
        return Response.json(await kv.list({ prefix: url.searchParams.get('prefix') ?? undefined }));
      case '/bad':
        try {
          await kv.put(key, 'v', { expirationTtl: 10 });
          return new Response('stored?');
        } catch (error) {
          return new Response(error.name + ': ' + error.message, { status: 400 });
        }
    }
    return new Response('not found', { status: 404 });
  },
};
`;

async function project(dir: string, namespaceId: string, name = 'counter'): Promise<string> {
  const root = join(dir, name);
  await mkdir(join(root, 'src'), { recursive: true });
  await writeFile(join(root, 'src', 'index.js'), WORKER);
  await writeFile(
    join(root, 'wrangler.toml'),
    `name = "${name}"\nmain = "src/index.js"\ncompatibility_date = "2024-09-01"\n\n[[kv_namespaces]]\nbinding = "COUNTS"\nid = "${namespaceId}"\n`,
  );
  return root;
}

async function text(url: string, init?: RequestInit): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(60_000) });
  return { status: response.status, body: await response.text() };
}

describe('KV in isolet dev', { timeout: 180_000 }, () => {
  let dir: string;
  const running: CliProcess[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'isolet-kv-dev-'));
  });
  after(async () => {
    for (const cli of running) cli.kill();
    await rm(dir, { recursive: true, force: true });
  });

  async function dev(cwd: string): Promise<{ cli: CliProcess; base: string }> {
    const cli = new CliProcess(['dev', '--port', '0'], { cwd });
    running.push(cli);
    const match = await cli.waitFor('stdout', /^listening on (http:\/\/127\.0\.0\.1:\d+)$/m);
    return { cli, base: match[1]! };
  }

  test('the binding works, keys are kept in .isolet/kv and are there again after a restart', async () => {
    const root = await project(dir, 'local-counts');
    const first = await dev(root);
    assert.match(first.cli.stderr, /using local KV in .*\.isolet\/kv\/isolet\.db/);
    assert.equal((await text(`${first.base}/count`)).body, '1');
    assert.equal((await text(`${first.base}/count`)).body, '2');
    assert.equal((await text(`${first.base}/put?k=blob`, { method: 'POST', body: 'payload' })).body, 'stored');
    const got = JSON.parse((await text(`${first.base}/get?k=blob`)).body);
    assert.deepEqual(got, { value: 'payload', metadata: { via: 'worker' }, cacheStatus: null });
    const bad = await text(`${first.base}/bad`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body, 'Error: KV PUT failed: 400 Invalid expiration_ttl of 10. Expiration TTL must be at least 60.');
    first.cli.child.kill('SIGTERM');
    assert.equal((await first.cli.exited).code, 0);
    assert.ok((await stat(join(root, '.isolet', 'kv', 'isolet.db'))).isFile());

    const second = await dev(root);
    assert.equal((await text(`${second.base}/count`)).body, '3', 'the count survived the restart');
    const listed = JSON.parse((await text(`${second.base}/list`)).body);
    assert.deepEqual(listed.keys.map((k: { name: string }) => k.name), ['blob', 'n']);
    second.cli.child.kill('SIGTERM');
    await second.cli.exited;
  });
});

describe('KV on isolet serve', { timeout: 300_000 }, () => {
  let dir: string;
  let serve: ServeProcess;
  let port: number;
  let admin: string;
  let acme: string;
  let rival: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'isolet-kv-serve-'));
    // Runtime processes (the default): binding calls cross from them to the control process.
    serve = new ServeProcess(join(dir, 'data'), {}, ['--processes', '2']);
    ({ port, admin } = await serve.ready());
    acme = await accountToken(admin, 'acme');
    rival = await accountToken(admin, 'rival');
  });
  after(async () => {
    serve?.kill('SIGTERM');
    await serve?.exited;
    await rm(dir, { recursive: true, force: true });
  });

  async function isolet(args: string[], token: string, cwd = dir) {
    const cli = new CliProcess(args, { cwd, env: { ISOLET_API: admin, ISOLET_API_TOKEN: token } });
    const { code } = await cli.exited;
    return { code, stdout: cli.stdout, stderr: cli.stderr };
  }

  const get = async (path: string, init?: RequestInit) => {
    const response = await hostFetch(port, `counter.localhost:${port}`, path, init);
    return { status: response.status, body: await response.text() };
  };

  test('a wrangler project with kv_namespaces deploys unmodified; the worker, the CLI and the admin API see the same keys', async () => {
    const created = await isolet(['kv', 'namespace', 'create', 'counts', '--json'], acme);
    assert.equal(created.code, 0, created.stderr);
    const id = JSON.parse(created.stdout).id as string;
    const root = await project(dir, id);
    const deployed = await isolet(['deploy'], acme, root);
    assert.equal(deployed.code, 0, deployed.stderr);

    assert.equal((await get('/count')).body, '1');
    assert.equal((await get('/count')).body, '2');
    assert.equal((await get('/put?k=blob', { method: 'POST', body: 'from the worker' })).body, 'stored');
    // What the worker wrote, read through the admin API; what the CLI writes, read by the worker.
    assert.equal((await isolet(['kv', 'key', 'get', 'blob', '--binding', 'COUNTS'], acme, root)).stdout, 'from the worker');
    assert.equal((await isolet(['kv', 'key', 'put', 'n', '41', '--namespace-id', id], acme)).code, 0);
    assert.equal((await get('/count')).body, '42');
    assert.deepEqual(JSON.parse((await get('/get?k=blob')).body), { value: 'from the worker', metadata: { via: 'worker' }, cacheStatus: null });
    assert.deepEqual(JSON.parse((await get('/list')).body).keys.map((k: { name: string }) => k.name), ['blob', 'n']);
    const bad = await get('/bad');
    assert.equal(bad.status, 400);
    assert.equal(bad.body, 'Error: KV PUT failed: 400 Invalid expiration_ttl of 10. Expiration TTL must be at least 60.');
  });

  test("a deployment that binds another account's namespace is refused, naming it, and stores nothing", async () => {
    const theirs = JSON.parse((await isolet(['kv', 'namespace', 'create', 'theirs', '--json'], rival)).stdout).id as string;
    const root = await project(dir, theirs, 'thief');
    const refused = await isolet(['deploy'], acme, root);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`The binding COUNTS names the KV namespace '${theirs}', which this account does not have`));
    const worker = await callApi(admin, 'GET', '/v1/workers/thief', { token: acme });
    assert.equal(worker.status, 404, 'nothing was stored');
    // One that does not exist at all is refused in the same words.
    const nobody = await isolet(['deploy'], acme, await project(dir, 'f'.repeat(32), 'ghost'));
    assert.equal(nobody.code, 1);
    assert.match(nobody.stderr, new RegExp(`The binding COUNTS names the KV namespace '${'f'.repeat(32)}', which this account does not have`));
  });
});

async function accountToken(admin: string, name: string): Promise<string> {
  assert.equal((await callApi(admin, 'POST', '/v1/accounts', { body: { name } })).status, 201);
  return (await callApi(admin, 'POST', `/v1/accounts/${name}/tokens`, { body: {} })).body.token as string;
}
