// The global scope is an EventTarget, as workerd's ServiceWorkerGlobalScope: service-worker
// 'fetch' listeners still answer requests, and other event types dispatch to the global's own
// listeners, with the global scope as the event's target.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../src/index.ts';

test("a service worker's global scope dispatches its own events and still serves fetch", async () => {
  const runtime = new Runtime({ log: () => {} });
  try {
    await runtime.load('sw', {
      script: `
        const seen = [];
        const onPing = (e) => seen.push(e.type + ':' + (e.target === globalThis));
        addEventListener('ping', onPing);
        // Replacing the prototype's methods afterwards changes nothing already registered.
        EventTarget.prototype.addEventListener = () => { throw new Error('tampered'); };
        addEventListener('fetch', (event) => {
          dispatchEvent(new Event('ping'));
          removeEventListener('ping', onPing);
          dispatchEvent(new Event('ping'));
          event.respondWith(new Response(seen.join(',') + ' ' + Object.hasOwn(globalThis, 'dispatchEvent')));
        });
      `,
    });
    const response = await runtime.fetch('sw', { method: 'GET', url: 'http://sw.test/', headers: [] });
    assert.equal(response.status, 200);
    assert.equal(Buffer.from(response.body as Uint8Array).toString(), 'ping:true false');
  } finally {
    await runtime.close();
  }
});
