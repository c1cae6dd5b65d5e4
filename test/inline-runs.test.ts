// Requests that start on the calling thread (src/runtime/inline-runs.ts): a worker that keeps
// answering quickly runs its handler's first step inline, and that changes nothing a tenant or
// a client can see; a worker whose inline run goes long goes back to its own thread, and one
// that holds the thread for long pauses inline runs for every worker, for longer each time.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, moduleWorker, type Served } from './support/serve.ts';
import { BUSY_ELU, ROOM_ELU, DEMOTED_MS, FIRST_PAUSE_MS, INLINE_AFTER_QUICK, INLINE_MAX_LIMIT_MS, INLINE_MAX_RUN_NS, InlineRuns, MAX_PAUSE_MS, STALL_NS } from '../src/runtime/inline-runs.ts';
import { NEVER_RESPONDS_BODY } from '../src/runtime/never-responds.ts';
import { Runtime } from '../src/runtime/runtime.ts';
import { fetchText } from './support/fetch-text.ts';
import { createServer as createNetServer, connect } from 'node:net';

describe('the gate', () => {
  const clock = () => {
    const at = { now: 1_000_000 };
    const load = { utilization: 0 };
    return { at, load, gate: new InlineRuns({ now: () => at.now, utilization: () => load.utilization }) };
  };

  test('a worker runs inline after enough quick requests in a row, and never with a CPU limit above the bound', () => {
    const { gate } = clock();
    assert.equal(gate.allows('a', INLINE_AFTER_QUICK - 1, 50), false);
    assert.equal(gate.allows('a', INLINE_AFTER_QUICK, 50), true);
    assert.equal(gate.allows('a', INLINE_AFTER_QUICK, INLINE_MAX_LIMIT_MS), true);
    assert.equal(gate.allows('a', 1000, INLINE_MAX_LIMIT_MS + 1), false);
  });

  test('while the serving thread is busy, requests go to the isolates\' threads, until it has room again', () => {
    const { at, load, gate } = clock();
    assert.equal(gate.allows('a', 100, 50), true);
    // Each step: the utilisation at the next look, and whether the gate then allows an inline run.
    // Between the two bounds it stays as it was.
    const steps: [utilization: number, allowed: boolean][] = [
      [BUSY_ELU - 0.01, true],
      [BUSY_ELU + 0.01, false],
      [ROOM_ELU + 0.01, false],
      [ROOM_ELU - 0.01, true],
      [ROOM_ELU + 0.01, true],
    ];
    for (const [utilization, allowed] of steps) {
      load.utilization = utilization;
      at.now += 1_000;
      assert.equal(gate.allows('a', 100, 50), allowed, `utilisation ${utilization}`);
      assert.equal(gate.busy, !allowed);
    }
  });

  test('a run past the quick bound sends that worker back to its own thread for a while, and no other', () => {
    const { at, gate } = clock();
    assert.equal(gate.ran('a', INLINE_MAX_RUN_NS), true);
    assert.equal(gate.ran('a', INLINE_MAX_RUN_NS + 1), false);
    assert.equal(gate.stalls, 0);
    assert.equal(gate.allows('a', 100, 50), false);
    assert.equal(gate.allows('b', 100, 50), true);
    at.now += DEMOTED_MS - 1;
    assert.equal(gate.allows('a', 100, 50), false);
    at.now += 1;
    assert.equal(gate.allows('a', 100, 50), true);
  });

  test('a stall pauses inline runs for all, each stall doubling the pause up to the most; a long quiet spell starts over', () => {
    const { at, gate } = clock();
    const pauses: number[] = [];
    for (let i = 0; i < 12; i++) {
      assert.equal(gate.ran(`w${i}`, STALL_NS + 1), false);
      let paused = 0;
      while (!gate.allows('other', 100, 50)) {
        at.now += 250;
        paused += 250;
      }
      pauses.push(paused);
    }
    assert.equal(gate.stalls, 12);
    assert.deepEqual(pauses.slice(0, 4), [FIRST_PAUSE_MS, 2 * FIRST_PAUSE_MS, 4 * FIRST_PAUSE_MS, 8 * FIRST_PAUSE_MS]);
    assert.equal(pauses.at(-1), MAX_PAUSE_MS);
    at.now += 2 * MAX_PAUSE_MS;
    gate.ran('late', STALL_NS + 1);
    assert.equal(gate.allows('other', 100, 50), false);
    at.now += FIRST_PAUSE_MS;
    assert.equal(gate.allows('other', 100, 50), true);
  });
});

