// The admin API through real HTTP (docs/ADMIN_API.md): authentication, accounts and tokens,
// isolation between accounts, deployments and their validation, versions, rollback, delete,
// secrets. Each check on what serves goes through the data plane.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { contentHash } from '../src/store/store.ts';
import { startTestServer, textWorker, moduleDeployment, type TestServer, type TestAccount } from './server-support.ts';

let t: TestServer;
let acme: TestAccount;
let other: TestAccount;

before(async () => {
  t = await startTestServer({ maxScriptBytes: 64 * 1024 });
  acme = await t.account('acme');
  other = await t.account('other');
  // The hosts acme's routes may name.
  for (const zone of ['acme.test', 'example.org']) {
    const assigned = await t.api('POST', '/v1/accounts/acme/zones', { body: { zone } });
    if (assigned.status !== 201) throw new Error(`zone: ${assigned.status} ${assigned.text}`);
  }
});

after(async () => {
  await t.close();
});

/** A JSON value `depth` objects deep. */
function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

async function body(response: Response): Promise<string> {
  return response.text();
}

describe('authentication', () => {
  test('GET /healthz needs no token', async () => {
    const answer = await t.api('GET', '/healthz', { token: null });
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { ok: true });
  });

  test('no token, a malformed header or an unknown token is 401 unauthorized', async () => {
    for (const token of [null, 'isl_not-a-real-token']) {
      const answer = await t.api('GET', '/v1/workers', { token });
      assert.equal(answer.status, 401);
      assert.equal(answer.body.error.code, 'unauthorized');
      assert.match(answer.body.error.message, token === null ? /Bearer/ : /unknown or was revoked/);
      assert.equal(answer.headers.get('www-authenticate'), 'Bearer');
    }
    const basic = await fetch(t.server.adminUrl + '/v1/workers', { headers: { authorization: 'Basic abc' } });
    assert.equal(basic.status, 401);
    // 401 comes before 404: the endpoints are not enumerable without a token.
    assert.equal((await t.api('GET', '/v1/nothing-here', { token: null })).status, 401);
  });

  test('account tokens cannot call admin-only endpoints (403)', async () => {
    for (const [method, path] of [
      ['GET', '/v1/accounts'],
      ['POST', '/v1/accounts'],
      ['GET', `/v1/accounts/${acme.name}/tokens`],
      ['POST', `/v1/accounts/${acme.name}/tokens`],
    ] as const) {
      const answer = await t.api(method, path, { token: acme.token, body: method === 'GET' ? undefined : { name: 'x' } });
      assert.equal(answer.status, 403, `${method} ${path}`);
      assert.equal(answer.body.error.code, 'forbidden');
    }
  });

  test('unknown endpoints are 404 not_found', async () => {
    const answer = await t.api('GET', '/v1/nothing-here');
    assert.equal(answer.status, 404);
    assert.equal(answer.body.error.code, 'not_found');
  });
});

describe('accounts and tokens', () => {
  test('accounts: create, list, names are unique and checked', async () => {
    const created = await t.api('POST', '/v1/accounts', { body: { name: 'gamma' } });
    assert.equal(created.status, 201);
    assert.deepEqual(Object.keys(created.body).sort(), ['createdAt', 'id', 'name']);
    const list = await t.api('GET', '/v1/accounts');
    assert.ok(list.body.some((a: { name: string }) => a.name === 'gamma'));
    const again = await t.api('POST', '/v1/accounts', { body: { name: 'gamma' } });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'conflict');
    for (const name of ['', 'Has Space', '-dash', 42]) {
      const bad = await t.api('POST', '/v1/accounts', { body: { name } });
      assert.equal(bad.status, 400, JSON.stringify(name));
      assert.equal(bad.body.error.code, 'invalid');
    }
    assert.equal((await t.api('POST', '/v1/accounts', { rawBody: '{not json' })).status, 400);
  });

  test('tokens are shown once, listed without the token, and stop working when deleted', async () => {
    const created = await t.api('POST', '/v1/accounts/acme/tokens', { body: { description: 'laptop' } });
    assert.equal(created.status, 201);
    assert.match(created.body.token, /^isl_[A-Za-z0-9_-]{43}$/);
    assert.equal(created.body.description, 'laptop');
    const list = await t.api('GET', `/v1/accounts/${acme.id}/tokens`);
    assert.equal(list.status, 200);
    const listed = list.body.find((x: { id: string }) => x.id === created.body.id);
    assert.deepEqual(Object.keys(listed).sort(), ['createdAt', 'description', 'id']);
    assert.ok(!list.text.includes(created.body.token));
    assert.equal((await t.api('GET', '/v1/workers', { token: created.body.token })).status, 200);
    assert.equal((await t.api('DELETE', `/v1/accounts/acme/tokens/${created.body.id}`)).status, 204);
    assert.equal((await t.api('GET', '/v1/workers', { token: created.body.token })).status, 401);
    assert.equal((await t.api('DELETE', `/v1/accounts/acme/tokens/${created.body.id}`)).status, 404);
    assert.equal((await t.api('GET', '/v1/accounts/nobody/tokens')).status, 404);
  });
});

