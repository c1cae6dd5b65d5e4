// The CPU meter behind the CPU limit: what it charges when the isolate's clock runs ahead of
// the process's real CPU time (a machine short of cores), and when it doesn't.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CpuMeter, CpuWatchdog } from '../src/runtime/cpu-limit.ts';

function clocks() {
  const state = { isolate: 0n, process: 0 };
  const meter = new CpuMeter(() => state.isolate, () => state.process);
  return { state, meter };
}

test('a busy isolate is charged its own time when the process kept pace', () => {
  const { state, meter } = clocks();
  meter.reset();
  state.isolate += 30_000_000n; // 30 ms on the isolate's clock
  state.process += 45_000_000; // the process used more (other threads too)
  assert.equal(meter.take(), 30_000_000);
});

test('time the isolate waited for a core is not charged: the process CPU bounds it', () => {
  const { state, meter } = clocks();
  meter.reset();
  state.isolate += 97_000_000n; // held its thread 97 ms of wall time...
  state.process += 3_000_000; // ...but the whole process only ran 3 ms
  assert.equal(meter.take(), 3_000_000);
});

test('short intervals are charged without reading the process clock', () => {
  let processReads = 0;
  let isolate = 0n;
  const meter = new CpuMeter(() => isolate, () => (processReads++, 0));
  meter.reset();
  const readsAfterReset = processReads;
  isolate += 400_000n; // 0.4 ms
  assert.equal(meter.take(), 400_000);
  assert.equal(processReads, readsAfterReset);
});

test('readings continue from the last one', () => {
  const { state, meter } = clocks();
  meter.reset();
  state.isolate += 10_000_000n;
  state.process += 10_000_000;
  assert.equal(meter.take(), 10_000_000);
  state.isolate += 20_000_000n;
  state.process += 5_000_000;
  assert.equal(meter.take(), 5_000_000);
  assert.equal(meter.take(), 0);
});

test('the watchdog ticks only while something is watched', async () => {
  const watchdog = new CpuWatchdog(1);
  let charges = 0;
  const target = { chargeCpu: () => void charges++ };
  watchdog.watch(target);
  assert.equal(watchdog.watching, 1);
  while (charges < 3) await new Promise((resolve) => setTimeout(resolve, 2));
  watchdog.unwatch(target);
  assert.equal(watchdog.watching, 0);
  const after = charges;
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(charges, after, 'no charges after unwatch');
  watchdog.watch(target);
  while (charges < after + 2) await new Promise((resolve) => setTimeout(resolve, 2));
  watchdog.unwatch(target);
});
