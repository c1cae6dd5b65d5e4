// The Store over SQL, whichever engine runs it: SQLite on one machine (sqlite-store.ts) or
// PostgreSQL shared by many nodes (postgres-store.ts). Every statement here is written once, in
// the SQL both engines speak, with `?` placeholders; an engine runs each method's statements in
// one transaction, writes one at a time, and records, in the same transaction, which workers' serving
// state it changed (the change counter that nodes sharing a store follow).

import { randomUUID, timingSafeEqual } from 'node:crypto';
import { isTier, type Tier } from '../supervisor/placement.ts';
import type { SecretBox } from './secret-box.ts';
import { SqlKvStore, type KvStore } from './kv-store.ts';
import { registrableDomain, routeHost, routeTouchesZone, zoneCovers, zonesOverlap } from './zones.ts';
import type { ScheduledOutcome } from '../runtime/types.ts';
import {
  CRON_RUNS_KEPT,
  StoreError,
  canonicalContent,
  sha256Hex,
  QUOTA_NAMES,
  type Account,
  type AccountQuotas,
  type ActiveWorker,
  type CronRun,
  type CronTick,
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
  type WorkerMinute,
  type ZoneAssignment,
  type ZoneInfo,
} from './store.ts';

export type Row = Record<string, unknown>;

/** Rows of worker minutes written by one statement (7 parameters each, far under both engines' caps). */
const MINUTE_ROWS_PER_STATEMENT = 200;

/** Statements on one connection; bytes come back as Uint8Array or Buffer, numbers maybe as text. */
export interface SqlSession {
  get(sql: string, ...params: unknown[]): Promise<Row | undefined>;
  all(sql: string, ...params: unknown[]): Promise<Row[]>;
  run(sql: string, ...params: unknown[]): Promise<{ changes: number }>;
}

export interface SqlEngine {
  /**
   * Runs fn in one transaction, after every other write has committed or rolled back (writes
   * take turns); committed when it resolves, rolled back when it throws. fn may run more than
   * once (an engine may try a transaction again), so it does nothing but statements on its session.
   */
  transaction<T>(fn: (sql: SqlSession) => Promise<T>): Promise<T>;
  /** Runs reads on one consistent snapshot: never half of a write. */
  read<T>(fn: (sql: SqlSession) => Promise<T>): Promise<T>;
  /**
   * Runs fn in one transaction that does not wait for the cluster's turn of writes: for data
   * that no node follows and whose every write is one statement, atomic on its own (KV
   * entries), so a busy namespace does not queue deploys behind it. On one machine, a transaction.
   */
  unordered<T>(fn: (sql: SqlSession) => Promise<T>): Promise<T>;
  /**
   * Inside a transaction: what serves changed for these workers (none: routes only), or these
   * tokens were revoked (their tails end on every node).
   */
  changed(sql: SqlSession, change: { workers?: string[]; tokens?: string[] }): Promise<void>;
  close(): Promise<void>;
}

/** A known text sealed with the secrets key at first start: a wrong key is caught at open, not at the first secret. */
const KEY_CHECK = 'isolet secrets key check';
const KEY_CHECK_CONTEXT = 'meta/secrets_key_check';

/** The key check to store in meta at first start. */
export function sealKeyCheck(box: SecretBox): string {
  return box.sealText(KEY_CHECK, KEY_CHECK_CONTEXT);
}

/** Whether the stored key check opens with this key. */
export function keyCheckMatches(box: SecretBox, stored: string): boolean {
  try {
    return box.openText(stored, KEY_CHECK_CONTEXT) === KEY_CHECK;
  } catch {
    return false;
  }
}

export class SqlStore implements Store {
  readonly #engine: SqlEngine;
  readonly #box: SecretBox;
  readonly kv: KvStore;

  constructor(engine: SqlEngine, box: SecretBox) {
    this.#engine = engine;
    this.#box = box;
    this.kv = new SqlKvStore(engine);
  }

  // Accounts

