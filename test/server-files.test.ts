// The data directory holds every tenant's code, the sealed secrets, the key that opens them
// and the admin token: it is the server user's only (0700), and so is each file in it (0600),
// whatever the umask, including a directory and database made by an older isolet.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, textWorker, ADMIN_TOKEN } from './server-support.ts';

function modes(dir: string): Record<string, string> {
  const out: Record<string, string> = { '.': (statSync(dir).mode & 0o777).toString(8) };
  for (const file of readdirSync(dir)) out[file] = (statSync(join(dir, file)).mode & 0o777).toString(8);
  return out;
}

test('the data dir is 0700 and the database, its WAL files, the secrets key and the admin token are 0600', async () => {
  const dataDir = join(await mkdtemp(join(tmpdir(), 'isolet-files-')), 'data');
  try {
    // No ISOLET_ADMIN_TOKEN: the token file is made too.
    const first = await startTestServer({ dataDir, env: {} });
    await first.close();
    // An older isolet left them readable by all: the next start tightens them.
    chmodSync(dataDir, 0o755);
    for (const file of readdirSync(dataDir)) chmodSync(join(dataDir, file), 0o644);
    const t = await startTestServer({ dataDir });
    try {
      const account = await t.account('acme');
      assert.equal((await t.api('PUT', '/v1/workers/w', { token: account.token, body: textWorker('w') })).status, 201);
      assert.equal((await t.api('PUT', '/v1/workers/w/secrets/KEY', { token: account.token, body: { value: 'v' } })).status, 204);
      const found = modes(dataDir);
      for (const file of ['isolet.db', 'isolet.db-wal', 'isolet.db-shm', 'secrets.key', 'admin-token']) {
        assert.equal(found[file], '600', `${file}: ${JSON.stringify(found)}`);
      }
      assert.equal(found['.'], '700');
      assert.ok(Object.values(found).every((mode) => mode === '600' || mode === '700'), JSON.stringify(found));
    } finally {
      await t.close();
    }
    assert.ok(ADMIN_TOKEN.length > 0);
  } finally {
    await rm(join(dataDir, '..'), { recursive: true, force: true });
  }
});
