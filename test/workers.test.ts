// What a worker can count on: module and service-worker syntax, imports between its modules,
// env, module state across requests, ctx.waitUntil, timers, console lines tagged with the worker.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serve, moduleWorker, type Served } from './support/serve.ts';
import { Runtime } from '../src/runtime/runtime.ts';
import { connect } from 'node:net';
import { WorkerLoadError } from '../src/runtime/types.ts';

let served: Served;
before(async () => {
  served = await serve({
    modules: {
      modules: [
        { name: 'src/index.js', source: `import { greet } from './lib/greet.js';\nimport config from '../config.js';\nlet count = 0;\nexport default { fetch(request, env) { count++; return new Response(greet(env.NAME) + ' #' + count + ' ' + config.flavour + ' ' + JSON.stringify(env.SETTINGS)); } };` },
        { name: 'src/lib/greet.js', source: `export function greet(name) { return 'hello ' + name; }` },
        { name: 'config.js', source: `export default { flavour: 'vanilla' };` },
      ],
      main: 'src/index.js',
      vars: { NAME: 'tenant', SETTINGS: { deep: [1, 2, { x: true }] } },
    },
    sw: {
      script: `addEventListener('fetch', (event) => {\n  if (!(event instanceof FetchEvent) || FetchEvent.name !== 'FetchEvent') throw new Error('not a FetchEvent');\n  event.respondWith(handle(event.request));\n});\nasync function handle(request) { return new Response('sw ' + request.method + ' ' + GREETING + ' ' + (await request.text())); }`,
      vars: { GREETING: 'hi' },
    },
    background: moduleWorker(`
const seen = [];
export default {
  async fetch(request, env, ctx) {
    const { pathname, searchParams } = new URL(request.url);
    if (pathname === '/wait-until') {
      ctx.waitUntil(new Promise((resolve) => setTimeout(() => { console.log('waitUntil finished', 42); resolve(); }, 30)));
      return new Response('answered first');
    }
    if (pathname === '/wait-until-later') {
      // Registered by a microtask the handler queued: it runs before the response is taken.
      queueMicrotask(() => ctx.waitUntil(new Promise((resolve) => setTimeout(() => { console.log('later waitUntil finished'); resolve(); }, 30))));
      return new Response('answered first');
    }
    if (pathname === '/wait-until-deep') {
      // Promise callbacks \`depth\` deep, as a library's chain of then()s would be.
      const depth = Number(searchParams.get('depth') ?? 10);
      let chain = Promise.resolve();
      for (let i = 0; i < depth; i++) chain = chain.then(() => {});
      chain.then(() => ctx.waitUntil(new Promise((resolve) => setTimeout(() => { console.log('deep waitUntil finished', depth); resolve(); }, 30))));
      return new Response('answered first');
    }
    if (pathname === '/timers') {
      const order = [];
      const intervals = new Promise((resolve) => {
        let ticks = 0;
        const interval = setInterval(() => { order.push('interval' + ++ticks); if (ticks === 3) { clearInterval(interval); resolve(); } }, 2);
      });
      const cancelled = setTimeout(() => order.push('cancelled'), 1);
      clearTimeout(cancelled);
      queueMicrotask(() => order.push('microtask'));
      const withArgs = new Promise((resolve) => setTimeout((a, b) => { order.push('args ' + a + b); resolve(); }, 0, 'x', 'y'));
      await Promise.all([intervals, withArgs, new Promise((resolve) => setTimeout(resolve, 10))]);
      return Response.json(order);
    }
    if (pathname === '/console') {
      console.log('plain', 1, { a: [1, 2] }, null);
      console.warn('%s is %d years', 'isolet', 1);
      console.error(new Error('logged error'));
      return new Response('logged');
    }
    if (pathname === '/hang-until-abort') {
      console.log('waiting for abort');
      // A pending timer keeps the request waiting: a promise only the client's disconnect could
      // settle counts as never settled (500 at once), as in workerd.
      const keepAlive = setTimeout(() => {}, 20000);
      const reason = await new Promise((resolve) => request.signal.addEventListener('abort', () => resolve(request.signal.reason)));
      clearTimeout(keepAlive);
      console.log('aborted: ' + reason.name + ' ' + request.signal.aborted);
      return new Response('too late');
    }
    if (pathname === '/signal-after-abort') {
      console.log('not reading the signal yet');
      // request.signal is first read after the client has gone: it is already aborted.
      await new Promise((resolve) => setTimeout(resolve, 500));
      console.log('read late: ' + request.signal.aborted + ' ' + request.signal.reason?.name);
      return new Response('too late');
    }
    if (pathname === '/random') {
      const bytes = crypto.getRandomValues(new Uint8Array(32));
      return Response.json({ uuid: crypto.randomUUID(), nonZero: bytes.some((b) => b !== 0), clone: structuredClone({ a: new Map([[1, 2]]) }).a.get(1) });
    }
    return new Response('?', { status: 404 });
  },
};`),
    globalscope: moduleWorker(`
let timerError = '', randomError = '';
try { setTimeout(() => {}, 1); } catch (e) { timerError = e.message; }
try { crypto.getRandomValues(new Uint8Array(4)); } catch (e) { randomError = e.message; }
export default { fetch() { return Response.json({ timerError, randomError }); } };`),
  });
});
after(() => served.close());

