// CPU and memory limits, errors and crashes: a worker that misbehaves hurts only itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serve, moduleWorker, type Served } from './support/serve.ts';
import { MAX_LOG_LINE_CHARS } from '../src/bridge/protocol.ts';

// A counter in module state tells a fresh isolate (1) from a reused one.
const counter = `let requests = 0;`;

const cpuWorker = moduleWorker(`${counter}
export default {
  async fetch(request) {
    requests++;
    const { pathname } = new URL(request.url);
    if (pathname === '/count') return new Response(String(requests));
    if (pathname === '/sync-loop') { while (true) {} }
    if (pathname === '/loop-after-await') {
      await new Promise((resolve) => setTimeout(resolve, 1));
      while (true) {}
    }
    if (pathname === '/loop-in-timer') {
      return new Promise((resolve) => setTimeout(() => { while (true) {} }, 1));
    }
    if (pathname === '/microtask-chain') {
      const spin = () => Promise.resolve().then(spin);
      spin();
      return new Promise(() => {});
    }
    if (pathname === '/light') {
      let x = 0;
      for (let i = 0; i < 1000; i++) x += i;
      return new Response(String(x));
    }
    return new Response('ok');
  },
};`);

const memoryWorker = moduleWorker(`${counter}
export default {
  async fetch(request) {
    requests++;
    const { pathname } = new URL(request.url);
    if (pathname === '/count') return new Response(String(requests));
    if (pathname === '/arrays') {
      const keep = [];
      while (true) keep.push(new Array(10000).fill(requests));
    }
    if (pathname === '/strings') {
      let s = 'abcdefgh';
      // indexOf flattens the rope, so the string really takes its length in memory.
      while (true) { s = s + s; s.indexOf('z'); }
    }
    if (pathname === '/arraybuffer') {
      const buffers = [];
      buffers.push(new ArrayBuffer(512 * 1024 * 1024));
      return new Response(String(buffers.length));
    }
    if (pathname === '/recursion') {
      const f = (n) => f(n + 1) + 1;
      try { f(0); } catch (error) { return new Response(error.constructor.name + ': ' + error.message); }
    }
    if (pathname === '/recursion-uncaught') {
      const f = (n) => f(n + 1) + 1;
      return new Response(String(f(0)));
    }
    return new Response('ok');
  },
};`, { limits: { memoryMb: 32, cpuMs: 2000 } });

const errorWorker = moduleWorker(`export default {
  async fetch(request) {
    const { pathname } = new URL(request.url);
    if (pathname === '/throw') throw new TypeError('deliberate failure');
    if (pathname === '/reject') return Promise.reject(new RangeError('deliberate rejection'));
    if (pathname === '/not-a-response') return { status: 200 };
    if (pathname === '/undefined') return undefined;
    if (pathname === '/throw-string') throw 'a string';
    if (pathname === '/throw-undefined') throw undefined;
    if (pathname === '/throw-object') throw { code: 7 };
    // Every trap throws: describing it for the log must not take the answer down with it.
    if (pathname === '/throw-proxy') throw new Proxy({}, { get() { throw new Error('trap'); }, getPrototypeOf() { throw new Error('trap'); }, ownKeys() { throw new Error('trap'); } });
    if (pathname === '/error-response') return Response.error();
    if (pathname === '/huge-header') return new Response('never sent', { headers: { 'x-big': 'h'.repeat(200 * 1024) } });
    if (pathname === '/huge-status') return new Response(new ReadableStream({ pull(c) { c.enqueue(new Uint8Array(1)); } }), { statusText: 's'.repeat(200 * 1024) });
    if (pathname === '/head-at-limit') return new Response('sent', { headers: { 'x-big': 'h'.repeat(120 * 1024) } });
    return new Response('fine');
  },
};`);

