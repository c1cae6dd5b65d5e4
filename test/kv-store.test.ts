// KV in the store, on both engines (SQLite, PostgreSQL): namespaces owned by accounts, entries
// with bytes, expiration and metadata, lists in byte order with prefix and cursor, expired
// entries invisible and swept, another account's namespace absent; then the rules (kv-rules.ts)
// with Cloudflare's limits and words.

import { test, describe, beforeEach, afterEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SqliteStore } from '../src/store/sqlite-store.ts';
import { PostgresStore } from '../src/store/postgres-store.ts';
import type { SqlStore } from '../src/store/sql-store.ts';
import { StoreError } from '../src/store/store.ts';
import { MAX_NAMESPACES_PER_ACCOUNT } from '../src/store/kv-store.ts';
import { KV_LIMITS, KvError, checkCacheTtl, checkKey, checkListOptions, checkPutOptions, checkValueLength } from '../src/bindings/kv/kv-rules.ts';
import { TestPostgres } from './support/postgres.ts';

const postgres = new TestPostgres();
after(() => postgres.close());

const ENGINES: { name: string; open(): Promise<{ store: SqlStore; cleanup(): Promise<void> }> }[] = [
  {
    name: 'SQLite',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'isolet-kv-'));
      const store = new SqliteStore({ dataDir: dir, secretsKey: randomBytes(32) });
      return { store, cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'PostgreSQL',
    async open() {
      const store = await PostgresStore.open({ url: await postgres.database(), secretsKey: randomBytes(32) });
      return { store, cleanup: async () => {} };
    },
  },
];

const NOW = 1_800_000_000;
const bytes = (text: string) => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined) => (value === undefined ? undefined : new TextDecoder().decode(value));
const isStoreError = (code: string) => (error: unknown) => error instanceof StoreError && error.code === code;

