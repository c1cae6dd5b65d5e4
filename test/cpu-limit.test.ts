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

test('CPU credited to the platform is left out of the next readings, and a reset forgets it', () => {
  const { state, meter } = clocks();
  meter.reset();
  state.isolate += 3_000_000n;
  state.process += 3_000_000;
  meter.credit(2_000_000); // 2 of those 3 ms were the platform's own work
  assert.equal(meter.take(), 1_000_000);
  state.isolate += 500_000n;
  meter.credit(800_000); // more than the next reading: what is left waits for the one after
  assert.equal(meter.take(), 0);
  state.isolate += 500_000n;
  assert.equal(meter.take(), 200_000);
  meter.credit(400_000);
  meter.reset();
  state.isolate += 300_000n;
  assert.equal(meter.take(), 300_000);
  meter.credit(-5);
  state.isolate += 100_000n;
  assert.equal(meter.take(), 100_000);
});

test('the watchdog ticks only while something is watched', async () => {
  const watchdog = new CpuWatchdog(1);
  let charges = 0;
  const target = { measureCpu: () => 0, applyCpu: () => void charges++ };
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

test('the watchdog scales the isolates\' claims down to what the whole process used', async () => {
  let process = 0;
  const watchdog = new CpuWatchdog(1, () => process);
  const charged = [0, 0, 0];
  // Three isolates each claim 10 ms in a tick in which the process only used 6 ms: threads
  // that held their isolates while stalled. Together they are charged 6 ms.
  const targets = charged.map((_, i) => ({
    measureCpu: () => {
      process += 2e6;
      return 10e6;
    },
    applyCpu: (ns: number) => void (charged[i]! += ns),
  }));
  for (const target of targets) watchdog.watch(target);
  while (charged[0] === 0) await new Promise((resolve) => setTimeout(resolve, 2));
  for (const target of targets) watchdog.unwatch(target);
  const first = charged.map((c) => c);
  assert.ok(first.every((c) => c > 0 && c <= 10e6 * 0.61), `each claim scaled down: ${first}`);
});

test('a lone runaway is charged in full when the process did burn the CPU', async () => {
  let process = 0;
  const watchdog = new CpuWatchdog(1, () => process);
  let charged = 0;
  const target = {
    measureCpu: () => {
      process += 12e6;
      return 10e6;
    },
    applyCpu: (ns: number) => void (charged += ns),
  };
  watchdog.watch(target);
  while (charged === 0) await new Promise((resolve) => setTimeout(resolve, 2));
  watchdog.unwatch(target);
  assert.equal(charged % 10e6, 0);
});

test('CPU measured at requests\' edges between ticks counts in the next tick\'s bound', async () => {
  let process = 0;
  const watchdog = new CpuWatchdog(1, () => process);
  const scales: number[] = [];
  const target = { measureCpu: () => 0, applyCpu: (_ns: number, scale: number) => void scales.push(scale) };
  watchdog.watch(target);
  // A pause of the whole process: edges claim 40 ms while the process used 4 ms.
  watchdog.claim(20e6);
  watchdog.claim(20e6);
  process += 4e6;
  while (scales.length === 0) await new Promise((resolve) => setTimeout(resolve, 2));
  watchdog.unwatch(target);
  assert.ok(scales[0]! <= 0.1 + 1e-9, `pending edge charges scaled to the process's CPU: ${scales[0]}`);
});
