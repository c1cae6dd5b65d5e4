// The control plane's actions on the running system: each one changes the store first (the
// durable truth) and then what serves (the worker host and the route table), before the API
// answers. The order in a deployment is validate -> commit -> activate -> answer: a rejected
// upload stores nothing, a stored version is never lost, and a request that arrives after the
// answer sees the new version. Actions on one worker run one at a time, so the version that
// serves is always the one the store calls active.
//
// Who may act is decided here too, under the worker's lock and again in the store's own
// transaction: the admin API's earlier check (before it reads a body that may be held open
// for a long time) is only a courtesy, and the worker may have changed hands since. Secrets are
// read only once the caller is known to own the worker, and never travel in an error.

import { WorkerLoadError, type WorkerDefinition } from '../runtime/types.ts';
import type { Tier } from '../supervisor/placement.ts';
import { StoreError, sha256Hex, type ActiveWorker, type DeployInput, type Owner, type RouteInfo, type Store, type StoredVersion, type VersionInfo, type WorkerContent, type WorkerInfo, type ZoneAssignment } from '../store/store.ts';
import { ApiError } from './api-error.ts';
import { checkDeployBindings } from './binding-handlers.ts';
import { DEFAULT_MAX_ACCOUNT_DEPLOYS, DEFAULT_MAX_DEPLOYS, DeploySlots } from './deploy-slots.ts';
import type { ParsedDeployment } from './deployment.ts';
import type { LogBus } from './log-bus.ts';
import { RouteTable } from './routes.ts';
import type { ServerLog } from './logger.ts';
import { scrub, scrubError } from './scrub.ts';
import { ValidatedUploads } from './validated-uploads.ts';
import type { WorkerHost } from './worker-host.ts';
import type { AssetServer } from './assets/asset-server.ts';
import { ASSETS_ONLY_SCRIPT, checkAssetsDeployment } from './assets/asset-uploads.ts';

export interface PlatformOptions {
  store: Store;
  /** What runs the workers: runtime processes, or a Runtime in this process. */
  host: WorkerHost;
  domain: string;
  log: ServerLog;
  /** The live-log bus: a deleted worker's tails end. */
  bus?: LogBus;
  /** Deployments validated at once, in total (default 4) and per account (default 2); more is a 429. */
  maxDeploys?: number;
  maxAccountDeploys?: number;
  /** Told what changes what serves, for metrics. */
  events?: PlatformEvents;
  /** Distinct uploads remembered as validated, so an identical one deploys without running again (default 10,000; 0 remembers none). */
  validatedUploads?: number;
  /** Serves the static assets of the versions this node serves. */
  assets?: AssetServer;
}

/** What the platform tells metrics (src/observability/server-metrics.ts). */
export interface PlatformEvents {
  /** A version was made active by a deployment or a rollback through this node. */
  activated(kind: 'deploy' | 'rollback'): void;
  /** This node stopped serving a worker (deleted, here or through another node): its name may go to another account. */
  unserved(name: string): void;
}

/** How a deployment is held to the account's grants. */
export interface DeployOptions {
  /** Whether new routes must be in the account's zones (false for the operator). */
  checkZones: boolean;
  /** Most workers the account may have. */
  maxWorkers?: number;
}

/** A worker definition as the server makes it: data only (platform bindings, no host functions). */
export type ServedDefinition = WorkerDefinition & WorkerContent & { account: string };

/**
 * The worker definition that serves: the version's content with the secrets merged into env (a
 * secret wins over a var of the same name), and the account that owns it, so the Runtime bounds
 * what workers share per account.
 */
export function definitionOf(content: WorkerContent, secrets: Record<string, string>, account: string): ServedDefinition {
  // The manifest stays in the control process, which serves the assets; a version of assets
  // alone gets a placeholder that never runs (asset-uploads.ts).
  const { assets, ...code } = content;
  const placeholder = assets !== undefined && code.modules === undefined && code.script === undefined ? { script: ASSETS_ONLY_SCRIPT } : {};
  return { ...code, ...placeholder, vars: { ...content.vars, ...secrets }, account };
}

