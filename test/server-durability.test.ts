// Durability and shutdown of `isolet serve` as a real process: a version the API acknowledged
// survives SIGKILL intact, no half-written version appears, and SIGTERM lets a request in
// flight finish before the process exits 0.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { SqliteStore } from '../src/store/sqlite-store.ts';
import { loadSecretsKey } from '../src/store/secret-box.ts';
import { canonicalContent, contentHash } from '../src/store/store.ts';
import { ServeProcess, callApi, moduleDeployment, startRequest, ADMIN_TOKEN } from './server-support.ts';
import { hostFetch } from './support/serve.ts';

const processes: ServeProcess[] = [];
const dirs: string[] = [];

after(async () => {
  for (const p of processes) p.kill();
  await Promise.all(processes.map((p) => p.exited));
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function serve(dataDir: string): ServeProcess {
  // Three workers of one account deploy side by side, each asking for room on a loaded machine.
  const p = new ServeProcess(dataDir, {}, ['--max-account-deploys', '3', '--max-cpu-ms', '2000']);
  processes.push(p);
  return p;
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'isolet-durable-'));
  dirs.push(dir);
  return dir;
}

/** Version n of a worker: a marker, plus filler so each write is big enough to be cut in the middle. */
function versionBody(worker: string, n: number): Record<string, unknown> {
  const filler = `/* ${worker} ${n} ${'#'.repeat(256 * 1024)} */`;
  return moduleDeployment(`${filler}\nexport default { fetch() { return new Response(${JSON.stringify(`${worker} v${n}`)}); } };`, {
    message: `${worker} release ${n}`,
    limits: { cpuMs: 2000 },
  });
}

test('every version the API acknowledged survives SIGKILL in the middle of deploys, intact, and none is half-written', { timeout: 120_000 }, async () => {
  const dataDir = await tempDir();
  const first = serve(dataDir);
  const { admin } = await first.ready();
  assert.equal((await callApi(admin, 'POST', '/v1/accounts', { body: { name: 'acme' } })).status, 201);
  const token = (await callApi(admin, 'POST', '/v1/accounts/acme/tokens', { body: {} })).body.token as string;

  // Three workers deploy in loops side by side; after enough acknowledgements the server is
  // killed while deploys are in flight.
  const workers = ['alpha', 'beta', 'gamma'];
  const acked = new Map<string, { id: string; number: number; hash: string }[]>(workers.map((w) => [w, []]));
  const KILL_AFTER = 18;
  let total = 0;
  let killed = false;
  const loops = workers.map(async (worker) => {
    for (let n = 1; n <= 100 && !killed; n++) {
      let answer;
      try {
        answer = await callApi(admin, 'PUT', `/v1/workers/${worker}`, { token, body: versionBody(worker, n) });
      } catch {
        return; // the server is gone: this deploy was not acknowledged
      }
      assert.equal(answer.status, 201, answer.text);
      const { id, number, hash } = answer.body.version;
      assert.equal(number, n);
      acked.get(worker)!.push({ id, number, hash });
      if (++total === KILL_AFTER) {
        killed = true;
        first.kill('SIGKILL');
      }
    }
  });
  await Promise.all(loops);
  assert.equal((await first.exited).signal, 'SIGKILL');

  const second = serve(dataDir);
  const { port, admin: admin2 } = await second.ready();
  for (const worker of workers) {
    const versions = (await callApi(admin2, 'GET', `/v1/workers/${worker}/versions`, { token })).body as {
      id: string;
      number: number;
      hash: string;
      active: boolean;
    }[];
    const mine = acked.get(worker)!;
    // Every acknowledged version is there, unchanged.
    for (const version of mine) {
      const found = versions.find((v) => v.id === version.id);
      assert.ok(found, `${worker} v${version.number} was acknowledged and must survive`);
      assert.equal(found.number, version.number);
      assert.equal(found.hash, version.hash);
    }
    // Numbers run 1..max with no gap; at most the one deploy in flight at the kill is extra.
    const numbers = versions.map((v) => v.number).sort((a, b) => a - b);
    assert.deepEqual(numbers, numbers.map((_, i) => i + 1));
    assert.ok(numbers.length - mine.length <= 1, `${worker}: ${numbers.length} stored, ${mine.length} acknowledged`);
    // The newest is active and serves.
    const newest = versions.reduce((a, b) => (a.number > b.number ? a : b));
    assert.ok(newest.active);
    const served = await hostFetch(port, `${worker}.localhost`, '/');
    assert.equal(await served.text(), `${worker} v${newest.number}`);
  }

  second.kill('SIGTERM');
  assert.equal((await second.exited).code, 0);

  // Directly in the store: every version's content is whole and hashes to its hash.
  const store = new SqliteStore({ dataDir, secretsKey: loadSecretsKey(dataDir, {}).key });
  try {
    for (const worker of workers) {
      for (const version of await store.listVersions(worker)) {
        const stored = await store.getVersion(worker, { id: version.id });
        assert.ok(stored);
        assert.equal(contentHash(stored.content), version.hash);
        const { message: _message, ...sent } = versionBody(worker, version.number);
        assert.equal(canonicalContent(stored.content), canonicalContent(sent));
        assert.equal(version.message, `${worker} release ${version.number}`);
      }
    }
  } finally {
    await store.close();
  }
});