let served: Served;
before(async () => {
  served = await serve({
    cpu: cpuWorker,
    memory: memoryWorker,
    errors: errorWorker,
    bystander: moduleWorker(`export default { fetch() { return new Response('still here'); } };`),
    rejecter: moduleWorker(`export default { async fetch(request, ctx) {
  const { pathname } = new URL(request.url);
  if (pathname === '/error') Promise.reject(new TypeError('left unhandled'));
  if (pathname === '/string') Promise.reject('a bare reason');
  if (pathname === '/huge-rejection') Promise.reject(new Error('R'.repeat(1e6)));
  if (pathname === '/huge-throw') throw new Error('T'.repeat(1e6));
  if (pathname === '/handled') { const p = Promise.reject(new Error('handled later')); await null; p.catch(() => {}); }
  return new Response('answered');
} };`),
    forger: moduleWorker(`let served = 0;
export default { fetch(request) {
  served++;
  if (new URL(request.url).pathname === '/forge') Promise.reject(new Error('Isolate was disposed during execution due to memory limit'));
  return new Response(String(served));
} };`),
    toplevel: moduleWorker(`while (true) {}\nexport default { fetch() { return new Response('never'); } };`),
  }, {}, { validate: false });
});
after(() => served.close());

async function expectLimit(worker: string, path: string, limit: 'CPU time' | 'memory') {
  const logsBefore = served.logs.length;
  const response = await served.fetch(worker, path);
  assert.equal(response.status, 503, `${path} should answer 503`);
  const body = await response.text();
  assert.match(body, new RegExp(`exceeded ${limit} limit`), `${path}: body names the limit`);
  const entry = served.logs.slice(logsBefore).find((e) => e.type === 'limit' && e.worker === worker);
  assert.ok(entry, `${path}: the worker's log has a limit line`);
  assert.equal(entry.limit, limit === 'CPU time' ? 'cpu' : 'memory');
  // The next request gets a fresh isolate: module state starts over.
  const count = await served.fetch(worker, '/count');
  assert.equal(count.status, 200);
  assert.equal(await count.text(), '1', `${path}: next request runs in a fresh isolate`);
  return entry;
}

for (const path of ['/sync-loop', '/loop-after-await', '/loop-in-timer', '/microtask-chain']) {
  test(`CPU limit holds for ${path.slice(1)}`, async () => {
    const entry = await expectLimit('cpu', path, 'CPU time');
    assert.equal(entry.limitMs, 50);
    assert.ok((entry.usedMs as number) >= 50, 'the log says how much CPU was used');
    assert.match(entry.message, /CPU time limit \(used [\d.]+ ms of 50 ms per request\)/);
  });
}

test('CPU limit holds for a loop at module top level, at load', async () => {
  const response = await served.fetch('toplevel', '/');
  assert.equal(response.status, 503);
  assert.match(await response.text(), /CPU time limit while loading/);
  assert.ok(served.logs.some((e) => e.worker === 'toplevel' && e.type === 'limit'));
});

test('a worker under its CPU limit is not disturbed by the watchdog', async () => {
  for (let i = 0; i < 20; i++) {
    const response = await served.fetch('cpu', '/light');
    assert.equal(response.status, 200);
    assert.equal(await response.text(), '499500');
  }
});

test('other tenants keep being served while one burns its CPU', async () => {
  const burning = Promise.all([served.fetch('cpu', '/sync-loop'), served.fetch('cpu', '/microtask-chain')]);
  const bystanders = await Promise.all(Array.from({ length: 20 }, () => served.fetch('bystander', '/')));
  for (const response of bystanders) {
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'still here');
  }
  for (const response of await burning) assert.equal(response.status, 503);
});

for (const path of ['/arrays', '/strings', '/arraybuffer']) {
  test(`memory limit holds for ${path.slice(1)}`, async () => {
    await expectLimit('memory', path, 'memory');
    const bystander = await served.fetch('bystander', '/');
    assert.equal(await bystander.text(), 'still here');
  });
}

