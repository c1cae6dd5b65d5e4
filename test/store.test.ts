// The Store on both engines (SQLite, PostgreSQL): accounts, tokens, versions and the active
// pointer, routes, secrets at rest; then what is SQLite's own (its files, its migrations).

import { test, describe, beforeEach, afterEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { MIGRATIONS, SqliteStore } from '../src/store/sqlite-store.ts';
import { PG_MIGRATIONS, PostgresStore } from '../src/store/postgres-store.ts';
import type { SqlStore } from '../src/store/sql-store.ts';
import { loadSecretsKey } from '../src/store/secret-box.ts';
import { StoreError, contentHash, sha256Hex, canonicalContent, type DeployInput, type WorkerContent } from '../src/store/store.ts';
import { TestPostgres } from './support/postgres.ts';

const hash = (token: string) => createHash('sha256').update(token).digest();
const code = (text: string): WorkerContent => ({ modules: [{ name: 'w.js', source: `export default { fetch() { return new Response(${JSON.stringify(text)}) } }` }] });

/** One engine's database for one test: opened (again) with a key, read and written around the store. */
interface Fixture {
  open(key: Buffer): Promise<SqlStore>;
  /** A statement run on the database directly, not through the store. */
  raw(sql: string): Promise<Record<string, unknown>[]>;
  /** Every byte the database holds, as text (binary columns as hex too). */
  dump(): Promise<string>;
  cleanup(): Promise<void>;
}

const postgres = new TestPostgres();
after(() => postgres.close());

const ENGINES: { name: string; fixture(): Promise<Fixture> }[] = [
  {
    name: 'SQLite',
    async fixture() {
      const dir = await mkdtemp(join(tmpdir(), 'isolet-store-'));
      return {
        open: async (key) => new SqliteStore({ dataDir: dir, secretsKey: key }),
        async raw(sql) {
          const db = new DatabaseSync(join(dir, 'isolet.db'), { timeout: 5000 });
          try {
            return db.prepare(sql).all() as Record<string, unknown>[];
          } finally {
            db.close();
          }
        },
        async dump() {
          let text = '';
          for (const file of await readdir(dir)) text += (await readFile(join(dir, file))).toString('latin1');
          return text;
        },
        cleanup: () => rm(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 'PostgreSQL',
    async fixture() {
      const url = await postgres.database();
      const raw = async (sql: string) => {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          return (await client.query(sql)).rows as Record<string, unknown>[];
        } finally {
          await client.end();
        }
      };
      return {
        open: (key) => PostgresStore.open({ url, secretsKey: key }),
        raw,
        async dump() {
          const tables = await raw("SELECT tablename FROM pg_tables WHERE schemaname = 'public'");
          let text = '';
          for (const { tablename } of tables) for (const row of await raw(`SELECT t::text AS t FROM ${String(tablename)} t`)) text += String(row.t);
          return text;
        },
        cleanup: async () => {},
      };
    },
  },
];

/** Whether the dump holds the text, as itself or as hex (a binary column). */
function holds(dump: string, text: string): boolean {
  return dump.includes(text) || dump.includes(Buffer.from(text).toString('hex'));
}

for (const engine of ENGINES) describe(engine.name, () => {
  let fixture: Fixture;
  let key: Buffer;
  let store: SqlStore;

  beforeEach(async () => {
    fixture = await engine.fixture();
    key = randomBytes(32);
    store = await fixture.open(key);
  });

  afterEach(async () => {
    await store.close();
    await fixture.cleanup();
  });

  async function accountWithWorker(account = 'acme', worker = 'hello') {
    const a = await store.createAccount(account);
    const v = await store.deploy({ worker, accountId: a.id, content: code('v1'), author: 'tok_1', message: 'first' });
    return { account: a, version: v };
  }

  describe('accounts and tokens', () => {
    test('accounts are created once per name and found by id or name', async () => {
      const a = await store.createAccount('acme');
      assert.match(a.id, /^acc_/);
      await assert.rejects(store.createAccount('acme'), (e: unknown) => e instanceof StoreError && e.code === 'conflict');
      assert.deepEqual(await store.findAccount(a.id), a);
      assert.deepEqual(await store.findAccount('acme'), a);
      assert.equal(await store.findAccount('nobody'), undefined);
      await store.createAccount('beta');
      assert.deepEqual((await store.listAccounts()).map((x) => x.name), ['acme', 'beta']);
    });

    test('tokens are stored as hashes, found by hash, and revoked', async () => {
      const a = await store.createAccount('acme');
      const t = await store.createToken(a.id, 'ci', hash('isl_secret-token'));
      assert.deepEqual(await store.findToken(hash('isl_secret-token')), t);
      assert.equal(await store.findToken(hash('isl_other-token')), undefined);
      assert.equal(await store.findToken(Buffer.alloc(5)), undefined);
      assert.deepEqual(await store.listTokens(a.id), [t]);
      await store.close();
      assert.ok(!holds(await fixture.dump(), 'isl_secret-token'), 'the token itself is not stored');
      store = await fixture.open(key);
      assert.equal(await store.deleteToken(a.id, t.id), true);
      assert.equal(await store.findToken(hash('isl_secret-token')), undefined);
      assert.equal(await store.deleteToken(a.id, t.id), false);
    });
  });

  describe('versions', () => {
    test('each deploy is a new numbered version that becomes active; the hash is of the canonical content', async () => {
      const { account, version: v1 } = await accountWithWorker();
      assert.equal(v1.number, 1);
      assert.equal(v1.hash, contentHash(code('v1')));
      assert.equal(v1.hash, sha256Hex(canonicalContent(code('v1'))));
      const v2 = await store.deploy({ worker: 'hello', accountId: account.id, content: code('v2'), author: 'tok_2', message: 'second' });
      assert.equal(v2.number, 2);
      const versions = await store.listVersions('hello');
      assert.deepEqual(versions.map((v) => [v.number, v.active, v.author, v.message]), [
        [2, true, 'tok_2', 'second'],
        [1, false, 'tok_1', 'first'],
      ]);
      const active = await store.activeVersion('hello');
      assert.equal(active?.id, v2.id);
      assert.deepEqual(active?.content, JSON.parse(canonicalContent(code('v2'))));
      assert.equal((await store.getWorker('hello'))?.activeVersion?.number, 2);
    });

    test('the same content hashes the same whatever the key order', () => {
      const a = contentHash({ vars: { b: 1, a: 2 }, modules: [{ name: 'w.js', source: 'x' }] });
      const b = contentHash({ modules: [{ source: 'x', name: 'w.js' }], vars: { a: 2, b: 1 } });
      assert.equal(a, b);
    });

    test('activate moves the pointer to an earlier version; an unknown version is not_found', async () => {
      const { account, version: v1 } = await accountWithWorker();
      await store.deploy({ worker: 'hello', accountId: account.id, content: code('v2'), author: 't', message: '' });
      const back = await store.activate('hello', v1.id);
      assert.equal(back.number, 1);
      assert.equal(back.active, true);
      assert.equal((await store.activeVersion('hello'))?.id, v1.id);
      assert.deepEqual((await store.listVersions('hello')).map((v) => v.active), [false, true]);
      await assert.rejects(store.activate('hello', 'ver_nope'), (e: unknown) => e instanceof StoreError && e.code === 'not_found');
      assert.equal((await store.getVersion('hello', { number: 2 }))?.active, false);
      assert.equal((await store.getVersion('hello', { number: 3 })), undefined);
    });

    test('versions are immutable in the database itself', async () => {
      await accountWithWorker();
      await assert.rejects(fixture.raw("UPDATE versions SET content = 'x'"), /immutable/);
    });

    test("a worker belongs to one account: another account's deploy is forbidden and stores nothing", async () => {
      await accountWithWorker('acme', 'hello');
      const other = await store.createAccount('other');
      await assert.rejects(
        store.deploy({ worker: 'hello', accountId: other.id, content: code('x'), author: 't', message: '' }),
        (e: unknown) => e instanceof StoreError && e.code === 'forbidden',
      );
      assert.equal((await store.listVersions('hello')).length, 1);
      assert.deepEqual(await store.listWorkers(other.id), []);
    });

    test('a bulk deploy stores each deployment or refuses it on its own, in one transaction: a refused one leaves nothing', async () => {
      const { account } = await accountWithWorker('acme', 'hello');
      const other = await store.createAccount('other');
      await store.deploy({ worker: 'theirs', accountId: other.id, content: code('t'), author: 't', message: '', routes: ['other.example.com/*'] });
      const input = (worker: string, extra: Partial<DeployInput> = {}): DeployInput => ({ worker, accountId: account.id, content: code(worker), author: 'tok_1', message: worker, ...extra });
      const results = await store.deployMany([
        input('hello'),
        input('fresh', { routes: ['fresh.example.com/*'] }),
        input('theirs'),
        // Refused at its route, after its worker would have been made: nothing of it stays.
        input('grabber', { routes: ['other.example.com/*'] }),
        input('zoned', { routes: ['outside.example.com/*'], checkZones: true }),
        // acme holds hello and fresh by now.
        input('one-too-many', { maxWorkers: 2 }),
        input('last'),
      ]);
      assert.deepEqual(results.map((r) => (r instanceof StoreError ? r.code : [r.worker, r.number])), [
        ['hello', 2], ['fresh', 1], 'forbidden', 'conflict', 'forbidden', 'forbidden', ['last', 1],
      ]);
      assert.match((results[5] as StoreError).message, /quota is 2/);
      assert.deepEqual((await store.listWorkers(account.id)).map((w) => [w.name, w.activeVersion?.number, w.routes]), [
        ['fresh', 1, ['fresh.example.com/*']],
        ['hello', 2, []],
        ['last', 1, []],
      ]);
      assert.deepEqual((await store.listRoutes()).map((r) => [r.pattern, r.worker]), [['fresh.example.com/*', 'fresh'], ['other.example.com/*', 'theirs']]);
      assert.equal((await store.listVersions('theirs')).length, 1);
      assert.equal(await store.getWorker('grabber'), undefined);
      assert.deepEqual((await store.activeVersion('fresh'))?.content, JSON.parse(canonicalContent(code('fresh'))));
      assert.deepEqual(await store.deployMany([]), []);
    });

    test('deleting a worker deletes its versions, routes and secrets', async () => {
      const { account } = await accountWithWorker();
      await store.deploy({ worker: 'hello', accountId: account.id, content: code('v2'), author: 't', message: '', routes: ['example.com/*'] });
      await store.putSecret('hello', 'KEY', 'value');
      assert.equal(await store.deleteWorker('hello'), true);
      assert.equal(await store.getWorker('hello'), undefined);
      assert.deepEqual(await store.listVersions('hello'), []);
      assert.deepEqual(await store.listRoutes(), []);
      assert.deepEqual(await store.listSecrets('hello'), []);
      assert.equal(await store.deleteWorker('hello'), false);
      // The name is free again, numbering starts over.
      const again = await store.deploy({ worker: 'hello', accountId: account.id, content: code('v1'), author: 't', message: '' });
      assert.equal(again.number, 1);
    });
  });

  describe('routes', () => {
    test("routes are unique: one account cannot claim another's; the same account's move", async () => {
      const { account } = await accountWithWorker('acme', 'hello');
      await store.deploy({ worker: 'hello', accountId: account.id, content: code('v2'), author: 't', message: '', routes: ['api.example.com/*', 'example.com/*'] });
      const other = await store.createAccount('other');
      await assert.rejects(
        store.deploy({ worker: 'theirs', accountId: other.id, content: code('x'), author: 't', message: '', routes: ['example.com/*'] }),
        (e: unknown) => e instanceof StoreError && e.code === 'conflict',
      );
      assert.equal(await store.getWorker('theirs'), undefined, 'a refused deploy stores nothing, not even the worker');
      await store.deploy({ worker: 'second', accountId: account.id, content: code('x'), author: 't', message: '', routes: ['example.com/*'] });
      assert.deepEqual(await store.listRoutes(), [
        { pattern: 'api.example.com/*', worker: 'hello', accountId: account.id },
        { pattern: 'example.com/*', worker: 'second', accountId: account.id },
      ]);
      // Routes left out of a deploy stay; an empty list removes them.
      await store.deploy({ worker: 'hello', accountId: account.id, content: code('v3'), author: 't', message: '' });
      assert.deepEqual((await store.getWorker('hello'))?.routes, ['api.example.com/*']);
      await store.deploy({ worker: 'hello', accountId: account.id, content: code('v4'), author: 't', message: '', routes: [] });
      assert.deepEqual((await store.getWorker('hello'))?.routes, []);
    });
  });

  describe('secrets', () => {
    test('secrets are encrypted at rest: neither the database nor its WAL holds the plaintext', async () => {
      await accountWithWorker();
      const plaintext = 'hunter2-' + randomBytes(8).toString('hex');
      await store.putSecret('hello', 'API_KEY', plaintext);
      await store.putSecret('hello', 'OTHER', 'second value ' + plaintext);
      assert.deepEqual(await store.secretValues('hello'), { API_KEY: plaintext, OTHER: 'second value ' + plaintext });
      assert.deepEqual((await store.listSecrets('hello')).map((s) => s.name), ['API_KEY', 'OTHER']);
      assert.ok(!holds(await fixture.dump(), plaintext), 'the database does not hold the secret');
      const active = await store.loadActive();
      assert.deepEqual(active[0]?.secrets, { API_KEY: plaintext, OTHER: 'second value ' + plaintext });
      await store.putSecret('hello', 'API_KEY', 'rotated');
      assert.equal((await store.secretValues('hello')).API_KEY, 'rotated');
      assert.equal(await store.deleteSecret('hello', 'API_KEY'), true);
      assert.equal(await store.deleteSecret('hello', 'API_KEY'), false);
      assert.deepEqual(Object.keys(await store.secretValues('hello')), ['OTHER']);
      await assert.rejects(store.putSecret('nobody', 'K', 'v'), (e: unknown) => e instanceof StoreError && e.code === 'not_found');
    });

    test('each value has its own IV', async () => {
      await accountWithWorker();
      await store.putSecret('hello', 'A', 'same');
      await store.putSecret('hello', 'B', 'same');
      const rows = (await fixture.raw('SELECT iv, ciphertext FROM secrets')) as { iv: Uint8Array; ciphertext: Uint8Array }[];
      assert.equal(rows.length, 2);
      assert.notDeepEqual(Buffer.from(rows[0]!.iv), Buffer.from(rows[1]!.iv));
      assert.notDeepEqual(Buffer.from(rows[0]!.ciphertext), Buffer.from(rows[1]!.ciphertext));
    });

    test('opening with another key fails at once and says so', async () => {
      await accountWithWorker();
      await store.putSecret('hello', 'A', 'x');
      await store.close();
      await assert.rejects(async () => await fixture.open(randomBytes(32)), /secrets key does not match/);
      store = await fixture.open(key);
      assert.equal((await store.secretValues('hello')).A, 'x');
    });

  });

  describe('asset blobs', () => {
    test("stored once per account under their hash; another account's hash finds nothing", async () => {
      const a = await store.createAccount('acme');
      const b = await store.createAccount('beta');
      const bytes = new TextEncoder().encode('<h1>hello</h1>');
      const h = createHash('sha256').update(bytes).digest('hex');
      await store.putAssets(a.id, [{ hash: h, bytes }]);
      await store.putAssets(a.id, [{ hash: h, bytes }]); // again: left as it is
      assert.deepEqual([...(await store.assetSizes(a.id, [h, 'f'.repeat(64)]))], [[h, bytes.byteLength]]);
      assert.deepEqual(Buffer.from((await store.getAsset(a.id, h))!), Buffer.from(bytes));
      assert.equal((await store.assetSizes(b.id, [h])).size, 0);
      assert.equal(await store.getAsset(b.id, h), undefined);
      // Many hashes at once are looked up in batches.
      const many = Array.from({ length: 1200 }, (_, i) => createHash('sha256').update(String(i)).digest('hex'));
      assert.deepEqual([...(await store.assetSizes(a.id, [...many, h]))], [[h, bytes.byteLength]]);
      await assert.rejects(store.putAssets('acc_nobody', [{ hash: h, bytes }]), (e: unknown) => e instanceof StoreError && e.code === 'not_found');
    });

    test("a version's manifest is part of its content and its hash", async () => {
      const a = await store.createAccount('acme');
      const manifest = { '/index.html': { hash: 'a'.repeat(64), size: 3, contentType: 'text/html; charset=utf-8' } };
      const v1 = await store.deploy({ worker: 'site', accountId: a.id, content: { ...code('v1'), assets: { manifest } }, author: 't', message: '' });
      const v2 = await store.deploy({ worker: 'site', accountId: a.id, content: { ...code('v1'), assets: { manifest, htmlHandling: 'none' } }, author: 't', message: '' });
      assert.notEqual(v1.hash, v2.hash);
      assert.deepEqual((await store.getVersion('site', { number: 1 }))!.content.assets, { manifest });
    });
  });

});

describe('SQLite only', () => {
  let dir: string;
  let key: Buffer;
  let store: SqliteStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'isolet-store-'));
    key = randomBytes(32);
    store = new SqliteStore({ dataDir: dir, secretsKey: key });
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function accountWithWorker() {
    const account = await store.createAccount('acme');
    await store.deploy({ worker: 'hello', accountId: account.id, content: code('v1'), author: 'tok_1', message: 'first' });
  }

  describe('the key file', () => {
    test('the key file is made once, mode 0600; ISOLET_SECRETS_KEY wins and is checked', async () => {
      const first = loadSecretsKey(dir, {});
      assert.equal(first.source, join(dir, 'secrets.key'));
      assert.equal((await stat(join(dir, 'secrets.key'))).mode & 0o777, 0o600);
      assert.deepEqual(loadSecretsKey(dir, {}).key, first.key);
      const fromEnv = randomBytes(32);
      assert.deepEqual(loadSecretsKey(dir, { ISOLET_SECRETS_KEY: fromEnv.toString('base64') }).key, fromEnv);
      assert.throws(() => loadSecretsKey(dir, { ISOLET_SECRETS_KEY: 'c2hvcnQ=' }), /32 random bytes/);
    });
  });

  describe('the database', () => {
    test('WAL, synchronous=FULL, migrations recorded in user_version, data survives reopening', async () => {
      await accountWithWorker();
      assert.equal(store.schemaVersion, MIGRATIONS.length);
      await store.close();
      const db = new DatabaseSync(join(dir, 'isolet.db'));
      assert.equal((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal');
      db.close();
      store = new SqliteStore({ dataDir: dir, secretsKey: key });
      assert.equal((await store.activeVersion('hello'))?.number, 1);
    });

    test('a database from a newer isolet is refused', async () => {
      await store.close();
      const db = new DatabaseSync(join(dir, 'isolet.db'));
      db.exec('PRAGMA user_version = 99');
      db.close();
      assert.throws(() => new SqliteStore({ dataDir: dir, secretsKey: key }), /newer than this isolet knows/);
      const fix = new DatabaseSync(join(dir, 'isolet.db'));
      fix.exec(`PRAGMA user_version = ${MIGRATIONS.length}`);
      fix.close();
      store = new SqliteStore({ dataDir: dir, secretsKey: key });
    });
  });

  describe('upgrading a database from before zones', () => {
    test('workers get an identity, routes and secrets stay, zones and quotas start empty, and accounts are in the default tier', async () => {
      const old = join(dir, 'old');
      await mkdir(old, { recursive: true });
      const db = new DatabaseSync(join(old, 'isolet.db'));
      db.exec(MIGRATIONS[0]!);
      db.exec('PRAGMA user_version = 1');
      const time = new Date().toISOString();
      db.prepare('INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)').run('acc_1', 'acme', time);
      db.prepare('INSERT INTO workers (name, account_id, active_version_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)').run('legacy', 'acc_1', 'ver_1', time, time);
      db.prepare('INSERT INTO versions (id, worker, number, content, hash, created_at, author, message) VALUES (?, ?, 1, ?, ?, ?, ?, ?)').run(
        'ver_1', 'legacy', '{"script":"x"}', 'h', time, 'admin', '',
      );
      db.prepare('INSERT INTO routes (pattern, worker, account_id, created_at) VALUES (?, ?, ?, ?)').run('shop.example.com/*', 'legacy', 'acc_1', time);
      db.close();
      const upgraded = new SqliteStore({ dataDir: old, secretsKey: key });
      try {
        assert.equal(upgraded.schemaVersion, MIGRATIONS.length);
        assert.equal(await upgraded.getTier('acc_1'), 'default');
        assert.equal((await upgraded.loadActive())[0]!.tier, 'default');
        await upgraded.setTier('acc_1', 'trusted');
        assert.equal(await upgraded.getTier('acc_1'), 'trusted');
        assert.equal((await upgraded.loadActive())[0]!.tier, 'trusted');
        await assert.rejects(upgraded.setTier('acc_nobody', 'trusted'), (error: unknown) => error instanceof StoreError && error.code === 'not_found');
        const worker = await upgraded.getWorker('legacy');
        assert.match(worker!.id, /^wrk_[0-9a-f]{32}$/);
        assert.deepEqual(worker!.routes, ['shop.example.com/*']);
        assert.deepEqual(await upgraded.listZones(), []);
        assert.deepEqual(await upgraded.getQuotas('acc_1'), {});
        // The worker keeps its route on a redeploy without a zone; a new route needs one.
        await upgraded.deploy({ worker: 'legacy', accountId: 'acc_1', content: { script: 'y' }, author: 'a', message: '', routes: ['shop.example.com/*'], checkZones: true });
        await assert.rejects(
          upgraded.deploy({ worker: 'legacy', accountId: 'acc_1', content: { script: 'z' }, author: 'a', message: '', routes: ['new.example.com/*'], checkZones: true }),
          (error: unknown) => error instanceof StoreError && error.code === 'forbidden' && /assign the zone 'example\.com'/.test(error.message),
        );
      } finally {
        await upgraded.close();
      }
    });
  });
});

describe('PostgreSQL only', () => {
  test('migrations are recorded, nodes that start together migrate once, and data survives reopening', async () => {
    const url = await postgres.database();
    const key = randomBytes(32);
    const stores = await Promise.all([1, 2, 3].map(() => PostgresStore.open({ url, secretsKey: key })));
    try {
      for (const s of stores) assert.equal(await s.schemaVersion(), PG_MIGRATIONS.length);
      const account = await stores[0]!.createAccount('acme');
      await stores[1]!.deploy({ worker: 'hello', accountId: account.id, content: code('v1'), author: 'a', message: '' });
      assert.equal((await stores[2]!.activeVersion('hello'))?.number, 1);
    } finally {
      for (const s of stores) await s.close();
    }
    const again = await PostgresStore.open({ url, secretsKey: key });
    try {
      assert.equal((await again.activeVersion('hello'))?.number, 1);
    } finally {
      await again.close();
    }
  });

  test('deploys of one worker through many nodes at once get every number once; the change counter names each', async () => {
    const url = await postgres.database();
    const key = randomBytes(32);
    const stores = await Promise.all([1, 2, 3].map(() => PostgresStore.open({ url, secretsKey: key })));
    try {
      const account = await stores[0]!.createAccount('acme');
      const start = await stores[0]!.changesSince(0);
      assert.deepEqual(start, { head: 0, workers: [], tokens: [] });
      const versions = await Promise.all(
        Array.from({ length: 12 }, (_, i) => stores[i % 3]!.deploy({ worker: i % 2 ? 'odd' : 'even', accountId: account.id, content: code(`v${i}`), author: 'a', message: String(i) })),
      );
      assert.deepEqual(versions.filter((v) => v.worker === 'odd').map((v) => v.number).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6]);
      assert.deepEqual(versions.filter((v) => v.worker === 'even').map((v) => v.number).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6]);
      const batch = await stores[1]!.changesSince(0);
      assert.deepEqual(batch, { head: 12, workers: ['even', 'odd'], tokens: [] });
      await stores[2]!.putSecret('odd', 'K', 'v');
      assert.deepEqual(await stores[0]!.changesSince(12), { head: 13, workers: ['odd'], tokens: [] });
      assert.deepEqual(await stores[0]!.changesSince(13), { head: 13, workers: [], tokens: [] });
      assert.equal((await stores[0]!.changesSince(99)).workers, 'all', 'a point past the head is another database: load everything');
    } finally {
      for (const s of stores) await s.close();
    }
  });

  test("a bulk deploy takes its turn with other nodes' writes, and names every worker it stored in one change", async () => {
    const url = await postgres.database();
    const key = randomBytes(32);
    const [bulkNode, otherNode] = await Promise.all([1, 2].map(() => PostgresStore.open({ url, secretsKey: key })));
    try {
      const account = await bulkNode!.createAccount('acme');
      const other = await bulkNode!.createAccount('other');
      await bulkNode!.deploy({ worker: 'theirs', accountId: other.id, content: code('t'), author: 'a', message: '' });
      const input = (worker: string, text: string) => ({ worker, accountId: account.id, content: code(text), author: 'a', message: text });
      const names = Array.from({ length: 20 }, (_, i) => `bulk-${i}`);
      const [bulk] = await Promise.all([
        bulkNode!.deployMany([...names.map((name) => input(name, 'bulk')), input('theirs', 'bulk')]),
        ...names.slice(0, 5).map((name) => otherNode!.deploy(input(name, 'single'))),
      ]);
      assert.equal(bulk.length, 21);
      assert.ok(bulk[20] instanceof StoreError && bulk[20].code === 'forbidden');
      // The five deployed both ways got numbers 1 and 2 once each, whichever went first.
      for (const name of names.slice(0, 5)) assert.deepEqual((await otherNode!.listVersions(name)).map((v) => v.number), [2, 1]);
      for (const name of names.slice(5)) assert.deepEqual((await otherNode!.listVersions(name)).map((v) => [v.number, v.message]), [[1, 'bulk']]);
      // One change for the bulk deploy, one per single deploy; the refused worker is not named.
      assert.deepEqual(await otherNode!.changesSince(1), { head: 7, workers: [...names].sort(), tokens: [] });
    } finally {
      await bulkNode!.close();
      await otherNode!.close();
    }
  });

  test('a change is pushed to every watcher, and a database that is away is StoreUnavailableError', async () => {
    const url = await postgres.database();
    const key = randomBytes(32);
    const writer = await PostgresStore.open({ url, secretsKey: key });
    const watcher = await PostgresStore.open({ url, secretsKey: key });
    try {
      const heads: number[] = [];
      const connected = new Promise<void>((resolve) => watcher.watch({ change: (head) => heads.push(head), connection: (up) => up && resolve() }));
      await connected;
      const account = await writer.createAccount('acme');
      await writer.deploy({ worker: 'hello', accountId: account.id, content: code('v1'), author: 'a', message: '' });
      while (heads.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.deepEqual(heads, [1]);
    } finally {
      await writer.close();
      await watcher.close();
    }
    const nowhere = await PostgresStore.open({ url, secretsKey: key });
    const port = new URL(url).port;
    await nowhere.close();
    const away = new URL(url);
    away.port = String(Number(port) === 1 ? 2 : 1);
    await assert.rejects(PostgresStore.open({ url: away.toString(), secretsKey: key }), (error: unknown) => error instanceof Error && error.name === 'StoreUnavailableError');
  });
});
