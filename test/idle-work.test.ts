// Tenant code V8 runs on its own, outside any request: a FinalizationRegistry callback runs as
// a task of the isolate after a collection, when no request is in flight and nothing on the
// host watches the isolate. The native watchdog keeps idle isolates armed, so such a callback
// that loops is stopped like work after a response, and the isolate's thread is freed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { serve, moduleWorker, type Served } from './support/serve.ts';

let served: Served | undefined;

after(async () => {
  await served?.close();
});

test('a FinalizationRegistry callback that loops while the isolate is idle is stopped, and the worker serves again', async () => {
  served = await serve({
    fr: moduleWorker(`
      const registry = new FinalizationRegistry(() => { while (true) {} });
      export default { fetch(request) {
        if (new URL(request.url).pathname === '/arm') for (let i = 0; i < 1000; i++) registry.register({ garbage: new Array(100) }, i);
        return new Response('ok');
      } };`),
    victim: moduleWorker(`export default { fetch() { return new Response('still here'); } };`),
  }, { reduceIdleMemoryAfterMs: 100 });
  const s = served;
  assert.equal(await (await s.fetch('fr', '/arm')).text(), 'ok');
  // The idle isolate's collections (after 100 ms) run the callbacks, with no request in flight.
  // Each probe is a task on the isolate's thread: it settles only if that thread is free again.
  const stopped = (): boolean => s.logs.some((entry) => entry.worker === 'fr' && entry.type === 'limit' && entry.limit === 'cpu');
  for (let i = 0; i < 8; i++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const probe = await Promise.race([
      s.runtime.memoryUsage('fr').then(() => 'settled', () => 'settled'),
      new Promise((resolve) => setTimeout(() => resolve('hung'), 5000)),
    ]);
    assert.equal(probe, 'settled', 'the isolate\'s thread is held by the callback');
    assert.equal(await (await s.fetch('victim', '/')).text(), 'still here');
  }
  // A request to the worker notices the isolate ended while idle, logs why, and gets a fresh one.
  assert.equal(await (await s.fetch('fr', '/')).text(), 'ok');
  assert.ok(stopped(), 'the looping callback was stopped');
  assert.equal(await (await s.fetch('fr', '/')).text(), 'ok');
});
