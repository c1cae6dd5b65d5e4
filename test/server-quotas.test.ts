// Operator quotas: how many workers an account may have, the most its workers may ask for in
// their limits, and how many deployments it may have in progress. Each test is a tenant asking
// for more than a shared host gives, and checks that it gets a clear refusal that says how to
// get more, and that other tenants keep deploying and being served.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { Runtime } from '../src/runtime/runtime.ts';
import { DeploySlots } from '../src/server/deploy-slots.ts';
import { ApiError } from '../src/server/api-error.ts';
import { startTestServer, textWorker, type TestServer, type TestAccount } from './server-support.ts';

let t: TestServer;
let acme: TestAccount;
let other: TestAccount;

before(async () => {
  // The defaults a shared host would use (the test support raises cpuMs for other tests).
  t = await startTestServer({ quotas: { maxWorkers: 3 } });
  acme = await t.account('acme');
  other = await t.account('other');
});

after(async () => {
  await t.close();
});

/** A deploy whose body is held until finish(); resolves once the server has taken the request (100 Continue). */
function holdDeploy(name: string, token: string): Promise<{ finish(): Promise<number> }> {
  const url = new URL(t.server.adminUrl);
  const text = JSON.stringify(textWorker(name));
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: url.hostname,
      port: url.port,
      method: 'PUT',
      path: `/v1/workers/${name}`,
      agent: false,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), expect: '100-continue' },
    });
    const status = new Promise<number>((done, fail) => {
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => done(res.statusCode ?? 0));
      });
      req.on('error', fail);
    });
    status.catch(() => {});
    req.on('continue', () => resolve({ finish: () => (req.end(text), status) }));
    req.on('response', (res) => reject(new Error(`answered ${res.statusCode} before the body`)));
    req.on('error', reject);
    req.flushHeaders();
  });
}

describe('limits a tenant may ask for', () => {
  for (const [limit, over, cap] of [
    ['cpuMs', 30_000, 50],
    ['startupCpuMs', 401, 400],
    ['memoryMb', 129, 128],
  ] as const) {
    test(`${limit}: ${over} is over the default cap of ${cap}: 403 naming the cap and how to raise it`, async () => {
      const answer = await t.api('PUT', '/v1/workers/greedy', { token: acme.token, body: textWorker('greedy', { limits: { [limit]: over } }) });
      assert.equal(answer.status, 403, answer.text);
      assert.equal(answer.body.error.code, 'forbidden');
      assert.match(answer.body.error.message, new RegExp(`${limit}: ${over} is over the cap of ${cap}.*ask the operator to raise the account's quota \\(PUT /v1/accounts/:account/quotas\\)`));
      assert.equal((await t.api('GET', '/v1/workers/greedy')).status, 404);
    });
  }

  test('at the cap is fine; the operator raises one account\'s cap, and only that account gets more', async () => {
    assert.equal((await t.api('PUT', '/v1/workers/modest', { token: acme.token, body: textWorker('modest', { limits: { cpuMs: 50, memoryMb: 128 } }) })).status, 201);
    const raised = await t.api('PUT', '/v1/accounts/acme/quotas', { body: { cpuMs: 200 } });
    assert.equal(raised.status, 200, raised.text);
    assert.equal(raised.body.quotas.cpuMs, 200);
    assert.deepEqual(raised.body.overrides, { cpuMs: 200 });
    assert.equal(raised.body.defaults.cpuMs, 50);
    assert.equal((await t.api('PUT', '/v1/workers/modest', { token: acme.token, body: textWorker('modest', { limits: { cpuMs: 200 } }) })).status, 201);
    assert.equal((await t.api('PUT', '/v1/workers/theirs', { token: other.token, body: textWorker('theirs', { limits: { cpuMs: 200 } }) })).status, 403);
    // Back to the default.
    const reset = await t.api('PUT', '/v1/accounts/acme/quotas', { body: { cpuMs: null } });
    assert.deepEqual(reset.body.overrides, {});
    assert.equal((await t.api('GET', '/v1/accounts/acme/quotas')).body.quotas.cpuMs, 50);
    assert.equal((await t.api('PUT', '/v1/workers/modest', { token: acme.token, body: textWorker('modest', { limits: { cpuMs: 200 } }) })).status, 403);
    assert.equal(await (await t.request('modest.localhost', '/')).text(), 'modest');
  });

  test("quotas are the operator's, and bounded by the server's ceilings", async () => {
    assert.equal((await t.api('PUT', '/v1/accounts/acme/quotas', { token: acme.token, body: { cpuMs: 30_000 } })).status, 403);
    assert.equal((await t.api('GET', '/v1/accounts/acme/quotas', { token: acme.token })).status, 403);
    for (const body of [{ cpuMs: 1e9 }, { cpuMs: 0 }, { cpuMs: 'lots' }, { disk: 1 }, [1]]) {
      const answer = await t.api('PUT', '/v1/accounts/acme/quotas', { body });
      assert.equal(answer.status, 400, JSON.stringify(body));
    }
  });
});

