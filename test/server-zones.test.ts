// Routes owned by zones: an account's route may only name a host inside a zone the operator
// assigned to it. Each test is a route capture attempt by an ordinary account against the
// owner of `shop.example.com`, and checks that the owner keeps its traffic.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { isPublicSuffix, parseZone, registrableDomain, routeTouchesZone } from '../src/store/zones.ts';
import { startTestServer, textWorker, type TestServer, type TestAccount } from './server-support.ts';

let t: TestServer;
let owner: TestAccount;
let attacker: TestAccount;

before(async () => {
  t = await startTestServer();
  owner = await t.account('shop');
  attacker = await t.account('attacker');
  const zone = await t.api('POST', '/v1/accounts/shop/zones', { body: { zone: 'example.com' } });
  assert.equal(zone.status, 201, zone.text);
  assert.deepEqual({ zone: zone.body.zone, account: zone.body.account, removedRoutes: zone.body.removedRoutes }, { zone: 'example.com', account: 'shop', removedRoutes: [] });
  const deployed = await t.api('PUT', '/v1/workers/storefront', { token: owner.token, body: textWorker('owner', { routes: ['shop.example.com/*'] }) });
  assert.equal(deployed.status, 201, deployed.text);
});

after(async () => {
  await t.close();
});

async function servedBy(host: string, path: string): Promise<string> {
  return (await t.request(host, path)).text();
}

