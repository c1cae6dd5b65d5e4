// A request that can never be answered gets 500 and a log line, as in workerd ("The script will
// never generate a response."), instead of a client left waiting until it gives up. Requests
// waiting on something that can still happen (a timer, a fetch, a body read, another in-flight
// request's work) are left alone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, moduleWorker, type Served } from './support/serve.ts';

let served: Served;
let origin: Server;
let originUrl = '';

before(async () => {
  // A slow origin for the fetch case: it answers after 50 ms.
  origin = createServer((_req, res) => setTimeout(() => res.end('from origin'), 50));
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}/`;
  served = await serve({
    hang: moduleWorker(`
let shared;
export default {
  async fetch(request) {
    const { pathname, searchParams } = new URL(request.url);
    if (pathname === '/never') return new Promise(() => {});
    if (pathname === '/never-async') { await new Promise(() => {}); return new Response('unreachable'); }
    if (pathname === '/never-after-work') {
      await new Promise((resolve) => setTimeout(resolve, 5));
      await request.text();
      await new Promise(() => {});
    }
    if (pathname === '/timer') return new Promise((resolve) => setTimeout(() => resolve(new Response('timer')), 30));
    if (pathname === '/later-timer') {
      // The promise the handler awaits is resolved by a later timer, through a chain of plain promises.
      let resolveLater;
      const later = new Promise((resolve) => (resolveLater = resolve));
      setTimeout(() => setTimeout(() => resolveLater('later timer'), 10), 10);
      return new Response(await later);
    }
    if (pathname === '/fetch') return new Response(await (await fetch(searchParams.get('url'))).text());
    if (pathname === '/body') return new Response('body ' + (await request.text()));
    if (pathname === '/wait-on-other') {
      // Resolved by another request's work (a shared promise, as a cache fill does).
      shared = Promise.withResolvers();
      return new Response(await shared.promise);
    }
    if (pathname === '/settle-other') {
      shared = undefined;
      console.log('settler waiting');
      // Polls with a timer (pending work) until the other request has parked, at most 5 s.
      for (let i = 0; i < 1000 && !shared; i++) await new Promise((resolve) => setTimeout(resolve, 5));
      shared.resolve('settled by the other request');
      return new Response('done');
    }
    return new Response('ok');
  },
};`),
  }, { egress: { allow: ['127.0.0.1'] } });
});
after(async () => {
  await served.close();
  origin.close();
});

const NEVER = 'The script will never generate a response';

async function neverAnswered(path: string, init?: RequestInit) {
  const before = served.logs.length;
  const response = await served.fetch('hang', path, init);
  assert.equal(response.status, 500);
  assert.match(await response.text(), /The script will never generate a response/);
  const entry = await served.waitForLog((e) => served.logs.indexOf(e) >= before && e.worker === 'hang' && e.type === 'exception');
  assert.equal(entry.level, 'error');
  assert.ok(entry.message.startsWith(NEVER), entry.message);
  assert.match(entry.message, /Resolve the promise/);
}

test('a handler returning a promise that never settles gets 500 and a log line', async () => {
  await neverAnswered('/never');
  await neverAnswered('/never-async');
  // Then the worker serves on.
  const ok = await served.fetch('hang', '/');
  assert.equal(await ok.text(), 'ok');
});

test('a handler that hangs after a timer and a body read is answered too', async () => {
  await neverAnswered('/never-after-work', { method: 'POST', body: 'x' });
});

test('handlers awaiting a timer, a later timer, a body read or a fetch are not affected', async () => {
  const hungBefore = served.logs.filter((e) => e.worker === 'hang' && e.message.startsWith(NEVER)).length;
  const timer = await served.fetch('hang', '/timer');
  assert.equal(await timer.text(), 'timer');
  const later = await served.fetch('hang', '/later-timer');
  assert.equal(await later.text(), 'later timer');
  const body = await served.fetch('hang', '/body', { method: 'POST', body: 'hello' });
  assert.equal(await body.text(), 'body hello');
  const fetched = await served.fetch('hang', `/fetch?url=${encodeURIComponent(originUrl)}`);
  assert.equal(await fetched.text(), 'from origin');
  assert.equal(served.logs.filter((e) => e.worker === 'hang' && e.message.startsWith(NEVER)).length, hungBefore);
});

test('a request whose promise another in-flight request settles is not affected', async () => {
  // The settling request is in flight (its timer pending) while the first one parks on the
  // shared promise with nothing of its own pending.
  const logged = served.logs.length;
  const settling = served.fetch('hang', '/settle-other');
  await served.waitForLog((e) => served.logs.indexOf(e) >= logged && e.message === 'settler waiting');
  const waiting = served.fetch('hang', '/wait-on-other');
  const [first, second] = await Promise.all([waiting, settling]);
  assert.equal(await first.text(), 'settled by the other request');
  assert.equal(await second.text(), 'done');
});

test('a promise only a request yet to arrive could settle counts as never settled, as in workerd', async () => {
  await neverAnswered('/wait-on-other');
});
