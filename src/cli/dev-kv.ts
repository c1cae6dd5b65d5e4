// `isolet dev`'s local KV: the namespaces of wrangler.toml's kv_namespaces, kept in a SQLite
// file at `.isolet/kv/isolet.db` in the project (next to the config), so what a worker writes
// stays across restarts of `isolet dev`. It is the same store `isolet serve` keeps KV in, with one
// local account that owns every namespace; a namespace is made, under the id the config gives,
// the first time it is used. `isolet kv key ... --local` reads and writes the same file through
// the admin client's key methods, implemented here on the store with the admin API's checks
// (src/server/kv-api.ts), as wrangler's `kv key ... --local` reaches `wrangler dev`'s state.

import { join } from 'node:path';
import { answerKvCall } from '../bindings/kv/kv-calls.ts';
import { KvError, checkKey, checkListOptions, checkPutOptions, checkValueLength, nowSeconds } from '../bindings/kv/kv-rules.ts';
import type { BindingAnswer, BindingCall, JsonValue } from '../runtime/types.ts';
import { SqliteStore } from '../store/sqlite-store.ts';
import type { KvEntry } from '../store/kv-store.ts';
import { ApiError, type AdminClient, type KvKeyPage } from './api-client.ts';

/** What `isolet kv key` uses of a namespace's keys: the admin API's, or the local store's (--local). */
export type KvKeys = Pick<AdminClient, 'listKvKeys' | 'putKvValue' | 'getKvValue' | 'getKvMetadata' | 'deleteKvValue'>;

/** Where the local KV lives, under the project's directory. */
export const LOCAL_KV_DIR = join('.isolet', 'kv');

/** The local account's name. */
const LOCAL_ACCOUNT = 'local';

/**
 * No secret is ever stored in the local KV database, so the key the store seals secrets with
 * guards nothing here: a fixed one keeps the file usable without a key file beside it.
 */
const NO_SECRETS_KEY = Buffer.alloc(32);

export class LocalKv implements KvKeys {
  readonly path: string;
  readonly #store: SqliteStore;
  readonly #ready = new Map<string, Promise<void>>();
  #account: Promise<string> | undefined;

  constructor(projectDir: string) {
    const dataDir = join(projectDir, LOCAL_KV_DIR);
    this.#store = new SqliteStore({ dataDir, secretsKey: NO_SECRETS_KEY });
    this.path = this.#store.path;
  }

  /** Answers a worker's KV call; the spec comes from the worker's own definition. */
  async call(call: BindingCall): Promise<BindingAnswer> {
    if (call.binding.type !== 'kv') throw new Error(`LocalKv answers KV bindings, not '${call.binding.type}'.`);
    const namespaceId = call.binding.namespaceId;
    await this.#namespace(namespaceId);
    return answerKvCall(this.#store.kv, { name: call.name, namespaceId, owner: undefined, method: call.method, args: call.args, bytes: call.bytes });
  }

  close(): Promise<void> {
    return this.#store.close();
  }

  async listKvKeys(id: string, options: { prefix?: string; limit?: number; cursor?: string }): Promise<KvKeyPage> {
    return local(async () => {
      const checked = checkListOptions(options);
      await this.#namespace(id);
      return (await this.#store.kv.list(id, checked, { owner: undefined, now: nowSeconds() })) as KvKeyPage;
    });
  }

  async putKvValue(id: string, key: string, value: Uint8Array, options: { expiration?: number; expirationTtl?: number; metadata?: string }): Promise<void> {
    await local(async () => {
      checkKey(key);
      const now = nowSeconds();
      const checked = checkPutOptions(options, now);
      checkValueLength(value.byteLength);
      await this.#namespace(id);
      await this.#store.kv.put(id, key, { value, ...checked }, { owner: undefined, now });
    });
  }

  async getKvValue(id: string, key: string): Promise<Uint8Array> {
    return (await this.#entry(id, key)).value;
  }

  async getKvMetadata(id: string, key: string): Promise<{ metadata: JsonValue; expiration: number | null }> {
    const entry = await this.#entry(id, key);
    return { metadata: entry.metadata ?? null, expiration: entry.expiration ?? null };
  }

  async deleteKvValue(id: string, key: string): Promise<void> {
    await local(async () => {
      checkKey(key);
      await this.#namespace(id);
      await this.#store.kv.delete(id, key, { owner: undefined, now: nowSeconds() });
    });
  }

  #entry(id: string, key: string): Promise<KvEntry> {
    return local(async () => {
      checkKey(key);
      await this.#namespace(id);
      const entry = await this.#store.kv.get(id, key, { owner: undefined, now: nowSeconds() });
      if (entry === undefined) throw new ApiError(404, 'not_found', `The local KV namespace '${id}' (${this.path}) has no key '${key}'.`);
      return entry;
    });
  }

  #namespace(id: string): Promise<void> {
    let ready = this.#ready.get(id);
    if (ready === undefined) {
      ready = (async () => {
        if ((await this.#store.kv.getNamespace(id)) !== undefined) return;
        await this.#store.kv.createNamespace(await this.#localAccount(), id, id);
      })();
      ready.catch(() => this.#ready.delete(id));
      this.#ready.set(id, ready);
    }
    return ready;
  }

  #localAccount(): Promise<string> {
    this.#account ??= (async () => {
      const found = await this.#store.findAccount(LOCAL_ACCOUNT);
      return (found ?? (await this.#store.createAccount(LOCAL_ACCOUNT))).id;
    })();
    return this.#account;
  }
}

/** A local store call with KV's refusals as the admin API words them (src/server/kv-api.ts). */
async function local<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof KvError) throw new ApiError(error.kind === 'too_large' ? 413 : 400, error.kind === 'too_large' ? 'too_large' : 'invalid', error.message);
    throw error;
  }
}