describe('workers per account', () => {
  test('past maxWorkers a new worker is a 403 naming the quota; redeploys and other accounts go on', async () => {
    const owner = await t.account('many');
    for (const name of ['many-1', 'many-2', 'many-3']) {
      assert.equal((await t.api('PUT', `/v1/workers/${name}`, { token: owner.token, body: textWorker(name) })).status, 201);
    }
    const fourth = await t.api('PUT', '/v1/workers/many-4', { token: owner.token, body: textWorker('many-4') });
    assert.equal(fourth.status, 403, fourth.text);
    assert.match(fourth.body.error.message, /3 workers, its quota is 3.*maxWorkers/);
    assert.equal((await t.api('PUT', '/v1/workers/many-1', { token: owner.token, body: textWorker('many-1 v2') })).status, 201);
    assert.equal((await t.api('PUT', '/v1/workers/other-1', { token: other.token, body: textWorker('other-1') })).status, 201);
    assert.equal((await t.api('PUT', '/v1/accounts/many/quotas', { body: { maxWorkers: 4 } })).status, 200);
    assert.equal((await t.api('PUT', '/v1/workers/many-4', { token: owner.token, body: textWorker('many-4') })).status, 201);
  });
});

describe('deployments in progress', () => {
  test('a third deployment of one account while two are in progress is a 429 with Retry-After; other accounts deploy', async () => {
    const owner = await t.account('busy');
    const first = await holdDeploy('busy-1', owner.token);
    const second = await holdDeploy('busy-2', owner.token);
    const third = await t.api('PUT', '/v1/workers/busy-3', { token: owner.token, body: textWorker('busy-3') });
    assert.equal(third.status, 429, third.text);
    assert.equal(third.body.error.code, 'rate_limited');
    assert.equal(third.headers.get('retry-after'), '1');
    assert.match(third.body.error.message, /2 deployments in progress/);
    assert.equal((await t.api('PUT', '/v1/workers/calm', { token: other.token, body: textWorker('calm') })).status, 201);
    assert.equal(await first.finish(), 201);
    assert.equal(await second.finish(), 201);
    assert.equal((await t.api('PUT', '/v1/workers/busy-3', { token: owner.token, body: textWorker('busy-3') })).status, 201);
    assert.equal(t.server.platform.deploySlots.inUse(owner.id), 0);
  });

  test('validations are bounded in total; a slot comes back once', () => {
    const slots = new DeploySlots(2, 2);
    const a = slots.acquireValidation();
    const b = slots.acquireValidation();
    assert.throws(() => slots.acquireValidation(), (error: unknown) => error instanceof ApiError && error.status === 429 && error.retryAfter === 1);
    a();
    a();
    const c = slots.acquireValidation();
    assert.throws(() => slots.acquireValidation(), ApiError);
    b();
    c();
    assert.equal(slots.inUse(), 0);
  });
});

describe("the account reaches the Runtime", () => {
  test('every load (validation, deploy, secret change, rollback, boot) names the worker\'s account', async () => {
    const loads: { name: string; account: string | undefined }[] = [];
    const original = Runtime.prototype.load;
    Runtime.prototype.load = function (this: Runtime, name, definition, options) {
      loads.push({ name, account: definition.account });
      return original.call(this, name, definition, options);
    };
    const own = await startTestServer();
    try {
      const owner = await own.account('owner');
      assert.equal((await own.api('PUT', '/v1/workers/acct', { token: owner.token, body: textWorker('v1') })).status, 201);
      assert.equal((await own.api('PUT', '/v1/workers/acct', { token: owner.token, body: textWorker('v2') })).status, 201);
      assert.equal((await own.api('PUT', '/v1/workers/acct/secrets/KEY', { token: owner.token, body: { value: 'x' } })).status, 204);
      assert.equal((await own.api('POST', '/v1/workers/acct/rollback', { token: owner.token, body: {} })).status, 200);
      const dataDir = own.dataDir;
      await own.server.close();
      const again = await startTestServer({ dataDir });
      await again.close();
      const mine = loads.filter((l) => l.name === 'acct');
      assert.ok(mine.length >= 7, `loads: ${JSON.stringify(mine)}`); // 2 validations, 2 deploys, secret, rollback, boot
      assert.ok(mine.every((l) => l.account === owner.id), JSON.stringify(mine));
    } finally {
      Runtime.prototype.load = original;
      await own.close().catch(() => {});
    }
  });
});
