// Live logs: GET /v1/workers/:name/tail streams the worker's log entries as NDJSON until the
// client goes; a client that reads too slowly is dropped instead of slowing the worker. A tail
// is bound to the worker it opened (not its name) and to its token: it ends, with a last line
// saying why, when the worker is deleted or the token revoked.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { LogBus } from '../src/server/log-bus.ts';
import type { WorkerLogEntry } from '../src/runtime/types.ts';
import { Tail } from './support/tail.ts';
import { startTestServer, moduleDeployment, textWorker, type TestServer } from './server-support.ts';

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await nextTurn();
}

let t: TestServer;
let token: string;

before(async () => {
  t = await startTestServer({ tailBufferBytes: 64 * 1024 });
  token = (await t.account('acme')).token;
  const logger = moduleDeployment(`
    export default {
      async fetch(request) {
        const url = new URL(request.url);
        if (url.pathname === '/throw') throw new Error('thrown on purpose');
        console.log('hello from', url.pathname);
        console.warn('careful');
        return new Response('ok');
      },
    };`);
  assert.equal((await t.api('PUT', '/v1/workers/logger', { token, body: logger })).status, 201);
  assert.equal((await t.api('PUT', '/v1/workers/neighbour', { token, body: moduleDeployment('export default { fetch() { console.log("neighbour line"); return new Response("n"); } };') })).status, 201);
});

after(async () => {
  await t.close();
});

describe('tail', () => {
  test("streams the worker's console lines, exceptions and request summaries as NDJSON, and only that worker's", async () => {
    const tail = await Tail.open(t.server.adminUrl, 'logger', token);
    try {
      assert.equal(tail.res.statusCode, 200);
      assert.equal(tail.res.headers['content-type'], 'application/x-ndjson');
      assert.equal(await (await t.request('neighbour.localhost', '/')).text(), 'n');
      assert.equal(await (await t.request('logger.localhost', '/first')).text(), 'ok');
      const line = await tail.waitFor((e) => e.type === 'console' && /hello from \/first/.test(e.message));
      assert.equal(line.level, 'log');
      assert.equal(line.worker, 'logger');
      await tail.waitFor((e) => e.type === 'console' && e.level === 'warn' && e.message === 'careful');
      const summary = await tail.waitFor((e) => e.type === 'request' && e.status === 200);
      assert.equal(typeof summary.cpuMs, 'number');
      assert.equal(typeof summary.wallMs, 'number');

      assert.equal((await t.request('logger.localhost', '/throw')).status, 500);
      const exception = await tail.waitFor((e) => e.type === 'exception');
      assert.match(exception.message, /thrown on purpose/);
      await tail.waitFor((e) => e.type === 'request' && e.status === 500);

      assert.ok(tail.entries.every((e) => e.worker === 'logger'), 'no other worker leaks into this tail');
    } finally {
      tail.close();
    }
  });

  test('several tails of one worker each get every line; a closed tail unsubscribes', async () => {
    const a = await Tail.open(t.server.adminUrl, 'logger', token);
    const b = await Tail.open(t.server.adminUrl, 'logger', token);
    assert.equal(t.server.bus.subscriberCount('logger'), 2);
    await t.request('logger.localhost', '/both');
    await a.waitFor((e) => /\/both/.test(e.message));
    await b.waitFor((e) => /\/both/.test(e.message));
    a.close();
    b.close();
    await until(() => t.server.bus.subscriberCount('logger') === 0);
  });

  test('the admin may tail any worker; tailing a missing worker is 404', async () => {
    const tail = await Tail.open(t.server.adminUrl, 'neighbour', 'isl_test-admin-token-0123456789abcdef');
    assert.equal(tail.res.statusCode, 200);
    tail.close();
    assert.equal((await t.api('GET', '/v1/workers/missing/tail', { token })).status, 404);
  });

  test('a client that does not read is dropped once its buffer is over the bound; the worker keeps serving', async () => {
    const slow = await Tail.open(t.server.adminUrl, 'logger', token, { read: false });
    try {
      assert.equal(t.server.bus.subscriberCount('logger'), 1);
      const big = 'x'.repeat(64 * 1024);
      let published = 0;
      // Kernel socket buffers take some megabytes first; the bound applies to what is left over.
      while (t.server.bus.subscriberCount('logger') > 0 && published < 4000) {
        t.server.bus.publish({ time: new Date().toISOString(), worker: 'logger', level: 'log', type: 'console', message: big });
        published++;
        if (published % 16 === 0) await nextTurn();
      }
      assert.equal(t.server.bus.subscriberCount('logger'), 0, `dropped after ${published} entries of 64 KiB`);
      await until(() => slow.ended);
      const response = await t.request('logger.localhost', '/after');
      assert.equal(response.status, 200);
      assert.ok(t.logs.some((e) => e.message === 'tail client dropped: it read slower than the worker logged'));
    } finally {
      slow.close();
    }
  });

  test("a tail ends when its worker is deleted, and never shows the next worker of that name (another account's)", async () => {
    const attacker = await t.account('attacker');
    const victim = await t.account('victim');
    const name = 'reused-name';
    assert.equal((await t.api('PUT', `/v1/workers/${name}`, { token: attacker.token, body: textWorker('mine') })).status, 201);
    const tail = await Tail.open(t.server.adminUrl, name, attacker.token);
    const admin = await Tail.open(t.server.adminUrl, name, 'isl_test-admin-token-0123456789abcdef');
    try {
      assert.equal(tail.res.statusCode, 200);
      assert.equal((await t.api('DELETE', `/v1/workers/${name}`, { token: attacker.token })).status, 204);
      const last = await tail.waitFor((e) => (e.type as string) === 'tail');
      assert.equal((last as unknown as { reason: string }).reason, 'worker-deleted');
      assert.match(last.message, /was deleted: this tail has ended/);
      await until(() => tail.ended && admin.ended);
      assert.equal(t.server.bus.subscriberCount(name), 0);

      // The victim takes the name, with a secret its code logs and a client's credentials.
      const logsSecrets = moduleDeployment(
        'export default { fetch(request, env) { console.log("key", env.KEY, request.headers.get("authorization")); return new Response("victim"); } };',
      );
      assert.equal((await t.api('PUT', `/v1/workers/${name}`, { token: victim.token, body: logsSecrets })).status, 201);
      assert.equal((await t.api('PUT', `/v1/workers/${name}/secrets/KEY`, { token: victim.token, body: { value: 'victim-secret-value' } })).status, 204);
      const victimTail = await Tail.open(t.server.adminUrl, name, victim.token);
      try {
        const response = await t.request(`${name}.localhost`, '/', { headers: { authorization: 'Bearer client-credential' } });
        assert.equal(await response.text(), 'victim');
        await victimTail.waitFor((e) => e.type === 'console' && /victim-secret-value/.test(e.message));
      } finally {
        victimTail.close();
      }
      for (const entry of [...tail.entries, ...admin.entries]) {
        assert.doesNotMatch(JSON.stringify(entry), /victim-secret-value|client-credential/);
      }
      // And the attacker cannot open a new one: the worker does not exist for it.
      assert.equal((await t.api('GET', `/v1/workers/${name}/tail`, { token: attacker.token })).status, 404);
    } finally {
      tail.close();
      admin.close();
    }
  });

  test('a tail ends when the token that opened it is revoked; tails of other tokens go on', async () => {
    const created = await t.api('POST', '/v1/accounts/acme/tokens', { body: { description: 'short-lived' } });
    assert.equal(created.status, 201);
    const doomed = await Tail.open(t.server.adminUrl, 'logger', created.body.token);
    const kept = await Tail.open(t.server.adminUrl, 'logger', token);
    try {
      assert.equal(doomed.res.statusCode, 200);
      assert.equal((await t.api('DELETE', `/v1/accounts/acme/tokens/${created.body.id}`)).status, 204);
      const last = await doomed.waitFor((e) => (e.type as string) === 'tail');
      assert.equal((last as unknown as { reason: string }).reason, 'token-revoked');
      await until(() => doomed.ended);
      await t.request('logger.localhost', '/after-revoke');
      await kept.waitFor((e) => /\/after-revoke/.test(e.message));
      assert.ok(!doomed.entries.some((e) => /after-revoke/.test(e.message)));
      assert.equal(t.server.bus.subscriberCount('logger'), 1);
    } finally {
      doomed.close();
      kept.close();
    }
  });

  test('tails end when the server shuts down', async () => {
    const own = await startTestServer();
    const ownToken = (await own.account('acme')).token;
    await own.api('PUT', '/v1/workers/w', { token: ownToken, body: textWorker('w') });
    const tail = await Tail.open(own.server.adminUrl, 'w', ownToken);
    await own.close();
    await until(() => tail.ended);
  });
});