  async createAccount(name: string): Promise<Account> {
    const account: Account = { id: newId('acc'), name, createdAt: now() };
    return this.#engine.transaction(async (sql) => {
      if (await sql.get('SELECT 1 FROM accounts WHERE name = ?', name)) {
        throw new StoreError('conflict', `An account named '${name}' exists already: pick another name.`);
      }
      await sql.run('INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)', account.id, name, account.createdAt);
      return account;
    });
  }

  async listAccounts(): Promise<Account[]> {
    return this.#engine.read(async (sql) => (await sql.all('SELECT id, name, created_at FROM accounts ORDER BY name')).map(toAccount));
  }

  async findAccount(idOrName: string): Promise<Account | undefined> {
    const row = await this.#engine.read((sql) => sql.get('SELECT id, name, created_at FROM accounts WHERE id = ? OR name = ?', idOrName, idOrName));
    return row && toAccount(row);
  }

  // Tokens

  async createToken(accountId: string, description: string, tokenHash: Buffer): Promise<TokenInfo> {
    const token: TokenInfo = { id: newId('tok'), accountId, description, createdAt: now() };
    return this.#engine.transaction(async (sql) => {
      if (!(await sql.get('SELECT 1 FROM accounts WHERE id = ?', accountId))) throw new StoreError('not_found', `No account '${accountId}'.`);
      await sql.run(
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
    return this.#engine.read(async (sql) =>
      (await sql.all('SELECT id, account_id, description, created_at FROM tokens WHERE account_id = ? ORDER BY created_at, id', accountId)).map(toToken),
    );
  }

  async deleteToken(accountId: string, tokenId: string): Promise<boolean> {
    return this.#engine.transaction(async (sql) => {
      if ((await sql.run('DELETE FROM tokens WHERE id = ? AND account_id = ?', tokenId, accountId)).changes === 0) return false;
      await this.#engine.changed(sql, { tokens: [tokenId] });
      return true;
    });
  }

  async findToken(tokenHash: Buffer): Promise<TokenInfo | undefined> {
    if (tokenHash.length !== 32) return undefined;
    const rows = await this.#engine.read((sql) =>
      sql.all('SELECT id, account_id, description, created_at, hash FROM tokens WHERE lookup = ?', tokenHash.subarray(0, 8).toString('hex')),
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
    return this.#engine.transaction(async (sql) => {
      const version = await deployIn(sql, input);
      await this.#engine.changed(sql, { workers: [input.worker] });
      return version;
    });
  }

  async deployMany(inputs: DeployInput[]): Promise<(VersionInfo | StoreError)[]> {
    return this.#engine.transaction(async (sql) => {
      const results: (VersionInfo | StoreError)[] = [];
      for (const input of inputs) {
        try {
          results.push(await deployIn(sql, input));
        } catch (error) {
          if (!(error instanceof StoreError)) throw error;
          results.push(error);
        }
      }
      const deployed = inputs.filter((_, i) => !(results[i] instanceof StoreError)).map((input) => input.worker);
      // One change naming every worker stored: each node loads each of them once.
      if (deployed.length > 0) await this.#engine.changed(sql, { workers: deployed });
      return results;
    });
  }

  async getWorker(name: string): Promise<WorkerInfo | undefined> {
    return this.#engine.read(async (sql) => {
      const row = await sql.get(`${WORKER_SELECT} WHERE w.name = ?`, name);
      return row && toWorker(sql, row);
    });
  }

  async listWorkers(accountId?: string): Promise<WorkerInfo[]> {
    return this.#engine.read(async (sql) => {
      const rows =
        accountId === undefined
          ? await sql.all(`${WORKER_SELECT} ORDER BY w.name`)
          : await sql.all(`${WORKER_SELECT} WHERE w.account_id = ? ORDER BY w.name`, accountId);
      const workers: WorkerInfo[] = [];
      for (const row of rows) workers.push(await toWorker(sql, row));
      return workers;
    });
  }

  async listVersions(worker: string): Promise<VersionInfo[]> {
    return this.#engine.read(async (sql) => {
      const active = (await sql.get('SELECT active_version_id FROM workers WHERE name = ?', worker))?.active_version_id;
      return (await sql.all(`SELECT ${VERSION_COLUMNS} FROM versions WHERE worker = ? ORDER BY number DESC`, worker)).map((row) =>
        toVersion(row, '', row.id === active),
      );
    });
  }

  async getVersion(worker: string, ref: { id: string } | { number: number }): Promise<StoredVersion | undefined> {
    return this.#engine.read(async (sql) => {
      const row =
        'id' in ref
          ? await sql.get(`SELECT ${VERSION_COLUMNS}, content FROM versions WHERE worker = ? AND id = ?`, worker, ref.id)
          : await sql.get(`SELECT ${VERSION_COLUMNS}, content FROM versions WHERE worker = ? AND number = ?`, worker, ref.number);
      if (row === undefined) return undefined;
      const active = (await sql.get('SELECT active_version_id FROM workers WHERE name = ?', worker))?.active_version_id;
      return toStoredVersion(row, row.id === active);
    });
  }

  async activeVersion(worker: string): Promise<StoredVersion | undefined> {
    const row = await this.#engine.read((sql) => sql.get(`${ACTIVE_SELECT} WHERE w.name = ?`, worker));
    return row && toStoredVersion(row, true);
  }

  async activate(worker: string, versionId: string, owner?: Owner): Promise<VersionInfo> {
    const time = now();
    return this.#engine.transaction(async (sql) => {
      await requireWorker(sql, worker, owner);
      const row = await sql.get(`SELECT ${VERSION_COLUMNS} FROM versions WHERE worker = ? AND id = ?`, worker, versionId);
      if (row === undefined) throw new StoreError('not_found', `The worker '${worker}' has no version '${versionId}'.`);
      await sql.run('UPDATE workers SET active_version_id = ?, updated_at = ? WHERE name = ?', versionId, time, worker);
      await this.#engine.changed(sql, { workers: [worker] });
      return toVersion(row, '', true);
    });
  }

  async deleteWorker(worker: string, owner?: Owner): Promise<boolean> {
    return this.#engine.transaction(async (sql) => {
      // Versions, routes and secrets go with it (ON DELETE CASCADE).
      const deleted =
        owner === undefined
          ? await sql.run('DELETE FROM workers WHERE name = ?', worker)
          : await sql.run('DELETE FROM workers WHERE name = ? AND account_id = ?', worker, owner);
      if (deleted.changes === 0) return false;
      await this.#engine.changed(sql, { workers: [worker] });
      return true;
    });
  }

  async listRoutes(): Promise<RouteInfo[]> {
    return this.#engine.read(async (sql) => (await sql.all('SELECT pattern, worker, account_id FROM routes ORDER BY pattern')).map(toRoute));
  }

  // Secrets

  async putSecret(worker: string, name: string, value: string, owner?: Owner): Promise<void> {
    const sealed = this.#box.seal(value, secretContext(worker, name));
    const time = now();
    await this.#engine.transaction(async (sql) => {
      await requireWorker(sql, worker, owner);
      await sql.run(
        `INSERT INTO secrets (worker, name, iv, tag, ciphertext, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (worker, name) DO UPDATE SET iv = excluded.iv, tag = excluded.tag, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at`,
        worker,
        name,
        sealed.iv,
        sealed.tag,
        sealed.ciphertext,
        time,
      );
      await sql.run('UPDATE workers SET updated_at = ? WHERE name = ?', time, worker);
      await this.#engine.changed(sql, { workers: [worker] });
    });
  }

  async deleteSecret(worker: string, name: string, owner?: Owner): Promise<boolean> {
    const time = now();
    return this.#engine.transaction(async (sql) => {
      await requireWorker(sql, worker, owner);
      const deleted = (await sql.run('DELETE FROM secrets WHERE worker = ? AND name = ?', worker, name)).changes > 0;
      if (deleted) {
        await sql.run('UPDATE workers SET updated_at = ? WHERE name = ?', time, worker);
        await this.#engine.changed(sql, { workers: [worker] });
      }
      return deleted;
    });
  }

  async listSecrets(worker: string): Promise<SecretInfo[]> {
    return this.#engine.read(async (sql) =>
      (await sql.all('SELECT name, updated_at FROM secrets WHERE worker = ? ORDER BY name', worker)).map((row) => ({
        name: String(row.name),
        updatedAt: String(row.updated_at),
      })),
    );
  }

  async secretValues(worker: string): Promise<Record<string, string>> {
    return this.#engine.read((sql) => this.#secretValues(sql, worker));
  }

  async #secretValues(sql: SqlSession, worker: string): Promise<Record<string, string>> {
    const values: Record<string, string> = {};
    for (const row of await sql.all('SELECT name, iv, tag, ciphertext FROM secrets WHERE worker = ? ORDER BY name', worker)) {
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
    return this.#engine.transaction(async (sql) => {
      const account = await sql.get('SELECT name FROM accounts WHERE id = ?', accountId);
      if (account === undefined) throw new StoreError('not_found', `No account '${accountId}'.`);
      for (const row of await sql.all('SELECT z.zone, z.account_id, a.name FROM zones z JOIN accounts a ON a.id = z.account_id')) {
        if (row.account_id !== accountId && zonesOverlap(zone, String(row.zone))) {
          throw new StoreError(
            'conflict',
            `The zone '${zone}' overlaps the zone '${String(row.zone)}' of the account '${String(row.name)}': remove that one first (DELETE /v1/accounts/${String(row.name)}/zones/${String(row.zone)}).`,
          );
        }
      }
      const existing = await sql.get('SELECT created_at FROM zones WHERE zone = ?', zone);
      if (existing === undefined) await sql.run('INSERT INTO zones (zone, account_id, created_at) VALUES (?, ?, ?)', zone, accountId, time);
      // The zone is this account's from now on: another account's route into it (held from
      // before zones, or deployed by the operator) would keep taking its traffic.
      const removedRoutes = (await sql.all('SELECT pattern, worker, account_id FROM routes WHERE account_id != ? ORDER BY pattern', accountId))
        .filter((row) => routeTouchesZone(String(row.pattern), zone))
        .map(toRoute);
      for (const route of removedRoutes) await sql.run('DELETE FROM routes WHERE pattern = ?', route.pattern);
      if (removedRoutes.length > 0) await this.#engine.changed(sql, {});
      const info: ZoneInfo = { zone, accountId, accountName: String(account.name), createdAt: existing === undefined ? time : String(existing.created_at) };
      return { zone: info, removedRoutes };
    });
  }

  async listZones(accountId?: string): Promise<ZoneInfo[]> {
    const select = 'SELECT z.zone, z.account_id, a.name, z.created_at FROM zones z JOIN accounts a ON a.id = z.account_id';
    const rows = await this.#engine.read((sql) =>
      accountId === undefined ? sql.all(`${select} ORDER BY z.zone`) : sql.all(`${select} WHERE z.account_id = ? ORDER BY z.zone`, accountId),
    );
    return rows.map((row) => ({ zone: String(row.zone), accountId: String(row.account_id), accountName: String(row.name), createdAt: String(row.created_at) }));
  }

  async removeZone(accountId: string, zone: string): Promise<boolean> {
    return this.#engine.transaction(async (sql) => (await sql.run('DELETE FROM zones WHERE zone = ? AND account_id = ?', zone, accountId)).changes > 0);
  }

  async getQuotas(accountId: string): Promise<Partial<AccountQuotas>> {
    const row = await this.#engine.read((sql) => sql.get('SELECT quotas FROM accounts WHERE id = ?', accountId));
    if (row === undefined) throw new StoreError('not_found', `No account '${accountId}'.`);
    if (row.quotas == null) return {};
    const stored = JSON.parse(String(row.quotas)) as Record<string, unknown>;
    const quotas: Partial<AccountQuotas> = {};
    for (const name of QUOTA_NAMES) if (typeof stored[name] === 'number') quotas[name] = stored[name];
    return quotas;
  }

  async setQuotas(accountId: string, quotas: Partial<AccountQuotas>): Promise<void> {
    const text = Object.keys(quotas).length === 0 ? null : JSON.stringify(quotas);
    await this.#engine.transaction(async (sql) => {
      if ((await sql.run('UPDATE accounts SET quotas = ? WHERE id = ?', text, accountId)).changes === 0) {
        throw new StoreError('not_found', `No account '${accountId}'.`);
      }
    });
  }

  async getTier(accountId: string): Promise<Tier> {
    const row = await this.#engine.read((sql) => sql.get('SELECT tier FROM accounts WHERE id = ?', accountId));
    if (row === undefined) throw new StoreError('not_found', `No account '${accountId}'.`);
    return tierOf(row.tier);
  }

  async setTier(accountId: string, tier: Tier): Promise<void> {
    await this.#engine.transaction(async (sql) => {
      if ((await sql.run('UPDATE accounts SET tier = ? WHERE id = ?', tier === 'default' ? null : tier, accountId)).changes === 0) {
        throw new StoreError('not_found', `No account '${accountId}'.`);
      }
      const workers = await sql.all('SELECT name FROM workers WHERE account_id = ? ORDER BY name', accountId);
      if (workers.length > 0) await this.#engine.changed(sql, { workers: workers.map((row) => String(row.name)) });
    });
  }

  // Asset blobs

  async assetSizes(accountId: string, hashes: string[]): Promise<Map<string, number>> {
    const sizes = new Map<string, number>();
    await this.#engine.read(async (sql) => {
      for (let from = 0; from < hashes.length; from += ASSET_LOOKUP_BATCH) {
        const batch = hashes.slice(from, from + ASSET_LOOKUP_BATCH);
        const rows = await sql.all(`SELECT hash, size FROM asset_blobs WHERE account_id = ? AND hash IN (${batch.map(() => '?').join(', ')})`, accountId, ...batch);
        for (const row of rows) sizes.set(String(row.hash), Number(row.size));
      }
    });
    return sizes;
  }

  async putAssets(accountId: string, blobs: { hash: string; bytes: Uint8Array }[]): Promise<void> {
    const time = now();
    await this.#engine.transaction(async (sql) => {
      if (!(await sql.get('SELECT 1 FROM accounts WHERE id = ?', accountId))) throw new StoreError('not_found', `No account '${accountId}'.`);
      for (const { hash, bytes } of blobs) {
        await sql.run(
          'INSERT INTO asset_blobs (account_id, hash, size, data, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, hash) DO NOTHING',
          accountId,
          hash,
          bytes.byteLength,
          Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
          time,
        );
      }
    });
  }

  async getAsset(accountId: string, hash: string): Promise<Uint8Array | undefined> {
    const row = await this.#engine.read((sql) => sql.get('SELECT data FROM asset_blobs WHERE account_id = ? AND hash = ?', accountId, hash));
    return row === undefined ? undefined : (row.data as Uint8Array);
  }

  // Cron triggers

  async claimCronTicks(scheduledTime: number, node: string, due: CronTick[]): Promise<CronTick[]> {
    if (due.length === 0) return [];
    const startedAt = now();
    // One transaction for the whole tick: writes take turns, and the key (worker, cron, tick)
    // lets one insert win whichever node's turn comes first.
    return this.#engine.transaction(async (sql) => {
      const won: CronTick[] = [];
      for (const { worker, cron } of due) {
        if (!(await sql.get('SELECT 1 FROM workers WHERE name = ?', worker))) continue;
        const inserted = await sql.run(
          'INSERT INTO cron_runs (worker, cron, scheduled_time, node, started_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
          worker, cron, scheduledTime, node, startedAt,
        );
        if (inserted.changes === 1) won.push({ worker, cron });
      }
      return won;
    });
  }

  async recordCronRuns(runs: CronRun[]): Promise<void> {
    if (runs.length === 0) return;
    await this.#engine.transaction(async (sql) => {
      for (const run of runs) {
        await sql.run(
          'UPDATE cron_runs SET outcome = ?, cpu_ms = ?, wall_ms = ?, error = ? WHERE worker = ? AND cron = ? AND scheduled_time = ?',
          run.outcome ?? null, run.cpuMs ?? null, run.wallMs ?? null, run.error ?? null, run.worker, run.cron, run.scheduledTime,
        );
      }
      for (const worker of new Set(runs.map((run) => run.worker))) {
        await sql.run(
          `DELETE FROM cron_runs WHERE worker = ? AND scheduled_time <
             (SELECT scheduled_time FROM cron_runs WHERE worker = ? ORDER BY scheduled_time DESC LIMIT 1 OFFSET ${CRON_RUNS_KEPT - 1})`,
          worker, worker,
        );
      }
    });
  }

  async listCronRuns(worker: string): Promise<CronRun[]> {
    return this.#engine.read(async (sql) =>
      (await sql.all(
        `SELECT worker, cron, scheduled_time, node, started_at, outcome, cpu_ms, wall_ms, error FROM cron_runs
         WHERE worker = ? ORDER BY scheduled_time DESC, cron LIMIT ${CRON_RUNS_KEPT}`,
        worker,
      )).map(toCronRun),
    );
  }

  // Each worker's last hour (src/observability/series-sync.ts)

  async saveWorkerMinutes(instance: string, rows: WorkerMinute[], keepFrom: number): Promise<void> {
    // Counts, not the deployment's state: beside the writes' turns, as KV writes are.
    await this.#engine.unordered(async (sql) => {
      for (let at = 0; at < rows.length; at += MINUTE_ROWS_PER_STATEMENT) {
        const chunk = rows.slice(at, at + MINUTE_ROWS_PER_STATEMENT);
        // Typed casts: PostgreSQL takes a VALUES list's parameters as text otherwise.
        const values = chunk.map(() => '(CAST(? AS text), CAST(? AS bigint), CAST(? AS double precision), CAST(? AS double precision), CAST(? AS double precision), CAST(? AS double precision))').join(', ');
        await sql.run(
          `WITH v (worker, minute, requests, errors, cpu_ms, cold_starts) AS (VALUES ${values})
           INSERT INTO worker_minutes (worker, minute, instance, requests, errors, cpu_ms, cold_starts)
           SELECT v.worker, v.minute, ?, v.requests, v.errors, v.cpu_ms, v.cold_starts FROM v WHERE EXISTS (SELECT 1 FROM workers WHERE name = v.worker)
           ON CONFLICT (worker, minute, instance) DO UPDATE SET requests = excluded.requests, errors = excluded.errors,
             cpu_ms = excluded.cpu_ms, cold_starts = excluded.cold_starts`,
          ...chunk.flatMap((row) => [row.worker, row.minute, row.requests, row.errors, row.cpuMs, row.coldStarts]), instance,
        );
      }
      await sql.run('DELETE FROM worker_minutes WHERE minute < ?', keepFrom);
    });
  }

  async workerMinutes(from: number, except: string, worker?: string): Promise<WorkerMinute[]> {
    const rows = await this.#engine.read((sql) =>
      sql.all(
        `SELECT worker, minute, SUM(requests) AS requests, SUM(errors) AS errors, SUM(cpu_ms) AS cpu_ms, SUM(cold_starts) AS cold_starts
         FROM worker_minutes WHERE minute >= ? AND instance <> ?${worker === undefined ? '' : ' AND worker = ?'}
         GROUP BY worker, minute`,
        ...(worker === undefined ? [from, except] : [from, except, worker]),
      ));
    return rows.map((row) => ({
      worker: String(row.worker), minute: Number(row.minute), requests: Number(row.requests), errors: Number(row.errors),
      cpuMs: Number(row.cpu_ms), coldStarts: Number(row.cold_starts),
    }));
  }

  async loadActive(): Promise<ActiveWorker[]> {
    return this.#engine.read(async (sql) => {
      const workers: ActiveWorker[] = [];
      for (const row of await sql.all(`${ACTIVE_SELECT} ORDER BY w.name`)) workers.push(await this.#toActive(sql, row));
      return workers;
    });
  }

  /** Some workers as loadActive has them; a name with no worker or no active version is left out. */
  async loadWorkers(names: string[]): Promise<ActiveWorker[]> {
    return this.#engine.read(async (sql) => {
      const workers: ActiveWorker[] = [];
      for (const name of names) {
        const row = await sql.get(`${ACTIVE_SELECT} WHERE w.name = ?`, name);
        if (row !== undefined) workers.push(await this.#toActive(sql, row));
      }
      return workers;
    });
  }

  async #toActive(sql: SqlSession, row: Row): Promise<ActiveWorker> {
    return {
      id: String(row.worker_id),
      name: String(row.worker),
      accountId: String(row.account_id),
      tier: tierOf(row.tier),
      version: toStoredVersion(row, true),
      secrets: await this.#secretValues(sql, String(row.worker)),
    };
  }

  async close(): Promise<void> {
    await this.#engine.close();
  }
}

