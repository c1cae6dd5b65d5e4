// The supervisor's crash policy on its own: when an account is quarantined and how restarts
// back off, with the clock given; and what a runtime process gets of the environment.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CrashLedger, RestartBackoff } from '../src/supervisor/crash-policy.ts';
import { homeAfterGrowth, homeIndex } from '../src/supervisor/placement.ts';
import { runtimeEnvironment } from '../src/supervisor/runtime-process.ts';
import { MALLOC_TUNABLES } from '../src/runtime/malloc-tunables.ts';

test('two crashes of one account within the window quarantine it; crashes further apart, or of others, do not', () => {
  const ledger = new CrashLedger(600_000);
  assert.equal(ledger.crashed('a', 0), false);
  assert.equal(ledger.crashed('b', 1000), false);
  assert.equal(ledger.crashed('a', 600_000), false, 'the first crash is out of the window');
  assert.equal(ledger.crashed('a', 700_000), true);
  assert.equal(ledger.crashed('a', 700_001), false, 'counted afresh once quarantined');
});

test('restarts are free up to three a minute, then wait 1 s, 2 s, 4 s ... at most 30 s; another process is counted apart', () => {
  const backoff = new RestartBackoff();
  const delays = Array.from({ length: 10 }, (_, i) => backoff.delay('default/0', i * 1000));
  assert.deepEqual(delays, [0, 0, 0, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  assert.equal(backoff.delay('default/1', 10_000), 0);
  assert.equal(backoff.delay('default/0', 200_000), 0, 'a quiet minute forgives');
});

test('re-homing after a tier grows hashes only the new processes and gives the homes a full hash gives', () => {
  const names = Array.from({ length: 3000 }, (_, i) => `tenant-${i}`);
  for (const [before, size] of [[1, 2], [2, 3], [3, 5], [5, 6], [29, 30], [2, 30]] as const) {
    let moved = 0;
    for (const name of names) {
      const home = homeIndex(name, 'default', before);
      const after = homeAfterGrowth(name, 'default', home, before, size);
      assert.equal(after, homeIndex(name, 'default', size), `${name}, ${before} -> ${size}`);
      if (after !== home) {
        moved++;
        assert.ok(after >= before, 'a worker moves only to a new process');
      }
    }
    // Rendezvous hashing moves about the new processes' share of the workers.
    const expected = (names.length * (size - before)) / size;
    assert.ok(Math.abs(moved - expected) < expected * 0.2 + 30, `${before} -> ${size}: ${moved} moved, about ${Math.round(expected)} expected`);
  }
});

test('rendezvous placement: stable, spread, and adding a process moves only the workers it wins', () => {
  const names = Array.from({ length: 1000 }, (_, i) => `w${i}`);
  const onThree = names.map((name) => homeIndex(name, 'default', 3));
  assert.deepEqual(onThree, names.map((name) => homeIndex(name, 'default', 3)));
  for (let index = 0; index < 3; index++) assert.ok(onThree.filter((home) => home === index).length > 250);
  const onFour = names.map((name) => homeIndex(name, 'default', 4));
  names.forEach((_, i) => assert.ok(onFour[i] === onThree[i] || onFour[i] === 3));
  // Tiers hash apart: a name's home in one tier says nothing of its home in another.
  assert.notDeepEqual(onThree, names.map((name) => homeIndex(name, 'trusted', 3)));
});

test("a runtime process's environment: the allow-list (the operator's isolate threads included), isolet's malloc settings unless the operator set GLIBC_TUNABLES", () => {
  const env = runtimeEnvironment({ PATH: '/bin', TZ: 'UTC', LC_ALL: 'C', ISOLET_ADMIN_TOKEN: 'secret', DATABASE_URL: 'postgres://u:p@h/db', ISOLET_ISOLATE_THREADS: '4' });
  assert.deepEqual(env, { PATH: '/bin', TZ: 'UTC', LC_ALL: 'C', ISOLET_ISOLATE_THREADS: '4', GLIBC_TUNABLES: MALLOC_TUNABLES });
  const operators = 'glibc.malloc.arena_max=4';
  assert.equal(runtimeEnvironment({ PATH: '/bin', GLIBC_TUNABLES: operators }).GLIBC_TUNABLES, operators);
  assert.match(MALLOC_TUNABLES, /^glibc\.malloc\.mmap_threshold=\d+:glibc\.malloc\.trim_threshold=\d+:glibc\.malloc\.arena_max=\d+$/);
});
