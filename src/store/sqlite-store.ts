// The Store on one SQLite file (node:sqlite), for one machine. WAL with synchronous=FULL: a
// transaction that has returned is on disk, so a version the API acknowledged survives a
// SIGKILL or a power cut. Each method runs its statements synchronously inside one
// transaction, so no other JavaScript interleaves with it either.

import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SecretBox } from './secret-box.ts';
import {
  StoreError,
  canonicalContent,
  sha256Hex,
  type Account,
  type ActiveWorker,
  type DeployInput,
  type RouteInfo,
  type SecretInfo,
  type Store,
  type StoredVersion,
  type TokenInfo,
  type VersionInfo,
  type WorkerContent,
  type WorkerInfo,
} from './store.ts';

/**
 * Schema migrations, in order; PRAGMA user_version counts how many have run. Append only:
 * never edit one that has shipped.
 */
const MIGRATIONS: string[] = [
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
];

/** A known text sealed with the secrets key at first start: a wrong key is caught at open, not at the first secret. */
const KEY_CHECK = 'isolet secrets key check';

export interface SqliteStoreOptions {
  /** Directory that holds isolet.db (created if missing). */
  dataDir: string;
  /** AES-256 key for secrets (see loadSecretsKey). */
  secretsKey: Buffer;
}

type Row = Record<string, unknown>;

export class SqliteStore implements Store {
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #box: SecretBox;
  readonly #statements = new Map<string, StatementSync>();

  constructor(options: SqliteStoreOptions) {
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    this.path = join(options.dataDir, 'isolet.db');
    this.#box = new SecretBox(options.secretsKey);
    this.#db = new DatabaseSync(this.path, { enableForeignKeyConstraints: true, timeout: 5000 });
    this.#db.exec('PRAGMA journal_mode = WAL');
    this.#db.exec('PRAGMA synchronous = FULL');
    this.#migrate();
    this.#checkKey();
  }

