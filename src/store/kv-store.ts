// KV namespaces and their entries, on either engine (SqlStore.kv). A namespace belongs to one
// account; every call names the owner it acts for, checked in the call's own transaction, so
// another account's namespace does not exist for it. Keys are stored as their UTF-8 bytes and
// listed in byte order, as Cloudflare lists them. An expired entry is invisible from its
// expiration on and removed by sweepExpired.
//
// Entries are written outside the cluster's turn of writes (SqlEngine.unordered): no node
// follows them (every read goes to the database), and each write is one statement.

import { randomUUID } from 'node:crypto';
import type { JsonValue } from '../runtime/types.ts';
import type { Row, SqlEngine, SqlSession } from './sql-store.ts';
import { StoreError, type Owner } from './store.ts';

export interface KvNamespaceInfo {
  /** 32 hex digits, as Cloudflare's: what a binding's `id` names. */
  id: string;
  title: string;
  accountId: string;
  accountName: string;
  createdAt: string;
}

export interface KvEntry {
  value: Uint8Array;
  /** Seconds since the epoch. */
  expiration?: number;
  metadata?: JsonValue;
}

export interface KvListKey {
  name: string;
  expiration?: number;
  metadata?: JsonValue;
}

/** Cloudflare's shape: `cursor` only when the list is not complete. */
export interface KvListResult {
  keys: KvListKey[];
  list_complete: boolean;
  cursor?: string;
}

export interface KvPut {
  value: Uint8Array;
  expiration?: number;
  /** The metadata as JSON text (checked by the caller: kv-rules.ts). */
  metadata?: string;
}

export interface KvListQuery {
  prefix?: string;
  limit: number;
  /** From a previous result: where to go on. */
  cursor?: string;
}

/** Who acts, and when (seconds since the epoch: what has expired). */
export interface KvContext {
  owner?: Owner;
  now: number;
  /** What the account's namespaces may hold together, in bytes (default MAX_ACCOUNT_BYTES). */
  maxAccountBytes?: number;
}

/** The most namespaces one account may have (Cloudflare's limit). */
export const MAX_NAMESPACES_PER_ACCOUNT = 1000;

/**
 * What one account's entries may take, keys, values and metadata together (Cloudflare's free
 * plan: 1 GB): a tenant cannot fill the server's disk.
 */
export const MAX_ACCOUNT_BYTES = 1024 * 1024 * 1024;

export interface KvStore {
  /** 'conflict' when the account has one of that title; 'forbidden' past MAX_NAMESPACES_PER_ACCOUNT. `id` only for local development, which takes ids from wrangler.toml. */
  createNamespace(accountId: string, title: string, id?: string): Promise<KvNamespaceInfo>;
  /** All namespaces, or one account's; by title. */
  listNamespaces(accountId?: string): Promise<KvNamespaceInfo[]>;
  /** The namespace, if it exists and belongs to the owner (undefined: the operator). */
  getNamespace(id: string, owner?: Owner): Promise<KvNamespaceInfo | undefined>;
  /** Deletes the namespace with its entries; false when there is none (for this owner). */
  deleteNamespace(id: string, owner?: Owner): Promise<boolean>;
  /** The entry, unless absent or expired. Every entry call is 'not_found' for a namespace the owner does not have. */
  get(namespace: string, key: string, context: KvContext): Promise<KvEntry | undefined>;
  put(namespace: string, key: string, entry: KvPut, context: KvContext): Promise<void>;
  /** Deleting a key that is not there is no error (as on Cloudflare). */
  delete(namespace: string, key: string, context: KvContext): Promise<void>;
  /** 'invalid' for a cursor no list gave. */
  list(namespace: string, query: KvListQuery, context: KvContext): Promise<KvListResult>;
  /** Bytes the account's namespaces hold (keys, values and metadata). */
  accountBytes(accountId: string): Promise<number>;
  /** Removes at most `max` entries expired by `now`; how many it removed. */
  sweepExpired(now: number, max: number): Promise<number>;
}

const NAMESPACE_SELECT = 'SELECT n.id, n.title, n.account_id, a.name AS account_name, n.created_at FROM kv_namespaces n JOIN accounts a ON a.id = n.account_id';
const LIVE = '(expiration IS NULL OR expiration > ?)';

export class SqlKvStore implements KvStore {
  readonly #engine: SqlEngine;

  constructor(engine: SqlEngine) {
    this.#engine = engine;
  }