test('module workers import between their own modules, see env, and keep module state', async () => {
  const first = await served.fetch('modules', '/');
  assert.equal(await first.text(), 'hello tenant #1 vanilla {"deep":[1,2,{"x":true}]}');
  const second = await served.fetch('modules', '/');
  assert.equal(await second.text(), 'hello tenant #2 vanilla {"deep":[1,2,{"x":true}]}');
});

test('service-worker scripts respond through addEventListener, with vars as globals', async () => {
  const response = await served.fetch('sw', '/', { method: 'POST', body: 'payload' });
  assert.equal(response.status, 200);
  assert.equal(await response.text(), 'sw POST hi payload');
});

test('ctx.waitUntil keeps the isolate working after the response', async () => {
  const response = await served.fetch('background', '/wait-until');
  assert.equal(await response.text(), 'answered first');
  const entry = await served.waitForLog((e) => e.worker === 'background' && e.message === 'waitUntil finished 42');
  assert.equal(entry.type, 'console');
  assert.equal(entry.level, 'log');
});

test('ctx.waitUntil called from a microtask the handler queued counts too', async () => {
  const response = await served.fetch('background', '/wait-until-later');
  assert.equal(await response.text(), 'answered first');
  await served.waitForLog((e) => e.worker === 'background' && e.message === 'later waitUntil finished');
});

test('ctx.waitUntil called from promise callbacks ten deep that the handler left queued counts too', async () => {
  const response = await served.fetch('background', '/wait-until-deep');
  assert.equal(await response.text(), 'answered first');
  await served.waitForLog((e) => e.worker === 'background' && e.message === 'deep waitUntil finished 10');
});

test('ctx.waitUntil from a chain of callbacks a thousand deep counts too: the request waits for the microtask queue to be empty, as workerd does', async () => {
  const response = await served.fetch('background', '/wait-until-deep?depth=1000');
  assert.equal(await response.text(), 'answered first');
  // The request's line is logged when its work ends: after its waitUntil work, which logs first.
  const ended = await served.waitForLog((e) => e.worker === 'background' && e.type === 'request' && String(e.url).endsWith('depth=1000'));
  const finished = await Promise.race([
    served.waitForLog((e) => e.worker === 'background' && e.message === 'deep waitUntil finished 1000'),
    Promise.resolve(undefined),
  ]);
  assert.ok(finished, `the waitUntil registered a thousand callbacks deep never ran; the request ended as ${ended.message}`);
});