  /** Schema version: the number of migrations applied. */
  get schemaVersion(): number {
    return Number((this.#db.prepare('PRAGMA user_version').get() as Row).user_version);
  }

  #migrate(): void {
    const current = this.schemaVersion;
    if (current > MIGRATIONS.length) {
      throw new Error(
        `${this.path} has schema version ${current}, newer than this isolet knows (${MIGRATIONS.length}): upgrade isolet.`,
      );
    }
    for (let version = current; version < MIGRATIONS.length; version++) {
      this.#transaction(() => {
        this.#db.exec(MIGRATIONS[version]!);
        this.#db.exec(`PRAGMA user_version = ${version + 1}`);
      });
    }
  }

  #checkKey(): void {
    const row = this.#get('SELECT value FROM meta WHERE key = ?', 'secrets_key_check');
    if (row === undefined) {
      const sealed = this.#box.seal(KEY_CHECK, 'meta/secrets_key_check');
      const value = JSON.stringify({
        iv: sealed.iv.toString('base64'),
        tag: sealed.tag.toString('base64'),
        ciphertext: sealed.ciphertext.toString('base64'),
      });
      this.#run('INSERT INTO meta (key, value) VALUES (?, ?)', 'secrets_key_check', value);
      return;
    }
    const parsed = JSON.parse(String(row.value)) as Record<string, string>;
    try {
      const sealed = {
        iv: Buffer.from(parsed.iv!, 'base64'),
        tag: Buffer.from(parsed.tag!, 'base64'),
        ciphertext: Buffer.from(parsed.ciphertext!, 'base64'),
      };
      if (this.#box.open(sealed, 'meta/secrets_key_check') === KEY_CHECK) return;
    } catch {}
    throw new Error(
      `The secrets key does not match the one ${this.path} was made with: give ISOLET_SECRETS_KEY or secrets.key the original key.`,
    );
  }

  // Accounts

  async createAccount(name: string): Promise<Account> {
    const account: Account = { id: newId('acc'), name, createdAt: now() };
    return this.#transaction(() => {
      if (this.#get('SELECT 1 FROM accounts WHERE name = ?', name)) {
        throw new StoreError('conflict', `An account named '${name}' exists already: pick another name.`);
      }
      this.#run('INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)', account.id, name, account.createdAt);
      return account;
    });
  }

  async listAccounts(): Promise<Account[]> {
    return this.#all('SELECT id, name, created_at FROM accounts ORDER BY name').map(toAccount);
  }

  async findAccount(idOrName: string): Promise<Account | undefined> {
    const row = this.#get('SELECT id, name, created_at FROM accounts WHERE id = ? OR name = ?', idOrName, idOrName);
    return row && toAccount(row);
  }

  // Tokens

  async createToken(accountId: string, description: string, tokenHash: Buffer): Promise<TokenInfo> {
    const token: TokenInfo = { id: newId('tok'), accountId, description, createdAt: now() };
    return this.#transaction(() => {
      if (!this.#get('SELECT 1 FROM accounts WHERE id = ?', accountId)) throw new StoreError('not_found', `No account '${accountId}'.`);
      this.#run(
        'INSERT INTO tokens (id, account_id, lookup, hash, description, created_at) VALUES (?, ?, ?, ?, ?, ?)',
        token.id,
        accountId,
        tokenHash.subarray(0, 8).toString('hex'),
        tokenHash,
        description,
        token.createdAt,
      );
      return token;
    });
  }

  async listTokens(accountId: string): Promise<TokenInfo[]> {
    return this.#all('SELECT id, account_id, description, created_at FROM tokens WHERE account_id = ? ORDER BY created_at, id', accountId).map(
      toToken,
    );
  }

  async deleteToken(accountId: string, tokenId: string): Promise<boolean> {
    return this.#run('DELETE FROM tokens WHERE id = ? AND account_id = ?', tokenId, accountId).changes > 0;
  }

  async findToken(tokenHash: Buffer): Promise<TokenInfo | undefined> {
    if (tokenHash.length !== 32) return undefined;
    const rows = this.#all(
      'SELECT id, account_id, description, created_at, hash FROM tokens WHERE lookup = ?',
      tokenHash.subarray(0, 8).toString('hex'),
    );
    let found: TokenInfo | undefined;
    for (const row of rows) {
      const hash = Buffer.from(row.hash as Uint8Array);
      if (hash.length === tokenHash.length && timingSafeEqual(hash, tokenHash)) found = toToken(row);
    }
    return found;
  }

  // Workers and versions

  async deploy(input: DeployInput): Promise<VersionInfo> {
    const text = canonicalContent(input.content);
    const hash = sha256Hex(text);
    const id = newId('ver');
    const time = now();
    return this.#transaction(() => {
      const owner = this.#get('SELECT account_id FROM workers WHERE name = ?', input.worker);
      if (owner === undefined) {
        this.#run(
          'INSERT INTO workers (name, account_id, active_version_id, created_at, updated_at) VALUES (?, ?, NULL, ?, ?)',
          input.worker,
          input.accountId,
          time,
          time,
        );
      } else if (owner.account_id !== input.accountId) {
        throw new StoreError('forbidden', `The worker '${input.worker}' belongs to another account: pick another name.`);
      }
      const last = this.#get('SELECT MAX(number) AS n FROM versions WHERE worker = ?', input.worker);
      const number = Number(last?.n ?? 0) + 1;
      this.#run(
        'INSERT INTO versions (id, worker, number, content, hash, created_at, author, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        id,
        input.worker,
        number,
        text,
        hash,
        time,
        input.author,
        input.message,
      );
      this.#run('UPDATE workers SET active_version_id = ?, updated_at = ? WHERE name = ?', id, time, input.worker);
      if (input.routes !== undefined) this.#setRoutes(input.worker, input.accountId, input.routes, time);
      return { id, worker: input.worker, number, hash, createdAt: time, author: input.author, message: input.message, active: true };
    });
  }

  /** Replaces a worker's routes; a route another account holds is a conflict, one of the same account's moves here. */
  #setRoutes(worker: string, accountId: string, routes: string[], time: string): void {
    for (const pattern of routes) {
      const holder = this.#get('SELECT worker, account_id FROM routes WHERE pattern = ?', pattern);
      if (holder !== undefined && holder.account_id !== accountId) {
        throw new StoreError('conflict', `The route '${pattern}' belongs to another account: remove it from the deployment.`);
      }
    }
    this.#run('DELETE FROM routes WHERE worker = ?', worker);
    for (const pattern of routes) {
      this.#run('DELETE FROM routes WHERE pattern = ?', pattern);
      this.#run('INSERT INTO routes (pattern, worker, account_id, created_at) VALUES (?, ?, ?, ?)', pattern, worker, accountId, time);
    }
  }

  async getWorker(name: string): Promise<WorkerInfo | undefined> {
    const row = this.#get(`${WORKER_SELECT} WHERE w.name = ?`, name);
    return row && this.#toWorker(row);
  }

  async listWorkers(accountId?: string): Promise<WorkerInfo[]> {
    const rows =
      accountId === undefined
        ? this.#all(`${WORKER_SELECT} ORDER BY w.name`)
        : this.#all(`${WORKER_SELECT} WHERE w.account_id = ? ORDER BY w.name`, accountId);
    return rows.map((row) => this.#toWorker(row));
  }

  #toWorker(row: Row): WorkerInfo {
    const routes = this.#all('SELECT pattern FROM routes WHERE worker = ? ORDER BY pattern', row.name).map((r) => String(r.pattern));
    return {
      name: String(row.name),
      accountId: String(row.account_id),
      accountName: String(row.account_name),
      activeVersion: row.v_id == null ? undefined : toVersion(row, 'v_', true),
      routes,
      updatedAt: String(row.updated_at),
    };
  }

  async listVersions(worker: string): Promise<VersionInfo[]> {
    const active = this.#get('SELECT active_version_id FROM workers WHERE name = ?', worker)?.active_version_id;
    return this.#all(`SELECT ${VERSION_COLUMNS} FROM versions WHERE worker = ? ORDER BY number DESC`, worker).map((row) =>
      toVersion(row, '', row.id === active),
    );
  }

  async getVersion(worker: string, ref: { id: string } | { number: number }): Promise<StoredVersion | undefined> {
    const row =
      'id' in ref
        ? this.#get(`SELECT ${VERSION_COLUMNS}, content FROM versions WHERE worker = ? AND id = ?`, worker, ref.id)
        : this.#get(`SELECT ${VERSION_COLUMNS}, content FROM versions WHERE worker = ? AND number = ?`, worker, ref.number);
    if (row === undefined) return undefined;
    const active = this.#get('SELECT active_version_id FROM workers WHERE name = ?', worker)?.active_version_id;
    return toStoredVersion(row, row.id === active);
  }

  async activeVersion(worker: string): Promise<StoredVersion | undefined> {
    const row = this.#get(
      `SELECT ${VERSION_COLUMNS.replaceAll(/\b(\w+)\b/g, 'v.$1')}, v.content FROM workers w JOIN versions v ON v.id = w.active_version_id WHERE w.name = ?`,
      worker,
    );
    return row && toStoredVersion(row, true);
  }

  async activate(worker: string, versionId: string): Promise<VersionInfo> {
    return this.#transaction(() => {
      const row = this.#get(`SELECT ${VERSION_COLUMNS} FROM versions WHERE worker = ? AND id = ?`, worker, versionId);
      if (row === undefined) throw new StoreError('not_found', `The worker '${worker}' has no version '${versionId}'.`);
      this.#run('UPDATE workers SET active_version_id = ?, updated_at = ? WHERE name = ?', versionId, now(), worker);
      return toVersion(row, '', true);
    });
  }

  async deleteWorker(worker: string): Promise<boolean> {
    // Versions, routes and secrets go with it (ON DELETE CASCADE).
    return this.#run('DELETE FROM workers WHERE name = ?', worker).changes > 0;
  }

  async listRoutes(): Promise<RouteInfo[]> {
    return this.#all('SELECT pattern, worker, account_id FROM routes ORDER BY pattern').map((row) => ({
      pattern: String(row.pattern),
      worker: String(row.worker),
      accountId: String(row.account_id),
    }));
  }

  // Secrets

  async putSecret(worker: string, name: string, value: string): Promise<void> {
    const sealed = this.#box.seal(value, secretContext(worker, name));
    const time = now();
    this.#transaction(() => {
      if (!this.#get('SELECT 1 FROM workers WHERE name = ?', worker)) throw new StoreError('not_found', `No worker '${worker}'.`);
      this.#run(
        `INSERT INTO secrets (worker, name, iv, tag, ciphertext, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (worker, name) DO UPDATE SET iv = excluded.iv, tag = excluded.tag, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at`,
        worker,
        name,
        sealed.iv,
        sealed.tag,
        sealed.ciphertext,
        time,
      );
      this.#run('UPDATE workers SET updated_at = ? WHERE name = ?', time, worker);
    });
  }

  async deleteSecret(worker: string, name: string): Promise<boolean> {
    return this.#transaction(() => {
      const deleted = this.#run('DELETE FROM secrets WHERE worker = ? AND name = ?', worker, name).changes > 0;
      if (deleted) this.#run('UPDATE workers SET updated_at = ? WHERE name = ?', now(), worker);
      return deleted;
    });
  }

  async listSecrets(worker: string): Promise<SecretInfo[]> {
    return this.#all('SELECT name, updated_at FROM secrets WHERE worker = ? ORDER BY name', worker).map((row) => ({
      name: String(row.name),
      updatedAt: String(row.updated_at),
    }));
  }

  async secretValues(worker: string): Promise<Record<string, string>> {
    return this.#secretValues(worker);
  }

  #secretValues(worker: string): Record<string, string> {
    const values: Record<string, string> = {};
    for (const row of this.#all('SELECT name, iv, tag, ciphertext FROM secrets WHERE worker = ? ORDER BY name', worker)) {
      const name = String(row.name);
      values[name] = this.#box.open(
        { iv: Buffer.from(row.iv as Uint8Array), tag: Buffer.from(row.tag as Uint8Array), ciphertext: Buffer.from(row.ciphertext as Uint8Array) },
        secretContext(worker, name),
      );
    }
    return values;
  }

  async loadActive(): Promise<ActiveWorker[]> {
    const rows = this.#all(
      `SELECT w.account_id AS account_id, ${VERSION_COLUMNS.replaceAll(/\b(\w+)\b/g, 'v.$1')}, v.content
       FROM workers w JOIN versions v ON v.id = w.active_version_id ORDER BY w.name`,
    );
    return rows.map((row) => ({
      name: String(row.worker),
      accountId: String(row.account_id),
      version: toStoredVersion(row, true),
      secrets: this.#secretValues(String(row.worker)),
    }));
  }

  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
  }

  // Plumbing

  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #get(sql: string, ...params: unknown[]): Row | undefined {
    return this.#statement(sql).get(...(params as never[])) as Row | undefined;
  }

  #all(sql: string, ...params: unknown[]): Row[] {
    return this.#statement(sql).all(...(params as never[])) as Row[];
  }

  #run(sql: string, ...params: unknown[]): { changes: number } {
    const result = this.#statement(sql).run(...(params as never[]));
    return { changes: Number(result.changes) };
  }

  /** Runs fn in BEGIN IMMEDIATE ... COMMIT (ROLLBACK if it throws). fn must be synchronous. */
  #transaction<T>(fn: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE');
    let result: T;
    try {
      result = fn();
    } catch (error) {
      this.#db.exec('ROLLBACK');
      throw error;
    }
    this.#db.exec('COMMIT');
    return result;
  }
}

