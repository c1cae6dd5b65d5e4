// RequestFrequency: the counts the Runtime weighs before a worker without an isolate may push
// out one with (memory-budget.test.ts has the policy itself).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestFrequency } from '../src/runtime/request-frequency.ts';

test('requests are counted per worker and halved every period, so old traffic fades', () => {
  const frequency = new RequestFrequency(10);
  for (let i = 0; i < 6; i++) frequency.add('busy');
  for (let i = 0; i < 3; i++) frequency.add('quiet');
  assert.equal(frequency.of('busy'), 6);
  assert.equal(frequency.of('quiet'), 3);
  assert.equal(frequency.of('never'), 0);
  frequency.add('once'); // the tenth request: every count is halved, and a count of 1 is dropped
  assert.deepEqual([frequency.of('busy'), frequency.of('quiet'), frequency.of('once')], [3, 1, 0]);
  for (let i = 0; i < 9; i++) frequency.add('new');
  frequency.add('new'); // the twentieth: halved again
  assert.deepEqual([frequency.of('busy'), frequency.of('quiet'), frequency.of('new')], [1, 0, 5]);
  frequency.forget('new');
  assert.equal(frequency.of('new'), 0);
});

test('a period below one request is one request', () => {
  const frequency = new RequestFrequency(0);
  frequency.add('a');
  assert.equal(frequency.of('a'), 0, 'halved at once: 1 is dropped');
});
