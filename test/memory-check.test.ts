// The memory check after a response (WorkerIsolate.checkMemory): with isolet's isolated-vm build
// it reads heap statistics taken at the end of the request's own task
// (native/isolated-vm/zzzzzzz-taken-heap-statistics.patch) rather than asking the isolate in a
// task of its own; what it reads is what the Runtime counts of the isolate's memory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import ivm from 'isolated-vm';
import { Runtime } from '../src/runtime/runtime.ts';

interface Counted {
  /** getHeapStatistics tasks asked of each isolate the Runtime made. */
  tasks: number;
  taken: () => number;
}

/** Counts, for every isolate made from here on, its getHeapStatistics tasks and its takings. */
function countHeapStatistics(): { isolates: Counted[]; restore: () => void } {
  const isolates: Counted[] = [];
  const Isolate = ivm.Isolate as unknown as { createOffThread(options: ivm.IsolateOptions): Promise<ivm.Isolate> };
  const made = Isolate.createOffThread;
  Isolate.createOffThread = async (options) => {
    const isolate = await made.call(ivm.Isolate, options);
    const counted: Counted = { tasks: 0, taken: () => (isolate as unknown as { takenHeapStatistics?: { taken: number } }).takenHeapStatistics?.taken ?? 0 };
    // isolated-vm's handles are not extensible and their methods not writable: a proxy counts the calls.
    const proxy = new Proxy(isolate, {
      get(target, key) {
        const value = Reflect.get(target, key, target) as unknown;
        if (key === 'getHeapStatistics') counted.tasks++;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    isolates.push(counted);
    return proxy;
  };
  return { isolates, restore: () => void (Isolate.createOffThread = made) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const request = () => ({ method: 'GET', url: 'http://checked.localhost/', headers: [] as [string, string][] });

test('the memory check after a response reads the statistics its request\'s task took, and asks the isolate for none', { timeout: 60_000 }, async (t) => {
  const counting = countHeapStatistics();
  t.after(counting.restore);
  const runtime = new Runtime({ log: () => {}, spareIsolates: 0, reduceIdleMemoryAfterMs: 0 });
  t.after(() => runtime.close());
  // Each request keeps about 1.6 MB more of the isolate's heap.
  const source = 'const kept = []; export default { fetch() { kept.push(new Array(200000).fill(kept.length)); return new Response("ok"); } }';
  await runtime.load('checked', { modules: [{ name: 'main.js', source }] });
  assert.equal((await runtime.fetch('checked', request())).status, 200);
  const isolate = counting.isolates.at(-1)!;
  // Its first measurement, as the Runtime starts tracking it, is a task: nothing asked for it yet.
  await sleep(50);
  const tasksBefore = isolate.tasks;
  const takenBefore = isolate.taken();
  const heldBefore = runtime.isolateMemory;
  for (let i = 0; i < 3; i++) {
    await sleep(1100); // past the check's interval (a second), so every request is checked
    assert.equal((await runtime.fetch('checked', request())).status, 200);
  }
  await sleep(50);
  assert.equal(isolate.tasks, tasksBefore, 'no heap-statistics task of its own');
  assert.ok(isolate.taken() >= takenBefore + 3, `taken ${isolate.taken()} after ${takenBefore}`);
  // What the checks read is what the Runtime counts the isolate as holding.
  assert.ok(runtime.isolateMemory >= heldBefore + 2 * 1024 * 1024, `held ${runtime.isolateMemory} after ${heldBefore}`);
});
