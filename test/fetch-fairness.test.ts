// Outbound fairness and deadlines: each account has its own budget of outbound connections (in
// all and per destination), so one account holding unread responses cannot starve another's
// fetch to the same destination; a fetch past its account's budget waits in line and goes when
// a connection is released; a destination that never answers, or never finishes, is cut by the
// wall-clock deadlines; and the end of a request releases the connections of the responses it
// left unread. The upstreams are servers on 127.0.0.1, allowed by the runtimes' egress policy.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, moduleWorker, type Served } from './support/serve.ts';
import { EgressPolicy } from '../src/api/fetch/egress-policy.ts';
import { ConnectionSlots } from '../src/api/fetch/connection-slots.ts';

const GUARD_MS = 20_000;

interface Upstream {
  server: Server;
  base: string;
  /** Requests seen, by path and ?who=. */
  seen: string[];
  /** Connections of /hold and /never requests that have closed. */
  closed: number;
  open: number;
  /** Resolves when `closed` reaches n. */
  closedCount(n: number): Promise<void>;
}

async function startUpstream(): Promise<Upstream> {
  const waiters: { n: number; resolve: () => void }[] = [];
  const up: Upstream = {
    server: undefined as unknown as Server, base: '', seen: [], closed: 0, open: 0,
    closedCount(n) {
      if (up.closed >= n) return Promise.resolve();
      return guarded(new Promise<void>((resolve) => waiters.push({ n, resolve })), `${n} upstream connections closed`);
    },
  };
  up.server = createServer((req: IncomingMessage, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    up.seen.push(url.pathname + (url.searchParams.get('who') ?? ''));
    if (url.pathname === '/hold' || url.pathname === '/never') {
      up.open++;
      req.socket.once('close', () => {
        up.open--;
        up.closed++;
        for (const w of waiters.filter((w) => up.closed >= w.n)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      });
      // /hold: a head and a first chunk, then nothing; /never: not even a head.
      if (url.pathname === '/hold') res.writeHead(200, { 'content-type': 'text/plain' }).write('first');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' }).end('ok');
  });
  await new Promise<void>((resolve) => up.server.listen(0, '127.0.0.1', resolve));
  up.base = `http://127.0.0.1:${(up.server.address() as AddressInfo).port}`;
  return up;
}

async function stopUpstream(up: Upstream): Promise<void> {
  up.server.closeAllConnections();
  await new Promise<void>((resolve) => up.server.close(() => resolve()));
}

function guarded<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`not seen within ${GUARD_MS} ms: ${what}`)), GUARD_MS))),
  ]);
}

const WORKER = `
const thrown = (e) => ({ name: e?.name, message: e?.message });
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const q = (name) => url.searchParams.get(name);
    const who = '?who=' + env.WHO;
    switch (url.pathname) {
      case '/hold': {
        // Holds n unread responses from UP1 and m from UP2 for as long as the client stays.
        const n = Number(q('n') ?? 0), m = Number(q('m') ?? 0);
        const held = await Promise.all([
          ...Array.from({ length: n }, () => fetch(env.UP1 + '/hold' + who)),
          ...Array.from({ length: m }, () => fetch(env.UP2 + '/hold' + who)),
        ]);
        const enc = new TextEncoder();
        return new Response(new ReadableStream({ start(c) { c.enqueue(enc.encode('held ' + held.length + '\\n')); } }));
      }
      case '/past-own-cap': {
        // Three unread responses (the per-destination cap), then a fourth fetch to the same place.
        const held = [];
        for (let i = 0; i < 3; i++) held.push(await fetch(env.UP1 + '/echo' + who));
        const fourth = await fetch(env.UP1 + '/echo' + who);
        const outcome = async (r) => { try { return 'read ' + (await r.text()); } catch (e) { return e.message; } };
        return Response.json([await outcome(fourth), ...(await Promise.all(held.map(outcome)))]);
      }
      case '/one': {
        try {
          const r = await fetch(env[q('up') ?? 'UP1'] + '/echo' + who);
          return new Response(r.status + ' ' + (await r.text()));
        } catch (e) { return Response.json(thrown(e)); }
      }
      case '/leave': {
        // A response left unread when the request ends.
        await fetch(env.UP1 + '/hold' + who);
        return new Response('left');
      }
      case '/never': {
        try { await fetch(env.UP1 + '/never' + who); return new Response('answered?'); }
        catch (e) { return Response.json(thrown(e)); }
      }
      case '/read-forever': {
        const r = await fetch(env.UP1 + '/hold' + who);
        try { await r.text(); return new Response('ended?'); }
        catch (e) { return Response.json(thrown(e)); }
      }
    }
    return new Response('no route', { status: 404 });
  },
};`;