describe('route capture by an account without the zone', () => {
  for (const route of ['shop.example.com/checkout/*', 'shop.example.com/checkout', '*.example.com/*', 'example.com/*', 'api.shop.example.com/*']) {
    test(`'${route}' is refused with a 403 that names the zone to ask for`, async () => {
      const answer = await t.api('PUT', '/v1/workers/capture', { token: attacker.token, body: textWorker('captured', { routes: [route] }) });
      assert.equal(answer.status, 403, answer.text);
      assert.equal(answer.body.error.code, 'forbidden');
      assert.match(answer.body.error.message, /outside your account's zones \(it has none\): ask the operator to assign the zone 'example\.com'/);
      assert.equal((await t.api('GET', '/v1/workers/capture')).status, 404, 'the refused deploy stored nothing');
      assert.equal(await servedBy('shop.example.com', '/checkout/pay'), 'owner');
    });
  }

  for (const route of ['*.co.uk/*', 'co.uk/*', '*.github.io/*']) {
    test(`a public suffix ('${route}') is refused with a 400, even for the operator`, async () => {
      for (const token of [attacker.token, undefined]) {
        const answer = await t.api('PUT', '/v1/workers/capture?account=attacker', { token, body: textWorker('captured', { routes: [route] }) });
        assert.equal(answer.status, 400, answer.text);
        assert.match(answer.body.error.message, /is a public suffix/);
      }
    });
  }

  test('a zone of its own lets an account route there, and only there', async () => {
    assert.equal((await t.api('POST', '/v1/accounts/attacker/zones', { body: { zone: 'attacker.example.net' } })).status, 201);
    const own = await t.api('PUT', '/v1/workers/mine', { token: attacker.token, body: textWorker('mine', { routes: ['*.attacker.example.net/*', 'attacker.example.net/x'] }) });
    assert.equal(own.status, 201, own.text);
    assert.equal(await servedBy('www.attacker.example.net', '/'), 'mine');
    // Beyond its zone: the wildcard over the parent domain.
    const beyond = await t.api('PUT', '/v1/workers/mine', { token: attacker.token, body: textWorker('mine', { routes: ['*.example.net/*'] }) });
    assert.equal(beyond.status, 403);
    assert.match(beyond.body.error.message, /it has 'attacker\.example\.net'.*assign the zone 'example\.net'/);
    assert.equal(await servedBy('www.attacker.example.net', '/'), 'mine', 'the refused deploy changed nothing');
  });

  test('zones of two accounts never overlap (409), and public suffixes are no zone (400)', async () => {
    for (const zone of ['example.com', 'shop.example.com', 'com']) {
      const answer = await t.api('POST', '/v1/accounts/attacker/zones', { body: { zone } });
      assert.equal(answer.status, zone === 'com' ? 400 : 409, `${zone}: ${answer.text}`);
    }
    assert.equal((await t.api('POST', '/v1/accounts/attacker/zones', { body: { zone: 'co.uk' } })).status, 400);
    assert.equal((await t.api('POST', '/v1/accounts/attacker/zones', { body: { zone: 'http://x.org/' } })).status, 400);
    const zones = await t.api('GET', '/v1/accounts/attacker/zones');
    assert.deepEqual(zones.body.map((z: { zone: string }) => z.zone), ['attacker.example.net']);
  });

  test('zones are the operator\'s: account tokens cannot assign, list or remove them', async () => {
    for (const [method, path] of [
      ['POST', '/v1/accounts/attacker/zones'],
      ['GET', '/v1/accounts/attacker/zones'],
      ['DELETE', '/v1/accounts/shop/zones/example.com'],
    ] as const) {
      const answer = await t.api(method, path, { token: attacker.token, body: { zone: 'example.com' } });
      assert.equal(answer.status, 403, `${method} ${path}`);
    }
  });
});

describe('upgrade: routes from before zones', () => {
  test('keep serving and stay on redeploys; assigning their zone to another account moves the traffic', async () => {
    // The operator's deploys may name any route (as every route could before zones).
    const legacy = await t.api('PUT', '/v1/workers/legacy?account=attacker', { body: textWorker('legacy v1', { routes: ['legacy.example.org/*'] }) });
    assert.equal(legacy.status, 201, legacy.text);
    // The account redeploys with the same route: it holds it, so no zone is needed.
    const again = await t.api('PUT', '/v1/workers/legacy', { token: attacker.token, body: textWorker('legacy v2', { routes: ['legacy.example.org/*'] }) });
    assert.equal(again.status, 201, again.text);
    assert.equal(await servedBy('legacy.example.org', '/'), 'legacy v2');
    // A new route beside it is checked.
    const more = await t.api('PUT', '/v1/workers/legacy', { token: attacker.token, body: textWorker('legacy v3', { routes: ['legacy.example.org/*', 'more.example.org/*'] }) });
    assert.equal(more.status, 403);

    // The operator gives example.org to its real owner: the other account's route into it goes.
    const assigned = await t.api('POST', '/v1/accounts/shop/zones', { body: { zone: 'example.org' } });
    assert.equal(assigned.status, 201, assigned.text);
    assert.deepEqual(assigned.body.removedRoutes, [{ pattern: 'legacy.example.org/*', worker: 'legacy' }]);
    assert.equal((await t.request('legacy.example.org', '/')).status, 404);
    assert.deepEqual((await t.api('GET', '/v1/workers/legacy')).body.routes, []);
    assert.ok(t.logs.some((l) => l.message === 'zone assigned' && Array.isArray(l.removedRoutes) && l.removedRoutes.length === 1));
  });

  test('removing a zone keeps the routes in it; new ones need the zone again', async () => {
    assert.equal((await t.api('POST', '/v1/accounts/shop/zones', { body: { zone: 'example.info' } })).status, 201);
    assert.equal((await t.api('PUT', '/v1/workers/info', { token: owner.token, body: textWorker('info', { routes: ['example.info/*'] }) })).status, 201);
    assert.equal((await t.api('DELETE', '/v1/accounts/shop/zones/example.info')).status, 204);
    assert.equal((await t.api('DELETE', '/v1/accounts/shop/zones/example.info')).status, 404);
    assert.equal(await servedBy('example.info', '/'), 'info');
    const added = await t.api('PUT', '/v1/workers/info', { token: owner.token, body: textWorker('info', { routes: ['example.info/*', 'www.example.info/*'] }) });
    assert.equal(added.status, 403);
  });
});

describe('zone helpers', () => {
  test('public suffixes, registrable domains, and which routes reach into a zone', () => {
    assert.ok(isPublicSuffix('com') && isPublicSuffix('co.uk') && isPublicSuffix('github.io'));
    assert.ok(!isPublicSuffix('example.com') && !isPublicSuffix('example.co.uk'));
    assert.equal(registrableDomain('a.shop.example.co.uk'), 'example.co.uk');
    assert.equal(registrableDomain('shop.example.com'), 'example.com');
    assert.equal(parseZone('Example.COM.'), 'example.com');
    assert.throws(() => parseZone('*.example.com'), /Invalid zone/);
    assert.ok(routeTouchesZone('shop.example.com/*', 'example.com'));
    assert.ok(routeTouchesZone('*.example.com/*', 'shop.example.com'), 'a wildcard above the zone reaches into it');
    assert.ok(!routeTouchesZone('example.com/*', 'shop.example.com'));
    assert.ok(!routeTouchesZone('notexample.com/*', 'example.com'));
  });
});