  async createNamespace(accountId: string, title: string, id: string = randomUUID().replaceAll('-', '')): Promise<KvNamespaceInfo> {
    const createdAt = new Date().toISOString();
    return this.#engine.transaction(async (sql) => {
      const account = await sql.get('SELECT name FROM accounts WHERE id = ?', accountId);
      if (account === undefined) throw new StoreError('not_found', `No account '${accountId}'.`);
      if (await sql.get('SELECT 1 FROM kv_namespaces WHERE account_id = ? AND title = ?', accountId, title)) {
        throw new StoreError('conflict', `The account has a KV namespace titled '${title}' already: pick another title, or use that one.`);
      }
      if (await sql.get('SELECT 1 FROM kv_namespaces WHERE id = ?', id)) throw new StoreError('conflict', `A KV namespace with the id '${id}' exists already.`);
      const count = Number((await sql.get('SELECT COUNT(*) AS n FROM kv_namespaces WHERE account_id = ?', accountId))!.n);
      if (count >= MAX_NAMESPACES_PER_ACCOUNT) {
        throw new StoreError('forbidden', `The account has ${count} KV namespaces, the most it may have: delete one it no longer uses.`);
      }
      await sql.run('INSERT INTO kv_namespaces (id, account_id, title, created_at) VALUES (?, ?, ?, ?)', id, accountId, title, createdAt);
      return { id, title, accountId, accountName: String(account.name), createdAt };
    });
  }

  async listNamespaces(accountId?: string): Promise<KvNamespaceInfo[]> {
    const rows = await this.#engine.read((sql) =>
      accountId === undefined
        ? sql.all(`${NAMESPACE_SELECT} ORDER BY a.name, n.title`)
        : sql.all(`${NAMESPACE_SELECT} WHERE n.account_id = ? ORDER BY n.title`, accountId),
    );
    return rows.map(toNamespace);
  }

  async getNamespace(id: string, owner?: Owner): Promise<KvNamespaceInfo | undefined> {
    const row = await this.#engine.read((sql) => sql.get(`${NAMESPACE_SELECT} WHERE n.id = ?`, id));
    if (row === undefined || (owner !== undefined && row.account_id !== owner)) return undefined;
    return toNamespace(row);
  }

  async deleteNamespace(id: string, owner?: Owner): Promise<boolean> {
    return this.#engine.transaction(async (sql) => {
      // Its entries go with it (ON DELETE CASCADE).
      const deleted =
        owner === undefined
          ? await sql.run('DELETE FROM kv_namespaces WHERE id = ?', id)
          : await sql.run('DELETE FROM kv_namespaces WHERE id = ? AND account_id = ?', id, owner);
      return deleted.changes > 0;
    });
  }

  async get(namespace: string, key: string, context: KvContext): Promise<KvEntry | undefined> {
    return this.#engine.read(async (sql) => {
      await requireNamespace(sql, namespace, context.owner);
      const row = await sql.get(`SELECT value, expiration, metadata FROM kv_entries WHERE namespace_id = ? AND key = ? AND ${LIVE}`, namespace, keyBytes(key), context.now);
      if (row === undefined) return undefined;
      const value = bytesOf(row.value);
      return { value: new Uint8Array(value.buffer, value.byteOffset, value.byteLength), ...expirationAndMetadata(row) };
    });
  }

  async put(namespace: string, key: string, entry: KvPut, context: KvContext): Promise<void> {
    const bytes = keyBytes(key);
    const size = bytes.length + entry.value.byteLength + (entry.metadata === undefined ? 0 : Buffer.byteLength(entry.metadata));
    const limit = context.maxAccountBytes ?? MAX_ACCOUNT_BYTES;
    try {
      await this.#engine.unordered(async (sql) => {
        const account = await lockNamespace(sql, namespace, context.owner);
        const old = await sql.get('SELECT size FROM kv_entries WHERE namespace_id = ? AND key = ?', namespace, bytes);
        const growth = size - Number(old?.size ?? 0);
        if (growth > 0) {
          const used = Number((await sql.get('SELECT COALESCE(SUM(bytes), 0) AS n FROM kv_namespaces WHERE account_id = ?', account))!.n);
          if (used + growth > limit) {
            throw new StoreError('forbidden', `The account's KV namespaces hold ${used} bytes, and this write would take them past their quota of ${limit}: delete keys or namespaces it no longer needs.`);
          }
        }
        await sql.run(
          `INSERT INTO kv_entries (namespace_id, key, value, expiration, metadata, size) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (namespace_id, key) DO UPDATE SET value = excluded.value, expiration = excluded.expiration, metadata = excluded.metadata, size = excluded.size`,
          namespace,
          bytes,
          entry.value,
          entry.expiration ?? null,
          entry.metadata ?? null,
          size,
        );
        if (growth !== 0) await sql.run('UPDATE kv_namespaces SET bytes = bytes + ? WHERE id = ?', growth, namespace);
      });
    } catch (error) {
      // PostgreSQL: the namespace was deleted between the check and the write.
      if ((error as { code?: unknown }).code === '23503') throw noNamespace(namespace);
      throw error;
    }
  }

  async delete(namespace: string, key: string, context: KvContext): Promise<void> {
    await this.#engine.unordered(async (sql) => {
      await lockNamespace(sql, namespace, context.owner);
      const deleted = await sql.get('DELETE FROM kv_entries WHERE namespace_id = ? AND key = ? RETURNING size', namespace, keyBytes(key));
      if (deleted !== undefined) await sql.run('UPDATE kv_namespaces SET bytes = bytes - ? WHERE id = ?', Number(deleted.size), namespace);
    });
  }

  async accountBytes(accountId: string): Promise<number> {
    const row = await this.#engine.read((sql) => sql.get('SELECT COALESCE(SUM(bytes), 0) AS n FROM kv_namespaces WHERE account_id = ?', accountId));
    return Number(row!.n);
  }

  async list(namespace: string, query: KvListQuery, context: KvContext): Promise<KvListResult> {
    const prefix = keyBytes(query.prefix ?? '');
    const after = query.cursor === undefined ? Buffer.alloc(0) : cursorKey(query.cursor);
    const upper = prefix.length === 0 ? undefined : prefixEnd(prefix);
    const rows = await this.#engine.read(async (sql) => {
      await requireNamespace(sql, namespace, context.owner);
      const select = `SELECT key, expiration, metadata FROM kv_entries WHERE namespace_id = ? AND key >= ? AND key > ? AND ${LIVE}`;
      // One more than asked for says whether the list is complete.
      return upper === undefined
        ? sql.all(`${select} ORDER BY key LIMIT ?`, namespace, prefix, after, context.now, query.limit + 1)
        : sql.all(`${select} AND key < ? ORDER BY key LIMIT ?`, namespace, prefix, after, context.now, upper, query.limit + 1);
    });
    const complete = rows.length <= query.limit;
    const page = complete ? rows : rows.slice(0, query.limit);
    const keys = page.map((row) => ({ name: bytesOf(row.key).toString('utf8'), ...expirationAndMetadata(row) }));
    if (complete) return { keys, list_complete: true };
    return { keys, list_complete: false, cursor: bytesOf(page.at(-1)!.key).toString('base64url') };
  }

  async sweepExpired(now: number, max: number): Promise<number> {
    return this.#engine.unordered(async (sql) => {
      const deleted = await sql.all(
        'DELETE FROM kv_entries WHERE (namespace_id, key) IN (SELECT namespace_id, key FROM kv_entries WHERE expiration <= ? LIMIT ?) RETURNING namespace_id, size',
        now,
        max,
      );
      const freed = new Map<string, number>();
      for (const row of deleted) freed.set(String(row.namespace_id), (freed.get(String(row.namespace_id)) ?? 0) + Number(row.size));
      // In the order of their ids, so two nodes sweeping at once lock the namespaces in one order.
      for (const id of [...freed.keys()].sort()) await sql.run('UPDATE kv_namespaces SET bytes = bytes - ? WHERE id = ?', freed.get(id)!, id);
      return deleted.length;
    });
  }
}

