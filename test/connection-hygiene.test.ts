// Connection hygiene on both listeners of `isolet serve`, attacked the way a hostile client
// would: half-sent requests held open (slowloris) past the per-address and total caps, a head
// that never ends, a body trickled byte by byte. Each attack is bounded (tens of sockets, small
// timeouts set through options) and each checks that other clients, and the admin API, are
// still served. The attacker connects from 127.0.0.2 and the others from 127.0.0.1 (both are
// loopback), so the per-address cap tells them apart.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { request as httpRequest } from 'node:http';
import { startTestServer, moduleDeployment, type TestServer } from './server-support.ts';
import { clientKey, connectionLimits, DATA_PLANE_CONNECTION_LIMITS } from '../src/http/connection-limits.ts';
import { fitConnectionCaps } from '../src/server/fd-limit.ts';

const ATTACKER = '127.0.0.2';
/** A guard against a test hanging: never reached when the limits work. */
const GUARD_MS = 15_000;

interface Held {
  sockets: Socket[];
  /** Sockets the server closed, and what each had received. */
  closed: { socket: Socket; received: string }[];
  /** Resolves when `n` sockets have been closed by the server. */
  closedCount(n: number): Promise<void>;
  destroy(): void;
}

/** Opens `count` connections from `from`, each sending `prefix` and then nothing. */
async function hold(port: number, count: number, prefix: string, from = ATTACKER): Promise<Held> {
  const sockets: Socket[] = [];
  const closed: Held['closed'] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const opened: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const socket = connect({ host: '127.0.0.1', port, localAddress: from });
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', () => {});
    socket.once('close', () => {
      closed.push({ socket, received });
      for (const w of waiters.filter((w) => closed.length >= w.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    });
    opened.push(new Promise((resolve) => {
      socket.once('connect', () => {
        if (prefix !== '') socket.write(prefix);
        resolve();
      });
      socket.once('close', () => resolve());
    }));
    sockets.push(socket);
  }
  await Promise.all(opened);
  return {
    sockets,
    closed,
    closedCount(n) {
      if (closed.length >= n) return Promise.resolve();
      return guarded(new Promise<void>((resolve) => waiters.push({ n, resolve })), `${n} connections closed by the server`);
    },
    destroy() {
      for (const s of sockets) s.destroy();
    },
  };
}

function guarded<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`not seen within ${GUARD_MS} ms: ${what}`)), GUARD_MS))),
  ]);
}

/** A plain GET from 127.0.0.1 on a fresh connection: the status and body. */
function get(port: number, host: string, path: string): Promise<{ status: number; body: string }> {
  return guarded(new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  }), `an answer to GET ${path}`);
}

const HALF_REQUEST = 'GET / HTTP/1.1\r\nHost: x.localhost\r\nX-Slow: ';

describe('the per-address cap (slowloris from one address)', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      // Long timeouts: here only the cap may close anything.
      connections: { maxConnectionsPerAddress: 20, maxConnections: 1000, headersTimeoutMs: 120_000, idleTimeoutMs: 120_000 },
      adminConnections: { maxConnectionsPerAddress: 10, maxConnections: 50 },
    });
  });
  after(() => t.close());

  test('50 half-sent requests: 30 are closed at once, the other clients and the admin API are served', async () => {
    const attack = await hold(t.server.port, 50, HALF_REQUEST);
    try {
      await attack.closedCount(30);
      // Closed at accept: nothing was answered on them.
      assert.ok(attack.closed.every((c) => c.received === ''));
      const health = await get(t.server.port, 'x.localhost', '/healthz');
      assert.equal(health.status, 200);
      const admin = await t.api('GET', '/v1/accounts');
      assert.equal(admin.status, 200);
      // The 20 within the cap are still open: the cap refused, it did not evict.
      assert.equal(attack.closed.length, 30);
      const line = t.logs.find((l) => l.level === 'warn' && /maxConnectionsPerAddress/.test(String(l.message)));
      assert.ok(line, 'a warning names the cap');
      assert.equal(line.address, ATTACKER);
    } finally {
      attack.destroy();
    }
  });

  test('the admin API has its own per-address cap', async () => {
    const attack = await hold(t.server.adminPort, 15, HALF_REQUEST);
    try {
      await attack.closedCount(5);
      assert.equal((await t.api('GET', '/v1/accounts')).status, 200);
      assert.ok(t.logs.some((l) => l.type === 'admin' && /adminConnections\.maxConnectionsPerAddress/.test(String(l.message))));
    } finally {
      attack.destroy();
    }
  });
});

describe('the total cap', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      connections: { maxConnectionsPerAddress: 100, maxConnections: 20, headersTimeoutMs: 120_000, idleTimeoutMs: 120_000 },
    });
  });
  after(() => t.close());

  test('a data-plane flood past the total cap leaves the admin API reachable; the data plane serves again after it', async () => {
    const attack = await hold(t.server.port, 50, HALF_REQUEST);
    try {
      await attack.closedCount(30);
      assert.equal((await t.api('GET', '/v1/accounts')).status, 200);
      assert.ok(t.logs.some((l) => l.level === 'warn' && /maxConnections\)/.test(String(l.message))));
    } finally {
      attack.destroy();
    }
    // The attacker's sockets are gone: the data plane has room again.
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = await get(t.server.port, 'x.localhost', '/healthz').then((r) => r.status, () => 0);
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 200);
  });
});