test('SIGTERM: no new connections, the request in flight completes, exit code 0', { timeout: 120_000 }, async () => {
  const dataDir = await tempDir();
  const server = serve(dataDir);
  const { port, admin } = await server.ready();
  assert.equal((await callApi(admin, 'POST', '/v1/accounts', { body: { name: 'acme' } })).status, 201);
  // Echoes the request body as it arrives: the response cannot end before the client ends its body.
  const echo = moduleDeployment('export default { fetch(request) { return new Response(request.body); } };', { limits: { cpuMs: 2000 } });
  assert.equal((await callApi(admin, 'PUT', '/v1/workers/echo?account=acme', { body: echo })).status, 201);
  assert.equal((await hostFetch(port, 'echo.localhost', '/', { method: 'POST', body: 'warm' })).status, 200);

  const slow = await startRequest(port, 'echo.localhost', '/');
  assert.equal(slow.status, 200);
  server.kill('SIGTERM');
  await server.waitFor('stdout', /"message":"shutting down/);

  // The listener is closed: a new connection is refused (or reset, when it reached the
  // listening socket's backlog just before the close took effect).
  await assert.rejects(
    new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/', headers: { host: 'echo.localhost' }, agent: false }, resolve);
      req.on('error', reject);
      req.end();
    }),
    /ECONNREFUSED|ECONNRESET/,
  );

  slow.write('second;');
  slow.end();
  assert.equal(await slow.body, 'first;second;');
  const exit = await server.exited;
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.match(server.stdout, /"message":"stopped"/);
  assert.ok(ADMIN_TOKEN.length > 0);
});

test('an empty data dir starts, makes its admin token file and secrets key, and serves health', { timeout: 120_000 }, async () => {
  const dataDir = await tempDir();
  const p = new ServeProcess(dataDir, { ISOLET_ADMIN_TOKEN: '' });
  processes.push(p);
  const { port, admin } = await p.ready();
  assert.match(p.stdout, new RegExp(`admin token written to ${join(dataDir, 'admin-token').replaceAll('/', '\\/')}`));
  const { readFile, stat } = await import('node:fs/promises');
  const token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
  assert.equal((await stat(join(dataDir, 'admin-token'))).mode & 0o777, 0o600);
  assert.equal((await stat(join(dataDir, 'secrets.key'))).mode & 0o777, 0o600);
  assert.equal((await callApi(admin, 'GET', '/v1/accounts', { token })).status, 200);
  assert.equal((await callApi(admin, 'GET', '/v1/accounts', { token: ADMIN_TOKEN })).status, 401);
  assert.equal((await hostFetch(port, `127.0.0.1:${port}`, '/healthz')).status, 200);
  p.kill('SIGTERM');
  assert.equal((await p.exited).code, 0);
});
