// The Store on one SQLite file (node:sqlite), for one machine. WAL with synchronous=FULL: a
// transaction that has returned is on disk, so a version the API acknowledged survives a
// SIGKILL or a power cut. One connection runs one transaction at a time: each method's
// statements run in BEGIN IMMEDIATE ... COMMIT while every other call waits its turn, so no
// other call sees or interleaves with a transaction that is not committed.

import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { SecretBox } from './secret-box.ts';
import { SqlStore, keyCheckMatches, sealKeyCheck, type Row, type SqlEngine, type SqlSession } from './sql-store.ts';

/**
 * Schema migrations, in order; PRAGMA user_version counts how many have run. Append only:
 * never edit one that has shipped.
 */
export const MIGRATIONS: string[] = [
  `
  CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;
  CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
  ) STRICT;
  CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    -- The first 16 hex digits of the hash find the row; the whole hash is then compared in
    -- constant time, so the lookup's timing says nothing about the rest.
    lookup TEXT NOT NULL,
    hash BLOB NOT NULL,
    description TEXT NOT NULL,
    created_at TEXT NOT NULL
  ) STRICT;
  CREATE INDEX tokens_by_lookup ON tokens(lookup);
  CREATE INDEX tokens_by_account ON tokens(account_id);
  CREATE TABLE workers (
    name TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    active_version_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  ) STRICT;
  CREATE INDEX workers_by_account ON workers(account_id);
  CREATE TABLE versions (
    id TEXT PRIMARY KEY,
    worker TEXT NOT NULL REFERENCES workers(name) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    content TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    author TEXT NOT NULL,
    message TEXT NOT NULL,
    UNIQUE (worker, number)
  ) STRICT;
  CREATE TRIGGER versions_are_immutable BEFORE UPDATE ON versions
  BEGIN
    SELECT RAISE(ABORT, 'versions are immutable');
  END;
  CREATE TABLE routes (
    pattern TEXT PRIMARY KEY,
    worker TEXT NOT NULL REFERENCES workers(name) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    created_at TEXT NOT NULL
  ) STRICT;
  CREATE INDEX routes_by_worker ON routes(worker);
  CREATE TABLE secrets (
    worker TEXT NOT NULL REFERENCES workers(name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    iv BLOB NOT NULL,
    tag BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (worker, name)
  ) STRICT;
  `,
  // A worker's identity apart from its name (a name deleted and created again is another
  // worker: a tail of the first must not see the second), the operator's quota overrides per
  // account, and zones: the hosts an account's routes may name.
  `
  ALTER TABLE workers ADD COLUMN id TEXT;
  UPDATE workers SET id = 'wrk_' || lower(hex(randomblob(16)));
  CREATE UNIQUE INDEX workers_by_id ON workers(id);
  ALTER TABLE accounts ADD COLUMN quotas TEXT;
  CREATE TABLE zones (
    zone TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    created_at TEXT NOT NULL
  ) STRICT;
  CREATE INDEX zones_by_account ON zones(account_id);
  `,
  // The account's tier: which runtime processes its workers share (NULL: 'default').
  `
  ALTER TABLE accounts ADD COLUMN tier TEXT;
  `,
  // Static assets' bytes, once per account under their SHA-256: the key holds the account, so
  // no account reads another's by naming a hash.
  `
  CREATE TABLE asset_blobs (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (account_id, hash)
  ) STRICT;
  `,
  // KV namespaces and their entries (src/store/kv-store.ts). Keys are bytes (UTF-8), so they
  // sort and compare byte by byte as Cloudflare lists them; expiration is in seconds since the epoch.
  `
  CREATE TABLE kv_namespaces (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    title TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- What its entries take (keys, values and metadata, in bytes): the account's KV quota counts it.
    bytes INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, title)
  ) STRICT;
  CREATE TABLE kv_entries (
    namespace_id TEXT NOT NULL REFERENCES kv_namespaces(id) ON DELETE CASCADE,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    expiration INTEGER,
    metadata TEXT,
    size INTEGER NOT NULL,
    PRIMARY KEY (namespace_id, key)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX kv_entries_by_expiration ON kv_entries(expiration) WHERE expiration IS NOT NULL;
  `,
  // Cron triggers' runs: one row per (worker, cron, tick), claimed by the node that runs it.
  `
  CREATE TABLE cron_runs (
    worker TEXT NOT NULL REFERENCES workers(name) ON DELETE CASCADE,
    cron TEXT NOT NULL,
    scheduled_time INTEGER NOT NULL,
    node TEXT NOT NULL,
    started_at TEXT NOT NULL,
    outcome TEXT,
    cpu_ms REAL,
    wall_ms REAL,
    error TEXT,
    PRIMARY KEY (worker, cron, scheduled_time)
  ) STRICT;
  CREATE INDEX cron_runs_by_time ON cron_runs(worker, scheduled_time);
  `,
  // Each worker's activity a minute at a time, as each server instance counted it: the charts of
  // the last hour add up every node's, and outlive a restart.
  `
  CREATE TABLE worker_minutes (
    worker TEXT NOT NULL REFERENCES workers(name) ON DELETE CASCADE,
    minute INTEGER NOT NULL,
    instance TEXT NOT NULL,
    requests REAL NOT NULL,
    errors REAL NOT NULL,
    cpu_ms REAL NOT NULL,
    cold_starts REAL NOT NULL,
    PRIMARY KEY (worker, minute, instance)
  ) STRICT;
  CREATE INDEX worker_minutes_by_minute ON worker_minutes(minute);
  `,
];

