// Run-to-completion: a promise callback never runs in the middle of synchronous code. The APIs
// below load on first use (src/runtime/sandbox-modules.ts): the host runs the module's script
// nested inside the tenant's synchronous call, and isolated-vm used to end that nested run with
// a microtask checkpoint (native/isolated-vm/zz-run-to-completion.patch). Each API is probed in
// a worker of its own, so its first use in the handler is the first in the isolate, then again
// in the same request and in a later one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serve, moduleWorker, type Served } from './support/serve.ts';

const USES: Record<string, string> = {
  URLSearchParams: `new URLSearchParams('a=1&b=2').get('b')`,
  TextEncoder: `new TextEncoder().encode('x')`,
  TextDecoder: `new TextDecoder().decode(new Uint8Array([104, 105]))`,
  atob: `atob('aGk=')`,
  btoa: `btoa('hi')`,
  setTimeout: `clearTimeout(setTimeout(() => {}, 1000))`,
  setInterval: `clearInterval(setInterval(() => {}, 1000))`,
  getRandomValues: `crypto.getRandomValues(new Uint8Array(4))`,
  randomUUID: `crypto.randomUUID()`,
  structuredClone: `structuredClone({ a: [1, new Map([[1, 2]])] })`,
  Event: `new Event('x')`,
  CustomEvent: `new CustomEvent('x', { detail: 1 })`,
  dispatchEvent: `new EventTarget().dispatchEvent(new Event('x'))`,
  Blob: `new Blob(['a', 'b']).size`,
  FormData: `new FormData().append('a', 'b')`,
  ReadableStream: `new ReadableStream({ start(c) { c.enqueue('a'); } })`,
  TransformStream: `new TransformStream()`,
  URLPattern: `new URLPattern({ pathname: '/a/:id' }).test('https://x/a/1')`,
  CompressionStream: `new CompressionStream('gzip')`,
  DecompressionStream: `new DecompressionStream('deflate')`,
  'crypto.subtle': `crypto.subtle.digest('SHA-256', new Uint8Array(1)).catch(() => {})`,
  'Response.body': `new Response('abc').body`,
};

// The probe: a microtask queued before the API's use must run after the synchronous code that
// follows it. `later` awaits nothing but microtasks queued before it, so it sees the final order.
const probe = (use: string) => `
const probe = () => {
  const log = [];
  Promise.resolve().then(() => log.push('microtask'));
  ${use};
  log.push('sync');
  return log;
};
export default {
  async fetch() {
    const first = probe();
    const again = probe();
    await null;
    return Response.json({ first, again });
  },
};`;

let served: Served;
before(async () => {
  const workers: Record<string, ReturnType<typeof moduleWorker>> = {};
  for (const [name, use] of Object.entries(USES)) workers[workerName(name)] = moduleWorker(probe(use));
  workers.settle = moduleWorker(`
export default {
  async fetch(request) {
    const log = [];
    // At the end of a request's first call: the response is made in a microtask.
    const order = await new Promise((resolve) => queueMicrotask(() => resolve('request')));
    log.push(order);
    // At the end of a timer: its callback's microtasks run before the next timer.
    await new Promise((resolve) => {
      setTimeout(() => { Promise.resolve().then(() => log.push('timer microtask')); log.push('timer'); }, 1);
      setTimeout(resolve, 5);
    });
    // At the end of a settle (a body read answered by the host).
    const text = await request.text();
    log.push('body ' + text);
    await Promise.resolve().then(() => log.push('after settle'));
    // A first use inside a microtask and inside a timer callback keeps the order too.
    const nested = [];
    await Promise.resolve().then(() => {
      Promise.resolve().then(() => nested.push('microtask'));
      new TextEncoder();
      nested.push('sync');
    });
    await new Promise((resolve) => setTimeout(() => {
      Promise.resolve().then(() => { nested.push('timer microtask'); resolve(); });
      structuredClone(1);
      nested.push('timer sync');
    }, 1));
    return Response.json({ log, nested });
  },
};`);
  workers.rejection = moduleWorker(`
export default {
  async fetch() {
    // A rejection not yet handled when a module loads is not that load's error.
    const pending = Promise.reject(new Error('handled later'));
    let thrown = 'none';
    try { new URLSearchParams('a=1'); } catch (error) { thrown = String(error); }
    const reason = await pending.catch((error) => error.message);
    return Response.json({ thrown, reason });
  },
};`);
  served = await serve(workers);
});
after(() => served.close());

function workerName(api: string): string {
  return 'api-' + api.toLowerCase().replace(/[^a-z0-9]+/g, '-');
}

for (const api of Object.keys(USES)) {
  test(`${api}: its first use and later uses run no microtask in the middle of synchronous code`, async () => {
    const first = await served.fetch(workerName(api), '/');
    assert.equal(first.status, 200);
    assert.deepEqual(await first.json(), { first: ['sync', 'microtask'], again: ['sync', 'microtask'] });
    const later = await served.fetch(workerName(api), '/');
    assert.deepEqual(await later.json(), { first: ['sync', 'microtask'], again: ['sync', 'microtask'] });
  });
}

test('microtasks still run at the end of each request, timer and settle', async () => {
  const response = await served.fetch('settle', '/', { method: 'POST', body: 'hello' });
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), {
    log: ['request', 'timer', 'timer microtask', 'body hello', 'after settle'],
    nested: ['sync', 'microtask', 'timer sync', 'timer microtask'],
  });
});

test('a rejection not yet handled when a module loads does not fail the load', async () => {
  const response = await served.fetch('rejection', '/');
  assert.deepEqual(await response.json(), { thrown: 'none', reason: 'handled later' });
  assert.equal(served.logs.filter((entry) => entry.worker === 'rejection' && entry.type === 'exception').length, 0);
});
