// The control plane's actions on the running system: each one changes the store first (the
// durable truth) and then what serves (the Runtime and the route table), before the API
// answers. The order in a deployment is validate -> commit -> activate -> answer: a rejected
// upload stores nothing, a stored version is never lost, and a request that arrives after the
// answer sees the new version. Actions on one worker run one at a time, so the version that
// serves is always the one the store calls active.

import { Runtime } from '../runtime/runtime.ts';
import { WorkerLoadError, type WorkerDefinition, type WorkerLimits, type WorkerLogEntry } from '../runtime/types.ts';
import type { Store, StoredVersion, VersionInfo, WorkerContent } from '../store/store.ts';
import { ApiError } from './api-error.ts';
import type { ParsedDeployment } from './deployment.ts';
import { RouteTable } from './routes.ts';
import type { ServerLog } from './logger.ts';

export interface PlatformOptions {
  store: Store;
  /** The Runtime that serves tenant traffic. */
  runtime: Runtime;
  domain: string;
  log: ServerLog;
  /** The serving Runtime's default limits, so that validation holds uploads to the same ones. */
  defaultLimits?: Partial<WorkerLimits>;
}

/** The worker definition that serves: the version's content with the secrets merged into env (a secret wins over a var of the same name). */
export function definitionOf(content: WorkerContent, secrets: Record<string, string>): WorkerDefinition {
  return { ...content, vars: { ...content.vars, ...secrets } };
}

export class Platform {
  readonly store: Store;
  readonly runtime: Runtime;
  readonly domain: string;
  readonly #log: ServerLog;
  /** Loads each new upload in an isolate of its own, apart from the serving Runtime, and throws it away. */
  readonly #validator: Runtime;
  #routes: RouteTable;
  readonly #locks = new Map<string, Promise<unknown>>();

  constructor(options: PlatformOptions) {
    this.store = options.store;
    this.runtime = options.runtime;
    this.domain = options.domain;
    this.#log = options.log;
    // Logs from validation (top-level console calls of an upload) are not the worker's live
    // logs: the upload may never serve.
    this.#validator = new Runtime({ log: discard, maxIsolates: 16, limits: options.defaultLimits });
    this.#routes = new RouteTable(this.domain, [], () => false);
  }

  /** Registers every active version (lazily: isolates start with their first request) and the routes. */
  async boot(): Promise<number> {
    const workers = await this.store.loadActive();
    let loaded = 0;
    for (const worker of workers) {
      try {
        await this.runtime.load(worker.name, definitionOf(worker.version.content, worker.secrets), { validate: false });
        loaded++;
      } catch (error) {
        this.#log('error', 'server', 'could not register a worker at start', { worker: worker.name, version: worker.version.number, error: String(error) });
      }
    }
    await this.#refreshRoutes();
    return loaded;
  }

  /** The worker that serves a data-plane request, if any. */
  route(host: string, target: string): string | undefined {
    return this.#routes.match(host, target);
  }

  async deploy(name: string, accountId: string, deployment: ParsedDeployment, author: string): Promise<VersionInfo> {
    return this.#exclusive(name, async () => {
      const secrets = (await this.store.getWorker(name)) ? await this.store.secretValues(name) : {};
      const definition = definitionOf(deployment.content, secrets);
      await this.#validate(name, definition);
      const version = await this.store.deploy({
        worker: name,
        accountId,
        content: deployment.content,
        author,
        message: deployment.message,
        routes: deployment.routes,
      });
      await this.runtime.load(name, definition, { validate: false });
      if (deployment.routes !== undefined) await this.#refreshRoutes();
      this.#log('info', 'admin', 'deployed', { worker: name, version: version.number, hash: version.hash, author });
      return version;
    });
  }

  /** Makes another version active: `ref` by id or number, or by default the one before the active one. */
  async rollback(name: string, ref: string | number | undefined, author: string): Promise<VersionInfo> {
    return this.#exclusive(name, async () => {
      let target: StoredVersion | undefined;
      if (ref === undefined) {
        const versions = await this.store.listVersions(name);
        const active = versions.find((v) => v.active);
        const previous = versions.find((v) => active !== undefined && v.number < active.number);
        if (previous === undefined) {
          throw new ApiError('conflict', `The worker '${name}' has no version before the active one: name the version to roll back to.`);
        }
        target = await this.store.getVersion(name, { id: previous.id });
      } else if (typeof ref === 'number') {
        target = await this.store.getVersion(name, { number: ref });
      } else {
        target = await this.store.getVersion(name, { id: ref });
      }
      if (target === undefined) {
        throw new ApiError('not_found', `The worker '${name}' has no version ${JSON.stringify(ref)}: list them with GET /v1/workers/${name}/versions.`);
      }
      const version = await this.store.activate(name, target.id);
      await this.runtime.load(name, definitionOf(target.content, await this.store.secretValues(name)), { validate: false });
      this.#log('info', 'admin', 'rolled back', { worker: name, version: version.number, author });
      return version;
    });
  }

  async deleteWorker(name: string, author: string): Promise<void> {
    await this.#exclusive(name, async () => {
      await this.store.deleteWorker(name);
      await this.runtime.unload(name);
      await this.#refreshRoutes();
      this.#log('info', 'admin', 'deleted worker', { worker: name, author });
    });
  }

  async putSecret(name: string, key: string, value: string, author: string): Promise<void> {
    await this.#exclusive(name, async () => {
      await this.store.putSecret(name, key, value);
      await this.#reload(name);
      this.#log('info', 'admin', 'secret set', { worker: name, secret: key, author });
    });
  }

  async deleteSecret(name: string, key: string, author: string): Promise<boolean> {
    return this.#exclusive(name, async () => {
      const deleted = await this.store.deleteSecret(name, key);
      if (deleted) {
        await this.#reload(name);
        this.#log('info', 'admin', 'secret deleted', { worker: name, secret: key, author });
      }
      return deleted;
    });
  }

  async close(): Promise<void> {
    await this.#validator.close();
  }

  /** Loads the active version again with the current secrets. */
  async #reload(name: string): Promise<void> {
    const version = await this.store.activeVersion(name);
    if (version === undefined) return;
    await this.runtime.load(name, definitionOf(version.content, await this.store.secretValues(name)), { validate: false });
  }

  async #validate(name: string, definition: WorkerDefinition): Promise<void> {
    try {
      await this.#validator.load(name, definition);
    } catch (error) {
      if (error instanceof WorkerLoadError) throw new ApiError('invalid', error.message, error.location);
      throw error;
    } finally {
      await this.#validator.unload(name);
    }
  }

  async #refreshRoutes(): Promise<void> {
    const routes = await this.store.listRoutes();
    this.#routes = new RouteTable(this.domain, routes, (name) => this.runtime.has(name));
  }

  /** Runs fn after every earlier action on the same worker has finished. */
  async #exclusive<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#locks.get(name) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const settled = run.catch(() => {});
    this.#locks.set(name, settled);
    try {
      return await run;
    } finally {
      if (this.#locks.get(name) === settled) this.#locks.delete(name);
    }
  }
}

function discard(_entry: WorkerLogEntry): void {}
