// Runtime processes as another OS user: the setting parses from a name, a uid or uid:gid; a
// wrong one is refused at start with a reason; and, as root, the runtime process really runs as
// that user with no supplementary groups, and serves.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ProcessPool } from '../src/supervisor/process-pool.ts';
import { checkRunAs, parseRunAs, RunAsError } from '../src/supervisor/run-as.ts';

const PASSWD = 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nisolet:x:1500:1600::/home/isolet:/bin/sh\n';

test('a user is a name, a uid or uid:gid; a name or a bare uid takes its group from /etc/passwd', () => {
  assert.deepEqual(parseRunAs('nobody', PASSWD), { uid: 65534, gid: 65534, user: 'nobody' });
  assert.deepEqual(parseRunAs('isolet', PASSWD), { uid: 1500, gid: 1600, user: 'isolet' });
  assert.deepEqual(parseRunAs('1500', PASSWD), { uid: 1500, gid: 1600, user: '1500' });
  assert.deepEqual(parseRunAs('4000:4001', PASSWD), { uid: 4000, gid: 4001, user: '4000:4001' });
  // A uid /etc/passwd does not know gets the group of the same number.
  assert.deepEqual(parseRunAs('4000', PASSWD), { uid: 4000, gid: 4000, user: '4000' });
  assert.throws(() => parseRunAs('nosuchuser', PASSWD), (error: Error) => error instanceof RunAsError && /no user 'nosuchuser' in \/etc\/passwd/.test(error.message));
});

function ids(pid: number): { uid: string; gid: string; groups: string } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(status)?.[1]?.trim() ?? '';
  return { uid: field('Uid'), gid: field('Gid'), groups: field('Groups') };
}

const pools: ProcessPool[] = [];
after(async () => {
  await Promise.all(pools.map((pool) => pool.close()));
});

test('as root, runtime processes run as the given user with no supplementary groups, and serve; without root the setting is refused', { timeout: 120_000 }, async () => {
  const nobody = { uid: 65534, gid: 65534, user: 'nobody' };
  if (process.getuid!() !== 0) {
    assert.throws(() => checkRunAs(nobody), (error: Error) => error instanceof RunAsError && /only root may start processes as another user/.test(error.message));
    return;
  }
  // Whether that user can read this checkout depends on where it lies: either it serves, or the
  // check says so at start. Both are what an operator must get.
  try {
    checkRunAs(nobody);
  } catch (error) {
    assert.ok(error instanceof RunAsError);
    assert.match(error.message, /that user cannot load isolet's runtime .* make isolet's installation readable by it/);
    return;
  }
  const pool = new ProcessPool({ processes: 1, spare: false, runAs: nobody, runtime: { limits: { cpuMs: 5000 } }, workerLog: () => {}, log: () => {} });
  pools.push(pool);
  await pool.load('whoami', { modules: [{ name: 'worker.js', source: 'export default { fetch() { return new Response("up"); } };' }] });
  const response = await pool.fetch('whoami', { method: 'GET', url: 'https://example.com/', headers: [] });
  assert.equal(response.status, 200);
  const pid = pool.placement('whoami')!.pid!;
  const { uid, gid, groups } = ids(pid);
  assert.deepEqual(uid.split(/\s+/), ['65534', '65534', '65534', '65534']);
  assert.deepEqual(gid.split(/\s+/), ['65534', '65534', '65534', '65534']);
  assert.equal(groups, '');
});
