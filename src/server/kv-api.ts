// The admin API's KV endpoints (docs/ADMIN_API.md, "KV"): an account's namespaces, and the
// entries in them. Ownership is as for workers: an account token sees only its own account's
// namespaces (another's answers 404, as for an id nobody has), the operator sees all. Values
// travel as raw bytes, so any value, text or not, goes in and comes out unchanged.

import { KvError, checkKey, checkListOptions, checkPutOptions, checkValueLength, nowSeconds, KV_LIMITS } from '../bindings/kv/kv-rules.ts';
import type { KvNamespaceInfo } from '../store/kv-store.ts';
import type { Store } from '../store/store.ts';
import { ApiError } from './api-error.ts';
import { json, noContent, readBody, readJson, type Call } from './admin-api.ts';
import type { ServerLog } from './logger.ts';

const MAX_TITLE = 512;
const MAX_SMALL_BODY = 64 * 1024;

export class KvApi {
  readonly #store: Store;
  readonly #log: ServerLog;

  constructor(store: Store, log: ServerLog) {
    this.#store = store;
    this.#log = log;
  }

  /** Handles `/v1/kv/...` (`parts`: the segments after `kv`); false when no endpoint has that path. */
  async handle(call: Call, parts: string[]): Promise<boolean> {
    const method = call.req.method ?? 'GET';
    const [collection, id, sub, key, extra] = parts;
    if (collection !== 'namespaces' || extra !== undefined) return false;
    try {
      if (id === undefined) {
        if (method === 'POST') return done(await this.#createNamespace(call));
        if (method === 'GET') return done(await this.#listNamespaces(call));
      } else if (sub === undefined) {
        if (method === 'GET') return done(json(call.res, 200, namespaceJson(await this.#owned(call, id))));
        if (method === 'DELETE') return done(await this.#deleteNamespace(call, id));
      } else if (sub === 'keys' && key === undefined) {
        if (method === 'GET') return done(await this.#listKeys(call, id));
      } else if (sub === 'values' && key !== undefined) {
        if (method === 'GET') return done(await this.#getValue(call, id, key));
        if (method === 'PUT') return done(await this.#putValue(call, id, key));
        if (method === 'DELETE') return done(await this.#deleteValue(call, id, key));
      } else if (sub === 'metadata' && key !== undefined) {
        if (method === 'GET') return done(await this.#getMetadata(call, id, key));
      } else {
        return false;
      }
    } catch (error) {
      if (error instanceof KvError) throw new ApiError(error.kind === 'too_large' ? 'too_large' : 'invalid', error.message);
      throw error;
    }
    throw new ApiError('not_found', `No endpoint ${method} ${call.url.pathname}: see docs/ADMIN_API.md for the methods it takes.`);
  }

  async #createNamespace(call: Call): Promise<void> {
    const accountId = await this.#accountFor(call);
    const body = await readJson(call.req, MAX_SMALL_BODY);
    const title = (body as { title?: unknown } | undefined)?.title;
    if (typeof title !== 'string' || title.trim() === '' || title.length > MAX_TITLE) {
      throw new ApiError('invalid', `The body is {"title": "<a name for the namespace, 1 to ${MAX_TITLE} characters>"}.`);
    }
    const namespace = await this.#store.kv.createNamespace(accountId, title);
    this.#log('info', 'admin', 'kv namespace created', { account: accountId, namespace: namespace.id, title });
    json(call.res, 201, namespaceJson(namespace));
  }

  async #listNamespaces(call: Call): Promise<void> {
    const { caller, url } = call;
    let accountId: string | undefined;
    if (!caller.admin) accountId = caller.accountId;
    else if (url.searchParams.has('account')) accountId = await this.#account(url.searchParams.get('account')!);
    json(call.res, 200, (await this.#store.kv.listNamespaces(accountId)).map(namespaceJson));
  }

  async #deleteNamespace(call: Call, id: string): Promise<void> {
    const namespace = await this.#owned(call, id);
    if (!(await this.#store.kv.deleteNamespace(namespace.id, namespace.accountId))) throw noNamespace(id);
    this.#log('info', 'admin', 'kv namespace deleted', { account: namespace.accountId, namespace: id });
    noContent(call.res);
  }

  async #listKeys(call: Call, id: string): Promise<void> {
    const namespace = await this.#owned(call, id);
    const query = call.url.searchParams;
    const options = checkListOptions({ prefix: query.get('prefix'), limit: query.get('limit'), cursor: query.get('cursor') });
    json(call.res, 200, await this.#store.kv.list(namespace.id, options, { owner: namespace.accountId, now: nowSeconds() }));
  }

  async #getValue(call: Call, id: string, key: string): Promise<void> {
    const entry = await this.#entry(call, id, key);
    call.res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': entry.value.byteLength, 'cache-control': 'no-store' });
    call.res.end(entry.value);
  }

  async #getMetadata(call: Call, id: string, key: string): Promise<void> {
    const entry = await this.#entry(call, id, key);
    json(call.res, 200, { metadata: entry.metadata ?? null, expiration: entry.expiration ?? null });
  }

  async #putValue(call: Call, id: string, key: string): Promise<void> {
    checkKey(key);
    const namespace = await this.#owned(call, id);
    const query = call.url.searchParams;
    const now = nowSeconds();
    const options = checkPutOptions({ expiration: query.get('expiration'), expirationTtl: query.get('expiration_ttl'), metadata: query.get('metadata') }, now);
    const declared = Number(call.req.headers['content-length']);
    if (Number.isFinite(declared)) checkValueLength(declared);
    const value = await readBody(call.req, KV_LIMITS.maxValueBytes);
    await this.#store.kv.put(namespace.id, key, { value, ...options }, { owner: namespace.accountId, now });
    noContent(call.res);
  }

  async #deleteValue(call: Call, id: string, key: string): Promise<void> {
    checkKey(key);
    const namespace = await this.#owned(call, id);
    await this.#store.kv.delete(namespace.id, key, { owner: namespace.accountId, now: nowSeconds() });
    noContent(call.res);
  }

  async #entry(call: Call, id: string, key: string) {
    checkKey(key);
    const namespace = await this.#owned(call, id);
    const entry = await this.#store.kv.get(namespace.id, key, { owner: namespace.accountId, now: nowSeconds() });
    if (entry === undefined) throw new ApiError('not_found', `The KV namespace '${id}' has no key '${key}'.`);
    return entry;
  }

  /** The namespace, if the caller may act on it; another account's is a 404 like none at all. */
  async #owned(call: Call, id: string): Promise<KvNamespaceInfo> {
    const { caller } = call;
    const namespace = await this.#store.kv.getNamespace(id, caller.admin ? undefined : caller.accountId);
    if (namespace === undefined) throw noNamespace(id);
    return namespace;
  }

  /** The account a new namespace is for: an account token's own, or the operator's `?account=`. */
  async #accountFor(call: Call): Promise<string> {
    const { caller, url } = call;
    if (caller.admin) {
      if (!url.searchParams.has('account')) throw new ApiError('invalid', 'The admin token creates a namespace for an account: add ?account=<account> to the URL.');
      return this.#account(url.searchParams.get('account')!);
    }
    if (url.searchParams.has('account')) {
      const named = await this.#store.findAccount(url.searchParams.get('account')!);
      if (named?.id !== caller.accountId) throw new ApiError('forbidden', 'An account token acts only on its own account: drop ?account=.');
    }
    return caller.accountId;
  }

  async #account(ref: string): Promise<string> {
    const account = await this.#store.findAccount(ref);
    if (account === undefined) throw new ApiError('not_found', `No account '${ref}': list them with GET /v1/accounts.`);
    return account.id;
  }
}

function done(_: void): true {
  return true;
}

function noNamespace(id: string): ApiError {
  return new ApiError('not_found', `No KV namespace '${id}': list yours with GET /v1/kv/namespaces (isolet kv namespace list).`);
}

function namespaceJson(namespace: KvNamespaceInfo): Record<string, unknown> {
  return { id: namespace.id, title: namespace.title, account: namespace.accountName, createdAt: namespace.createdAt };
}
