// Response bytes waiting on clients that do not read are capped per worker and in all: past a
// cap, the front stops pulling from that worker (and, past the total, from every worker) until
// clients read or their connections close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UnsentBytes } from '../src/http/unsent-bytes.ts';

const settled = async (promise: Promise<void>): Promise<boolean> => {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
};

test('a worker over its own cap waits; another worker does not', async () => {
  const unsent = new UnsentBytes({ maxUnsentBytesPerWorker: 100, maxUnsentBytes: 1000 });
  unsent.hold('slow', 150);
  const slow = unsent.room('slow');
  assert.equal(await settled(slow), false, 'the worker whose clients do not read is not pulled from');
  assert.equal(await settled(unsent.room('other')), true, 'another worker is');
  unsent.release('slow', 150);
  assert.equal(await settled(slow), true, 'a read (or a closed connection) makes room');
  assert.equal(unsent.total, 0);
});

test('over the total cap every worker waits until bytes leave', async () => {
  const unsent = new UnsentBytes({ maxUnsentBytesPerWorker: 1000, maxUnsentBytes: 100 });
  unsent.hold('a', 60);
  unsent.hold('b', 60);
  const a = unsent.room('a');
  const c = unsent.room('c');
  assert.equal(await settled(a), false);
  assert.equal(await settled(c), false);
  unsent.release('b', 60);
  assert.equal(await settled(a), true);
  assert.equal(await settled(c), true);
});
