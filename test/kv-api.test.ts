// The admin API's KV endpoints on a real `isolet serve` (in process): namespaces per account,
// values as raw bytes with expiration and metadata, lists with prefix and cursor, Cloudflare's
// limits as 400/413, and another account's namespace answering 404 as if it did not exist.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ADMIN_TOKEN, startTestServer, type TestAccount, type TestServer } from './server-support.ts';

describe('admin API: KV', { timeout: 120_000 }, () => {
  let t: TestServer;
  let acme: TestAccount;
  let rival: TestAccount;

  before(async () => {
    t = await startTestServer();
    acme = await t.account('acme');
    rival = await t.account('rival');
  });
  after(() => t.close());

  /** A request with a raw body (or none) and the token of one account. */
  async function raw(method: string, path: string, token: string, body?: Uint8Array | string): Promise<{ status: number; bytes: Uint8Array; json: any; headers: Headers }> {
    const response = await fetch(t.server.adminUrl + path, { method, headers: { authorization: `Bearer ${token}` }, body });
    const bytes = new Uint8Array(await response.arrayBuffer());
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      json = undefined;
    }
    return { status: response.status, bytes, json, headers: response.headers };
  }

  async function namespace(account: TestAccount, title: string): Promise<string> {
    const created = await t.api('POST', '/v1/kv/namespaces', { token: account.token, body: { title } });
    assert.equal(created.status, 201, created.text);
    return created.body.id;
  }

  test('namespaces: created, listed and deleted per account; the operator sees all and creates for an account', async () => {
    const id = await namespace(acme, 'sessions');
    assert.match(id, /^[0-9a-f]{32}$/);
    const again = await t.api('POST', '/v1/kv/namespaces', { token: acme.token, body: { title: 'sessions' } });
    assert.equal(again.status, 409);
    assert.equal((await t.api('POST', '/v1/kv/namespaces', { token: acme.token, body: {} })).status, 400);
    const forRival = await t.api('POST', '/v1/kv/namespaces?account=rival', { body: { title: 'made-by-operator' } });
    assert.equal(forRival.status, 201);
    assert.equal(forRival.body.account, 'rival');
    assert.equal((await t.api('POST', '/v1/kv/namespaces', { body: { title: 'x' } })).status, 400, 'the operator names the account');
    assert.equal((await t.api('POST', '/v1/kv/namespaces?account=rival', { token: acme.token, body: { title: 'x' } })).status, 403);

    const mine = await t.api('GET', '/v1/kv/namespaces', { token: acme.token });
    assert.deepEqual(mine.body.map((n: any) => n.title), ['sessions']);
    const all = await t.api('GET', '/v1/kv/namespaces', { token: ADMIN_TOKEN });
    assert.ok(all.body.some((n: any) => n.account === 'rival') && all.body.some((n: any) => n.account === 'acme'));
    assert.deepEqual((await t.api('GET', '/v1/kv/namespaces?account=rival')).body.map((n: any) => n.title), ['made-by-operator']);
    assert.equal((await t.api('GET', `/v1/kv/namespaces/${id}`, { token: acme.token })).body.title, 'sessions');

    assert.equal((await t.api('DELETE', `/v1/kv/namespaces/${forRival.body.id}`, { token: rival.token })).status, 204);
    assert.equal((await t.api('DELETE', `/v1/kv/namespaces/${forRival.body.id}`, { token: rival.token })).status, 404);
  });

  test("another account's namespace is a 404 for every call, exactly as one nobody has", async () => {
    const id = await namespace(acme, 'private');
    assert.equal((await raw('PUT', `/v1/kv/namespaces/${id}/values/secret`, acme.token, 'mine')).status, 204);
    const nobody = 'f'.repeat(32);
    for (const [method, path] of [
      ['GET', ''],
      ['DELETE', ''],
      ['GET', '/keys'],
      ['GET', '/values/secret'],
      ['PUT', '/values/secret'],
      ['DELETE', '/values/secret'],
      ['GET', '/metadata/secret'],
    ] as const) {
      const theirs = await raw(method, `/v1/kv/namespaces/${id}${path}`, rival.token, method === 'PUT' ? 'stolen' : undefined);
      const none = await raw(method, `/v1/kv/namespaces/${nobody}${path}`, rival.token, method === 'PUT' ? 'stolen' : undefined);
      assert.equal(theirs.status, 404, `${method} ${path}`);
      assert.equal(none.status, 404);
      assert.equal(theirs.json.error.message.replace(id, 'ID'), none.json.error.message.replace(nobody, 'ID'), 'the answer says nothing about the other account');
    }
    assert.equal(new TextDecoder().decode((await raw('GET', `/v1/kv/namespaces/${id}/values/secret`, acme.token)).bytes), 'mine', 'untouched');
    assert.equal((await raw('GET', `/v1/kv/namespaces/${id}/values/secret`, ADMIN_TOKEN)).status, 200, 'the operator may read it');
  });

  test('values: raw bytes in and out, expiration, metadata, delete; keys with any characters', async () => {
    const id = await namespace(acme, 'values');
    const binary = randomBytes(70_000);
    const key = 'dir/ü ?#%';
    const path = `/v1/kv/namespaces/${id}/values/${encodeURIComponent(key)}`;
    const expiration = Math.floor(Date.now() / 1000) + 3600;
    const metadata = encodeURIComponent(JSON.stringify({ kind: 'blob', n: 1 }));
    assert.equal((await raw('PUT', `${path}?expiration=${expiration}&metadata=${metadata}`, acme.token, binary)).status, 204);
    const got = await raw('GET', path, acme.token);
    assert.equal(got.status, 200);
    assert.equal(got.headers.get('content-type'), 'application/octet-stream');
    assert.ok(Buffer.from(got.bytes).equals(binary));
    assert.deepEqual((await raw('GET', `/v1/kv/namespaces/${id}/metadata/${encodeURIComponent(key)}`, acme.token)).json, { metadata: { kind: 'blob', n: 1 }, expiration });
    assert.equal((await raw('PUT', `${path}?expiration_ttl=120`, acme.token, '')).status, 204);
    const replaced = await raw('GET', `/v1/kv/namespaces/${id}/metadata/${encodeURIComponent(key)}`, acme.token);
    assert.equal(replaced.json.metadata, null);
    assert.ok(replaced.json.expiration >= expiration - 3600 + 120);
    assert.equal((await raw('GET', path, acme.token)).bytes.length, 0, 'an empty value');
    assert.equal((await raw('DELETE', path, acme.token)).status, 204);
    assert.equal((await raw('DELETE', path, acme.token)).status, 204, 'deleting what is not there is fine');
    const gone = await raw('GET', path, acme.token);
    assert.equal(gone.status, 404);
    assert.match(gone.json.error.message, /has no key/);
  });

  test("Cloudflare's limits: key, value, metadata, expiration, list limit, cursor", async () => {
    const id = await namespace(acme, 'limits');
    const base = `/v1/kv/namespaces/${id}`;
    const expect = async (answer: Promise<{ status: number; json: any }>, status: number, message: RegExp) => {
      const { status: got, json } = await answer;
      assert.equal(got, status, JSON.stringify(json));
      assert.match(json.error.message, message);
    };
    await expect(raw('PUT', `${base}/values/${'k'.repeat(513)}`, acme.token, 'v'), 413, /UTF-8 encoded length of 513 exceeds key length limit of 512/);
    await expect(raw('PUT', `${base}/values/`, acme.token, 'v'), 400, /Key name cannot be empty/);
    await expect(raw('PUT', `${base}/values/k?expiration_ttl=59`, acme.token, 'v'), 400, /Invalid expiration_ttl of 59\. Expiration TTL must be at least 60\./);
    await expect(raw('PUT', `${base}/values/k?expiration=${Math.floor(Date.now() / 1000) + 10}`, acme.token, 'v'), 400, /at least 60 seconds in the future/);
    await expect(raw('PUT', `${base}/values/k?metadata=${encodeURIComponent(JSON.stringify('m'.repeat(1100)))}`, acme.token, 'v'), 413, /Metadata length of 1102 exceeds limit of 1024/);
    await expect(raw('PUT', `${base}/values/k?metadata=%7B`, acme.token, 'v'), 400, /not valid JSON/);
    await expect(raw('PUT', `${base}/values/k`, acme.token, new Uint8Array(25 * 1024 * 1024 + 1)), 413, /Value length of 26214401 exceeds limit of 26214400/);
    await expect(raw('GET', `${base}/keys?limit=1001`, acme.token), 400, /Invalid key_count_limit of 1001/);
    await expect(raw('GET', `${base}/keys?cursor=nonsense!`, acme.token), 400, /Invalid cursor/);
    assert.equal((await raw('PUT', `${base}/values/k`, acme.token, new Uint8Array(25 * 1024 * 1024))).status, 204, 'exactly 25 MiB fits');
  });

  test('keys: prefix, limit and cursor page through in byte order', async () => {
    const id = await namespace(acme, 'paging');
    for (const key of ['b', 'a:2', 'a:1', 'a:3', 'c']) assert.equal((await raw('PUT', `/v1/kv/namespaces/${id}/values/${key}`, acme.token, key)).status, 204);
    const first = await raw('GET', `/v1/kv/namespaces/${id}/keys?prefix=a:&limit=2`, acme.token);
    assert.deepEqual(first.json.keys, [{ name: 'a:1' }, { name: 'a:2' }]);
    assert.equal(first.json.list_complete, false);
    const second = await raw('GET', `/v1/kv/namespaces/${id}/keys?prefix=a:&limit=2&cursor=${first.json.cursor}`, acme.token);
    assert.deepEqual(second.json, { keys: [{ name: 'a:3' }], list_complete: true });
    assert.deepEqual((await raw('GET', `/v1/kv/namespaces/${id}/keys`, acme.token)).json.keys.map((k: any) => k.name), ['a:1', 'a:2', 'a:3', 'b', 'c']);
  });

  test('unknown paths and methods are 404, and nothing answers without a token', async () => {
    assert.equal((await t.api('GET', '/v1/kv/buckets', { token: acme.token })).status, 404);
    assert.equal((await t.api('PATCH', '/v1/kv/namespaces', { token: acme.token })).status, 404);
    assert.equal((await t.api('GET', '/v1/kv/namespaces', { token: null })).status, 401);
  });
});
