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

const text = (body: unknown): string => Buffer.from(body as Uint8Array).toString();

test("removeEventListener('fetch', handler) stops that handler from answering requests, as in workerd", async () => {
  const runtime = new Runtime({ log: () => {} });
  try {
    await runtime.load('sw', {
      script: `
        let served = 0;
        const first = (event) => {
          served++;
          removeEventListener('fetch', first);
          event.respondWith(new Response('first ' + served));
          event.stopImmediatePropagation();
        };
        const second = { handleEvent(event) { served++; event.respondWith(new Response('second ' + served)); } };
        addEventListener('fetch', first);
        addEventListener('fetch', second);
        // Added twice: one listener, as for any EventTarget.
        addEventListener('fetch', second);
        const dropped = (event) => event.respondWith(new Response('dropped'));
        addEventListener('fetch', dropped);
        removeEventListener('fetch', dropped);
        addEventListener('fetch', (event) => event.stopImmediatePropagation());
        addEventListener('fetch', () => { throw new Error('never reached: propagation stopped'); });
      `,
    });
    const answers: string[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await runtime.fetch('sw', { method: 'GET', url: 'http://sw.test/', headers: [] });
      assert.equal(response.status, 200);
      answers.push(text(response.body));
    }
    assert.deepEqual(answers, ['first 1', 'second 2', 'second 3']);
  } finally {
    await runtime.close();
  }
});

test('a service worker whose fetch handlers were all removed at load is refused', async () => {
  const runtime = new Runtime({ log: () => {} });
  try {
    await assert.rejects(
      runtime.load('sw', { script: `const h = (e) => e.respondWith(new Response('x')); addEventListener('fetch', h); removeEventListener('fetch', h);` }),
      /registers no fetch handler/,
    );
  } finally {
    await runtime.close();
  }
});

test('dispatchEvent on the global scope: target, return value, cancelation, exceptions and argument checks as in workerd', async () => {
  const runtime = new Runtime({ log: () => {} });
  try {
    await runtime.load('sw', {
      script: `
        addEventListener('fetch', (event) => {
          const out = [];
          addEventListener('cancel', (e) => { out.push(e.target === globalThis, e.currentTarget === globalThis); e.preventDefault(); });
          out.push(dispatchEvent(new Event('cancel', { cancelable: true })));
          out.push(dispatchEvent(new Event('cancel')));
          addEventListener('boom', () => { throw new Error('from a listener'); });
          try { dispatchEvent(new Event('boom')); out.push('no throw'); } catch (e) { out.push(e.message); }
          try { dispatchEvent({ type: 'cancel' }); } catch (e) { out.push(e.constructor.name + ': ' + e.message); }
          let once = 0;
          addEventListener('once', () => { once++; }, { once: true });
          dispatchEvent(new Event('once'));
          dispatchEvent(new Event('once'));
          out.push(once);
          out.push(dispatchEvent(new CustomEvent('other', { detail: 1 })));
          event.respondWith(new Response(JSON.stringify(out)));
        });
      `,
    });
    const response = await runtime.fetch('sw', { method: 'GET', url: 'http://sw.test/', headers: [] });
    assert.equal(response.status, 200);
    assert.deepEqual(JSON.parse(text(response.body)), [
      true, true, false,
      // workerd answers false once a listener called preventDefault(), cancelable or not.
      true, true, false,
      'from a listener',
      "TypeError: Failed to execute 'dispatchEvent' on 'EventTarget': parameter 1 is not of type 'Event'.",
      1,
      true,
    ]);
  } finally {
    await runtime.close();
  }
});
