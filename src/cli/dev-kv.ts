// `isolet dev`'s local KV: the namespaces of wrangler.toml's kv_namespaces, kept in a SQLite
// file at `.isolet/kv/isolet.db` in the project (next to the config), so what a worker writes
// stays across restarts of `isolet dev`. It is the same store `isolet serve` keeps KV in, with one
// local account that owns every namespace; a namespace is made, under the id the config gives,
// the first time it is used.

import { join } from 'node:path';
import { answerKvCall } from '../bindings/kv/kv-calls.ts';
import type { BindingAnswer, BindingCall } from '../runtime/types.ts';
import { SqliteStore } from '../store/sqlite-store.ts';

/** Where the local KV lives, under the project's directory. */
export const LOCAL_KV_DIR = join('.isolet', 'kv');

/** The local account's name. */
const LOCAL_ACCOUNT = 'local';

/**
 * No secret is ever stored in the local KV database, so the key the store seals secrets with
 * guards nothing here: a fixed one keeps the file usable without a key file beside it.
 */
const NO_SECRETS_KEY = Buffer.alloc(32);

export class LocalKv {
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
