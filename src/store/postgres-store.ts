// The Store on PostgreSQL, shared by every node of a cluster (`isolet serve --database`). Each
// method is one transaction, and writes take turns across the cluster (each first locks the
// change counter's row), so the guarantees are SQLite's: versions are immutable (a trigger refuses any UPDATE), the
// active pointer moves in the transaction that checks ownership, secrets are sealed with the
// cluster's key before they leave the node, and tokens are stored as hashes.
//
// Every change to what serves advances `cluster.change` (one row: its lock orders the writes,
// so the counter's order is the commit order), names the workers it touched in `changes`, and
// sends NOTIFY with the new counter, delivered at commit. Nodes LISTEN on a connection of their
// own and read the counter again every second, so a lost notification, a reconnect or a node
// that was away only delays a change until that read.

import pg from 'pg';
import { SecretBox } from './secret-box.ts';
import { SqlStore, keyCheckMatches, sealKeyCheck, type Row, type SqlEngine, type SqlSession } from './sql-store.ts';
import { BROADCAST_MAX_BYTES, StoreError, StoreUnavailableError, type ChangeBatch, type ChangeEvents, type SharedStore } from './store.ts';

/**
 * Schema migrations, in order; `schema_version` counts how many have run. Each runs in its
 * own transaction under an advisory lock, so nodes starting together migrate once. Append only.
 */
