// The Store on one SQLite file (node:sqlite), for one machine. WAL with synchronous=FULL: a
// transaction that has returned is on disk, so a version the API acknowledged survives a
// SIGKILL or a power cut. Each method runs its statements synchronously inside one
// transaction, so no other JavaScript interleaves with it either.

import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { isTier, type Tier } from '../supervisor/placement.ts';
import { SecretBox } from './secret-box.ts';
import { registrableDomain, routeHost, routeTouchesZone, zoneCovers, zonesOverlap } from './zones.ts';
import {
  StoreError,
  canonicalContent,
  sha256Hex,
  QUOTA_NAMES,
  type Account,
  type AccountQuotas,
  type ActiveWorker,
  type DeployInput,
  type Owner,
  type RouteInfo,
  type SecretInfo,
  type Store,
  type StoredVersion,
  type TokenInfo,
  type VersionInfo,
  type WorkerContent,
  type WorkerInfo,
  type ZoneAssignment,
  type ZoneInfo,
} from './store.ts';

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
    protectDatabaseFiles(this.path);
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
    return this.#transaction(() => this.#deploy(input));
  }

  async deployMany(inputs: DeployInput[]): Promise<(VersionInfo | StoreError)[]> {
    return this.#transaction(() =>
      inputs.map((input) => {
        // A savepoint per deployment: one refused leaves the others, and nothing of its own.
        this.#db.exec('SAVEPOINT deployment');
        try {
          const version = this.#deploy(input);
          this.#db.exec('RELEASE deployment');
          return version;
        } catch (error) {
          this.#db.exec('ROLLBACK TO deployment');
          this.#db.exec('RELEASE deployment');
          if (error instanceof StoreError) return error;
          throw error;
        }
      }),
    );
  }

  /** deploy()'s statements, inside a transaction of the caller's. */
  #deploy(input: DeployInput): VersionInfo {
    const text = canonicalContent(input.content);
    const hash = sha256Hex(text);
    const id = newId('ver');
    const time = now();
    const owner = this.#get('SELECT account_id FROM workers WHERE name = ?', input.worker);
    if (owner === undefined) {
      if (input.maxWorkers !== undefined) {
        const count = Number(this.#get('SELECT COUNT(*) AS n FROM workers WHERE account_id = ?', input.accountId)!.n);
        if (count >= input.maxWorkers) {
          throw new StoreError(
            'forbidden',
            `The account has ${count} workers, its quota is ${input.maxWorkers}: delete one, or ask the operator to raise maxWorkers (PUT /v1/accounts/:account/quotas).`,
          );
        }
      }
      this.#run(
        'INSERT INTO workers (id, name, account_id, active_version_id, created_at, updated_at) VALUES (?, ?, ?, NULL, ?, ?)',
        newId('wrk'),
        input.worker,
        input.accountId,
        time,
        time,
      );
    } else if (owner.account_id !== input.accountId) {
      throw new StoreError('forbidden', `The worker name '${input.worker}' is taken: pick another name.`);
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
    if (input.routes !== undefined) this.#setRoutes(input.worker, input.accountId, input.routes, time, input.checkZones ?? false);
    return { id, worker: input.worker, number, hash, createdAt: time, author: input.author, message: input.message, active: true };
  }

  /**
   * Replaces a worker's routes; a route another account holds is a conflict, one of the same
   * account's moves here. With checkZones, a route the worker does not hold already must name a
   * host in one of the account's zones: routes held from before zones existed keep working.
   */
  #setRoutes(worker: string, accountId: string, routes: string[], time: string, checkZones: boolean): void {
    if (checkZones) {
      const held = new Set(this.#all('SELECT pattern FROM routes WHERE worker = ?', worker).map((r) => String(r.pattern)));
      const zones = this.#all('SELECT zone FROM zones WHERE account_id = ? ORDER BY zone', accountId).map((r) => String(r.zone));
      for (const pattern of routes) {
        if (held.has(pattern)) continue;
        const { host } = routeHost(pattern);
        if (zones.some((zone) => zoneCovers(zone, host))) continue;
        const yours = zones.length === 0 ? 'it has none' : `it has ${zones.map((z) => `'${z}'`).join(', ')}`;
        throw new StoreError(
          'forbidden',
          `The route '${pattern}' names a host outside your account's zones (${yours}): ask the operator to assign the zone '${registrableDomain(host)}' (or '${host}') to your account.`,
        );
      }
    }
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
      id: String(row.id),
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

  async activate(worker: string, versionId: string, owner?: Owner): Promise<VersionInfo> {
    return this.#transaction(() => {
      this.#requireWorker(worker, owner);
      const row = this.#get(`SELECT ${VERSION_COLUMNS} FROM versions WHERE worker = ? AND id = ?`, worker, versionId);
      if (row === undefined) throw new StoreError('not_found', `The worker '${worker}' has no version '${versionId}'.`);
      this.#run('UPDATE workers SET active_version_id = ?, updated_at = ? WHERE name = ?', versionId, now(), worker);
      return toVersion(row, '', true);
    });
  }

  async deleteWorker(worker: string, owner?: Owner): Promise<boolean> {
    // Versions, routes and secrets go with it (ON DELETE CASCADE).
    if (owner === undefined) return this.#run('DELETE FROM workers WHERE name = ?', worker).changes > 0;
    return this.#run('DELETE FROM workers WHERE name = ? AND account_id = ?', worker, owner).changes > 0;
  }

  /** Throws 'not_found' unless the worker exists and, when an owner is given, belongs to it. */
  #requireWorker(worker: string, owner: Owner): void {
    const row = this.#get('SELECT account_id FROM workers WHERE name = ?', worker);
    if (row === undefined || (owner !== undefined && row.account_id !== owner)) {
      throw new StoreError('not_found', `No worker '${worker}': deploy it with PUT /v1/workers/${worker}.`);
    }
  }

  async listRoutes(): Promise<RouteInfo[]> {
    return this.#all('SELECT pattern, worker, account_id FROM routes ORDER BY pattern').map((row) => ({
      pattern: String(row.pattern),
      worker: String(row.worker),
      accountId: String(row.account_id),
    }));
  }

  // Secrets

  async putSecret(worker: string, name: string, value: string, owner?: Owner): Promise<void> {
    const sealed = this.#box.seal(value, secretContext(worker, name));
    const time = now();
    this.#transaction(() => {
      this.#requireWorker(worker, owner);
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

  async deleteSecret(worker: string, name: string, owner?: Owner): Promise<boolean> {
    return this.#transaction(() => {
      this.#requireWorker(worker, owner);
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

  // Zones and quotas

  async assignZone(accountId: string, zone: string): Promise<ZoneAssignment> {
    const time = now();
    return this.#transaction(() => {
      const account = this.#get('SELECT name FROM accounts WHERE id = ?', accountId);
      if (account === undefined) throw new StoreError('not_found', `No account '${accountId}'.`);
      for (const row of this.#all('SELECT z.zone, z.account_id, a.name FROM zones z JOIN accounts a ON a.id = z.account_id')) {
        if (row.account_id !== accountId && zonesOverlap(zone, String(row.zone))) {
          throw new StoreError(
            'conflict',
            `The zone '${zone}' overlaps the zone '${String(row.zone)}' of the account '${String(row.name)}': remove that one first (DELETE /v1/accounts/${String(row.name)}/zones/${String(row.zone)}).`,
          );
        }
      }
      const existing = this.#get('SELECT created_at FROM zones WHERE zone = ?', zone);
      if (existing === undefined) this.#run('INSERT INTO zones (zone, account_id, created_at) VALUES (?, ?, ?)', zone, accountId, time);
      // The zone is this account's from now on: another account's route into it (held from
      // before zones, or deployed by the operator) would keep taking its traffic.
      const removedRoutes = this.#all('SELECT pattern, worker, account_id FROM routes WHERE account_id != ? ORDER BY pattern', accountId)
        .filter((row) => routeTouchesZone(String(row.pattern), zone))
        .map((row) => ({ pattern: String(row.pattern), worker: String(row.worker), accountId: String(row.account_id) }));
      for (const route of removedRoutes) this.#run('DELETE FROM routes WHERE pattern = ?', route.pattern);
      const info: ZoneInfo = { zone, accountId, accountName: String(account.name), createdAt: existing === undefined ? time : String(existing.created_at) };
      return { zone: info, removedRoutes };
    });
  }

  async listZones(accountId?: string): Promise<ZoneInfo[]> {
    const select = 'SELECT z.zone, z.account_id, a.name, z.created_at FROM zones z JOIN accounts a ON a.id = z.account_id';
    const rows = accountId === undefined ? this.#all(`${select} ORDER BY z.zone`) : this.#all(`${select} WHERE z.account_id = ? ORDER BY z.zone`, accountId);
    return rows.map((row) => ({ zone: String(row.zone), accountId: String(row.account_id), accountName: String(row.name), createdAt: String(row.created_at) }));
  }

  async removeZone(accountId: string, zone: string): Promise<boolean> {
    return this.#run('DELETE FROM zones WHERE zone = ? AND account_id = ?', zone, accountId).changes > 0;
  }

  async getQuotas(accountId: string): Promise<Partial<AccountQuotas>> {
    const row = this.#get('SELECT quotas FROM accounts WHERE id = ?', accountId);
    if (row === undefined) throw new StoreError('not_found', `No account '${accountId}'.`);
    if (row.quotas == null) return {};
    const stored = JSON.parse(String(row.quotas)) as Record<string, unknown>;
    const quotas: Partial<AccountQuotas> = {};
    for (const name of QUOTA_NAMES) if (typeof stored[name] === 'number') quotas[name] = stored[name];
    return quotas;
  }

  async setQuotas(accountId: string, quotas: Partial<AccountQuotas>): Promise<void> {
    const text = Object.keys(quotas).length === 0 ? null : JSON.stringify(quotas);
    if (this.#run('UPDATE accounts SET quotas = ? WHERE id = ?', text, accountId).changes === 0) {
      throw new StoreError('not_found', `No account '${accountId}'.`);
    }
  }

  async getTier(accountId: string): Promise<Tier> {
    const row = this.#get('SELECT tier FROM accounts WHERE id = ?', accountId);
    if (row === undefined) throw new StoreError('not_found', `No account '${accountId}'.`);
    return tierOf(row.tier);
  }

  async setTier(accountId: string, tier: Tier): Promise<void> {
    if (this.#run('UPDATE accounts SET tier = ? WHERE id = ?', tier === 'default' ? null : tier, accountId).changes === 0) {
      throw new StoreError('not_found', `No account '${accountId}'.`);
    }
  }

  async loadActive(): Promise<ActiveWorker[]> {
    const rows = this.#all(
      `SELECT w.id AS worker_id, w.account_id AS account_id, a.tier AS tier, ${VERSION_COLUMNS.replaceAll(/\b(\w+)\b/g, 'v.$1')}, v.content
       FROM workers w JOIN versions v ON v.id = w.active_version_id JOIN accounts a ON a.id = w.account_id ORDER BY w.name`,
    );
    return rows.map((row) => ({
      id: String(row.worker_id),
      name: String(row.worker),
      accountId: String(row.account_id),
      tier: tierOf(row.tier),
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
  SELECT w.id, w.name, w.account_id, a.name AS account_name, w.updated_at,
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

/**
 * The database holds every account's code and sealed secrets: it and its WAL and shared-memory
 * files are the owner's only. SQLite makes the -wal and -shm files with the database file's
 * mode, so creating that one 0600 before SQLite opens it is enough for new files; older ones
 * are tightened.
 */
/** A stored tier; NULL, or one this version does not know, is 'default'. */
function tierOf(value: unknown): Tier {
  return isTier(value) ? value : 'default';
}

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

function secretContext(worker: string, name: string): string {
  return `secret/${worker}/${name}`;
}

function newId(kind: string): string {
  return `${kind}_${randomUUID().replaceAll('-', '')}`;
}

function now(): string {
  return new Date().toISOString();
}