export class Platform {
  readonly store: Store;
  readonly host: WorkerHost;
  readonly domain: string;
  readonly #log: ServerLog;
  #routes: RouteTable;
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #bus: LogBus | undefined;
  /**
   * What this node serves of each worker, by a fingerprint of its version, secrets, account and
   * tier: a change pushed from the store that this node has already applied (its own, or one
   * seen twice) loads nothing again, so warm isolates stay warm.
   */
  readonly #served = new Map<string, { worker: Served; fingerprint: string }>();
  /** The routes the table was last built from. */
  #routeList: RouteInfo[] = [];
  /** Deployments in progress, bounded per account (from the upload's start) and in total (validations). */
  readonly deploySlots: DeploySlots;
  readonly #validated: ValidatedUploads;
  readonly #assets: AssetServer | undefined;
  readonly #events: PlatformEvents | undefined;

  constructor(options: PlatformOptions) {
    this.store = options.store;
    this.host = options.host;
    this.domain = options.domain;
    this.#log = options.log;
    this.#bus = options.bus;
    this.#events = options.events;
    this.deploySlots = new DeploySlots(options.maxDeploys ?? DEFAULT_MAX_DEPLOYS, options.maxAccountDeploys ?? DEFAULT_MAX_ACCOUNT_DEPLOYS);
    this.#validated = new ValidatedUploads(options.validatedUploads);
    this.#assets = options.assets;
    this.#routes = new RouteTable(this.domain, [], () => false);
  }

  /** Registers every active version (lazily: isolates start with their first request) and the routes. */
  async boot(): Promise<number> {
    const loaded = await this.#register(await this.store.loadActive());
    await this.#refreshRoutes();
    return loaded;
  }

  /** Registers what a node served before (node-snapshot.ts), without the store: the database is away. */
  async bootFrom(workers: ActiveWorker[], routes: RouteInfo[]): Promise<number> {
    const loaded = await this.#register(workers);
    this.#setRoutes(routes);
    return loaded;
  }

  /** What this node serves now: every worker's version and secrets, and the routes. */
  served(): { workers: ActiveWorker[]; routes: RouteInfo[] } {
    const workers = [...this.#served.values()].map(({ worker }) => ({ ...worker, id: worker.id ?? '' }));
    return { workers, routes: this.#routeList };
  }

  /** The workers this node serves that have cron triggers, with them (the cron scheduler's list). */
  *scheduledWorkers(): Iterable<{ name: string; crons: readonly string[] }> {
    for (const { worker } of this.#served.values()) {
      const crons = worker.version.content.crons;
      if (crons !== undefined && crons.length > 0) yield { name: worker.name, crons };
    }
  }

  async #register(workers: ActiveWorker[]): Promise<number> {
    let loaded = 0;
    for (const worker of workers) {
      try {
        await this.#serve(worker, true);
        loaded++;
      } catch (error) {
        const reason = scrub(String(error), Object.values(worker.secrets));
        this.#log('error', 'server', 'could not register a worker at start', { worker: worker.name, version: worker.version.number, error: reason });
      }
    }
    return loaded;
  }

  /** The worker that serves a data-plane request, if any. */
  route(host: string, target: string): string | undefined {
    return this.#routes.match(host, target);
  }

  /**
   * Validates and stores a new version for the account, and serves it. Past the bound on
   * validations in progress it answers 429 at once: each waiting deployment holds its upload.
   */
  async deploy(name: string, accountId: string, deployment: ParsedDeployment, author: string, options: DeployOptions): Promise<VersionInfo> {
    const release = this.deploySlots.acquireValidation();
    try {
      return await this.#exclusive(name, async () => {
        const prepared = await this.#prepare(name, accountId, deployment, await this.store.getTier(accountId));
        const version = await this.store.deploy(this.#deployInput(prepared, author, options));
        await this.#start(prepared, version, author);
        if (deployment.routes !== undefined) await this.#refreshRoutes();
        return version;
      });
    } finally {
      release();
    }
  }