export const PG_MIGRATIONS: string[] = [
  // Text compares and sorts byte by byte, as on SQLite, whatever the database's locale.
  `
  CREATE TABLE meta (
    key text COLLATE "C" PRIMARY KEY,
    value text COLLATE "C" NOT NULL
  );
  CREATE TABLE accounts (
    id text COLLATE "C" PRIMARY KEY,
    name text COLLATE "C" NOT NULL UNIQUE,
    created_at text COLLATE "C" NOT NULL,
    quotas text COLLATE "C",
    tier text COLLATE "C"
  );
  CREATE TABLE tokens (
    id text COLLATE "C" PRIMARY KEY,
    account_id text COLLATE "C" NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    -- The first 16 hex digits of the hash find the row; the whole hash is then compared in
    -- constant time, so the lookup's timing says nothing about the rest.
    lookup text COLLATE "C" NOT NULL,
    hash bytea NOT NULL,
    description text COLLATE "C" NOT NULL,
    created_at text COLLATE "C" NOT NULL
  );
  CREATE INDEX tokens_by_lookup ON tokens(lookup);
  CREATE INDEX tokens_by_account ON tokens(account_id);
  CREATE TABLE workers (
    id text COLLATE "C" NOT NULL UNIQUE,
    name text COLLATE "C" PRIMARY KEY,
    account_id text COLLATE "C" NOT NULL REFERENCES accounts(id),
    active_version_id text COLLATE "C",
    created_at text COLLATE "C" NOT NULL,
    updated_at text COLLATE "C" NOT NULL
  );
  CREATE INDEX workers_by_account ON workers(account_id);
  CREATE TABLE versions (
    id text COLLATE "C" PRIMARY KEY,
    worker text COLLATE "C" NOT NULL REFERENCES workers(name) ON DELETE CASCADE,
    number integer NOT NULL,
    content text COLLATE "C" NOT NULL,
    hash text COLLATE "C" NOT NULL,
    created_at text COLLATE "C" NOT NULL,
    author text COLLATE "C" NOT NULL,
    message text COLLATE "C" NOT NULL,
    UNIQUE (worker, number)
  );
  CREATE FUNCTION versions_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    RAISE EXCEPTION 'versions are immutable';
  END $$;
  CREATE TRIGGER versions_are_immutable BEFORE UPDATE ON versions
    FOR EACH ROW EXECUTE FUNCTION versions_are_immutable();
  CREATE TABLE routes (
    pattern text COLLATE "C" PRIMARY KEY,
    worker text COLLATE "C" NOT NULL REFERENCES workers(name) ON DELETE CASCADE,
    account_id text COLLATE "C" NOT NULL REFERENCES accounts(id),
    created_at text COLLATE "C" NOT NULL
  );
  CREATE INDEX routes_by_worker ON routes(worker);
  CREATE TABLE secrets (
    worker text COLLATE "C" NOT NULL REFERENCES workers(name) ON DELETE CASCADE,
    name text COLLATE "C" NOT NULL,
    iv bytea NOT NULL,
    tag bytea NOT NULL,
    ciphertext bytea NOT NULL,
    updated_at text COLLATE "C" NOT NULL,
    PRIMARY KEY (worker, name)
  );
  CREATE TABLE zones (
    zone text COLLATE "C" PRIMARY KEY,
    account_id text COLLATE "C" NOT NULL REFERENCES accounts(id),
    created_at text COLLATE "C" NOT NULL
  );
  CREATE INDEX zones_by_account ON zones(account_id);
  -- The change counter (one row), and what each change touched: a worker, a revoked token, or
  -- neither (routes only).
  CREATE TABLE cluster (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    change bigint NOT NULL
  );
  INSERT INTO cluster (change) VALUES (0);
  CREATE TABLE changes (
    seq bigint NOT NULL,
    worker text COLLATE "C",
    token text COLLATE "C",
    at timestamptz NOT NULL DEFAULT now()
  );
  CREATE INDEX changes_by_seq ON changes(seq);
  `,
  // Static assets' bytes, once per account under their SHA-256: the key holds the account, so
  // no account reads another's by naming a hash.
  `
  CREATE TABLE asset_blobs (
    account_id text COLLATE "C" NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    hash text COLLATE "C" NOT NULL,
    size integer NOT NULL,
    data bytea NOT NULL,
    created_at text COLLATE "C" NOT NULL,
    PRIMARY KEY (account_id, hash)
  );
  `,
  // KV namespaces and their entries (src/store/kv-store.ts). Keys are bytes (UTF-8: text cannot
  // hold NUL), so they sort byte by byte as Cloudflare lists them; expiration is in seconds.
  `
  CREATE TABLE kv_namespaces (
    id text COLLATE "C" PRIMARY KEY,
    account_id text COLLATE "C" NOT NULL REFERENCES accounts(id),
    title text COLLATE "C" NOT NULL,
    created_at text COLLATE "C" NOT NULL,
    -- What its entries take (keys, values and metadata, in bytes): the account's KV quota counts it.
    bytes bigint NOT NULL DEFAULT 0,
    UNIQUE (account_id, title)
  );
  CREATE TABLE kv_entries (
    namespace_id text COLLATE "C" NOT NULL REFERENCES kv_namespaces(id) ON DELETE CASCADE,
    key bytea NOT NULL,
    value bytea NOT NULL,
    expiration bigint,
    metadata text COLLATE "C",
    size bigint NOT NULL,
    PRIMARY KEY (namespace_id, key)
  );
  CREATE INDEX kv_entries_by_expiration ON kv_entries(expiration) WHERE expiration IS NOT NULL;
  `,
  // Cron triggers' runs: one row per (worker, cron, tick); the node whose insert comes first runs it.
  `
  CREATE TABLE cron_runs (
    worker text COLLATE "C" NOT NULL REFERENCES workers(name) ON DELETE CASCADE,
    cron text COLLATE "C" NOT NULL,
    scheduled_time bigint NOT NULL,
    node text COLLATE "C" NOT NULL,
    started_at text COLLATE "C" NOT NULL,
    outcome text COLLATE "C",
    cpu_ms double precision,
    wall_ms double precision,
    error text COLLATE "C",
    PRIMARY KEY (worker, cron, scheduled_time)
  );
  CREATE INDEX cron_runs_by_time ON cron_runs(worker, scheduled_time);
  `,
  // Each worker's activity a minute at a time, as each server instance counted it: the charts of
  // the last hour add up every node's.
  `
  CREATE TABLE worker_minutes (
    worker text COLLATE "C" NOT NULL REFERENCES workers(name) ON DELETE CASCADE,
    minute bigint NOT NULL,
    instance text COLLATE "C" NOT NULL,
    requests double precision NOT NULL,
    errors double precision NOT NULL,
    cpu_ms double precision NOT NULL,
    cold_starts double precision NOT NULL,
    PRIMARY KEY (worker, minute, instance)
  );
  CREATE INDEX worker_minutes_by_minute ON worker_minutes(minute);
  `,
];