// Each step is its own request, so that each starts inline; the answers must be the same with
// every request inline and with none.
const STEPS_WORKER = String.raw`
let upstream;
const STEPS = {
  order: () => { const log = []; Promise.resolve().then(() => log.push('micro')); new URLSearchParams('a=1'); new TextEncoder(); log.push('sync'); return Promise.resolve().then(() => log.join()); },
  url: () => new URL('/x?d=1#h', 'http://a.b').href,
  headers: () => { const h = new Headers([['a', '1']]); h.append('b', '2'); return [...h].join(); },
  json: async () => (await Response.json({ x: 1 }).json()).x,
  digest: async () => new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode('x')))[0],
  timer: () => new Promise((r) => setTimeout(() => r('t'), 2)),
  clone: () => structuredClone(new Map([[1, { a: [2] }]])).get(1).a[0],
  stream: async () => await new Response(new Response('zip').body.pipeThrough(new CompressionStream('gzip')).pipeThrough(new DecompressionStream('gzip'))).text(),
  console: () => { console.log('inline?', 1); return 'logged'; },
  fetch: async () => { const r = await fetch(upstream); return r.status + (await r.text()); },
};
export default {
  async fetch(request, env, ctx) {
    upstream = env.UP;
    const { pathname, searchParams } = new URL(request.url);
    if (pathname === '/step') return new Response(String(await STEPS[searchParams.get('name')]()));
    if (pathname === '/throw') throw new Error('thrown on purpose');
    if (pathname === '/never') return new Promise(() => {});
    if (pathname === '/echo') return new Response('echo ' + (await request.text()));
    if (pathname === '/wait-until') { ctx.waitUntil(new Promise((r) => setTimeout(r, 5)).then(() => console.log('waited'))); return new Response('soon'); }
    if (pathname === '/streamed') {
      let n = 0;
      return new Response(new ReadableStream({ pull(c) { if (n++ < 3) c.enqueue(new TextEncoder().encode('part' + n + ' ')); else c.close(); } }));
    }
    return new Response('hello');
  },
};`;