  /**
   * deploy() for many workers of one account at once: each is validated on its own (an
   * identical upload once), and those that pass are stored in one transaction, so one write to
   * disk. Each worker's answer is its version or the ApiError deploy() would have thrown, in
   * the order given; names must differ. It holds one validation slot.
   */
  async deployMany(
    accountId: string,
    deployments: { name: string; deployment: ParsedDeployment }[],
    author: string,
    options: DeployOptions,
  ): Promise<(VersionInfo | ApiError)[]> {
    const release = this.deploySlots.acquireValidation();
    try {
      const names = [...new Set(deployments.map((d) => d.name))].sort();
      return await this.#exclusiveAll(names, async () => {
        const tier = await this.store.getTier(accountId);
        const results: (VersionInfo | ApiError)[] = [];
        const prepared: { index: number; worker: PreparedDeployment }[] = [];
        for (const [index, { name, deployment }] of deployments.entries()) {
          try {
            prepared.push({ index, worker: await this.#prepare(name, accountId, deployment, tier) });
          } catch (error) {
            if (!(error instanceof ApiError)) throw error;
            results[index] = error;
          }
        }
        const stored = await this.store.deployMany(prepared.map(({ worker }) => this.#deployInput(worker, author, options)));
        for (const [i, { index, worker }] of prepared.entries()) {
          const version = stored[i]!;
          if (version instanceof StoreError) {
            results[index] = new ApiError(version.code, version.message);
            continue;
          }
          await this.#start(worker, version, author);
          results[index] = version;
        }
        if (prepared.some(({ worker }) => worker.deployment.routes !== undefined)) await this.#refreshRoutes();
        return results;
      });
    } finally {
      release();
    }
  }

  /** Makes another version active: `ref` by id or number, or by default the one before the active one. */
  async rollback(name: string, ref: string | number | undefined, author: string, owner: Owner): Promise<VersionInfo> {
    return this.#exclusive(name, async () => {
      const worker = await this.#ownedWorker(name, owner);
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
      const version = await this.store.activate(name, target.id, worker.accountId);
      await this.#reload(name);
      this.#log('info', 'admin', 'rolled back', { worker: name, version: version.number, author });
      this.#events?.activated('rollback');
      return version;
    });
  }