/** Changes kept in the log; a node further behind than this loads every worker again. */
const CHANGES_KEPT = 10_000;
const NOTIFY_CHANNEL = 'isolet_changes';
/** A transaction that lost a serialization race is tried again, this many times at most. */
const MAX_ATTEMPTS = 30;

export interface PostgresStoreOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  /** AES-256 key for secrets: the cluster's one key, the same on every node. */
  secretsKey: Buffer;
  /** Shown in pg_stat_activity as `isolet <nodeId>`. */
  nodeId?: string;
  /** Connections in the pool (default 10). */
  poolSize?: number;
  /** The NOTIFY channel (default isolet_changes); changes made with another are not pushed to this one's watchers. */
  channel?: string;
}

export class PostgresStore extends SqlStore implements SharedStore {
  readonly #engine: PostgresEngine;

  private constructor(engine: PostgresEngine, box: SecretBox) {
    super(engine, box);
    this.#engine = engine;
  }

  /** Connects, migrates and checks the secrets key against the one the database was made with. */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const store = PostgresStore.create(options);
    try {
      await store.#engine.prepared();
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /**
   * The store without waiting for the database: it migrates and checks the key on first use,
   * and every call fails with StoreUnavailableError until the database answers (a node that
   * starts from its snapshot while the database is away).
   */
  static create(options: PostgresStoreOptions): PostgresStore {
    const box = new SecretBox(options.secretsKey);
    return new PostgresStore(new PostgresEngine(options, box), box);
  }

  /** Schema version: the number of migrations applied. */
  async schemaVersion(): Promise<number> {
    return this.#engine.read(async (sql) => Number((await sql.get('SELECT version FROM schema_version'))?.version ?? 0));
  }

  async changesSince(after: number): Promise<ChangeBatch> {
    const row = await this.#engine.read((sql) =>
      sql.get(
        `SELECT (SELECT change FROM cluster) AS head, (SELECT MIN(seq) FROM changes) AS oldest,
                ARRAY(SELECT DISTINCT worker FROM changes WHERE seq > ? AND worker IS NOT NULL) AS workers,
                ARRAY(SELECT DISTINCT token FROM changes WHERE seq > ? AND token IS NOT NULL) AS tokens`,
        after,
        after,
      ),
    );
    const tokens = (row!.tokens as string[]).sort();
    const head = Number(row!.head);
    const oldest = row!.oldest == null ? head + 1 : Number(row!.oldest);
    // The log was trimmed past this node's point, or the database is not the one it followed.
    if (after < oldest - 1 || after > head) return { head, workers: 'all', tokens };
    return { head, workers: (row!.workers as string[]).sort(), tokens };
  }

  watch(events: ChangeEvents): void {
    this.#engine.watch(events);
  }

  broadcast(message: string): Promise<void> {
    return this.#engine.broadcast(message);
  }

  onBroadcast(receive: (message: string) => void): void {
    this.#engine.onBroadcast(receive);
  }
}

class PostgresEngine implements SqlEngine {
  readonly #pool: pg.Pool;
  readonly #options: PostgresStoreOptions;
  readonly #channel: string;
  /** Broadcasts (src/server/cluster-tail.ts) go on a channel of their own, beside the changes'. */
  readonly #broadcastChannel: string;
  #listener: pg.Client | undefined;
  #watching: ChangeEvents | undefined;
  #receive: ((message: string) => void) | undefined;
  #reconnect: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #box: SecretBox;
  #prepared: Promise<void> | undefined;

