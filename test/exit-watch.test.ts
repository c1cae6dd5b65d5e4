// A killed runtime process is seen ending from /proc, before its teardown closes its channel
// (src/supervisor/exit-watch.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { ExitWatch, exitingSignal } from '../src/supervisor/exit-watch.ts';

const linux = process.platform === 'linux';

async function until(check: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !check(); waited += 10) {
    assert.ok(waited < 10_000, what);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A process (`sleep`) whose child is never reaped: `sh` starts a background sleep, then becomes
 * a sleep itself, which never waits, so the background one stays a zombie once killed.
 */
async function orphanedChild(): Promise<{ parent: ChildProcess; pid: number }> {
  const parent = spawn('sh', ['-c', 'sleep 60 & echo $!; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const [chunk] = (await once(parent.stdout!, 'data')) as [Buffer];
  // Until sh has become the sleep, it would reap the background one as it dies.
  await until(() => readFileSync(`/proc/${parent.pid}/comm`, 'latin1').trim() === 'sleep', 'sh becomes a sleep');
  return { parent, pid: Number(chunk.toString().trim()) };
}

test('exitingSignal: nothing for a running process or no process; the signal once the kernel is ending one', { skip: !linux && 'reads /proc' }, async (t) => {
  const { parent, pid } = await orphanedChild();
  t.after(() => parent.kill('SIGKILL'));
  assert.equal(exitingSignal(pid), undefined);
  assert.equal(exitingSignal(2 ** 22 + 12345), undefined);
  process.kill(pid, 'SIGKILL');
  await until(() => exitingSignal(pid) !== undefined, 'the killed process is seen ending');
  assert.equal(exitingSignal(pid), 'SIGKILL');

  const other = await orphanedChild();
  t.after(() => other.parent.kill('SIGKILL'));
  process.kill(other.pid, 'SIGTERM');
  await until(() => exitingSignal(other.pid) !== undefined, 'the terminated process is seen ending');
  assert.equal(exitingSignal(other.pid), 'SIGTERM');
});

test('ExitWatch calls back once, only for SIGKILL and only while something waits', async () => {
  let signal: NodeJS.Signals | undefined;
  let waiting = false;
  let killed = 0;
  const watch = new ExitWatch(() => signal, () => waiting, () => killed++);
  const beats = () => new Promise((resolve) => setTimeout(resolve, 200));
  signal = 'SIGKILL';
  await beats();
  assert.equal(killed, 0, 'nothing waits on the process: its close is handled as usual');
  waiting = true;
  signal = 'SIGTERM';
  await beats();
  assert.equal(killed, 0, 'other signals wait for the close, which reads the last of its stderr');
  signal = 'SIGKILL';
  await until(() => killed > 0, 'the kill is seen');
  await beats();
  assert.equal(killed, 1);
  watch.stop();
});
