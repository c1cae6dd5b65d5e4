// Data-plane routing: `<worker>.<domain>`, custom routes, the most specific route winning,
// and a 404 that says no worker serves the address. First the route table alone, then through
// the running server.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RouteTable, parseRoutePattern } from '../src/server/routes.ts';
import { startTestServer, textWorker, type TestServer } from './server-support.ts';

describe('route patterns', () => {
  test('are normalized: lowercase host, a bare host means all its paths', () => {
    assert.equal(parseRoutePattern('API.Example.com/v1/*', 'localhost').pattern, 'api.example.com/v1/*');
    assert.equal(parseRoutePattern('example.com', 'localhost').pattern, 'example.com/*');
    assert.deepEqual(parseRoutePattern('*.example.com/*', 'localhost'), {
      pattern: '*.example.com/*',
      host: 'example.com',
      wildcard: true,
      path: '/',
      prefix: true,
    });
    assert.equal(parseRoutePattern('example.com/exact', 'localhost').prefix, false);
  });

  test('are refused when they cannot be routed', () => {
    for (const bad of [
      '',
      'https://example.com/*',
      'example.com:8080/*',
      '127.0.0.1/*',
      'localhost/*',
      'nodot',
      'exa mple.com/*',
      'example.com/a*b',
      'example.com/*/x',
      '*example.com/*',
      'a.*.example.com/*',
      'foo.localhost/*',
      'workers.dev/*',
    ]) {
      assert.throws(() => parseRoutePattern(bad, bad === 'workers.dev/*' ? 'workers.dev' : 'localhost'), Error, bad);
    }
  });
});

describe('route table', () => {
  const loaded = new Set(['hello', 'api-v1', 'api-v1-users', 'api-all', 'wild', 'deep-wild', 'health', 'root']);
  const table = new RouteTable(
    'localhost',
    [
      { pattern: 'api.example.com/v1/*', worker: 'api-v1' },
      { pattern: 'api.example.com/v1/users*', worker: 'api-v1-users' },
      { pattern: 'api.example.com/v1/health', worker: 'health' },
      { pattern: 'api.example.com/*', worker: 'api-all' },
      { pattern: '*.example.com/*', worker: 'wild' },
      { pattern: '*.eu.example.com/*', worker: 'deep-wild' },
      { pattern: 'example.com/', worker: 'root' },
    ],
    (name) => loaded.has(name),
  );

  test('<worker>.<domain> serves that worker, any port, any case', () => {
    assert.equal(table.match('hello.localhost', '/'), 'hello');
    assert.equal(table.match('HELLO.localhost:8787', '/x?y=1'), 'hello');
    assert.equal(table.match('nobody.localhost', '/'), undefined);
    assert.equal(table.match('a.hello.localhost', '/'), undefined);
    assert.equal(table.match('localhost', '/'), undefined);
  });

  test('exact path over prefix, longest prefix first', () => {
    assert.equal(table.match('api.example.com', '/v1/health'), 'health');
    assert.equal(table.match('api.example.com', '/v1/health?full=1'), 'health');
    assert.equal(table.match('api.example.com', '/v1/health/deep'), 'api-v1');
    assert.equal(table.match('api.example.com', '/v1/users/42'), 'api-v1-users');
    assert.equal(table.match('api.example.com', '/v1/usersettings'), 'api-v1-users');
    assert.equal(table.match('api.example.com', '/v1/other'), 'api-v1');
    assert.equal(table.match('api.example.com', '/v1'), 'api-all');
    assert.equal(table.match('api.example.com:443', '/'), 'api-all');
  });

  test('an exact host over a wildcard, and a longer wildcard over a shorter', () => {
    assert.equal(table.match('www.example.com', '/'), 'wild');
    assert.equal(table.match('a.b.example.com', '/'), 'wild');
    assert.equal(table.match('paris.eu.example.com', '/'), 'deep-wild');
    assert.equal(table.match('eu.example.com', '/'), 'wild');
    assert.equal(table.match('api.example.com', '/anything'), 'api-all');
  });

  test('a wildcard does not cover the bare domain; an exact path matches only itself', () => {
    assert.equal(table.match('example.com', '/'), 'root');
    assert.equal(table.match('example.com', '/other'), undefined);
    assert.equal(table.match('example.org', '/'), undefined);
    assert.equal(table.match('[::1]:8787', '/'), undefined);
  });
});

describe('routing through the server', () => {
  let t: TestServer;
  let token: string;

  before(async () => {
    t = await startTestServer({ domain: 'isolet.test' });
    token = (await t.account('acme')).token;
    assert.equal((await t.api('POST', '/v1/accounts/acme/zones', { body: { zone: 'example.com' } })).status, 201);
    const deploy = async (name: string, routes?: string[]) => {
      const answer = await t.api('PUT', `/v1/workers/${name}`, { token, body: textWorker(name, routes ? { routes } : {}) });
      assert.equal(answer.status, 201, answer.text);
    };
    await deploy('hello');
    await deploy('api-v1', ['api.example.com/v1/*']);
    await deploy('api-all', ['api.example.com/*']);
    await deploy('api-health', ['api.example.com/v1/health']);
    await deploy('wild', ['*.example.com/*']);
  });

  after(async () => {
    await t.close();
  });

  async function served(host: string, path: string): Promise<string> {
    const response = await t.request(host, path);
    const text = await response.text();
    return response.status === 404 ? `404 ${text.trim()}` : text;
  }

  test('subdomains of the configured domain', async () => {
    assert.equal(await served('hello.isolet.test', '/'), 'hello');
    assert.equal(await served(`hello.isolet.test:${t.server.port}`, '/any/path'), 'hello');
    assert.equal(await served('hello.localhost', '/'), '404 no worker is routed for this address');
  });

  test('custom routes, the most specific winning', async () => {
    assert.equal(await served('api.example.com', '/v1/health'), 'api-health');
    assert.equal(await served('api.example.com', '/v1/users'), 'api-v1');
    assert.equal(await served('api.example.com', '/v2'), 'api-all');
    assert.equal(await served('www.example.com', '/v1/users'), 'wild');
  });

  test('no route is a 404 that says so', async () => {
    const response = await t.request('unknown.example.org', '/');
    assert.equal(response.status, 404);
    assert.match(await response.text(), /no worker is routed for this address/);
    assert.equal((await t.request('nobody.isolet.test', '/')).status, 404);
  });

  test('a redeploy that changes routes moves traffic before it answers', async () => {
    const answer = await t.api('PUT', '/v1/workers/api-v1', { token, body: textWorker('api-v1 moved', { routes: ['api.example.com/v9/*'] }) });
    assert.equal(answer.status, 201);
    assert.equal(await served('api.example.com', '/v1/users'), 'api-all');
    assert.equal(await served('api.example.com', '/v9/x'), 'api-v1 moved');
  });

  test('routes survive a restart', async () => {
    const dataDir = t.dataDir;
    await t.server.close();
    const again = await startTestServer({ domain: 'isolet.test', dataDir });
    try {
      assert.equal(await (await again.request('api.example.com', '/v1/health')).text(), 'api-health');
      assert.equal(await (await again.request('www.example.com', '/')).text(), 'wild');
      assert.equal(await (await again.request('hello.isolet.test', '/')).text(), 'hello');
    } finally {
      await again.close();
    }
    // The original data dir is removed by t.close() in after(); its server is closed already.
  });
});