  constructor(options: PostgresStoreOptions, box: SecretBox) {
    this.#options = options;
    this.#box = box;
    this.#channel = options.channel ?? NOTIFY_CHANNEL;
    this.#broadcastChannel = `${this.#channel}_broadcast`;
    this.#pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      application_name: `isolet ${options.nodeId ?? ''}`.trim(),
      // A database that is away answers the admin API within seconds, never hangs it.
      connectionTimeoutMillis: 3000,
      query_timeout: 15_000,
      // A node cut off in the middle of a write would hold every node's writes behind its lock:
      // the server ends such a transaction after 30 s.
      idle_in_transaction_session_timeout: 30_000,
      idleTimeoutMillis: 30_000,
    });
    // An idle connection cut by a restarting server: the next query opens another.
    this.#pool.on('error', () => {});
  }

  /** Migrated and the key checked, once; a database that was away is tried again at the next call. */
  prepared(): Promise<void> {
    this.#prepared ??= (async () => {
      await this.#migrate();
      await this.#checkKey();
    })();
    this.#prepared.catch(() => (this.#prepared = undefined));
    return this.#prepared;
  }

  async #checkKey(): Promise<void> {
    const stored = await this.#attempt(async (client) => {
      await client.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', ['secrets_key_check', sealKeyCheck(this.#box)]);
      return String(((await client.query('SELECT value FROM meta WHERE key = $1', ['secrets_key_check'])).rows[0] as Row).value);
    }, 'READ COMMITTED');
    if (keyCheckMatches(this.#box, stored)) return;
    throw new Error(
      `The secrets key does not match the one the database at ${redact(this.#options.url)} was made with: every node of a cluster needs the same key ` +
        '(ISOLET_SECRETS_KEY, or the same secrets.key file in each data directory).',
    );
  }

  async #migrate(): Promise<void> {
    for (;;) {
      const done = await this.#attempt(async (client) => {
        await client.query('SELECT pg_advisory_xact_lock(7415260381)');
        await client.query('CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)');
        const row = (await client.query('SELECT version FROM schema_version')).rows[0] as Row | undefined;
        const current = Number(row?.version ?? 0);
        if (current > PG_MIGRATIONS.length) {
          throw new Error(`The database at ${redact(this.#options.url)} has schema version ${current}, newer than this isolet knows (${PG_MIGRATIONS.length}): upgrade isolet.`);
        }
        if (current === PG_MIGRATIONS.length) return true;
        await client.query(PG_MIGRATIONS[current]!);
        if (row === undefined) await client.query('INSERT INTO schema_version (version) VALUES ($1)', [current + 1]);
        else await client.query('UPDATE schema_version SET version = $1', [current + 1]);
        return false;
      }, 'READ COMMITTED');
      if (done) return;
    }
  }

  /**
   * Writes take turns, as on SQLite: each one first locks the change counter's row, so the
   * cluster's writes run one at a time, in the order of the counter, and each statement after
   * the lock (READ COMMITTED) sees every write committed before it. Optimistic SERIALIZABLE
   * transactions all collide on that row and would mostly be tried again.
   */
  async transaction<T>(fn: (sql: SqlSession) => Promise<T>): Promise<T> {
    await this.prepared();
    return this.#attempt(async (client) => {
      await client.query('SELECT change FROM cluster FOR UPDATE');
      return fn(session(client));
    }, 'READ COMMITTED');
  }

  /** Not behind the change counter's lock: KV writes of many nodes go on at once. */
  async unordered<T>(fn: (sql: SqlSession) => Promise<T>): Promise<T> {
    await this.prepared();
    return this.#attempt((client) => fn(session(client)), 'READ COMMITTED');
  }

  /** Reads see one snapshot, so a read of several statements never mixes two changes. */
  async read<T>(fn: (sql: SqlSession) => Promise<T>): Promise<T> {
    await this.prepared();
    return this.#attempt((client) => fn(session(client)), 'REPEATABLE READ READ ONLY');
  }

  async changed(sql: SqlSession, change: { workers?: string[]; tokens?: string[] }): Promise<void> {
    const seq = Number((await sql.get('UPDATE cluster SET change = change + 1 RETURNING change'))!.change);
    const workers = change.workers ?? [];
    const tokens = change.tokens ?? [];
    if (workers.length === 0 && tokens.length === 0) await sql.run('INSERT INTO changes (seq) VALUES (?)', seq);
    for (const worker of workers) await sql.run('INSERT INTO changes (seq, worker) VALUES (?, ?)', seq, worker);
    for (const token of tokens) await sql.run('INSERT INTO changes (seq, token) VALUES (?, ?)', seq, token);
    if (seq % 100 === 0) await sql.run('DELETE FROM changes WHERE seq <= ?', seq - CHANGES_KEPT);
    await sql.get('SELECT pg_notify(?, ?)', this.#channel, String(seq));
  }

  watch(events: ChangeEvents): void {
    this.#watching = events;
    void this.#listen();
  }

  async broadcast(message: string): Promise<void> {
    if (Buffer.byteLength(message) > BROADCAST_MAX_BYTES) throw new RangeError(`A broadcast holds at most ${BROADCAST_MAX_BYTES} bytes.`);
    // Outside any transaction: delivered at once, and never behind the writes' lock.
    try {
      await this.#pool.query('SELECT pg_notify($1, $2)', [this.#broadcastChannel, message]);
    } catch (error) {
      throw unavailable(error) ?? error;
    }
  }

  onBroadcast(receive: (message: string) => void): void {
    this.#receive = receive;
  }

  async #listen(): Promise<void> {
    if (this.#closed || this.#watching === undefined) return;
    const client = new pg.Client({
      connectionString: this.#options.url,
      application_name: `isolet ${this.#options.nodeId ?? ''} listen`.trim(),
      connectionTimeoutMillis: 3000,
      keepAlive: true,
    });
    let dropped = false;
    const drop = () => {
      if (dropped) return;
      dropped = true;
      if (this.#listener === client) this.#listener = undefined;
      client.end().catch(() => {});
      if (this.#closed) return;
      this.#watching?.connection(false);
      // Back soon: the reconcile also covers the time until then.
      this.#reconnect = setTimeout(() => void this.#listen(), 500);
    };
    client.on('error', drop);
    client.on('end', drop);
    client.on('notification', (message) => {
      if (message.channel === this.#channel) this.#watching?.change(Number(message.payload));
      else if (message.channel === this.#broadcastChannel && message.payload !== undefined) this.#receive?.(message.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(this.#channel)}`);
      await client.query(`LISTEN ${pg.escapeIdentifier(this.#broadcastChannel)}`);
    } catch {
      drop();
      return;
    }
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#listener = client;
    this.#watching?.connection(true);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#reconnect);
    await this.#listener?.end().catch(() => {});
    await this.#pool.end().catch(() => {});
  }

  async #connect(): Promise<pg.PoolClient> {
    try {
      return await this.#pool.connect();
    } catch (error) {
      throw unavailable(error) ?? error;
    }
  }

  /** Runs fn in a transaction, again after a serialization failure or a deadlock (neither expected with writes in turn). */
  async #attempt<T>(fn: (client: pg.PoolClient) => Promise<T>, isolation: 'READ COMMITTED' | 'REPEATABLE READ READ ONLY'): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.#connect();
      let broken = false;
      try {
        await client.query(`BEGIN ISOLATION LEVEL ${isolation}`);
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        const lost = unavailable(error);
        if (lost) broken = true;
        else await client.query('ROLLBACK').catch(() => (broken = true));
        if (lost) throw lost;
        const code = (error as { code?: unknown }).code;
        if ((code === '40001' || code === '40P01') && attempt < MAX_ATTEMPTS) {
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt));
          continue;
        }
        throw error;
      } finally {
        client.release(broken);
      }
    }
  }
}