describe('timeouts', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      connections: { headersTimeoutMs: 300, idleTimeoutMs: 600, requestTimeoutMs: 120_000 },
      adminConnections: { headersTimeoutMs: 300 },
    });
    const acme = await t.account('acme');
    const deployed = await t.api('PUT', '/v1/workers/reader', {
      token: acme.token,
      body: moduleDeployment(`export default {
        async fetch(request) {
          const url = new URL(request.url);
          if (url.pathname === '/slow') {
            // Longer than the idle timeout with nothing on the wire: the server's turn, not the client's.
            await new Promise((resolve) => setTimeout(resolve, 1200));
            return new Response('worth the wait');
          }
          return new Response('read ' + (await request.text()).length);
        },
      };`),
    });
    assert.equal(deployed.status, 201, deployed.text);
  });
  after(() => t.close());

  test('a request head that never ends gets 408 and is closed (data plane and admin API)', async () => {
    for (const port of [t.server.port, t.server.adminPort]) {
      const attack = await hold(port, 3, HALF_REQUEST);
      await attack.closedCount(3);
      for (const { received } of attack.closed) assert.match(received, /^HTTP\/1\.1 408 /);
    }
  });

  test('a connection that sends nothing is closed', async () => {
    const attack = await hold(t.server.port, 3, '');
    await attack.closedCount(3);
  });

  test('a body trickled one byte at a time is cut by the idle timeout; other requests are served', async () => {
    const head = 'POST / HTTP/1.1\r\nHost: reader.localhost\r\nContent-Length: 100\r\n\r\nx';
    const attack = await hold(t.server.port, 3, head);
    // Bytes keep coming, slower than the idle timeout allows: each gap is longer than it.
    const trickle = setInterval(() => {
      for (const s of attack.sockets) if (!s.destroyed) s.write('x');
    }, 1000);
    try {
      await attack.closedCount(3);
      for (const { received } of attack.closed) assert.equal(received, '', 'no answer to a body that never came');
      const answer = await get(t.server.port, 'reader.localhost', '/');
      assert.deepEqual(answer, { status: 200, body: 'read 0' });
    } finally {
      clearInterval(trickle);
      attack.destroy();
    }
  });

  test('a worker that takes longer than the idle timeout is not cut off', async () => {
    assert.deepEqual(await get(t.server.port, 'reader.localhost', '/slow'), { status: 200, body: 'worth the wait' });
  });
});

describe('the open-file limit', () => {
  test('caps that do not fit are lowered, with a warning that names the fix', async () => {
    const t = await startTestServer({ openFileLimit: 1024 });
    try {
      const line = t.logs.find((l) => l.level === 'warn' && /ulimit -n/.test(String(l.message)));
      assert.ok(line, 'a warning');
      assert.equal(line.openFileLimit, 1024);
      assert.ok((line.maxConnections as number) + (line.adminMaxConnections as number) <= 1024 - 256);
      assert.ok((line.adminMaxConnections as number) >= 16);
      assert.equal((await t.api('GET', '/v1/accounts')).status, 200);
    } finally {
      await t.close();
    }
  });

  test('fitConnectionCaps: untouched when they fit; the admin API keeps a share when they do not', () => {
    assert.deepEqual(fitConnectionCaps(10_000, 256, 1_048_576), { data: 10_000, admin: 256, reserve: 1024 });
    assert.deepEqual(fitConnectionCaps(10_000, 256, 1024), { data: 672, admin: 96, reserve: 256 });
    const tiny = fitConnectionCaps(10_000, 256, 64);
    assert.ok(tiny.data >= 1 && tiny.admin >= 1 && tiny.data + tiny.admin + tiny.reserve <= 64);
  });
});

describe('options', () => {
  test('a bad value is a TypeError naming the option; the defaults fill the rest', () => {
    assert.throws(() => connectionLimits({ maxConnections: 0 }, DATA_PLANE_CONNECTION_LIMITS), /connections\.maxConnections must be a whole number/);
    assert.throws(() => connectionLimits({ headersTimeoutMs: 1.5 }, DATA_PLANE_CONNECTION_LIMITS), /headersTimeoutMs/);
    const limits = connectionLimits({ maxConnections: 10 }, DATA_PLANE_CONNECTION_LIMITS);
    assert.equal(limits.maxConnectionsPerAddress, 10);
    assert.equal(limits.headersTimeoutMs, DATA_PLANE_CONNECTION_LIMITS.headersTimeoutMs);
  });

  test('clientKey: IPv4 as it is, IPv4-mapped as IPv4, IPv6 by its /64', () => {
    assert.equal(clientKey('192.0.2.1'), '192.0.2.1');
    assert.equal(clientKey('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(clientKey('2001:db8:0:1::5'), '2001:db8:0:1::/64');
    assert.equal(clientKey('2001:db8:0:1:aaaa:bbbb:cccc:dddd'), '2001:db8:0:1::/64');
    assert.equal(clientKey('::1'), '0:0:0:0::/64');
  });
});
