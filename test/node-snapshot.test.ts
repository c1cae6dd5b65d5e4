// A node's snapshot of what it serves: sealed with the cluster's key (neither code nor secrets
// readable in the file), mode 0600, replaced whole, and refused with another key.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SecretBox } from '../src/store/secret-box.ts';
import { readSnapshot, writeSnapshot, type NodeSnapshot } from '../src/server/node-snapshot.ts';

test('the snapshot is sealed, owner-only, replaced whole, and opens only with its key', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'isolet-snapshot-'));
  try {
    const path = join(dir, 'cluster-snapshot');
    const box = new SecretBox(randomBytes(32));
    assert.equal(await readSnapshot(path, box), undefined, 'no snapshot yet');
    const snapshot: NodeSnapshot = {
      change: 7,
      workers: [{
        id: 'wrk_1', name: 'hello', accountId: 'acc_1', tier: 'default', secrets: { API_KEY: 'hunter2-secret' },
        version: { id: 'ver_1', worker: 'hello', number: 1, hash: 'h', createdAt: 'now', author: 'admin', message: '', active: true, content: { script: 'tenant-code-marker' } },
      }],
      routes: [{ pattern: 'shop.example.com/*', worker: 'hello', accountId: 'acc_1' }],
    };
    await writeSnapshot(path, box, snapshot);
    const text = await readFile(path, 'utf8');
    assert.doesNotMatch(text, /hunter2-secret|tenant-code-marker|shop\.example\.com/);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(await readSnapshot(path, box), snapshot);
    await writeSnapshot(path, box, { ...snapshot, change: 8 });
    assert.equal((await readSnapshot(path, box))?.change, 8);
    assert.deepEqual(await readdir(dir), ['cluster-snapshot'], 'nothing left aside');
    await assert.rejects(readSnapshot(path, new SecretBox(randomBytes(32))));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