for (const engine of ENGINES) describe(`KV on ${engine.name}`, () => {
  let store: SqlStore;
  let cleanup: () => Promise<void>;
  let acme: string;
  let other: string;

  beforeEach(async () => {
    ({ store, cleanup } = await engine.open());
    acme = (await store.createAccount('acme')).id;
    other = (await store.createAccount('other')).id;
  });

  afterEach(async () => {
    await store.close();
    await cleanup();
  });

  test('namespaces belong to an account: titles are unique in it, and another account sees none of them', async () => {
    const ns = await store.kv.createNamespace(acme, 'sessions');
    assert.match(ns.id, /^[0-9a-f]{32}$/);
    assert.equal(ns.accountName, 'acme');
    await assert.rejects(store.kv.createNamespace(acme, 'sessions'), isStoreError('conflict'));
    const theirs = await store.kv.createNamespace(other, 'sessions');
    assert.deepEqual((await store.kv.listNamespaces(acme)).map((n) => n.id), [ns.id]);
    assert.deepEqual((await store.kv.listNamespaces()).map((n) => n.accountName), ['acme', 'other']);
    assert.equal((await store.kv.getNamespace(ns.id, acme))?.title, 'sessions');
    assert.equal(await store.kv.getNamespace(ns.id, other), undefined);
    assert.equal((await store.kv.getNamespace(ns.id))?.accountId, acme);
    // Every entry call on another account's namespace is as for none at all.
    await store.kv.put(ns.id, 'k', { value: bytes('mine') }, { owner: acme, now: NOW });
    await assert.rejects(store.kv.get(ns.id, 'k', { owner: other, now: NOW }), isStoreError('not_found'));
    await assert.rejects(store.kv.put(ns.id, 'k', { value: bytes('theirs') }, { owner: other, now: NOW }), isStoreError('not_found'));
    await assert.rejects(store.kv.delete(ns.id, 'k', { owner: other, now: NOW }), isStoreError('not_found'));
    await assert.rejects(store.kv.list(ns.id, { limit: 10 }, { owner: other, now: NOW }), isStoreError('not_found'));
    assert.equal(await store.kv.deleteNamespace(ns.id, other), false);
    assert.equal(text((await store.kv.get(ns.id, 'k', { owner: acme, now: NOW }))?.value), 'mine');
    assert.equal(await store.kv.deleteNamespace(theirs.id, other), true);
    assert.equal(await store.kv.deleteNamespace(ns.id, acme), true);
    await assert.rejects(store.kv.get(ns.id, 'k', { owner: acme, now: NOW }), isStoreError('not_found'));
    await assert.rejects(store.kv.createNamespace('acc_nobody', 'x'), isStoreError('not_found'));
  });

  test('an account may have at most the namespace quota', async () => {
    for (let i = 0; i < MAX_NAMESPACES_PER_ACCOUNT; i++) await store.kv.createNamespace(acme, `ns-${i}`);
    await assert.rejects(store.kv.createNamespace(acme, 'one-more'), isStoreError('forbidden'));
    await store.kv.createNamespace(other, 'fine');
  });

  test('values are bytes, with expiration and metadata; a put replaces all three; delete is idempotent', async () => {
    const ns = (await store.kv.createNamespace(acme, 'data')).id;
    const ctx = { owner: acme, now: NOW };
    const binary = new Uint8Array(256).map((_, i) => i);
    await store.kv.put(ns, 'bin', { value: binary, expiration: NOW + 120, metadata: '{"type":"raw","n":[1,2]}' }, ctx);
    const got = await store.kv.get(ns, 'bin', ctx);
    assert.deepEqual(new Uint8Array(got!.value), binary);
    assert.equal(got!.expiration, NOW + 120);
    assert.deepEqual(got!.metadata, { type: 'raw', n: [1, 2] });
    await store.kv.put(ns, 'bin', { value: new Uint8Array(0) }, ctx);
    assert.deepEqual(await store.kv.get(ns, 'bin', ctx), { value: new Uint8Array(0) }, 'an empty value is a value, and the old expiration and metadata are gone');
    // Keys NUL, emoji, slashes: any string.
    for (const key of ['a\u0000b', '🔑/x', ' ', 'percent%2F']) {
      await store.kv.put(ns, key, { value: bytes(key) }, ctx);
      assert.equal(text((await store.kv.get(ns, key, ctx))?.value), key);
    }
    await store.kv.delete(ns, 'bin', ctx);
    await store.kv.delete(ns, 'bin', ctx);
    assert.equal(await store.kv.get(ns, 'bin', ctx), undefined);
    const big = randomBytes(KV_LIMITS.maxValueBytes);
    await store.kv.put(ns, 'big', { value: big }, ctx);
    assert.ok(Buffer.from((await store.kv.get(ns, 'big', ctx))!.value).equals(big), 'a 25 MiB value round-trips');
  });

  test('an entry is invisible from its expiration on, and swept later', async () => {
    const ns = (await store.kv.createNamespace(acme, 'ttl')).id;
    await store.kv.put(ns, 'soon', { value: bytes('x'), expiration: NOW + 60 }, { owner: acme, now: NOW });
    await store.kv.put(ns, 'later', { value: bytes('y'), expiration: NOW + 600 }, { owner: acme, now: NOW });
    await store.kv.put(ns, 'never', { value: bytes('z') }, { owner: acme, now: NOW });
    const at = (now: number) => ({ owner: acme, now });
    assert.equal(text((await store.kv.get(ns, 'soon', at(NOW + 59)))?.value), 'x');
    assert.equal(await store.kv.get(ns, 'soon', at(NOW + 60)), undefined);
    assert.deepEqual((await store.kv.list(ns, { limit: 10 }, at(NOW + 60))).keys.map((k) => k.name), ['later', 'never']);
    assert.equal(await store.kv.sweepExpired(NOW + 59, 100), 0);
    assert.equal(await store.kv.sweepExpired(NOW + 600, 100), 2);
    assert.deepEqual((await store.kv.list(ns, { limit: 10 }, at(NOW))).keys.map((k) => k.name), ['never'], 'swept for good');
  });

  test('list: byte order, prefix, limit, an opaque cursor, list_complete, expiration and metadata', async () => {
    const ns = (await store.kv.createNamespace(acme, 'list')).id;
    const ctx = { owner: acme, now: NOW };
    const keys = ['user:1', 'user:10', 'user:2', 'user;', 'usea', 'z', 'é', 'user:\u{1F600}', 'user'];
    for (const key of keys) await store.kv.put(ns, key, { value: bytes(key), ...(key === 'z' ? { expiration: NOW + 100, metadata: '{"m":true}' } : {}) }, ctx);
    const byBytes = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const all = await store.kv.list(ns, { limit: 1000 }, ctx);
    assert.deepEqual(all.keys.map((k) => k.name), byBytes);
    assert.equal(all.list_complete, true);
    assert.equal(all.cursor, undefined);
    assert.deepEqual(all.keys.find((k) => k.name === 'z'), { name: 'z', expiration: NOW + 100, metadata: { m: true } });
    assert.deepEqual(all.keys.find((k) => k.name === 'usea'), { name: 'usea' });

    const prefixed = await store.kv.list(ns, { prefix: 'user:', limit: 1000 }, ctx);
    assert.deepEqual(prefixed.keys.map((k) => k.name), ['user:1', 'user:10', 'user:2', 'user:\u{1F600}']);

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await store.kv.list(ns, { prefix: 'user', limit: 2, cursor }, ctx);
      pages++;
      seen.push(...page.keys.map((k) => k.name));
      if (page.list_complete) break;
      assert.equal(page.keys.length, 2);
      assert.equal(typeof page.cursor, 'string');
      cursor = page.cursor;
    }
    assert.deepEqual(seen, byBytes.filter((k) => k.startsWith('user')));
    assert.equal(pages, 3);
    for (const bad of ['not base64!', 'AAAA=', 'x'.repeat(800)]) {
      await assert.rejects(store.kv.list(ns, { limit: 10, cursor: bad }, ctx), isStoreError('invalid'));
    }
  });

  test("the account's entries count against its quota: puts, replacements, deletes and sweeps keep the count", async () => {
    const a = (await store.kv.createNamespace(acme, 'a')).id;
    const b = (await store.kv.createNamespace(acme, 'b')).id;
    const ctx = { owner: acme, now: NOW, maxAccountBytes: 100 };
    await store.kv.put(a, 'k1', { value: new Uint8Array(40), metadata: '{"x":1}' }, ctx); // 2 + 40 + 7
    await store.kv.put(b, 'k2', { value: new Uint8Array(30), expiration: NOW + 60 }, ctx); // 2 + 30
    assert.equal(await store.kv.accountBytes(acme), 81);
    await assert.rejects(store.kv.put(b, 'k3', { value: new Uint8Array(20) }, ctx), isStoreError('forbidden'));
    await store.kv.put(a, 'k1', { value: new Uint8Array(10) }, ctx); // replaced: 2 + 10
    assert.equal(await store.kv.accountBytes(acme), 44);
    await store.kv.put(b, 'k3', { value: new Uint8Array(20) }, ctx);
    assert.equal(await store.kv.accountBytes(acme), 66);
    await store.kv.delete(a, 'k1', ctx);
    await store.kv.delete(a, 'k1', ctx);
    assert.equal(await store.kv.accountBytes(acme), 54);
    assert.equal(await store.kv.sweepExpired(NOW + 60, 100), 1);
    assert.equal(await store.kv.accountBytes(acme), 22);
    assert.equal(await store.kv.accountBytes(other), 0, "another account's quota is its own");
  });

  test('writes of many callers at once all land', async () => {
    const ns = (await store.kv.createNamespace(acme, 'busy')).id;
    const ctx = { owner: acme, now: NOW };
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.kv.put(ns, `k${i % 10}`, { value: bytes(String(i).padStart(2, '0')) }, ctx)));
    assert.equal((await store.kv.list(ns, { limit: 1000 }, ctx)).keys.length, 10);
    assert.equal(await store.kv.accountBytes(acme), 10 * 4, 'the count is exact after racing writes');
  });
});

