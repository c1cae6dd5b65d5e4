// The content hashes of code whose trial ended cleanly (src/supervisor/tried-code.ts): bounded,
// the oldest forgotten first, one seen again made the newest, one forgotten on a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TriedCode, TRIED_CODE_MAX } from '../src/supervisor/tried-code.ts';

test('tried code is kept up to its bound, the least recently tried forgotten first', () => {
  const tried = new TriedCode(3);
  for (const hash of ['a', 'b', 'c']) tried.add(hash);
  tried.add('a'); // tried again: the newest now
  tried.add('d'); // past the bound: 'b' goes
  assert.deepEqual(['a', 'b', 'c', 'd'].map((hash) => tried.has(hash)), [true, false, true, true]);
  tried.forget('c');
  assert.equal(tried.has('c'), false);
  assert.ok(TRIED_CODE_MAX >= 1000);
  const fresh = new TriedCode();
  for (let i = 0; i <= TRIED_CODE_MAX; i++) fresh.add(`h${i}`);
  assert.equal(fresh.has('h0'), false);
  assert.equal(fresh.has(`h${TRIED_CODE_MAX}`), true);
});