async function requireNamespace(sql: SqlSession, id: string, owner: Owner): Promise<void> {
  const row = await sql.get('SELECT account_id FROM kv_namespaces WHERE id = ?', id);
  if (row === undefined || (owner !== undefined && row.account_id !== owner)) throw noNamespace(id);
}

/**
 * requireNamespace, holding the namespace's row until the write commits (PostgreSQL: its lock;
 * SQLite writes one at a time anyway), so its byte count moves with its entries; the owning account.
 */
async function lockNamespace(sql: SqlSession, id: string, owner: Owner): Promise<string> {
  const row = await sql.get('UPDATE kv_namespaces SET bytes = bytes WHERE id = ? RETURNING account_id', id);
  if (row === undefined || (owner !== undefined && row.account_id !== owner)) throw noNamespace(id);
  return String(row.account_id);
}

function noNamespace(id: string): StoreError {
  return new StoreError('not_found', `No KV namespace '${id}': list the account's namespaces with GET /v1/kv/namespaces.`);
}

function toNamespace(row: Row): KvNamespaceInfo {
  return { id: String(row.id), title: String(row.title), accountId: String(row.account_id), accountName: String(row.account_name), createdAt: String(row.created_at) };
}

function expirationAndMetadata(row: Row): { expiration?: number; metadata?: JsonValue } {
  const out: { expiration?: number; metadata?: JsonValue } = {};
  if (row.expiration != null) out.expiration = Number(row.expiration);
  if (row.metadata != null) out.metadata = JSON.parse(String(row.metadata)) as JsonValue;
  return out;
}

function keyBytes(key: string): Buffer {
  return Buffer.from(key, 'utf8');
}

function bytesOf(value: unknown): Buffer {
  const bytes = value as Uint8Array;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The key a cursor goes on after; a cursor is the last listed key's bytes, base64url. */
function cursorKey(cursor: string): Buffer {
  const bytes = /^[A-Za-z0-9_-]{1,700}$/.test(cursor) ? Buffer.from(cursor, 'base64url') : Buffer.alloc(0);
  if (bytes.length === 0 || bytes.length > 512 || bytes.toString('base64url') !== cursor) {
    throw new StoreError('invalid', `Invalid cursor '${cursor.length > 40 ? cursor.slice(0, 37) + '...' : cursor}': pass the cursor of the previous list result, or none to start over.`);
  }
  return bytes;
}

/** The least byte string above every one that starts with the prefix (UTF-8 has no 0xFF byte, so one exists). */
function prefixEnd(prefix: Buffer): Buffer | undefined {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return undefined;
}
