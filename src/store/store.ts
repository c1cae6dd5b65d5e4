// The control plane's storage: accounts, tokens, workers, their immutable versions and the
// pointer to the active one, routes and secrets. `Store` is what the server uses; SqliteStore
// (one file, one machine) and PostgresStore (one database, many nodes: a SharedStore) implement
// it, both as SqlStore over their engine (sql-store.ts). Everything here
// is async and speaks in plain values, so no engine's habits (rowids, sync calls, BLOBs) leak
// into the server.

import { createHash } from 'node:crypto';
import type { BindingSpec, JsonValue, ScheduledOutcome, WorkerLimits, WorkerModule } from '../runtime/types.ts';
import type { Tier } from '../supervisor/placement.ts';
import type { KvStore } from './kv-store.ts';
import type { AssetsContent } from '../assets/manifest.ts';
import type { WorkerMinute } from './worker-minute.ts';

export type { WorkerMinute };

export interface Account {
  id: string;
  name: string;
  createdAt: string;
}

export interface TokenInfo {
  id: string;
  accountId: string;
  description: string;
  createdAt: string;
}

/** What a version holds: the code and its configuration. Routes are the worker's, not a version's. */
export interface WorkerContent {
  modules?: WorkerModule[];
  main?: string;
  script?: string;
  vars?: Record<string, JsonValue>;
  limits?: Partial<WorkerLimits>;
  compatibilityDate?: string;
  compatibilityFlags?: string[];
  /** Static assets: the manifest (path -> hash, size, type) and how they are served; the bytes are the account's asset blobs. */
  assets?: AssetsContent;
  /** Cron triggers (src/cron/cron.ts): the version's scheduled handler runs on them. */
  crons?: string[];
  /** Platform bindings by env name (KV namespaces, services, assets), checked at deploy. */
  bindings?: Record<string, BindingSpec>;
}

/** One cron trigger due at one tick (a minute), for one worker. */
export interface CronTick {
  worker: string;
  cron: string;
}

/** A cron trigger's run at one tick: claimed by one node of the cluster, then its outcome. */
export interface CronRun extends CronTick {
  /** The tick, in ms since the epoch: the handler's controller.scheduledTime. */
  scheduledTime: number;
  /** The node that ran it. */
  node: string;
  startedAt: string;
  /** Undefined while it runs (or when its node went away before saying). */
  outcome?: ScheduledOutcome;
  cpuMs?: number;
  wallMs?: number;
  error?: string;
}

/** Runs kept per worker, newest first: as many as Cloudflare's Cron Events show. */
export const CRON_RUNS_KEPT = 100;

export interface VersionInfo {
  id: string;
  worker: string;
  /** 1, 2, 3, ... per worker. */
  number: number;
  /** SHA-256 (hex) of the version's canonical content (see canonicalContent). */
  hash: string;
  createdAt: string;
  /** Id of the token that deployed it ("admin" for the operator's token). */
  author: string;
  message: string;
  active: boolean;
}

export interface StoredVersion extends VersionInfo {
  content: WorkerContent;
}

export interface WorkerInfo {
  /** The worker's identity: new each time the name is created, so a name deleted and made again is another worker. */
  id: string;
  name: string;
  accountId: string;
  accountName: string;
  activeVersion: VersionInfo | undefined;
  /** Route patterns, sorted. */
  routes: string[];
  updatedAt: string;
}

export interface RouteInfo {
  pattern: string;
  worker: string;
  accountId: string;
}

export interface ZoneInfo {
  /** A hostname or domain; it covers itself and every host under it. */
  zone: string;
  accountId: string;
  accountName: string;
  createdAt: string;
}

/** What assigning a zone did: routes of other accounts that could reach hosts in it were removed. */
export interface ZoneAssignment {
  zone: ZoneInfo;
  removedRoutes: RouteInfo[];
}

/**
 * What the operator grants an account: how many workers it may have, and the most each worker
 * may ask for in its limits. Stored per account as overrides of the server's defaults.
 */
export interface AccountQuotas {
  maxWorkers: number;
  cpuMs: number;
  startupCpuMs: number;
  memoryMb: number;
}

export const QUOTA_NAMES: readonly (keyof AccountQuotas)[] = ['maxWorkers', 'cpuMs', 'startupCpuMs', 'memoryMb'];

export interface SecretInfo {
  name: string;
  updatedAt: string;
}

/** A worker as the server loads it at start: its active version and its secrets in the clear. */
export interface ActiveWorker {
  id: string;
  name: string;
  accountId: string;
  /** The account's tier (where its workers run). */
  tier: Tier;
  version: StoredVersion;
  secrets: Record<string, string>;
}