test('timers: setTimeout with arguments, setInterval, clears, queueMicrotask', async () => {
  const response = await served.fetch('background', '/timers');
  const order = (await response.json()) as string[];
  // Host timers of different delays may fire in either order on a loaded machine; what holds
  // is: the microtask first, every callback once, intervals in sequence, the cleared one never.
  assert.equal(order[0], 'microtask');
  assert.deepEqual([...order].sort(), ['args xy', 'interval1', 'interval2', 'interval3', 'microtask']);
  assert.deepEqual(order.filter((x) => x.startsWith('interval')), ['interval1', 'interval2', 'interval3']);
});

test("console lines reach the host's log, tagged with the worker and level", async () => {
  await (await served.fetch('background', '/console')).text();
  const plain = await served.waitForLog((e) => e.worker === 'background' && e.message.startsWith('plain'));
  assert.equal(plain.message, 'plain 1 { a: [ 1, 2 ] } null');
  const warn = await served.waitForLog((e) => e.worker === 'background' && e.level === 'warn');
  assert.equal(warn.message, 'isolet is 1 years');
  const error = await served.waitForLog((e) => e.worker === 'background' && e.level === 'error' && e.type === 'console');
  assert.match(error.message, /^Error: logged error\n\s+at /);
});

test('every request gets a summary line with status, CPU and wall time', async () => {
  await (await served.fetch('modules', '/')).text();
  const entry = await served.waitForLog((e) => e.worker === 'modules' && e.type === 'request');
  assert.equal(entry.status, 200);
  assert.equal(typeof entry.cpuMs, 'number');
  assert.equal(typeof entry.wallMs, 'number');
});

test('crypto.getRandomValues, randomUUID and structuredClone', async () => {
  const body = (await (await served.fetch('background', '/random')).json()) as { uuid: string; nonZero: boolean; clone: number };
  assert.match(body.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(body.nonZero, true);
  assert.equal(body.clone, 2);
});

test('timers and random values are refused at global scope, as in Workers', async () => {
  const body = (await (await served.fetch('globalscope', '/')).json()) as Record<string, string>;
  assert.match(body.timerError!, /Disallowed operation called within global scope/);
  assert.match(body.randomError!, /Disallowed operation called within global scope/);
});

test('load rejects broken workers with errors that name the cause, and keeps the old version', async () => {
  const runtime = new Runtime({ log: () => {} });
  try {
    await runtime.load('w', { modules: [{ name: 'main.js', source: `export default { fetch() { return new Response('v1'); } };` }] });
    const cases: [string, Parameters<Runtime['load']>[1], RegExp][] = [
      ['syntax error', { modules: [{ name: 'main.js', source: 'export default {\n  fetch() { return 1 +* 2 }\n};' }] }, /^main\.js:2:\d+: SyntaxError: Unexpected token '\*'/],
      ['no handler', { modules: [{ name: 'main.js', source: 'export const x = 1;' }] }, /no fetch handler.*exports x/],
      ['missing import', { modules: [{ name: 'main.js', source: `import './nope.js'; export default { fetch() {} };` }] }, /Cannot find module '\.\/nope\.js' imported from main\.js/],
      ['throws at load', { modules: [{ name: 'main.js', source: `throw new Error('top-level failure');` }] }, /threw while loading: Error: top-level failure/],
      ['no listener', { script: 'const x = 1;' }, /registers no fetch handler/],
      ['no code', {}, /has no code/],
      ['bad limit', { script: 'x', limits: { cpuMs: -1 } }, /Invalid limit cpuMs/],
    ];
    for (const [label, definition, pattern] of cases) {
      await assert.rejects(runtime.load('w', definition), (error: unknown) => {
        assert.ok(error instanceof WorkerLoadError, label);
        assert.match(error.message, pattern, label);
        return true;
      });
    }
    await assert.rejects(runtime.load('Bad Name!', { script: 'x' }), /Invalid worker name/);
    const response = await runtime.fetch('w', { method: 'GET', url: 'http://w/', headers: [] });
    assert.equal(Buffer.from(response.body as Uint8Array).toString(), 'v1', 'the last good version still serves');
    const syntax = await runtime.load('w', { modules: [{ name: 'main.js', source: 'export default {\n  fetch() { return 1 +* 2 }\n};' }] }).catch((e) => e);
    assert.equal(syntax.location, 'main.js:2:23');
  } finally {
    await runtime.close();
  }
});

test('an unknown worker is an error with a code', async () => {
  const runtime = new Runtime({ log: () => {} });
  await assert.rejects(runtime.fetch('nobody', { method: 'GET', url: 'http://x/', headers: [] }), { code: 'ERR_UNKNOWN_WORKER' });
  await runtime.close();
});

test('a new version serves new requests; in-flight requests finish on the old one', async () => {
  const runtime = new Runtime({ log: () => {} });
  try {
    await runtime.load('v', { modules: [{ name: 'main.js', source: `export default { async fetch(request) { if (request.url.endsWith('/slow')) await new Promise((r) => setTimeout(r, 100)); return new Response('v1'); } };` }] });
    const slow = runtime.fetch('v', { method: 'GET', url: 'http://v/slow', headers: [] });
    await runtime.load('v', { modules: [{ name: 'main.js', source: `export default { fetch() { return new Response('v2'); } };` }] });
    const fresh = await runtime.fetch('v', { method: 'GET', url: 'http://v/', headers: [] });
    assert.equal(Buffer.from(fresh.body as Uint8Array).toString(), 'v2');
    const old = await slow;
    assert.equal(old.status, 200);
    assert.equal(Buffer.from(old.body as Uint8Array).toString(), 'v1');
  } finally {
    await runtime.close();
  }
});

test("a client that disconnects aborts the worker's request.signal", async () => {
  const port = Number(new URL(served.url).port);
  const socket = connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`GET /hang-until-abort HTTP/1.1\r\nHost: background.localhost:${port}\r\n\r\n`);
  await served.waitForLog((e) => e.worker === 'background' && e.message === 'waiting for abort');
  socket.destroy();
  const entry = await served.waitForLog((e) => e.worker === 'background' && e.message.startsWith('aborted:'));
  assert.equal(entry.message, 'aborted: AbortError true');
});

