// Timers fire in the order of their delays, as in workerd, however the host takes the calls that
// start them: a call into the isolate posts each timer to the host as it runs, and the host's
// thread may take some of them while the isolate's thread is still making the rest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../src/runtime/runtime.ts';
import { moduleWorker } from './support/serve.ts';
import { fetchText } from './support/fetch-text.ts';

test('a 0 ms timer started after a 1 ms one still fires first, however many timers the call started between them', { timeout: 60_000 }, async () => {
  const runtime = new Runtime({ log: () => {}, inlineRuns: false });
  try {
    // The timers a call starts cross to the host at the end of the call, one post each: with
    // thousands between the two, the host has long taken the first, and its millisecond has
    // passed, before the last is made.
    await runtime.load('w', moduleWorker(`
export default {
  async fetch() {
    const order = [];
    await new Promise((resolve) => setTimeout(resolve, 1));
    setTimeout(() => order.push(1), 1);
    for (let i = 0; i < 5000; i++) setTimeout(() => {}, 60000 + i);
    setTimeout(() => order.push(0), 0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    return new Response(order.join());
  },
};`, { limits: { cpuMs: 2_000 } }));
    for (let i = 0; i < 3; i++) assert.deepEqual(await fetchText(runtime, 'w', '/'), { status: 200, text: '0,1' }, `request ${i + 1}`);
  } finally {
    await runtime.close();
  }
});

test("a timer's callback sees the clock at least its delay past when it was started, even when Node fires it early", { timeout: 60_000 }, async () => {
  const runtime = new Runtime({ log: () => {} });
  try {
    await runtime.load('w', moduleWorker(`
export default {
  async fetch() {
    const before = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const afterTimeout = Date.now() - before;
    const start = Date.now();
    await scheduler.wait(8);
    return new Response(afterTimeout + ',' + (Date.now() - start));
  },
};`));
    await fetchText(runtime, 'w', '/');
    for (let i = 0; i < 5; i++) {
      // Node's timers count from the time its event loop read at the start of the current turn:
      // held here for 30 ms first, a timer started in this turn is due at once in the next.
      const held = performance.now();
      while (performance.now() - held < 30);
      const { status, text } = await fetchText(runtime, 'w', '/');
      assert.equal(status, 200);
      const [afterTimeout, afterWait] = text.split(',').map(Number);
      assert.ok(afterTimeout! >= 5, `setTimeout(5): the clock moved ${afterTimeout} ms (request ${i + 1})`);
      assert.ok(afterWait! >= 8, `scheduler.wait(8): the clock moved ${afterWait} ms (request ${i + 1})`);
    }
  } finally {
    await runtime.close();
  }
});