describe('KV rules', () => {
  const rejects = (fn: () => unknown, kind: string, status: number, message: string | RegExp) =>
    assert.throws(fn, (error: unknown) => {
      assert.ok(error instanceof KvError);
      assert.equal(error.kind, kind);
      assert.equal(error.status, status);
      if (typeof message === 'string') assert.equal(error.message, message);
      else assert.match(error.message, message);
      return true;
    });

  test('keys: not empty, not . or .., at most 512 bytes of UTF-8', () => {
    assert.equal(checkKey('k'.repeat(512)), 'k'.repeat(512));
    rejects(() => checkKey(''), 'type', 400, 'Key name cannot be empty.');
    rejects(() => checkKey('.'), 'type', 400, '"." is not allowed as a key name.');
    rejects(() => checkKey('..'), 'type', 400, '".." is not allowed as a key name.');
    rejects(() => checkKey('é'.repeat(257)), 'too_large', 414, 'UTF-8 encoded length of 514 exceeds key length limit of 512.');
    rejects(() => checkKey(42), 'type', 400, /must be a string/);
  });

  test('put options: expirationTtl at least 60 and winning, expiration 60 s ahead, metadata JSON of at most 1024 bytes', () => {
    assert.deepEqual(checkPutOptions({ expirationTtl: 60, expiration: 1 }, NOW), { expiration: NOW + 60 });
    assert.deepEqual(checkPutOptions({ expirationTtl: '90' }, NOW), { expiration: NOW + 90 });
    assert.deepEqual(checkPutOptions({ expiration: NOW + 60.7 }, NOW), { expiration: NOW + 60 });
    assert.deepEqual(checkPutOptions({ metadata: '{"a":1}' }, NOW), { metadata: '{"a":1}' });
    rejects(() => checkPutOptions({ expirationTtl: 30 }, NOW), 'invalid', 400, 'Invalid expiration_ttl of 30. Expiration TTL must be at least 60.');
    rejects(() => checkPutOptions({ expirationTtl: 0 }, NOW), 'invalid', 400, 'Invalid expiration_ttl of 0. Please specify integer greater than 0.');
    rejects(() => checkPutOptions({ expirationTtl: 'soon' }, NOW), 'invalid', 400, /Please specify integer greater than 0/);
    rejects(() => checkPutOptions({ expiration: NOW }, NOW), 'invalid', 400, /greater than the current number of seconds since the UNIX epoch/);
    rejects(() => checkPutOptions({ expiration: NOW + 59 }, NOW), 'invalid', 400, `Invalid expiration of ${NOW + 59}. Expiration times must be at least 60 seconds in the future.`);
    rejects(() => checkPutOptions({ metadata: JSON.stringify('x'.repeat(1023)) }, NOW), 'too_large', 413, 'Metadata length of 1025 exceeds limit of 1024.');
    rejects(() => checkPutOptions({ metadata: '{' }, NOW), 'invalid', 400, /not valid JSON/);
    rejects(() => checkPutOptions({ metadata: { a: 1 } }, NOW), 'type', 400, /JSON text/);
    checkValueLength(KV_LIMITS.maxValueBytes);
    rejects(() => checkValueLength(KV_LIMITS.maxValueBytes + 1), 'too_large', 413, 'Value length of 26214401 exceeds limit of 26214400.');
  });

  test('list options: limit 1 to 1000 (default 1000), prefix as a key, cursor text; cacheTtl at least 30', () => {
    assert.deepEqual(checkListOptions({}), { limit: 1000 });
    assert.deepEqual(checkListOptions({ limit: 0, prefix: '', cursor: '' }), { limit: 1000 });
    assert.deepEqual(checkListOptions({ limit: '5', prefix: 'a', cursor: 'YQ' }), { limit: 5, prefix: 'a', cursor: 'YQ' });
    rejects(() => checkListOptions({ limit: 1001 }), 'invalid', 400, 'Invalid key_count_limit of 1001. Please specify an integer less than 1000.');
    rejects(() => checkListOptions({ prefix: 'p'.repeat(513) }), 'too_large', 414, /exceeds key length limit of 512/);
    rejects(() => checkListOptions({ cursor: 5 }), 'type', 400, /cursor must be a string/);
    checkCacheTtl(undefined);
    checkCacheTtl(30);
    rejects(() => checkCacheTtl(10), 'invalid', 400, 'Invalid cache_ttl of 10. Cache TTL must be at least 30.');
  });
});