describe('deployments', () => {
  test('deploy, then the worker serves on <name>.<domain>; GET shows it', async () => {
    const deployment = textWorker('hello from acme', { vars: { GREETING: 'hi' }, message: 'first', compatibilityDate: '2024-09-01' });
    const put = await t.api('PUT', '/v1/workers/hello', { token: acme.token, body: deployment });
    assert.equal(put.status, 201, put.text);
    const version = put.body.version;
    assert.deepEqual(Object.keys(version).sort(), ['active', 'author', 'createdAt', 'hash', 'id', 'message', 'number']);
    assert.equal(version.number, 1);
    assert.equal(version.active, true);
    assert.equal(version.message, 'first');
    assert.match(version.author, /^tok_/);
    assert.deepEqual(put.body.urls, [`http://hello.localhost:${t.server.port}/`]);
    const { message: _message, ...content } = deployment;
    assert.equal(version.hash, contentHash(content));

    const response = await t.request('hello.localhost', '/');
    assert.equal(response.status, 200);
    assert.equal(await body(response), 'hello from acme');

    const got = await t.api('GET', '/v1/workers/hello', { token: acme.token });
    assert.equal(got.status, 200);
    assert.equal(got.body.name, 'hello');
    assert.equal(got.body.account, 'acme');
    assert.equal(got.body.activeVersion.id, version.id);
    assert.deepEqual(got.body.vars, { GREETING: 'hi' });
    assert.equal(got.body.limits.cpuMs, 2000, 'the server default (set by the test server)');
    assert.equal(got.body.limits.memoryMb, 128);
    assert.equal(got.body.compatibilityDate, '2024-09-01');
    assert.deepEqual(got.body.secrets, []);
    assert.deepEqual(got.body.routes, []);
  });

  test("accounts see only their own workers; the admin sees all, or one account's", async () => {
    await t.api('PUT', '/v1/workers/theirs', { token: other.token, body: textWorker('other') });
    const mine = await t.api('GET', '/v1/workers', { token: acme.token });
    assert.ok(mine.body.every((w: { account: string }) => w.account === 'acme'));
    assert.ok(mine.body.some((w: { name: string }) => w.name === 'hello'));
    assert.ok(!mine.body.some((w: { name: string }) => w.name === 'theirs'));
    const all = await t.api('GET', '/v1/workers');
    assert.ok(all.body.some((w: { name: string }) => w.name === 'theirs'));
    assert.ok(all.body.some((w: { name: string }) => w.name === 'hello'));
    const filtered = await t.api('GET', '/v1/workers?account=other');
    assert.deepEqual(filtered.body.map((w: { name: string }) => w.name), ['theirs']);
    assert.deepEqual(Object.keys(filtered.body[0]).sort(), ['account', 'activeVersion', 'name', 'routes', 'updatedAt']);
  });

  test("an account can neither see nor touch another account's worker (404, as if there were none), and nothing changes", async () => {
    await t.api('PUT', '/v1/workers/private', { token: acme.token, body: textWorker('private v1') });
    const calls: [string, string, unknown?][] = [
      ['GET', '/v1/workers/private'],
      ['DELETE', '/v1/workers/private'],
      ['GET', '/v1/workers/private/versions'],
      ['POST', '/v1/workers/private/rollback', {}],
      ['GET', '/v1/workers/private/secrets'],
      ['PUT', '/v1/workers/private/secrets/KEY', { value: 'x' }],
      ['DELETE', '/v1/workers/private/secrets/KEY'],
      ['GET', '/v1/workers/private/tail'],
    ];
    for (const [method, path, requestBody] of calls) {
      const answer = await t.api(method, path, { token: other.token, body: requestBody });
      const none = await t.api(method, path.replace('private', 'nobody-has-this'), { token: other.token, body: requestBody });
      assert.equal(answer.status, 404, `${method} ${path}: ${answer.text}`);
      assert.equal(answer.body.error.code, 'not_found');
      assert.equal(answer.body.error.message.replace('private', 'nobody-has-this').replaceAll('private', 'nobody-has-this'), none.body.error.message);
    }
    // A deploy cannot take the name (names are hosts, so it is no secret that one is taken).
    const hijack = await t.api('PUT', '/v1/workers/private', { token: other.token, body: textWorker('hijacked') });
    assert.equal(hijack.status, 403, hijack.text);
    assert.match(hijack.body.error.message, /taken/);
    const versions = await t.api('GET', '/v1/workers/private/versions', { token: acme.token });
    assert.equal(versions.body.length, 1);
    assert.equal(await body(await t.request('private.localhost', '/')), 'private v1');
    // The admin may act on it.
    assert.equal((await t.api('GET', '/v1/workers/private')).status, 200);
  });

  test("a route outside the account's zones is a 403 naming the zone, one another account holds is a 409; the refused deploy stores nothing", async () => {
    const claim = await t.api('PUT', '/v1/workers/api', { token: acme.token, body: textWorker('acme api', { routes: ['api.acme.test/*'] }) });
    assert.equal(claim.status, 201, claim.text);
    assert.deepEqual(claim.body.urls, [`http://api.localhost:${t.server.port}/`, 'api.acme.test/*']);
    const steal = await t.api('PUT', '/v1/workers/stealer', { token: other.token, body: textWorker('stolen', { routes: ['api.acme.test/*'] }) });
    assert.equal(steal.status, 403);
    assert.equal(steal.body.error.code, 'forbidden');
    assert.match(steal.body.error.message, /outside your account's zones.*'acme\.test'/);
    assert.equal((await t.api('GET', '/v1/workers/stealer')).status, 404);
    assert.equal(await body(await t.request('api.acme.test', '/x')), 'acme api');
    // A bare host means all of its paths, and is the same route.
    const bare = await t.api('PUT', '/v1/workers/stealer', { token: other.token, body: textWorker('stolen', { routes: ['API.acme.test'] }) });
    assert.equal(bare.status, 403);
    // The operator may deploy any route, but not one another account holds.
    const held = await t.api('PUT', '/v1/workers/stealer?account=other', { body: textWorker('stolen', { routes: ['api.acme.test/*'] }) });
    assert.equal(held.status, 409);
    assert.equal(held.body.error.code, 'conflict');
    assert.match(held.body.error.message, /api\.acme\.test/);
    assert.equal((await t.api('GET', '/v1/workers/stealer')).status, 404);
  });

  test('the admin deploys for an account with ?account=, and needs it for a new worker', async () => {
    const missing = await t.api('PUT', '/v1/workers/by-admin', { body: textWorker('x') });
    assert.equal(missing.status, 400);
    const put = await t.api('PUT', '/v1/workers/by-admin?account=other', { body: textWorker('by admin') });
    assert.equal(put.status, 201);
    assert.equal(put.body.version.author, 'admin');
    const got = await t.api('GET', '/v1/workers/by-admin', { token: other.token });
    assert.equal(got.body.account, 'other');
    // Later deploys go to the owner without ?account=.
    assert.equal((await t.api('PUT', '/v1/workers/by-admin', { body: textWorker('again') })).status, 201);
    assert.equal((await t.api('PUT', '/v1/workers/by-admin?account=acme', { body: textWorker('moved?') })).status, 403);
  });
});

describe('validation: a rejected upload answers why and stores nothing', () => {
  const cases: { name: string; body: unknown; status: number; message: RegExp; location?: RegExp }[] = [
    {
      name: 'syntax error',
      body: { modules: [{ name: 'worker.js', source: 'export default {\n  fetch() { return new Response("x" }\n};' }] },
      status: 400,
      message: /SyntaxError/,
      location: /^worker\.js:2:\d+$/,
    },
    {
      name: 'syntax error in an imported module',
      body: {
        modules: [
          { name: 'worker.js', source: 'import { x } from "./util.js"; export default { fetch() { return new Response(x) } };' },
          { name: 'util.js', source: 'export const x = ;' },
        ],
        main: 'worker.js',
      },
      status: 400,
      message: /SyntaxError/,
      location: /^util\.js:1:\d+$/,
    },
    { name: 'no fetch handler', body: moduleDeployment('export default { notFetch() {} };'), status: 400, message: /fetch/ },
    { name: 'top-level code that throws', body: moduleDeployment('throw new Error("boom at load"); export default {};'), status: 400, message: /boom at load/ },
    { name: 'top-level code over the CPU limit', body: moduleDeployment('while (true) {} export default { fetch() {} };'), status: 400, message: /CPU/i },
    { name: 'code over the size limit', body: textWorker('x'.repeat(65 * 1024)), status: 413, message: /over the limit/ },
    { name: 'neither modules nor script', body: { vars: {} }, status: 400, message: /modules.*script/ },
    { name: 'an unknown field', body: textWorker('x', { modle: 1 }), status: 400, message: /Unknown field 'modle'/ },
    { name: 'main not among the modules', body: textWorker('x', { main: 'nope.js' }), status: 400, message: /main/ },
    { name: 'a bad route', body: textWorker('x', { routes: ['http://example.com/*'] }), status: 400, message: /scheme/ },
    { name: 'a route with * inside the path', body: textWorker('x', { routes: ['example.com/*/x'] }), status: 400, message: /'\*' only at its end/ },
    { name: 'a route under the platform domain', body: textWorker('x', { routes: ['hello.localhost/*'] }), status: 400, message: /workers' own addresses/ },
    { name: 'a negative limit', body: textWorker('x', { limits: { cpuMs: -1 } }), status: 400, message: /cpuMs/ },
    { name: 'a limit over the cap', body: textWorker('x', { limits: { memoryMb: 1e6 } }), status: 403, message: /memoryMb: 1000000 is over the cap of 128.*raise/ },
    { name: 'vars nested thousands deep', body: textWorker('x', { vars: { DEEP: nested(3000) } }), status: 400, message: /DEEP.*more than 32 deep/ },
    { name: 'a route on a public suffix', body: textWorker('x', { routes: ['*.co.uk/*'] }), status: 400, message: /'co\.uk' is a public suffix/ },
    { name: 'an unknown limit', body: textWorker('x', { limits: { disk: 1 } }), status: 400, message: /Unknown limit/ },
    { name: 'a bad compatibility date', body: textWorker('x', { compatibilityDate: 'yesterday' }), status: 400, message: /YYYY-MM-DD/ },
    { name: 'a body that is not an object', body: [1, 2], status: 400, message: /JSON object/ },
  ];

  for (const c of cases) {
    test(c.name, async () => {
      const answer = await t.api('PUT', '/v1/workers/rejected', { token: acme.token, body: c.body });
      assert.equal(answer.status, c.status, answer.text);
      assert.match(answer.body.error.message, c.message);
      assert.equal(answer.body.error.code, c.status === 413 ? 'too_large' : c.status === 403 ? 'forbidden' : 'invalid');
      if (c.location) assert.match(answer.body.error.location, c.location);
      assert.equal((await t.api('GET', '/v1/workers/rejected', { token: acme.token })).status, 404);
      assert.equal((await t.request('rejected.localhost', '/')).status, 404);
    });
  }

  test('a bad worker name is 400', async () => {
    for (const name of ['Upper', 'under_score', '-x', 'a'.repeat(64)]) {
      const answer = await t.api('PUT', `/v1/workers/${name}`, { token: acme.token, body: textWorker('x') });
      assert.equal(answer.status, 400, name);
    }
  });

  test('a body over the upload limit is 413 before it is parsed', async () => {
    const answer = await t.api('PUT', '/v1/workers/rejected', { token: acme.token, rawBody: 'x'.repeat(2 * 1024 * 1024) });
    assert.equal(answer.status, 413);
    assert.equal(answer.body.error.code, 'too_large');
  });

  test('a broken upload over a good version keeps the good one serving and adds no version', async () => {
    await t.api('PUT', '/v1/workers/steady', { token: acme.token, body: textWorker('steady v1') });
    const broken = await t.api('PUT', '/v1/workers/steady', { token: acme.token, body: moduleDeployment('export default {') });
    assert.equal(broken.status, 400);
    assert.ok(broken.body.error.location);
    const versions = await t.api('GET', '/v1/workers/steady/versions', { token: acme.token });
    assert.equal(versions.body.length, 1);
    assert.equal(await body(await t.request('steady.localhost', '/')), 'steady v1');
  });
});

describe('versions, rollback, delete', () => {
  test('versions are listed newest first; rollback goes to the previous one by default, or to any by number or id', async () => {
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      const put = await t.api('PUT', '/v1/workers/versioned', { token: acme.token, body: textWorker(`v${n}`, { message: `release ${n}` }) });
      assert.equal(put.status, 201);
      ids.push(put.body.version.id);
    }
    const versions = await t.api('GET', '/v1/workers/versioned/versions', { token: acme.token });
    assert.deepEqual(versions.body.map((v: { number: number; active: boolean; message: string }) => [v.number, v.active, v.message]), [
      [3, true, 'release 3'],
      [2, false, 'release 2'],
      [1, false, 'release 1'],
    ]);
    assert.equal(versions.body[2].hash, contentHash({ modules: textWorker('v1').modules as never }));
    assert.equal(await body(await t.request('versioned.localhost', '/')), 'v3');

    const back = await t.api('POST', '/v1/workers/versioned/rollback', { token: acme.token });
    assert.equal(back.status, 200, back.text);
    assert.equal(back.body.activeVersion.number, 2);
    assert.equal(back.body.activeVersion.active, true);
    assert.equal(await body(await t.request('versioned.localhost', '/')), 'v2');

    const again = await t.api('POST', '/v1/workers/versioned/rollback', { token: acme.token, body: {} });
    assert.equal(again.body.activeVersion.number, 1);
    assert.equal(await body(await t.request('versioned.localhost', '/')), 'v1');

    const none = await t.api('POST', '/v1/workers/versioned/rollback', { token: acme.token });
    assert.equal(none.status, 409);

    const byNumber = await t.api('POST', '/v1/workers/versioned/rollback', { token: acme.token, body: { version: 3 } });
    assert.equal(byNumber.body.activeVersion.id, ids[2]);
    assert.equal(await body(await t.request('versioned.localhost', '/')), 'v3');

    const byId = await t.api('POST', '/v1/workers/versioned/rollback', { token: acme.token, body: { version: ids[1] } });
    assert.equal(byId.body.activeVersion.number, 2);
    assert.equal(await body(await t.request('versioned.localhost', '/')), 'v2');

    assert.equal((await t.api('POST', '/v1/workers/versioned/rollback', { token: acme.token, body: { version: 9 } })).status, 404);
    assert.equal((await t.api('POST', '/v1/workers/versioned/rollback', { token: acme.token, body: { version: 'ver_nope' } })).status, 404);
    assert.equal((await t.api('POST', '/v1/workers/versioned/rollback', { token: acme.token, body: { version: -1 } })).status, 400);

    // Versions are immutable: rolling back added none.
    const after = await t.api('GET', '/v1/workers/versioned/versions', { token: acme.token });
    assert.equal(after.body.length, 3);
    assert.deepEqual(after.body.map((v: { active: boolean }) => v.active), [false, true, false]);
  });

  test('delete removes the worker, its versions, routes and secrets; it stops serving', async () => {
    await t.api('PUT', '/v1/workers/doomed', { token: acme.token, body: textWorker('doomed', { routes: ['doomed.example.org/*'] }) });
    await t.api('PUT', '/v1/workers/doomed/secrets/KEY', { token: acme.token, body: { value: 'v' } });
    assert.equal((await t.request('doomed.localhost', '/')).status, 200);
    assert.equal((await t.request('doomed.example.org', '/')).status, 200);
    assert.equal((await t.api('DELETE', '/v1/workers/doomed', { token: acme.token })).status, 204);
    assert.equal((await t.api('GET', '/v1/workers/doomed', { token: acme.token })).status, 404);
    assert.equal((await t.api('GET', '/v1/workers/doomed/versions', { token: acme.token })).status, 404);
    assert.equal((await t.request('doomed.localhost', '/')).status, 404);
    assert.equal((await t.request('doomed.example.org', '/')).status, 404);
    assert.equal((await t.api('DELETE', '/v1/workers/doomed', { token: acme.token })).status, 404);
    // The route is free now (the operator may give it to another account).
    assert.equal((await t.api('PUT', '/v1/workers/newowner?account=other', { body: textWorker('new', { routes: ['doomed.example.org/*'] }) })).status, 201);
  });
});

describe('secrets', () => {
  const SECRET = 'sk_live_do-not-leak-7f3a9';

  test('secrets are write-only, visible to the worker in env, and never in answers or logs', async () => {
    const echo = moduleDeployment('export default { fetch(req, env) { return new Response(String(env.API_KEY) + "|" + env.PLAIN); } };', {
      vars: { PLAIN: 'var' },
    });
    assert.equal((await t.api('PUT', '/v1/workers/secretive', { token: acme.token, body: echo })).status, 201);
    assert.equal(await body(await t.request('secretive.localhost', '/')), 'undefined|var');

    const put = await t.api('PUT', '/v1/workers/secretive/secrets/API_KEY', { token: acme.token, body: { value: SECRET } });
    assert.equal(put.status, 204);
    assert.equal(await body(await t.request('secretive.localhost', '/')), `${SECRET}|var`);

    const list = await t.api('GET', '/v1/workers/secretive/secrets', { token: acme.token });
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.map((s: { name: string }) => s.name), ['API_KEY']);
    assert.deepEqual(Object.keys(list.body[0]).sort(), ['name', 'updatedAt']);
    const worker = await t.api('GET', '/v1/workers/secretive', { token: acme.token });
    assert.deepEqual(worker.body.secrets, ['API_KEY']);
    for (const answer of [list, worker, await t.api('GET', '/v1/workers/secretive/versions', { token: acme.token }), await t.api('GET', '/v1/workers')]) {
      assert.ok(!answer.text.includes(SECRET));
    }

    // A new version keeps the secrets.
    await t.api('PUT', '/v1/workers/secretive', { token: acme.token, body: echo });
    assert.equal(await body(await t.request('secretive.localhost', '/')), `${SECRET}|var`);

    assert.equal((await t.api('DELETE', '/v1/workers/secretive/secrets/API_KEY', { token: acme.token })).status, 204);
    assert.equal(await body(await t.request('secretive.localhost', '/')), 'undefined|var');
    assert.equal((await t.api('DELETE', '/v1/workers/secretive/secrets/API_KEY', { token: acme.token })).status, 404);

    assert.ok(!JSON.stringify(t.logs).includes(SECRET), 'no log line holds the secret');
  });

  test('secret names and bodies are checked; a secret needs an existing worker', async () => {
    assert.equal((await t.api('PUT', '/v1/workers/secretive/secrets/1BAD', { token: acme.token, body: { value: 'x' } })).status, 400);
    assert.equal((await t.api('PUT', '/v1/workers/secretive/secrets/OK', { token: acme.token, body: { value: 5 } })).status, 400);
    assert.equal((await t.api('PUT', '/v1/workers/nope/secrets/OK', { token: acme.token, body: { value: 'x' } })).status, 404);
  });
});

describe('the two listeners', () => {
  test('the data plane never reaches the admin API', async () => {
    for (const path of ['/v1/workers', '/v1/accounts']) {
      const answer = await t.request(`127.0.0.1:${t.server.port}`, path, { headers: { authorization: `Bearer ${acme.token}` } });
      assert.equal(answer.status, 404);
      assert.match(await answer.text(), /no worker/);
    }
    const health = await t.request(`127.0.0.1:${t.server.port}`, '/healthz');
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { ok: true });
  });

  test('an admin request cut off mid-body leaves the server serving', async () => {
    await new Promise<void>((resolve) => {
      const url = new URL(t.server.adminUrl);
      const req = httpRequest({ host: url.hostname, port: url.port, method: 'PUT', path: '/v1/workers/cut', headers: { authorization: `Bearer ${acme.token}`, 'content-length': '1000' } });
      req.on('error', () => resolve());
      req.write('{"modules":', () => {
        req.destroy();
        resolve();
      });
    });
    assert.equal((await t.api('GET', '/healthz')).status, 200);
    assert.equal((await t.api('GET', '/v1/workers/cut', { token: acme.token })).status, 404);
  });
});