/** A request whose response head and first line have come; `close()` drops the connection. */
function holdRequest(served: Served, worker: string, path: string): Promise<{ first: string; close(): void }> {
  const port = Number(new URL(served.url).port);
  return guarded(new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host: `${worker}.localhost` }, agent: false }, (res) => {
      res.setEncoding('utf8');
      res.once('data', (first: string) => resolve({ first, close: () => req.destroy() }));
      res.on('error', () => {});
    });
    req.on('error', reject);
    req.end();
  }), `the first line of ${path}`);
}

async function text(served: Served, worker: string, path: string): Promise<string> {
  const response = await guarded(served.fetch(worker, path), `an answer to ${path}`);
  return response.text();
}

describe('per-account connection budgets', () => {
  let up1: Upstream;
  let up2: Upstream;
  let served: Served;
  before(async () => {
    up1 = await startUpstream();
    up2 = await startUpstream();
    const vars = (who: string) => ({ UP1: up1.base, UP2: up2.base, WHO: who });
    served = await serve(
      {
        a: moduleWorker(WORKER, { account: 'A', vars: vars('A') }),
        // Another worker of the same account: the budget is the account's, not the worker's.
        a2: moduleWorker(WORKER, { account: 'A', vars: vars('A') }),
        b: moduleWorker(WORKER, { account: 'B', vars: vars('B') }),
      },
      { egress: { allow: ['127.0.0.1'], connectionsPerAccount: 4, connectionsPerDestination: 3 } },
    );
  });
  after(async () => {
    await served.close();
    await stopUpstream(up1);
    await stopUpstream(up2);
  });

  test("account A at its caps: B's fetch to the same destination completes; A's next one waits, and goes when A's connections are released", async () => {
    // A holds 3 unread responses from UP1 (its per-destination cap) and 1 from UP2 (its 4 in all).
    const holder = await holdRequest(served, 'a', '/hold?n=3&m=1');
    assert.equal(holder.first, 'held 4\n');
    assert.equal(up1.open + up2.open, 4);

    // A's next fetch, to UP2 which has room for it, is over A's total: it waits in line.
    const waiting = text(served, 'a2', '/one?up=UP2');
    // B is served meanwhile, on UP1 where A is at its cap, and on UP2.
    assert.equal(await text(served, 'b', '/one?up=UP1'), '200 ok');
    assert.equal(await text(served, 'b', '/one?up=UP2'), '200 ok');
    assert.ok(!up2.seen.includes('/echoA'), "A's fetch past its cap did not reach the upstream");

    // The holder goes: its request ends, its 4 connections are closed, and A's waiting fetch goes.
    const [closed1, closed2] = [up1.closed, up2.closed];
    holder.close();
    await up1.closedCount(closed1 + 3);
    await up2.closedCount(closed2 + 1);
    assert.equal(up1.open + up2.open, 0, 'every held connection was released');
    assert.equal(await waiting, '200 ok');
    assert.ok(up2.seen.includes('/echoA'));
  });

  test('a request that waits on its own unread responses is not deadlocked: the least recently used one is cancelled, as in workerd', async () => {
    const outcomes = JSON.parse(await text(served, 'b', '/past-own-cap')) as string[];
    assert.equal(outcomes[0], 'read ok');
    assert.match(outcomes[1]!, /cancelled because the worker started another fetch\(\) while it held the most connections/);
    assert.deepEqual(outcomes.slice(2), ['read ok', 'read ok']);
  });

  test('a response left unread when its request ends: its connection is closed', async () => {
    const before = up1.closed;
    assert.equal(await text(served, 'b', '/leave'), 'left');
    await up1.closedCount(before + 1);
    // B's budget is whole again: 3 fetches to UP1 at once go through.
    const holder = await holdRequest(served, 'b', '/hold?n=3');
    assert.equal(holder.first, 'held 3\n');
    holder.close();
    await up1.closedCount(before + 4);
  });
});