const VERSION_COLUMNS = 'id, worker, number, hash, created_at, author, message';

const WORKER_SELECT = `
  SELECT w.name, w.account_id, a.name AS account_name, w.updated_at,
         v.id AS v_id, v.worker AS v_worker, v.number AS v_number, v.hash AS v_hash,
         v.created_at AS v_created_at, v.author AS v_author, v.message AS v_message
  FROM workers w JOIN accounts a ON a.id = w.account_id LEFT JOIN versions v ON v.id = w.active_version_id`;

function toAccount(row: Row): Account {
  return { id: String(row.id), name: String(row.name), createdAt: String(row.created_at) };
}

function toToken(row: Row): TokenInfo {
  return { id: String(row.id), accountId: String(row.account_id), description: String(row.description), createdAt: String(row.created_at) };
}

function toVersion(row: Row, prefix: string, active: boolean): VersionInfo {
  return {
    id: String(row[prefix + 'id']),
    worker: String(row[prefix + 'worker']),
    number: Number(row[prefix + 'number']),
    hash: String(row[prefix + 'hash']),
    createdAt: String(row[prefix + 'created_at']),
    author: String(row[prefix + 'author']),
    message: String(row[prefix + 'message']),
    active,
  };
}

function toStoredVersion(row: Row, active: boolean): StoredVersion {
  return { ...toVersion(row, '', active), content: JSON.parse(String(row.content)) as WorkerContent };
}

function secretContext(worker: string, name: string): string {
  return `secret/${worker}/${name}`;
}

function newId(kind: string): string {
  return `${kind}_${randomUUID().replaceAll('-', '')}`;
}

function now(): string {
  return new Date().toISOString();
}