/**
 * deploy()'s statements, in the caller's transaction. Every refusal (a StoreError) is decided
 * before the first write, so a refused deployment leaves nothing behind and the transaction
 * may go on with the next one: no savepoint is needed, which on PostgreSQL would cost a
 * subtransaction per deployment of a bulk deploy (past 64 they slow every other snapshot).
 */
async function deployIn(sql: SqlSession, input: DeployInput): Promise<VersionInfo> {
  const text = canonicalContent(input.content);
  const hash = sha256Hex(text);
  const id = newId('ver');
  const time = now();
  const owner = await sql.get('SELECT account_id FROM workers WHERE name = ?', input.worker);
  if (owner === undefined) {
    if (input.maxWorkers !== undefined) {
      const count = Number((await sql.get('SELECT COUNT(*) AS n FROM workers WHERE account_id = ?', input.accountId))!.n);
      if (count >= input.maxWorkers) {
        throw new StoreError(
          'forbidden',
          `The account has ${count} workers, its quota is ${input.maxWorkers}: delete one, or ask the operator to raise maxWorkers (PUT /v1/accounts/:account/quotas).`,
        );
      }
    }
  } else if (owner.account_id !== input.accountId) {
    throw new StoreError('forbidden', `The worker name '${input.worker}' is taken: pick another name.`);
  }
  if (input.routes !== undefined) await checkRoutes(sql, input.worker, input.accountId, input.routes, input.checkZones ?? false);
  // Writes only from here on.
  if (owner === undefined) {
    await sql.run(
      'INSERT INTO workers (id, name, account_id, active_version_id, created_at, updated_at) VALUES (?, ?, ?, NULL, ?, ?)',
      newId('wrk'),
      input.worker,
      input.accountId,
      time,
      time,
    );
  }
  const last = await sql.get('SELECT MAX(number) AS n FROM versions WHERE worker = ?', input.worker);
  const number = Number(last?.n ?? 0) + 1;
  await sql.run(
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
  await sql.run('UPDATE workers SET active_version_id = ?, updated_at = ? WHERE name = ?', id, time, input.worker);
  if (input.routes !== undefined) await replaceRoutes(sql, input.worker, input.accountId, input.routes, time);
  return { id, worker: input.worker, number, hash, createdAt: time, author: input.author, message: input.message, active: true };
}

/**
 * Throws unless the worker may hold these routes: a route another account holds is a conflict
 * (one of the same account's moves to this worker). With checkZones, a route the worker does not
 * hold already must name a host in one of the account's zones: routes held from before zones
 * existed keep working.
 */
async function checkRoutes(sql: SqlSession, worker: string, accountId: string, routes: string[], checkZones: boolean): Promise<void> {
  if (checkZones) {
    const held = new Set((await sql.all('SELECT pattern FROM routes WHERE worker = ?', worker)).map((r) => String(r.pattern)));
    const zones = (await sql.all('SELECT zone FROM zones WHERE account_id = ? ORDER BY zone', accountId)).map((r) => String(r.zone));
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
    const holder = await sql.get('SELECT worker, account_id FROM routes WHERE pattern = ?', pattern);
    if (holder !== undefined && holder.account_id !== accountId) {
      throw new StoreError('conflict', `The route '${pattern}' belongs to another account: remove it from the deployment.`);
    }
  }
}

/** Replaces a worker's routes with routes checkRoutes allowed. */
async function replaceRoutes(sql: SqlSession, worker: string, accountId: string, routes: string[], time: string): Promise<void> {
  await sql.run('DELETE FROM routes WHERE worker = ?', worker);
  for (const pattern of routes) {
    await sql.run('DELETE FROM routes WHERE pattern = ?', pattern);
    await sql.run('INSERT INTO routes (pattern, worker, account_id, created_at) VALUES (?, ?, ?, ?)', pattern, worker, accountId, time);
  }
}

/** Throws 'not_found' unless the worker exists and, when an owner is given, belongs to it. */
async function requireWorker(sql: SqlSession, worker: string, owner: Owner): Promise<void> {
  const row = await sql.get('SELECT account_id FROM workers WHERE name = ?', worker);
  if (row === undefined || (owner !== undefined && row.account_id !== owner)) {
    throw new StoreError('not_found', `No worker '${worker}': deploy it with PUT /v1/workers/${worker}.`);
  }
}

async function toWorker(sql: SqlSession, row: Row): Promise<WorkerInfo> {
  const routes = (await sql.all('SELECT pattern FROM routes WHERE worker = ? ORDER BY pattern', row.name)).map((r) => String(r.pattern));
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

/** Hashes looked up in one statement (SQLite allows 32,766 parameters). */
const ASSET_LOOKUP_BATCH = 500;

const VERSION_COLUMNS = 'id, worker, number, hash, created_at, author, message';

const WORKER_SELECT = `
  SELECT w.id, w.name, w.account_id, a.name AS account_name, w.updated_at,
         v.id AS v_id, v.worker AS v_worker, v.number AS v_number, v.hash AS v_hash,
         v.created_at AS v_created_at, v.author AS v_author, v.message AS v_message
  FROM workers w JOIN accounts a ON a.id = w.account_id LEFT JOIN versions v ON v.id = w.active_version_id`;

const ACTIVE_SELECT = `
  SELECT w.id AS worker_id, w.account_id AS account_id, a.tier AS tier, ${VERSION_COLUMNS.replaceAll(/\b(\w+)\b/g, 'v.$1')}, v.content
  FROM workers w JOIN versions v ON v.id = w.active_version_id JOIN accounts a ON a.id = w.account_id`;

function toAccount(row: Row): Account {
  return { id: String(row.id), name: String(row.name), createdAt: String(row.created_at) };
}

function toToken(row: Row): TokenInfo {
  return { id: String(row.id), accountId: String(row.account_id), description: String(row.description), createdAt: String(row.created_at) };
}

function toCronRun(row: Row): CronRun {
  const run: CronRun = {
    worker: String(row.worker),
    cron: String(row.cron),
    scheduledTime: Number(row.scheduled_time),
    node: String(row.node),
    startedAt: String(row.started_at),
  };
  if (row.outcome != null) run.outcome = String(row.outcome) as ScheduledOutcome;
  if (row.cpu_ms != null) run.cpuMs = Number(row.cpu_ms);
  if (row.wall_ms != null) run.wallMs = Number(row.wall_ms);
  if (row.error != null) run.error = String(row.error);
  return run;
}

function toRoute(row: Row): RouteInfo {
  return { pattern: String(row.pattern), worker: String(row.worker), accountId: String(row.account_id) };
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

/** A stored tier; NULL, or one this version does not know, is 'default'. */
function tierOf(value: unknown): Tier {
  return isTier(value) ? value : 'default';
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
