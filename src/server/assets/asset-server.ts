// Static assets on `isolet serve`: the control process answers a request that matches a file
// of the worker's active version without entering the worker's isolate, from an in-memory cache
// of blobs (bounded by bytes, least recently used out) in front of the store. Blobs are read
// by (account, hash): a manifest only names hashes its account was checked to hold at deploy.

import { LRUCache } from 'lru-cache';
import type { AssetsContent } from '../../assets/manifest.ts';
import { serveAsset, type AssetRequest, type AssetSource } from '../../assets/respond.ts';
import { navigationPrefersAssets } from '../../runtime/compatibility.ts';
import type { RuntimeRequest, RuntimeResponse } from '../../runtime/types.ts';
import type { Store, WorkerContent } from '../../store/store.ts';
import type { ServerLog } from '../logger.ts';

/** Default bytes of blobs kept in memory. */
export const DEFAULT_ASSET_CACHE_BYTES = 64 * 1024 * 1024;

interface ServedWorker {
  accountId: string;
  assets: AssetsContent;
  /** The version has code: requests that match no file go to it. */
  hasWorker: boolean;
  navigationPrefersAssets: boolean;
  source: AssetSource;
}

export interface AssetServerOptions {
  store: Store;
  log: ServerLog;
  /** Bytes of blobs kept in memory (default 64 MiB); a blob over an eighth of it is read from the store each time. */
  cacheBytes?: number;
}

export class AssetServer {
  readonly #store: Store;
  readonly #log: ServerLog;
  readonly #workers = new Map<string, ServedWorker>();
  readonly #cache: LRUCache<string, Uint8Array, { accountId: string; hash: string }>;

  constructor(options: AssetServerOptions) {
    this.#store = options.store;
    this.#log = options.log;
    const maxSize = Math.max(1, options.cacheBytes ?? DEFAULT_ASSET_CACHE_BYTES);
    this.#cache = new LRUCache({
      maxSize,
      maxEntrySize: Math.max(1, Math.floor(maxSize / 8)),
      sizeCalculation: (bytes) => Math.max(1, bytes.byteLength),
      // Concurrent misses of one blob read the store once.
      fetchMethod: async (_key, _stale, { context }) => this.#store.getAsset(context.accountId, context.hash),
    });
  }

  /** Serves the version's assets for this worker from now on (none when it has none). */
  set(name: string, accountId: string, content: WorkerContent): void {
    const assets = content.assets;
    if (assets === undefined || Object.keys(assets.manifest).length === 0) {
      this.#workers.delete(name);
      return;
    }
    const manifest = assets.manifest;
    const source: AssetSource = {
      find: (path) => (Object.hasOwn(manifest, path) ? manifest[path]!.hash : undefined),
      open: async (path) => {
        const file = manifest[path]!;
        const bytes = await this.blob(accountId, file.hash);
        return bytes === undefined ? undefined : { bytes, contentType: file.contentType, etag: file.hash };
      },
    };
    this.#workers.set(name, {
      accountId,
      assets,
      hasWorker: content.modules !== undefined || content.script !== undefined,
      navigationPrefersAssets: navigationPrefersAssets(content.compatibilityDate, content.compatibilityFlags),
      source,
    });
  }

  delete(name: string): void {
    this.#workers.delete(name);
  }

  has(name: string): boolean {
    return this.#workers.has(name);
  }

  /**
   * A client's request: the asset's answer, or the worker's (`worker.fetch`) when no file
   * matches. A store that cannot be read is a 503 that says so.
   */
  async fetch(name: string, request: RuntimeRequest, worker: { fetch(name: string, request: RuntimeRequest): Promise<RuntimeResponse> }): Promise<RuntimeResponse> {
    const served = this.#workers.get(name);
    if (served === undefined) return worker.fetch(name, request);
    let answer: RuntimeResponse | undefined;
    try {
      answer = await serveAsset(request, served.assets, served.source, {
        mode: served.hasWorker ? 'front' : 'assets',
        navigationPrefersAssets: served.navigationPrefersAssets,
      });
    } catch (error) {
      return this.#unavailable(name, error);
    }
    return answer ?? worker.fetch(name, request);
  }

  /** `env.ASSETS.fetch(request)` from the worker: always an answer, never the worker again. */
  async fetchFromBinding(name: string, request: AssetRequest): Promise<RuntimeResponse> {
    const served = this.#workers.get(name);
    if (served === undefined) return { status: 404, statusText: 'Not Found', headers: [], body: null };
    try {
      return (await serveAsset(request, served.assets, served.source, { mode: 'assets' }))!;
    } catch (error) {
      return this.#unavailable(name, error);
    }
  }

  /** A blob of the account's, from the cache or the store. */
  async blob(accountId: string, hash: string): Promise<Uint8Array | undefined> {
    return this.#cache.fetch(`${accountId}/${hash}`, { context: { accountId, hash } });
  }

  #unavailable(name: string, error: unknown): RuntimeResponse {
    this.#log('error', 'assets', 'could not read an asset from the store', { worker: name, error: String(error) });
    const text = 'This asset cannot be read right now (the store is unavailable). Try again shortly.\n';
    return {
      status: 503,
      statusText: 'Service Unavailable',
      headers: [['content-type', 'text/plain; charset=utf-8'], ['retry-after', '1']],
      body: new TextEncoder().encode(text),
    };
  }
}