  async deleteWorker(name: string, author: string, owner: Owner): Promise<void> {
    await this.#exclusive(name, async () => {
      const worker = await this.#ownedWorker(name, owner);
      if (!(await this.store.deleteWorker(name, worker.accountId))) throw notFound(name);
      const tails = await this.#unserve(name, worker.id);
      await this.#refreshRoutes();
      this.#log('info', 'admin', 'deleted worker', { worker: name, author, tailsEnded: tails });
    });
  }

  async putSecret(name: string, key: string, value: string, author: string, owner: Owner): Promise<void> {
    await this.#exclusive(name, async () => {
      // env holds vars, secrets and bindings under one set of names: a secret may not hide a binding.
      const bindings = (await this.store.activeVersion(name))?.content.bindings;
      if (bindings !== undefined && Object.hasOwn(bindings, key)) {
        throw new ApiError('invalid', `The worker '${name}' has a binding named '${key}' (env.${key}): give the secret another name, or deploy without that binding first.`);
      }
      await this.store.putSecret(name, key, value, owner);
      await this.#reload(name);
      this.#log('info', 'admin', 'secret set', { worker: name, secret: key, author });
    });
  }

  async deleteSecret(name: string, key: string, author: string, owner: Owner): Promise<boolean> {
    return this.#exclusive(name, async () => {
      const deleted = await this.store.deleteSecret(name, key, owner);
      if (deleted) {
        await this.#reload(name);
        this.#log('info', 'admin', 'secret deleted', { worker: name, secret: key, author });
      }
      return deleted;
    });
  }

  /** Gives the account a zone; routes of others that reach into it stop serving before this returns. */
  async assignZone(accountId: string, zone: string): Promise<ZoneAssignment> {
    const assignment = await this.store.assignZone(accountId, zone);
    if (assignment.removedRoutes.length > 0) await this.#refreshRoutes();
    this.#log('info', 'admin', 'zone assigned', {
      zone,
      account: accountId,
      removedRoutes: assignment.removedRoutes.map((r) => ({ pattern: r.pattern, worker: r.worker, account: r.accountId })),
    });
    return assignment;
  }

  /**
   * Sets the account's tier: its workers move to that tier's processes before this returns
   * (each under its lock, so no deployment of it interleaves).
   */
  async setTier(accountId: string, tier: Tier, author: string): Promise<void> {
    await this.store.setTier(accountId, tier);
    for (const worker of await this.store.listWorkers(accountId)) await this.#exclusive(worker.name, () => this.#reload(worker.name));
    this.#log('info', 'admin', 'tier set', { account: accountId, tier, author });
  }

  /**
   * The runtime host moved an account to quarantine (its code crashed processes): make that
   * durable, and load its workers again under their locks, so a deployment that read the old
   * tier before cannot move one back.
   */
  async quarantine(accountId: string, worker: string): Promise<void> {
    try {
      await this.setTier(accountId, 'quarantine', 'supervisor');
      this.#log('warn', 'server', 'account quarantined', { account: accountId, worker });
    } catch (error) {
      this.#log('error', 'server', 'could not store the quarantine of an account', { account: accountId, worker, error: String(error) });
    }
  }

  /**
   * What a deployment runs as, checked: the name is free or the account's, and the upload
   * loads. Only once the name is known to be this account's (or free), under the worker's lock,
   * may the upload run with the worker's secrets.
   */
  async #prepare(name: string, accountId: string, deployment: ParsedDeployment, tier: Tier): Promise<PreparedDeployment> {
    const existing = await this.store.getWorker(name);
    if (existing !== undefined && existing.accountId !== accountId) {
      throw new ApiError('forbidden', `The worker name '${name}' is taken: pick another name.`);
    }
    await checkAssetsDeployment(this.store, accountId, deployment.content);
    await checkDeployBindings(deployment.content.bindings, { account: accountId, worker: name }, { store: this.store, log: this.#log });
    const secrets = existing === undefined ? {} : await this.store.secretValues(name);
    const hidden = Object.keys(deployment.content.bindings ?? {}).filter((binding) => Object.hasOwn(secrets, binding));
    if (hidden.length > 0) {
      throw new ApiError('invalid', `The worker '${name}' has ${hidden.length === 1 ? 'a secret' : 'secrets'} named ${hidden.map((n) => `'${n}'`).join(', ')}, as ${hidden.length === 1 ? 'a binding' : 'bindings'} of this deployment: env has one value per name. Rename the binding, or delete the secret first.`);
    }
    const definition = definitionOf(deployment.content, secrets, accountId);
    const validation = await this.#validate(name, definition, secrets, tier);
    return { name, accountId, existing, deployment, secrets, tier, validation };
  }

  #deployInput(prepared: PreparedDeployment, author: string, options: DeployOptions): DeployInput {
    const { name, accountId, deployment } = prepared;
    return {
      worker: name,
      accountId,
      content: deployment.content,
      author,
      message: deployment.message,
      routes: deployment.routes,
      checkZones: options.checkZones,
      maxWorkers: options.maxWorkers,
    };
  }

  /** A stored version starts serving; a worker the deployment made is known by its id from now on. */
  async #start(prepared: PreparedDeployment, version: VersionInfo, author: string): Promise<void> {
    const { name, accountId, tier, secrets } = prepared;
    const id = prepared.existing?.id ?? (await this.store.getWorker(name))?.id;
    await this.#serve({ id, name, accountId, tier, version: { ...version, content: prepared.deployment.content }, secrets });
    this.#log('info', 'admin', 'deployed', {
      worker: name, account: accountId, version: version.number, hash: version.hash, author, validation: prepared.validation,
    });
    this.#events?.activated('deploy');
  }

  /**
   * Serves what the store now says of these workers (changes made through other nodes of a
   * cluster, src/server/change-follower.ts), each under its lock and read under it, so a newer
   * local action is never undone by an older read; then the routes.
   */
  async follow(names: string[] | 'all'): Promise<void> {
    const all = names === 'all' ? new Set([...this.#served.keys(), ...(await this.store.listWorkers()).map((w) => w.name)]) : new Set(names);
    await Promise.all([...all].map((name) => this.#exclusive(name, () => this.#reload(name, true))));
    await this.#refreshRoutes();
  }

  /**
   * Serves the store's active version of the worker with its current secrets and tier; stops
   * serving it when it has none. `logFailure`: a version this node cannot load is logged (as at
   * start) instead of thrown, so one worker does not hold up the changes to others.
   */
  async #reload(name: string, logFailure = false): Promise<void> {
    const [worker] = await this.store.loadWorkers([name]);
    if (worker === undefined) {
      const served = this.#served.get(name);
      if (served !== undefined || this.host.has(name)) {
        const tails = await this.#unserve(name, served?.worker.id);
        this.#log('info', 'server', 'stopped serving a deleted worker', { worker: name, tailsEnded: tails });
      }
      return;
    }
    try {
      await this.#serve(worker);
    } catch (error) {
      if (!logFailure) throw error;
      const reason = scrub(String(error), Object.values(worker.secrets));
      this.#log('error', 'server', 'could not load a changed worker', { worker: name, version: worker.version.number, error: reason });
    }
  }

  /**
   * Loads the worker unless this node already serves exactly this version, secrets, account and
   * tier. `tried`: registered at start, it served before (it is not tried again as new code).
   */
  async #serve(worker: Served, tried = false): Promise<void> {
    const fingerprint = sha256Hex(JSON.stringify([worker.version.id, worker.accountId, worker.tier, Object.entries(worker.secrets).sort()]));
    const served = this.#served.get(worker.name);
    if (served?.fingerprint === fingerprint && this.host.has(worker.name)) return;
    // The name now belongs to another worker (deleted and made again): the old one's tails end.
    const before = served?.worker.id;
    if (before !== undefined && worker.id !== undefined && before !== worker.id) this.#bus?.endWorker(before);
    await this.host.load(worker.name, definitionOf(worker.version.content, worker.secrets, worker.accountId), { tier: worker.tier, code: worker.version.hash, tried });
    this.#assets?.set(worker.name, worker.accountId, worker.version.content);
    this.#served.set(worker.name, { worker, fingerprint });
  }

  /** Stops serving a deleted worker; its tails end here: the name may next be another account's worker. */
  async #unserve(name: string, workerId: string | undefined): Promise<number> {
    await this.host.unload(name);
    this.#assets?.delete(name);
    this.#served.delete(name);
    this.#events?.unserved(name);
    return workerId === undefined ? 0 : (this.#bus?.endWorker(workerId) ?? 0);
  }

  /** The worker, if it exists and belongs to `owner` (any owner when undefined); else 404. */
  async #ownedWorker(name: string, owner: Owner): Promise<WorkerInfo> {
    const worker = await this.store.getWorker(name);
    if (worker === undefined || (owner !== undefined && worker.accountId !== owner)) throw notFound(name);
    return worker;
  }

  /**
   * Loads the upload once, apart, unless an identical one of the account loaded before ('reused');
   * its errors go back to the client, so no secret value may be in them.
   */
  async #validate(name: string, definition: ServedDefinition, secrets: Record<string, string>, tier: Tier): Promise<'ran' | 'reused'> {
    const key = ValidatedUploads.key(definition);
    if (this.#validated.has(key)) return 'reused';
    const values = Object.values(secrets);
    try {
      await this.host.validate(name, definition, { tier });
      this.#validated.add(key);
      return 'ran';
    } catch (error) {
      if (error instanceof WorkerLoadError) {
        throw new ApiError('invalid', scrub(error.message, values), error.location === undefined ? undefined : scrub(error.location, values));
      }
      throw scrubError(error, values);
    }
  }

  async #refreshRoutes(): Promise<void> {
    this.#setRoutes(await this.store.listRoutes());
  }

  #setRoutes(routes: RouteInfo[]): void {
    this.#routes = new RouteTable(this.domain, routes, (name) => this.host.has(name));
    this.#routeList = routes;
  }

  /** Runs fn holding every worker's lock, taken in the order given (sorted, so two callers cannot wait on each other). */
  #exclusiveAll<T>(names: string[], fn: () => Promise<T>, from = 0): Promise<T> {
    if (from === names.length) return fn();
    return this.#exclusive(names[from]!, () => this.#exclusiveAll(names, fn, from + 1));
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

/** A worker as this node serves it (its id unknown only in the moment after a deploy made it). */
type Served = Omit<ActiveWorker, 'id'> & { id: string | undefined };

interface PreparedDeployment {
  name: string;
  accountId: string;
  /** The worker before this deployment (undefined: it makes a new one). */
  existing: WorkerInfo | undefined;
  deployment: ParsedDeployment;
  secrets: Record<string, string>;
  tier: Tier;
  validation: 'ran' | 'reused';
}

function notFound(name: string): ApiError {
  return new ApiError('not_found', `No worker '${name}': deploy it with PUT /v1/workers/${name}.`);
}