export interface DeployInput {
  worker: string;
  accountId: string;
  content: WorkerContent;
  author: string;
  message: string;
  /** The worker's routes from now on (normalized patterns); undefined keeps the current ones. */
  routes?: string[];
  /**
   * Whether each route the worker does not hold yet must name a host in one of the account's
   * zones ('forbidden' otherwise). False for the operator's deploys.
   */
  checkZones?: boolean;
  /** Most workers the account may have: creating one past it is 'forbidden'. */
  maxWorkers?: number;
}

/**
 * The account that must own the worker an action changes, checked in the action's own
 * transaction: another account's worker is 'not_found' (it does not exist for that account).
 * undefined is the operator, who may act on any worker.
 */
export type Owner = string | undefined;

export type StoreErrorCode = 'conflict' | 'forbidden' | 'not_found' | 'invalid';

/** A request the store refuses for a reason the caller can act on (the code maps to an HTTP status). */
export class StoreError extends Error {
  override name = 'StoreError';
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** The database cannot be reached (down, restarting, or the network): nothing was changed; try again. */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
}

export interface Store {
  /** KV namespaces and their entries (kv-store.ts). */
  readonly kv: KvStore;

  /** Fails with 'conflict' when the name is taken. */
  createAccount(name: string): Promise<Account>;
  listAccounts(): Promise<Account[]>;
  /** By id or by name. */
  findAccount(idOrName: string): Promise<Account | undefined>;

  /** Stores a token by its SHA-256 hash (the token itself is never stored). */
  createToken(accountId: string, description: string, tokenHash: Buffer): Promise<TokenInfo>;
  listTokens(accountId: string): Promise<TokenInfo[]>;
  deleteToken(accountId: string, tokenId: string): Promise<boolean>;
  /** The token whose hash this is, compared in constant time. */
  findToken(tokenHash: Buffer): Promise<TokenInfo | undefined>;

  /**
   * One transaction: creates the worker if new, inserts the version, makes it active and sets
   * the routes. 'forbidden' when the worker belongs to another account, when a new route is
   * outside the account's zones or the account is at its worker quota; 'conflict' when another
   * account holds one of the routes; then nothing is stored.
   */
  deploy(input: DeployInput): Promise<VersionInfo>;
  /**
   * Many deployments in one transaction, so one write to disk: each is stored, or refused with
   * the StoreError deploy() would throw, on its own; results in the order of the inputs.
   */
  deployMany(inputs: DeployInput[]): Promise<(VersionInfo | StoreError)[]>;
  getWorker(name: string): Promise<WorkerInfo | undefined>;
  /** All workers, or one account's; sorted by name. */
  listWorkers(accountId?: string): Promise<WorkerInfo[]>;
  /** Newest first. */
  listVersions(worker: string): Promise<VersionInfo[]>;
  getVersion(worker: string, ref: { id: string } | { number: number }): Promise<StoredVersion | undefined>;
  activeVersion(worker: string): Promise<StoredVersion | undefined>;
  /** Moves the active pointer to one of the worker's versions. */
  activate(worker: string, versionId: string, owner?: Owner): Promise<VersionInfo>;
  /** Deletes the worker with its versions, routes and secrets; false when there is none (for this owner). */
  deleteWorker(worker: string, owner?: Owner): Promise<boolean>;
  listRoutes(): Promise<RouteInfo[]>;

  /** Encrypted at rest; 'not_found' when the worker does not exist (for this owner). */
  putSecret(worker: string, name: string, value: string, owner?: Owner): Promise<void>;
  /** 'not_found' when the worker does not exist (for this owner); false when it has no such secret. */
  deleteSecret(worker: string, name: string, owner?: Owner): Promise<boolean>;
  listSecrets(worker: string): Promise<SecretInfo[]>;
  secretValues(worker: string): Promise<Record<string, string>>;

  /**
   * Gives a zone to an account. 'conflict' when it overlaps another account's zone; routes of
   * other accounts that reach into it are removed in the same transaction (and returned).
   */
  assignZone(accountId: string, zone: string): Promise<ZoneAssignment>;
  /** All zones, or one account's; sorted. */
  listZones(accountId?: string): Promise<ZoneInfo[]>;
  /** Takes a zone back (routes already in it stay until their worker changes them). */
  removeZone(accountId: string, zone: string): Promise<boolean>;

  /** The operator's overrides of the server's default quotas for the account. */
  getQuotas(accountId: string): Promise<Partial<AccountQuotas>>;
  /** Replaces the overrides (an absent name means the server's default). */
  setQuotas(accountId: string, quotas: Partial<AccountQuotas>): Promise<void>;

  /** The account's tier: which runtime processes its workers share ('default' until the operator or a quarantine sets one). */
  getTier(accountId: string): Promise<Tier>;
  setTier(accountId: string, tier: Tier): Promise<void>;