function session(client: pg.PoolClient): SqlSession {
  const query = async (sql: string, params: unknown[]) => client.query(numbered(sql), params);
  return {
    get: async (sql, ...params) => (await query(sql, params)).rows[0] as Row | undefined,
    all: async (sql, ...params) => (await query(sql, params)).rows as Row[],
    run: async (sql, ...params) => ({ changes: (await query(sql, params)).rowCount ?? 0 }),
  };
}

const numberedCache = new Map<string, string>();

/** `?` placeholders as PostgreSQL's `$1, $2, ...` (the store's SQL has no `?` inside literals). */
function numbered(sql: string): string {
  let text = numberedCache.get(sql);
  if (text === undefined) {
    let n = 0;
    text = sql.replaceAll('?', () => `$${++n}`);
    numberedCache.set(sql, text);
  }
  return text;
}

/** The error as StoreUnavailableError when it says the database could not be reached or went away; else undefined. */
function unavailable(error: unknown): StoreUnavailableError | undefined {
  if (error instanceof StoreUnavailableError) return error;
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  const sqlState = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
  const down =
    sqlState === undefined
      ? error instanceof Error && !(error instanceof StoreError) && /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EPIPE|Connection terminated|timeout|not queryable|Client has encountered a connection error/i.test(`${String(code)} ${message}`)
      : sqlState.startsWith('08') || sqlState === '57P01' || sqlState === '57P02' || sqlState === '57P03' || sqlState === '53300';
  return down ? new StoreUnavailableError(`The database is unavailable (${message}).`) : undefined;
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the given URL';
  }
}