test('deep recursion is a RangeError inside the worker, not a crash', async () => {
  const caught = await served.fetch('memory', '/recursion');
  assert.equal(caught.status, 200);
  assert.equal(await caught.text(), 'RangeError: Maximum call stack size exceeded');
  const uncaught = await served.fetch('memory', '/recursion-uncaught');
  assert.equal(uncaught.status, 500);
  await uncaught.text();
  const fine = await served.fetch('memory', '/count');
  assert.equal(fine.status, 200);
});

test('an uncaught exception is a 500 with its stack, in the tenant source, in the log', async () => {
  const response = await served.fetch('errors', '/throw');
  assert.equal(response.status, 500);
  assert.match(await response.text(), /Worker threw exception/);
  const entry = await served.waitForLog((e) => e.worker === 'errors' && e.type === 'exception' && /deliberate failure/.test(e.message));
  assert.match(entry.message, /TypeError: deliberate failure/);
  assert.match(entry.message, /main\.js:4:\d+/, 'stack points into the worker source');
});

test('a rejected promise is a 500 with the reason in the log', async () => {
  const response = await served.fetch('errors', '/reject');
  assert.equal(response.status, 500);
  await response.text();
  await served.waitForLog((e) => e.worker === 'errors' && /RangeError: deliberate rejection/.test(e.message));
  const thrown = await served.fetch('errors', '/throw-string');
  assert.equal(thrown.status, 500);
  await thrown.text();
  await served.waitForLog((e) => e.worker === 'errors' && /Uncaught a string/.test(e.message));
});

test('whatever a worker throws, the client gets a 500 and the log says "Uncaught" once, then what was thrown', async () => {
  for (const [path, message] of [
    ['/throw-string', 'Uncaught a string'],
    ['/throw-undefined', 'Uncaught undefined'],
    ['/throw-object', 'Uncaught {"code":7}'],
    ['/throw-proxy', 'Uncaught an object that could not be described (reading it threw)'],
  ] as const) {
    const response = await served.fetch('errors', path);
    assert.equal(response.status, 500, path);
    assert.match(await response.text(), /Worker threw exception/, path);
    // Logged before the response left the host.
    const entry = served.logs.filter((e) => e.worker === 'errors' && e.type === 'exception').at(-1);
    assert.equal(entry?.message, message, path);
    assert.equal(entry?.level, 'error');
  }
});

test('an unhandled rejection that says "memory limit" is the worker\'s exception, not a limit that ends its isolate', async () => {
  const forged = await served.fetch('forger', '/forge');
  assert.equal(forged.status, 200);
  assert.equal(await forged.text(), '1');
  const entry = await served.waitForLog((e) => e.worker === 'forger' && e.level === 'error');
  assert.equal(entry.type, 'exception');
  assert.match(entry.message, /^Uncaught .*memory limit/);
  // The same isolate serves the next request: nothing was ended.
  const next = await served.fetch('forger', '/');
  assert.equal(await next.text(), '2');
  assert.deepEqual(served.logs.filter((e) => e.worker === 'forger' && e.type === 'limit'), []);
});