export interface SqliteStoreOptions {
  /** Directory that holds isolet.db (created if missing). */
  dataDir: string;
  /** AES-256 key for secrets (see loadSecretsKey). */
  secretsKey: Buffer;
}

export class SqliteStore extends SqlStore {
  readonly path: string;
  readonly #engine: SqliteEngine;

  constructor(options: SqliteStoreOptions) {
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    const path = join(options.dataDir, 'isolet.db');
    protectDatabaseFiles(path);
    const box = new SecretBox(options.secretsKey);
    const engine = new SqliteEngine(path);
    super(engine, box);
    this.path = path;
    this.#engine = engine;
    try {
      this.#migrate();
      this.#checkKey(box);
    } catch (error) {
      engine.db.close();
      throw error;
    }
  }

  /** Schema version: the number of migrations applied. */
  get schemaVersion(): number {
    return Number((this.#engine.db.prepare('PRAGMA user_version').get() as Row).user_version);
  }

  #migrate(): void {
    const current = this.schemaVersion;
    if (current > MIGRATIONS.length) {
      throw new Error(
        `${this.path} has schema version ${current}, newer than this isolet knows (${MIGRATIONS.length}): upgrade isolet.`,
      );
    }
    for (let version = current; version < MIGRATIONS.length; version++) {
      this.#engine.exclusive(() => {
        this.#engine.db.exec(MIGRATIONS[version]!);
        this.#engine.db.exec(`PRAGMA user_version = ${version + 1}`);
      });
    }
  }

  #checkKey(box: SecretBox): void {
    const row = this.#engine.db.prepare('SELECT value FROM meta WHERE key = ?').get('secrets_key_check') as Row | undefined;
    if (row === undefined) {
      this.#engine.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('secrets_key_check', sealKeyCheck(box));
      return;
    }
    if (keyCheckMatches(box, String(row.value))) return;
    throw new Error(
      `The secrets key does not match the one ${this.path} was made with: give ISOLET_SECRETS_KEY or secrets.key the original key.`,
    );
  }
}

/** One connection; transactions and reads take turns, so a read never sees a transaction half done. */
class SqliteEngine implements SqlEngine {
  readonly db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  #turn: Promise<unknown> = Promise.resolve();
  readonly #session: SqlSession;

  constructor(path: string) {
    this.db = new DatabaseSync(path, { enableForeignKeyConstraints: true, timeout: 5000 });
    this.db.exec('PRAGMA journal_mode = WAL');
    this.db.exec('PRAGMA synchronous = FULL');
    this.#session = {
      get: async (sql, ...params) => this.#statement(sql).get(...(params as never[])) as Row | undefined,
      all: async (sql, ...params) => this.#statement(sql).all(...(params as never[])) as Row[],
      run: async (sql, ...params) => ({ changes: Number(this.#statement(sql).run(...(params as never[])).changes) }),
    };
  }

  /** Runs fn in BEGIN IMMEDIATE ... COMMIT (ROLLBACK if it throws), synchronously. */
  exclusive<T>(fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    let result: T;
    try {
      result = fn();
    } catch (error) {
      this.db.exec('ROLLBACK');
      throw error;
    }
    this.db.exec('COMMIT');
    return result;
  }

  transaction<T>(fn: (sql: SqlSession) => Promise<T>): Promise<T> {
    return this.#inTurn(async () => {
      this.db.exec('BEGIN IMMEDIATE');
      let result: T;
      try {
        result = await fn(this.#session);
      } catch (error) {
        this.db.exec('ROLLBACK');
        throw error;
      }
      this.db.exec('COMMIT');
      return result;
    });
  }

  read<T>(fn: (sql: SqlSession) => Promise<T>): Promise<T> {
    return this.#inTurn(() => fn(this.#session));
  }

  /** One connection: every write takes its turn anyway. */
  unordered<T>(fn: (sql: SqlSession) => Promise<T>): Promise<T> {
    return this.transaction(fn);
  }

  /** One machine serves from this file: no other node follows its changes. */
  async changed(): Promise<void> {}

  async close(): Promise<void> {
    await this.#inTurn(async () => {
      if (this.db.isOpen) this.db.close();
    });
  }

  #inTurn<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#turn.then(fn, fn);
    this.#turn = run.catch(() => {});
    return run;
  }

  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}

/**
 * The database holds every account's code and sealed secrets: it and its WAL and shared-memory
 * files are the owner's only. SQLite makes the -wal and -shm files with the database file's
 * mode, so creating that one 0600 before SQLite opens it is enough for new files; older ones
 * are tightened.
 */
function protectDatabaseFiles(path: string): void {
  if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      chmodSync(file, 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}