test('request.signal first read after the client disconnected is already aborted', async () => {
  const port = Number(new URL(served.url).port);
  const socket = connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`GET /signal-after-abort HTTP/1.1\r\nHost: background.localhost:${port}\r\n\r\n`);
  await served.waitForLog((e) => e.worker === 'background' && e.message === 'not reading the signal yet');
  socket.destroy();
  const entry = await served.waitForLog((e) => e.worker === 'background' && e.message.startsWith('read late:'));
  assert.equal(entry.message, 'read late: true AbortError');
});

test('spare isolates made ahead of demand serve cold starts, and are replaced', async () => {
  const runtime = new Runtime({ log: () => {}, spareIsolates: 2 });
  const source = `let n = 0; export default { fetch() { return new Response('n=' + ++n); } };`;
  const until = async (check: () => boolean) => {
    while (!check()) await new Promise((resolve) => setTimeout(resolve, 5));
  };
  try {
    await runtime.load('first', { modules: [{ name: 'main.js', source }] });
    await until(() => runtime.spareIsolates === 2);
    await runtime.load('second', { modules: [{ name: 'main.js', source }] });
    assert.equal(runtime.spareIsolates, 1, 'the cold start took a spare');
    const response = await runtime.fetch('second', { method: 'GET', url: 'http://second/', headers: [] });
    assert.equal(Buffer.from(response.body as Uint8Array).toString(), 'n=1');
    await until(() => runtime.spareIsolates === 2);
    // A worker with its own memory limit cannot use a spare made with the default one.
    await runtime.load('big', { modules: [{ name: 'main.js', source }], limits: { memoryMb: 256 } });
    assert.equal(runtime.spareIsolates, 2);
    assert.equal(runtime.liveIsolates, 3);
  } finally {
    await runtime.close();
  }
  assert.equal(runtime.spareIsolates, 0, 'close disposes the spares');
});