  /** Of these asset hashes, those the account holds, with their sizes in bytes. */
  assetSizes(accountId: string, hashes: string[]): Promise<Map<string, number>>;
  /**
   * Stores the bytes of static assets for the account under their SHA-256, which the caller
   * has checked against the bytes; a hash the account holds already is left as it is. Blobs are
   * the account's own: no other account can read one, whatever hashes it names.
   */
  putAssets(accountId: string, blobs: { hash: string; bytes: Uint8Array }[]): Promise<void>;
  /** One of the account's asset blobs, or undefined. */
  getAsset(accountId: string, hash: string): Promise<Uint8Array | undefined>;
  /**
   * Claims the cron triggers due at `scheduledTime` for `node`: each (worker, cron, tick) is
   * claimed once, by whichever node of the cluster inserts it first. Returns those this node
   * won (a worker deleted meanwhile is left out).
   */
  claimCronTicks(scheduledTime: number, node: string, due: CronTick[]): Promise<CronTick[]>;
  /** Records how claimed runs ended; keeps the newest CRON_RUNS_KEPT runs of each worker. */
  recordCronRuns(runs: CronRun[]): Promise<void>;
  /** A worker's most recent runs, newest first. */
  listCronRuns(worker: string): Promise<CronRun[]>;

  /**
   * Writes what one server instance counted for workers in some minutes, each row replacing
   * that instance's earlier row for the same worker and minute; rows of workers that are gone
   * are skipped. Drops every row of minutes before `keepFrom`.
   */
  saveWorkerMinutes(instance: string, rows: WorkerMinute[], keepFrom: number): Promise<void>;
  /** Every worker's minutes from `from` on, summed over the instances other than `except`. */
  workerMinutes(from: number, except: string, worker?: string): Promise<WorkerMinute[]>;

  /** Every worker with an active version, for loading at start. */
  loadActive(): Promise<ActiveWorker[]>;
  /** Some workers as loadActive has them; a name with no worker or no active version is left out. */
  loadWorkers(names: string[]): Promise<ActiveWorker[]>;
  close(): Promise<void>;
}

/** What changed since a point of the change counter. */
export interface ChangeBatch {
  /** The counter now: every change up to it is in `workers`. */
  head: number;
  /** Workers whose serving state changed, or 'all' when the log no longer reaches back that far. */
  workers: string[] | 'all';
  /** Tokens revoked (as far back as the log reaches): their tails end on every node. */
  tokens: string[];
}

export interface ChangeEvents {
  /** A change was committed (a notification: the counter's new value). */
  change(head: number): void;
  /** The notification channel connected (true: changes may have been missed while it was down) or dropped. */
  connection(up: boolean): void;
}

/**
 * A store that many nodes serve from: each committed change to what serves (a deploy, rollback,
 * delete, route, secret or tier, or a token revoked) advances one change counter and names what
 * it touched, and is pushed to every node that watches.
 */
export interface SharedStore extends Store {
  changesSince(after: number): Promise<ChangeBatch>;
  /** Pushes changes until close; reconnects on its own after the database goes away. */
  watch(events: ChangeEvents): void;
  /**
   * Sends a short text (at most BROADCAST_MAX_BYTES) to every node that watches, this one too:
   * best effort, never stored, lost while the database or a node's connection is away.
   */
  broadcast(message: string): Promise<void>;
  /** Where the broadcasts this node receives go (once it watches). */
  onBroadcast(receive: (message: string) => void): void;
}

/** The longest broadcast: PostgreSQL refuses a NOTIFY payload of 8000 bytes or more. */
export const BROADCAST_MAX_BYTES = 7900;

export function isSharedStore(store: Store): store is SharedStore {
  return typeof (store as Partial<SharedStore>).changesSince === 'function' && typeof (store as Partial<SharedStore>).watch === 'function';
}

/**
 * The content with only the known fields, undefined ones dropped and object keys sorted: the
 * exact text a version stores and hashes, so the same deployment always hashes the same.
 */
export function canonicalContent(content: WorkerContent): string {
  const picked: WorkerContent = {};
  if (content.modules !== undefined) picked.modules = content.modules.map((m) => (m.type === undefined ? { name: m.name, source: m.source } : { name: m.name, source: m.source, type: m.type }));
  if (content.main !== undefined) picked.main = content.main;
  if (content.script !== undefined) picked.script = content.script;
  if (content.vars !== undefined) picked.vars = content.vars;
  if (content.limits !== undefined) picked.limits = content.limits;
  if (content.compatibilityDate !== undefined) picked.compatibilityDate = content.compatibilityDate;
  if (content.compatibilityFlags !== undefined) picked.compatibilityFlags = content.compatibilityFlags;
  if (content.assets !== undefined) picked.assets = content.assets;
  if (content.crons !== undefined) picked.crons = content.crons;
  if (content.bindings !== undefined) picked.bindings = content.bindings;
  return JSON.stringify(sortKeys(picked));
}

/** SHA-256 (hex) of canonicalContent: a version's `hash`. */
export function contentHash(content: WorkerContent): string {
  return sha256Hex(canonicalContent(content));
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}