describe('wall-clock deadlines', () => {
  let up: Upstream;
  let served: Served;
  before(async () => {
    up = await startUpstream();
    const vars = { UP1: up.base, UP2: up.base, WHO: 'Q' };
    served = await serve(
      {
        q: moduleWorker(WORKER, { account: 'Q', vars }),
        q2: moduleWorker(WORKER, { account: 'Q', vars }),
      },
      { egress: { allow: ['127.0.0.1'], connectionsPerAccount: 1, headersTimeoutMs: 300, timeoutMs: 1500 } },
    );
  });
  after(async () => {
    await served.close();
    await stopUpstream(up);
  });

  test('no response head within headersTimeoutMs: a TimeoutError that says so, and the connection is closed', async () => {
    const before = up.closed;
    const error = JSON.parse(await text(served, 'q', '/never'));
    assert.equal(error.name, 'TimeoutError');
    assert.match(error.message, /timed out after 300 ms without a response/);
    await up.closedCount(before + 1);
  });

  test('a body that never ends is cut at timeoutMs: the read rejects with a TimeoutError, the connection is closed', async () => {
    const before = up.closed;
    const error = JSON.parse(await text(served, 'q', '/read-forever'));
    assert.equal(error.name, 'TimeoutError');
    assert.match(error.message, /took longer than 1500 ms/);
    await up.closedCount(before + 1);
  });

  test('waiting for a connection counts against headersTimeoutMs, and the error names the budget and the fix', async () => {
    const holder = await holdRequest(served, 'q', '/hold?n=1');
    try {
      const error = JSON.parse(await text(served, 'q2', '/one'));
      assert.equal(error.name, 'TimeoutError');
      assert.match(error.message, /waiting for a free connection: this account has 1 outbound connections in use \(at most 1/);
      assert.match(error.message, /response\.body\.cancel\(\)/);
      assert.ok(!up.seen.includes('/echoQ'));
    } finally {
      holder.close();
    }
  });
});

describe('ConnectionSlots (unit)', () => {
  const limits = new EgressPolicy({ connectionsPerAccount: 3, connectionsPerDestination: 2 }).limits;

  test('caps per account and per destination; waiters go in order, skipping a full destination; an abort leaves the line', async () => {
    const slots = new ConnectionSlots(limits);
    const never = new AbortController().signal;
    const x1 = await slots.acquire('A', 'x', never);
    const x2 = await slots.acquire('A', 'x', never);
    let x3: unknown;
    const waitingX = slots.acquire('A', 'x', never).then((s) => (x3 = s));
    const y1 = await slots.acquire('A', 'y', never); // y has room, and A has 3 in all now
    const aborter = new AbortController();
    const aborted = slots.acquire('A', 'z', aborter.signal);
    let z: unknown;
    const waitingZ = slots.acquire('A', 'z', never).then((s) => (z = s));
    assert.equal(slots.inUse('A'), 3);
    assert.equal(slots.waiting('A'), 3);
    // Another account is not held up by A.
    const b = await slots.acquire('B', 'x', never);
    aborter.abort(new Error('gone'));
    await assert.rejects(aborted, /gone/);
    // y1 goes: x is still full for A (2), so the first z waiter in line goes.
    y1.release();
    await waitingZ;
    assert.ok(z !== undefined && x3 === undefined);
    x1.release();
    await waitingX;
    assert.ok(x3 !== undefined);
    x1.release(); // a second release changes nothing
    assert.equal(slots.inUse('A'), 3);
    for (const s of [x2, x3, z, b] as { release(): void }[]) s.release();
    assert.equal(slots.inUse('A'), 0);
    slots.close();
  });

  test('bad limits are a TypeError naming the option', () => {
    assert.throws(() => new EgressPolicy({ connectionsPerAccount: 0 }), /egress\.connectionsPerAccount must be a whole number/);
    assert.throws(() => new EgressPolicy({ timeoutMs: -1 }), /egress\.timeoutMs/);
  });
});