test('a promise rejection left unhandled is logged as workerd logs it, for its request, with the isolate\'s stack only', async () => {
  const seen = (requestId: unknown) => served.logs.filter((e) => e.worker === 'rejecter' && e.type === 'exception' && e.requestId === requestId);
  for (const [path, expected] of [
    ['/error', /^Uncaught \(in promise\) TypeError: left unhandled\n {4}at Object\.fetch \(main\.js:3:/],
    ['/string', /^Uncaught \(in promise\) a bare reason$/],
  ] as const) {
    const response = await served.fetch('rejecter', path);
    assert.equal(await response.text(), 'answered');
    const request = await served.waitForLog((e) => e.worker === 'rejecter' && e.type === 'request' && e.message.includes(path));
    // It follows the call's end, a turn or two after the response: bounded, so a regression fails rather than hangs.
    for (let waited = 0; seen(request.requestId).length === 0 && waited < 10_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    const [entry] = seen(request.requestId);
    assert.match(entry?.message ?? 'no entry', expected);
    assert.doesNotMatch(entry!.message, /isolated-vm|worker-isolate\.ts|node:internal/);
  }
  const handled = await served.fetch('rejecter', '/handled');
  assert.equal(await handled.text(), 'answered');
  const request = await served.waitForLog((e) => e.worker === 'rejecter' && e.type === 'request' && e.message.includes('/handled'));
  // Another request's turn of the event loop: nothing more is coming for this one.
  await (await served.fetch('bystander', '/')).text();
  assert.deepEqual(seen(request.requestId), []);
});

// A tenant's message of megabytes would otherwise be one log line of megabytes, past the budget
// that holds console lines (an unhandled rejection's reason is copied out by isolated-vm, not sent
// by the sandbox).
test('an exception or unhandled rejection with a message of a megabyte is logged as one line of at most MAX_LOG_LINE_CHARS', async () => {
  for (const [path, prefix] of [['/huge-rejection', 'Uncaught (in promise) Error: RRRR'], ['/huge-throw', 'Uncaught Error: TTTT']] as const) {
    const response = await served.fetch('rejecter', path);
    await response.text();
    const request = await served.waitForLog((e) => e.worker === 'rejecter' && e.type === 'request' && e.message.includes(path));
    const seen = () => served.logs.filter((e) => e.worker === 'rejecter' && e.type === 'exception' && e.requestId === request.requestId);
    for (let waited = 0; seen().length === 0 && waited < 10_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    const [entry] = seen();
    assert.ok(entry?.message.startsWith(prefix), `${path}: ${entry?.message.slice(0, 80)}`);
    assert.ok(entry!.message.length <= MAX_LOG_LINE_CHARS + 'Uncaught (in promise) '.length, `${path}: ${entry!.message.length} characters`);
  }
});

// Cloudflare's limit on a response's headers, 128 KB in total, checked before the head crosses:
// a head of megabytes would be copied onto the host's main thread, which every tenant shares.
test('a response with more than 128 KB of headers and status text is a 500 that says so; one under it is sent', async () => {
  for (const path of ['/huge-header', '/huge-status']) {
    const response = await served.fetch('errors', path);
    assert.equal(response.status, 500, path);
    await response.text();
    const request = await served.waitForLog((e) => e.worker === 'errors' && e.type === 'request' && e.message.includes(path));
    const entry = served.logs.find((e) => e.requestId === request.requestId && e.type === 'exception');
    assert.match(entry?.message ?? 'no entry', /^The fetch handler's response has 2\d{5} bytes of headers and status text, over the 128 KB/, path);
    assert.equal(entry!.level, 'error');
  }
  // In process: an HTTP client's own limit on a head (16 KB in Node's) is not the runtime's.
  const atLimit = await served.runtime.fetch('errors', { method: 'GET', url: 'http://errors.test/head-at-limit', headers: [] });
  assert.equal(atLimit.status, 200);
  assert.equal(atLimit.headers.find(([name]) => name === 'x-big')?.[1].length, 120 * 1024);
});

test('a handler that returns something other than a Response is a 500 that says so', async () => {
  for (const [path, what] of [['/not-a-response', 'Object'], ['/undefined', 'undefined']] as const) {
    const response = await served.fetch('errors', path);
    assert.equal(response.status, 500);
    await response.text();
    const entry = await served.waitForLog((e) => e.worker === 'errors' && e.message.includes(`returned ${what} instead of a Response`));
    assert.equal(entry.level, 'error');
  }
  const networkError = await served.fetch('errors', '/error-response');
  assert.equal(networkError.status, 500);
  await networkError.text();
  await served.waitForLog((e) => e.worker === 'errors' && e.message.includes('returned Response.error()'));
  const fine = await served.fetch('errors', '/');
  assert.equal(await fine.text(), 'fine');
});
