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