describe('log bus', () => {
  const entry = (worker: string, message: string): WorkerLogEntry => ({ time: '', worker, level: 'log', type: 'console', message });

  test('delivers to the subscribers of the entry worker only, and drops one that reports it is full', () => {
    const bus = new LogBus();
    const got: string[] = [];
    const dropped: string[] = [];
    let room = 2;
    bus.subscribe('a', { write: (line) => (got.push('a1 ' + line.trim()), true), drop: () => dropped.push('a1') });
    bus.subscribe('a', { write: (line) => (got.push('a2 ' + line.trim()), --room > 0), drop: (reason) => dropped.push('a2 ' + reason) });
    const unsubscribe = bus.subscribe('b', { write: (line) => (got.push('b ' + line.trim()), true), drop: () => dropped.push('b') });
    bus.publish(entry('a', 'one'));
    bus.publish(entry('a', 'two'));
    bus.publish(entry('a', 'three'));
    assert.equal(got.filter((g) => g.startsWith('a1')).length, 3);
    assert.equal(got.filter((g) => g.startsWith('a2')).length, 2);
    assert.deepEqual(dropped, ['a2 slow']);
    assert.equal(got.filter((g) => g.startsWith('b')).length, 0);
    assert.deepEqual(JSON.parse(got[0]!.slice(3)), entry('a', 'one'));
    unsubscribe();
    assert.equal(bus.subscriberCount('b'), 0);
    bus.close();
    assert.deepEqual(dropped, ['a2 slow', 'a1']);
    assert.equal(bus.subscriberCount('a'), 0);
  });

  test('ends the subscriptions bound to a worker identity or to a token, and only those', () => {
    const bus = new LogBus();
    const dropped: string[] = [];
    const subscriber = (label: string) => ({ write: () => true, drop: (reason: string) => dropped.push(`${label} ${reason}`) });
    bus.subscribe('w', subscriber('old-worker'), { workerId: 'wrk_1', tokenId: 'tok_a' });
    bus.subscribe('w', subscriber('other-token'), { workerId: 'wrk_2', tokenId: 'tok_b' });
    bus.subscribe('v', subscriber('same-token'), { workerId: 'wrk_3', tokenId: 'tok_a' });
    assert.equal(bus.endWorker('wrk_1'), 1);
    assert.deepEqual(dropped, ['old-worker worker-deleted']);
    assert.equal(bus.endToken('tok_a'), 1);
    assert.deepEqual(dropped, ['old-worker worker-deleted', 'same-token token-revoked']);
    assert.equal(bus.subscriberCount('w'), 1);
    assert.equal(bus.subscriberCount('v'), 0);
  });
});