describe('inline and not, the same answers', () => {
  let upstream: Server;
  let inline: Served;
  let threaded: Served;
  const gate = new InlineRuns({ afterQuick: 0, maxRunNs: Infinity, stallNs: Infinity, utilization: () => 0 });

  before(async () => {
    upstream = createServer((_req, res) => res.end('from upstream'));
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const worker = moduleWorker(STEPS_WORKER, { vars: { UP: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/` } });
    const options = { egress: { allow: ['127.0.0.1'] } };
    inline = await serve({ w: worker }, { ...options, inlineRuns: gate });
    threaded = await serve({ w: worker }, { ...options, inlineRuns: false });
  });

  after(async () => {
    await inline?.close();
    await threaded?.close();
    await new Promise<void>((resolve) => upstream?.close(() => resolve()));
  });

  const answer = async (served: Served, path: string, init?: RequestInit) => {
    const response = await served.fetch('w', path, init);
    return `${response.status} ${await response.text()}`;
  };

  test('every step, first use and later, answers the same', { timeout: 60_000 }, async () => {
    const paths = ['/', '/step?name=order', '/step?name=url', '/step?name=headers', '/step?name=json', '/step?name=digest', '/step?name=timer',
      '/step?name=clone', '/step?name=stream', '/step?name=console', '/step?name=fetch', '/throw', '/never', '/wait-until', '/streamed'];
    const before = gate.runs;
    for (let round = 0; round < 2; round++) {
      for (const path of paths) assert.equal(await answer(inline, path), await answer(threaded, path), `${path}, round ${round + 1}`);
      assert.equal(await answer(inline, '/echo', { method: 'POST', body: 'abc' }), '200 echo abc');
    }
    assert.equal(await answer(inline, '/step?name=order'), '200 sync,micro');
    assert.equal(await answer(inline, '/never'), `500 ${NEVER_RESPONDS_BODY}`);
    assert.match(await answer(inline, '/throw'), /^500 Error 1101: Worker threw exception/);
    // Requests one after another find the isolate idle: most start inline (a request's leftover
    // work, such as the end of a waitUntil, may still be queued when the next comes).
    const requests = 2 * (paths.length + 1) + 3;
    assert.ok(gate.runs - before >= requests / 2, `${gate.runs - before} of ${requests} requests ran inline`);
    const logged = (served: Served) => served.logs.filter((entry) => entry.type === 'console').map((entry) => entry.message).sort();
    assert.deepEqual(logged(inline), logged(threaded));
  });
});

describe('a worker that turns slow', () => {
  let served: Served;
  const at = { now: 1_000_000 };
  // Its own clock, so that a pause lasts until the test moves it on; a stall is a run past 45 ms,
  // so that /slow is long (over 2 ms) but no stall on a machine three times slower or faster.
  const gate = new InlineRuns({ now: () => at.now, stallNs: 45_000_000, utilization: () => 0 });
  const FLIP = moduleWorker(`
export default {
  fetch(request) {
    const { pathname } = new URL(request.url);
    if (pathname === '/loop') for (;;) {}
    // About 15 ms of CPU here (Date.now() stands still while a request runs, as in workerd).
    if (pathname === '/slow') { let x = ''; for (let i = 0; i < 15000; i++) x = JSON.stringify({ i, n: x.length, s: 'abc' + i }); if (x === '') return new Response('never'); }
    return new Response('quick');
  },
};`);

  before(async () => {
    served = await serve({ flip: FLIP, flop: FLIP, slow: FLIP, calm: moduleWorker(`export default { fetch() { return new Response('calm'); } };`) }, { inlineRuns: gate });
  });
  after(async () => {
    await served?.close();
  });

  const quick = async (worker: string, times: number) => {
    for (let i = 0; i < times; i++) {
      const response = await served.fetch(worker, '/');
      assert.equal(await response.text(), 'quick');
    }
  };

  test('an inline run over its quick bound sends the worker back to its own thread', { timeout: 60_000 }, async () => {
    await quick('slow', INLINE_AFTER_QUICK + 1);
    const runs = gate.runs;
    assert.ok(runs >= 1, 'a quick worker ran inline');
    const response = await served.fetch('slow', '/slow');
    assert.equal(response.status, 200);
    await response.text();
    assert.equal(gate.runs, runs + 1);
    // Demoted: its quick requests run on its own thread now.
    await quick('slow', INLINE_AFTER_QUICK + 1);
    assert.equal(gate.runs, runs + 1);
    assert.equal(gate.stalls, 0);
  });

  test('a loop run inline is stopped at the CPU limit, pauses inline runs for all, and the others are served', { timeout: 60_000 }, async () => {
    await quick('flip', INLINE_AFTER_QUICK + 1);
    await quick('flop', INLINE_AFTER_QUICK + 1);
    const loop = await served.fetch('flip', '/loop');
    assert.equal(loop.status, 503);
    await loop.text();
    assert.equal(gate.stalls, 1);
    const entry = served.logs.find((e) => e.worker === 'flip' && e.type === 'limit');
    assert.ok(entry, 'the CPU limit is logged');
    // Paused: the next looping worker loops on its own thread, as before inline runs existed.
    const runs = gate.runs;
    const second = await served.fetch('flop', '/loop');
    assert.equal(second.status, 503);
    await second.text();
    assert.equal(gate.runs, runs);
    assert.equal(gate.stalls, 1);
    assert.equal(await (await served.fetch('calm', '/')).text(), 'calm');
    // After the pause, a stall pauses for twice as long.
    at.now += FIRST_PAUSE_MS;
    await quick('flop', INLINE_AFTER_QUICK + 1);
    const third = await served.fetch('flop', '/loop');
    assert.equal(third.status, 503);
    await third.text();
    assert.equal(gate.stalls, 2);
    at.now += FIRST_PAUSE_MS;
    assert.equal(gate.allows('calm', 100, 50), false);
    at.now += FIRST_PAUSE_MS;
    assert.equal(gate.allows('calm', 100, 50), true);
    assert.equal(await (await served.fetch('calm', '/')).text(), 'calm');
  });
});

test('a request answered in its inline run is never taken for one that can never be answered', { timeout: 60_000 }, async () => {
  // The answer an inline run posts reaches the host with the next turn's I/O. A look for
  // requests that can never be answered, begun a turn before (here by a request that really
  // never answers), must not judge a request whose inline run came after its first look.
  const runtime = new Runtime({ log: () => {}, inlineRuns: new InlineRuns({ afterQuick: 0, utilization: () => 0 }) });
  try {
    await runtime.load('w', moduleWorker(`export default { fetch(request) { return new URL(request.url).pathname === '/never' ? new Promise(() => {}) : new Response('ok'); } };`));
    assert.equal((await fetchText(runtime, 'w', '/')).text, 'ok');
    const turns = (n: number) => new Promise<void>((resolve) => {
      const step = (left: number) => (left === 0 ? resolve() : setImmediate(() => step(left - 1)));
      step(n);
    });
    // Each byte the client sends starts a request from the server socket's data callback.
    const pending: ((answer: Promise<{ status: number; text: string }>) => void)[] = [];
    const server = createNetServer((socket) => socket.on('data', (bytes) => {
      for (let i = 0; i < bytes.length; i++) pending.shift()!(fetchText(runtime, 'w', '/'));
    }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    client.setNoDelay(true);
    await new Promise((resolve) => client.once('connect', resolve));
    try {
      for (let trial = 0; trial < 20; trial++) {
        const never = fetchText(runtime, 'w', '/never');
        // Requests that start zero to three turns later, from a socket's data (as requests do):
        // one of them falls between the two looks.
        const answers = await Promise.all([0, 1, 2, 3].map(async (n) => {
          await turns(n);
          return new Promise<{ status: number; text: string }>((resolve, reject) => {
            pending.push((answer) => answer.then(resolve, reject));
            client.write('x');
          });
        }));
        assert.deepEqual(answers.map((a) => `${a.status} ${a.text}`), ['200 ok', '200 ok', '200 ok', '200 ok'], `trial ${trial}`);
        assert.equal((await never).status, 500);
      }
    } finally {
      client.destroy();
      server.close();
    }
  } finally {
    await runtime.close();
  }
});
