// The admin API (docs/ADMIN_API.md): JSON over its own HTTP listener, bearer tokens, one
// handler per endpoint. Authentication comes first (401), then the route (404), then whether
// this token may act on that resource (403). Another account's worker does not exist for an
// account (404, as for a name nobody has), so the answers say nothing about other tenants.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isDashboardPath, serveDashboard } from '../dashboard/assets.ts';
import { DEFAULT_LIMITS, type WorkerLimits } from '../runtime/types.ts';
import { QUOTA_NAMES, StoreError, StoreUnavailableError, type Account, type AccountQuotas, type CronRun, type VersionInfo, type WorkerInfo, type ZoneInfo } from '../store/store.ts';
import { parseZone } from '../store/zones.ts';
import { isTier, TIERS } from '../supervisor/placement.ts';
import { ApiError } from './api-error.ts';
import { ACCOUNT_NAME, DEFAULT_QUOTAS, SECRET_NAME, checkWorkerName, parseDeployment, type DeploymentRules, type ParsedDeployment } from './deployment.ts';
import type { DropReason, LogBus, LogSubscriber } from './log-bus.ts';
import type { ServerLog } from './logger.ts';
import type { Platform } from './platform.ts';
import type { AccountSummary, TokenSummary, Version, WorkerDetails, WorkerSummary } from './admin-shapes.ts';
import type { MetricsEndpoint } from '../observability/metrics-endpoint.ts';
import { SERIES_MINUTES } from '../observability/worker-series.ts';
import { parseTailFilter } from '../observability/tail-filter.ts';
import { bearerHash, hashToken, newToken, sameToken } from './tokens.ts';
import { MAX_MISSING_BODY, MAX_UPLOAD_BODY, missingAssets, uploadAssets } from './assets/asset-uploads.ts';
import { KvApi } from './kv-api.ts';

export interface AdminApiOptions {
  platform: Platform;
  bus: LogBus;
  adminToken: string;
  rules: DeploymentRules;
  /** Limits a worker gets where its deployment says nothing. */
  defaultLimits?: Partial<WorkerLimits>;
  log: ServerLog;
  /** Bytes a tail client may have unread before it is dropped (default 1 MiB). */
  tailBufferBytes?: number;
  /** The data-plane URL of a worker's own host, for the deploy answer's `urls`. */
  workerUrl?: (name: string) => string;
  /** What an account gets unless the operator overrides it (default DEFAULT_QUOTAS). */
  quotas?: Partial<AccountQuotas>;
  /** The body of GET /healthz (default `{ ok: true }`). */
  health?: () => Record<string, unknown>;
  /** GET /metrics, and the workers' last hour (GET /v1/workers/:name/metrics, GET /v1/metrics/workers). */
  metrics?: MetricsEndpoint;
  /** Runs a worker's cron trigger now (POST /v1/workers/:name/crons); absent: that endpoint is 404. */
  runCron?: (worker: string, cron: string) => Promise<CronRun>;
}

/** Who is calling: the operator, or one account. `tokenId` is what versions record as `author`. */
export type Caller = { admin: true; tokenId: 'admin' } | { admin: false; tokenId: string; accountId: string };

export interface Call {
  req: IncomingMessage;
  res: ServerResponse;
  caller: Caller;
  /** SHA-256 of the bearer token, to look it up again. */
  tokenHash: Buffer;
  url: URL;
  /** Path segments after /v1/. */
  parts: string[];
}

const MAX_SECRET_BYTES = 64 * 1024;
const MAX_SMALL_BODY = 1024 * 1024;
/** Deployments in one `POST /v1/workers`. */
const MAX_BULK = 1000;

export function createAdminServer(options: AdminApiOptions): Server {
  const api = new AdminApi(options);
  return createServer({ requestTimeout: 120_000 }, (req, res) => void api.handle(req, res));
}

class AdminApi {
  readonly #platform: Platform;
  readonly #bus: LogBus;
  readonly #adminHash: Buffer;
  readonly #rules: DeploymentRules;
  readonly #limits: WorkerLimits;
  readonly #log: ServerLog;
  readonly #tailBufferBytes: number;
  readonly #workerUrl: ((name: string) => string) | undefined;
  readonly #quotas: AccountQuotas;
  readonly #health: () => Record<string, unknown>;
  readonly #kv: KvApi;
  readonly #metrics: MetricsEndpoint | undefined;
  readonly #runCron: AdminApiOptions['runCron'];

  constructor(options: AdminApiOptions) {
    this.#platform = options.platform;
    this.#bus = options.bus;
    this.#adminHash = hashToken(options.adminToken);
    this.#rules = options.rules;
    this.#limits = { ...DEFAULT_LIMITS, ...options.defaultLimits };
    this.#log = options.log;
    this.#tailBufferBytes = options.tailBufferBytes ?? 1024 * 1024;
    this.#workerUrl = options.workerUrl;
    this.#quotas = { ...DEFAULT_QUOTAS, ...options.quotas };
    this.#health = options.health ?? (() => ({ ok: true }));
    this.#runCron = options.runCron;
    this.#kv = new KvApi(options.platform.store, options.log);
    this.#metrics = options.metrics;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    let caller: Caller | undefined;
    res.on('finish', () => {
      this.#log('info', 'admin', 'request', {
        method: req.method,
        path: (req.url ?? '').split('?')[0],
        status: res.statusCode,
        token: caller?.tokenId,
        ms: Math.round((performance.now() - started) * 100) / 100,
      });
    });
    try {
      const url = new URL(req.url ?? '/', 'http://admin');
      if (url.pathname === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) return json(res, 200, this.#health());
      // The dashboard's files hold no data: it signs in with a token and calls /v1 like any client.
      if (isDashboardPath(url.pathname)) return await serveDashboard(req, res, url.pathname);
      if (url.pathname === '/metrics' && this.#metrics !== undefined && (req.method === 'GET' || req.method === 'HEAD')) return await this.#metrics.serve(req, res);
      const authenticated = await this.#authenticate(req);
      caller = authenticated.caller;
      const parts = url.pathname.split('/').slice(1).map(decodeSegment);
      if (parts[0] !== 'v1') throw notFound(url.pathname);
      await this.#dispatch({ req, res, caller, tokenHash: authenticated.hash, url, parts: parts.slice(1) });
    } catch (error) {
      this.#fail(req, res, error);
    }
  }

  async #dispatch(call: Call): Promise<void> {
    const { req, parts } = call;
    const method = req.method ?? 'GET';
    const [collection, id, sub, key, extra] = parts;
    if (collection === 'accounts') {
      if (id === undefined) {
        if (method === 'POST') return this.#createAccount(call);
        if (method === 'GET') return this.#listAccounts(call);
        throw badMethod(method, call.url.pathname);
      }
      if (sub === 'zones' && extra === undefined) {
        if (key === undefined && method === 'POST') return this.#assignZone(call, id);
        if (key === undefined && method === 'GET') return this.#listZones(call, id);
        if (key !== undefined && method === 'DELETE') return this.#removeZone(call, id, key);
        throw badMethod(method, call.url.pathname);
      }
      if (sub === 'quotas' && key === undefined) {
        if (method === 'GET') return this.#getQuotas(call, id);
        if (method === 'PUT') return this.#setQuotas(call, id);
        throw badMethod(method, call.url.pathname);
      }
      if (sub === 'tier' && key === undefined) {
        if (method === 'GET') return this.#getTier(call, id);
        if (method === 'PUT') return this.#setTier(call, id);
        throw badMethod(method, call.url.pathname);
      }
      if (sub === 'tokens' && extra === undefined) {
        if (key === undefined && method === 'POST') return this.#createToken(call, id);
        if (key === undefined && method === 'GET') return this.#listTokens(call, id);
        if (key !== undefined && method === 'DELETE') return this.#deleteToken(call, id, key);
        throw badMethod(method, call.url.pathname);
      }
    } else if (collection === 'assets' && sub === undefined) {
      if (id === 'missing' && method === 'POST') return this.#missingAssets(call);
      if (id === 'upload' && method === 'POST') return this.#uploadAssets(call);
      throw badMethod(method, call.url.pathname);
    } else if (collection === 'kv') {
      if (await this.#kv.handle(call, parts.slice(1))) return;
    } else if (collection === 'workers') {
      if (id === undefined) {
        if (method === 'GET') return this.#listWorkers(call);
        if (method === 'POST') return this.#deployMany(call);
        throw badMethod(method, call.url.pathname);
      }
      if (sub === undefined) {
        if (method === 'PUT') return this.#deploy(call, id);
        if (method === 'GET') return this.#getWorker(call, id);
        if (method === 'DELETE') return this.#deleteWorker(call, id);
        throw badMethod(method, call.url.pathname);
      }
      if (sub === 'versions' && key === undefined) {
        if (method === 'GET') return this.#listVersions(call, id);
        throw badMethod(method, call.url.pathname);
      }
      if (sub === 'crons' && key === undefined) {
        if (method === 'GET') return this.#listCrons(call, id);
        if (method === 'POST') return this.#runCronNow(call, id);
        throw badMethod(method, call.url.pathname);
      }
      if (sub === 'rollback' && key === undefined) {
        if (method === 'POST') return this.#rollback(call, id);
        throw badMethod(method, call.url.pathname);
      }
      if (sub === 'tail' && key === undefined) {
        if (method === 'GET') return this.#tail(call, id);
        throw badMethod(method, call.url.pathname);
      }
      if (sub === 'metrics' && key === undefined) {
        if (method === 'GET') return this.#workerMetrics(call, id);
        throw badMethod(method, call.url.pathname);
      }
      if (sub === 'secrets' && extra === undefined) {
        if (key === undefined && method === 'GET') return this.#listSecrets(call, id);
        if (key !== undefined && method === 'PUT') return this.#putSecret(call, id, key);
        if (key !== undefined && method === 'DELETE') return this.#deleteSecret(call, id, key);
        throw badMethod(method, call.url.pathname);
      }
    } else if (collection === 'metrics' && id === 'workers' && sub === undefined) {
      if (method === 'GET') return this.#allWorkerMetrics(call);
      throw badMethod(method, call.url.pathname);
    }
    throw notFound(call.url.pathname);
  }

  // Accounts and tokens (admin only)

  async #createAccount(call: Call): Promise<void> {
    requireAdmin(call.caller);
    const body = await readJson(call.req, MAX_SMALL_BODY);
    const name = (body as { name?: unknown } | undefined)?.name;
    if (typeof name !== 'string' || !ACCOUNT_NAME.test(name)) {
      throw new ApiError('invalid', "Give the account a `name`: 1-63 lowercase letters, digits, '-' or '_', starting and ending with a letter or digit.");
    }
    const account = await this.#platform.store.createAccount(name);
    this.#log('info', 'admin', 'account created', { account: account.id, name });
    json(call.res, 201, accountJson(account));
  }

  async #listAccounts(call: Call): Promise<void> {
    requireAdmin(call.caller);
    json(call.res, 200, (await this.#platform.store.listAccounts()).map(accountJson));
  }

  async #createToken(call: Call, accountRef: string): Promise<void> {
    requireAdmin(call.caller);
    const account = await this.#account(accountRef);
    const body = (await readJson(call.req, MAX_SMALL_BODY)) ?? {};
    const description = (body as { description?: unknown }).description ?? '';
    if (typeof description !== 'string' || description.length > 200) {
      throw new ApiError('invalid', '`description` must be text of at most 200 characters.');
    }
    const token = newToken();
    const info = await this.#platform.store.createToken(account.id, description, hashToken(token));
    this.#log('info', 'admin', 'token created', { account: account.id, tokenId: info.id });
    json(call.res, 201, { id: info.id, token, description: info.description, createdAt: info.createdAt });
  }

  async #listTokens(call: Call, accountRef: string): Promise<void> {
    requireAdmin(call.caller);
    const account = await this.#account(accountRef);
    const tokens = await this.#platform.store.listTokens(account.id);
    json(call.res, 200, tokens.map((t): TokenSummary => ({ id: t.id, description: t.description, createdAt: t.createdAt })));
  }

  async #deleteToken(call: Call, accountRef: string, tokenId: string): Promise<void> {
    requireAdmin(call.caller);
    const account = await this.#account(accountRef);
    if (!(await this.#platform.store.deleteToken(account.id, tokenId))) {
      throw new ApiError('not_found', `The account '${account.name}' has no token '${tokenId}': list them with GET /v1/accounts/${account.name}/tokens.`);
    }
    // Its tails end with it: a revoked token reads nothing more.
    const tails = this.#bus.endToken(tokenId);
    this.#log('info', 'admin', 'token deleted', { account: account.id, tokenId, tailsEnded: tails });
    noContent(call.res);
  }

  // Zones and quotas (admin only)

  async #assignZone(call: Call, accountRef: string): Promise<void> {
    requireAdmin(call.caller);
    const account = await this.#account(accountRef);
    const body = await readJson(call.req, MAX_SMALL_BODY);
    let zone: string;
    try {
      zone = parseZone((body as { zone?: unknown } | undefined)?.zone);
    } catch (error) {
      throw new ApiError('invalid', `${(error as Error).message} The body is {"zone": "example.com"}.`);
    }
    const assignment = await this.#platform.assignZone(account.id, zone);
    json(call.res, 201, {
      ...zoneJson(assignment.zone),
      removedRoutes: assignment.removedRoutes.map((r) => ({ pattern: r.pattern, worker: r.worker })),
    });
  }

  async #listZones(call: Call, accountRef: string): Promise<void> {
    requireAdmin(call.caller);
    const account = await this.#account(accountRef);
    json(call.res, 200, (await this.#platform.store.listZones(account.id)).map(zoneJson));
  }

  async #removeZone(call: Call, accountRef: string, zoneText: string): Promise<void> {
    requireAdmin(call.caller);
    const account = await this.#account(accountRef);
    const zone = zoneText.toLowerCase();
    if (!(await this.#platform.store.removeZone(account.id, zone))) {
      throw new ApiError('not_found', `The account '${account.name}' has no zone '${zone}': list them with GET /v1/accounts/${account.name}/zones.`);
    }
    this.#log('info', 'admin', 'zone removed', { account: account.id, zone });
    noContent(call.res);
  }

  async #getTier(call: Call, accountRef: string): Promise<void> {
    requireAdmin(call.caller);
    const account = await this.#account(accountRef);
    json(call.res, 200, { account: account.name, tier: await this.#platform.store.getTier(account.id) });
  }

  async #setTier(call: Call, accountRef: string): Promise<void> {
    requireAdmin(call.caller);
    const account = await this.#account(accountRef);
    const body = await readJson(call.req, MAX_SMALL_BODY);
    const tier = (body as { tier?: unknown } | null)?.tier;
    if (!isTier(tier)) {
      throw new ApiError('invalid', `The body is {"tier": T} with T one of ${TIERS.join(', ')}: the processes the account's workers share.`);
    }
    await this.#platform.setTier(account.id, tier, call.caller.tokenId);
    json(call.res, 200, { account: account.name, tier });
  }

  async #getQuotas(call: Call, accountRef: string): Promise<void> {
    requireAdmin(call.caller);
    const account = await this.#account(accountRef);
    const overrides = await this.#platform.store.getQuotas(account.id);
    json(call.res, 200, { account: account.name, quotas: { ...this.#quotas, ...overrides }, overrides, defaults: this.#quotas });
  }

  async #setQuotas(call: Call, accountRef: string): Promise<void> {
    requireAdmin(call.caller);
    const account = await this.#account(accountRef);
    const body = await readJson(call.req, MAX_SMALL_BODY);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new ApiError('invalid', `The body is an object of quotas to set (a number) or reset to the server's default (null): ${QUOTA_NAMES.join(', ')}.`);
    }
    const overrides = await this.#platform.store.getQuotas(account.id);
    for (const [name, value] of Object.entries(body)) {
      if (!(QUOTA_NAMES as readonly string[]).includes(name)) throw new ApiError('invalid', `Unknown quota '${name}': the quotas are ${QUOTA_NAMES.join(', ')}.`);
      const quota = name as keyof AccountQuotas;
      if (value === null) {
        delete overrides[quota];
        continue;
      }
      const ceiling = quota === 'maxWorkers' ? 1_000_000 : this.#rules.limitCaps[quota];
      const least = quota === 'maxWorkers' ? 0 : 1;
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < least || value > ceiling) {
        throw new ApiError(
          'invalid',
          `Invalid quota ${name}: ${JSON.stringify(value)}; it must be a whole number from ${least} to ${ceiling} (the server's ceiling${quota === 'maxWorkers' ? '' : `, set by isolet serve`}), or null for the default.`,
        );
      }
      overrides[quota] = value;
    }
    await this.#platform.store.setQuotas(account.id, overrides);
    this.#log('info', 'admin', 'quotas set', { account: account.id, overrides });
    json(call.res, 200, { account: account.name, quotas: { ...this.#quotas, ...overrides }, overrides, defaults: this.#quotas });
  }

  /** What the account may have and ask for: the server's defaults with the operator's overrides. */
  async #quotasOf(accountId: string): Promise<AccountQuotas> {
    return { ...this.#quotas, ...(await this.#platform.store.getQuotas(accountId)) };
  }

  // Workers

  async #listWorkers(call: Call): Promise<void> {
    const { caller, url } = call;
    let accountId: string | undefined;
    if (!caller.admin) accountId = caller.accountId;
    else if (url.searchParams.has('account')) accountId = (await this.#account(url.searchParams.get('account')!)).id;
    const workers = await this.#platform.store.listWorkers(accountId);
    json(call.res, 200, workers.map(workerJson));
  }

  async #deploy(call: Call, name: string): Promise<void> {
    checkWorkerName(name);
    const { caller, url } = call;
    const existing = await this.#platform.store.getWorker(name);
    let accountId: string;
    if (!caller.admin || url.searchParams.has('account')) accountId = await this.#deployingAccount(call);
    else if (existing !== undefined) accountId = existing.accountId;
    else throw new ApiError('invalid', `The admin token deploys a new worker for an account: add ?account=<account> to the URL.`);
    // A courtesy before reading what may be a large body; the platform decides under the
    // worker's lock, since the name may change hands while the body arrives.
    if (existing !== undefined && existing.accountId !== accountId) throw nameTaken(name);
    const { rules, quotas } = await this.#deployRules(caller, accountId);
    // Held from the first byte of the upload: one account may not hold many bodies open.
    const release = this.#platform.deploySlots.acquireAccount(accountId);
    let version: VersionInfo;
    let deployment: ParsedDeployment;
    try {
      // A deployment's JSON may escape its code (quotes, newlines), so the body may be bigger
      // than the code; the code's own size is checked after parsing.
      const body = await readJson(call.req, this.#rules.maxScriptBytes * 2 + MAX_SMALL_BODY);
      deployment = parseDeployment(body, rules);
      version = await this.#platform.deploy(name, accountId, deployment, caller.tokenId, {
        checkZones: !caller.admin,
        maxWorkers: quotas?.maxWorkers,
      });
    } finally {
      release();
    }
    json(call.res, 201, { version: versionJson(version), urls: this.#urls(name, deployment.routes ?? existing?.routes ?? []) });
  }

  /**
   * `POST /v1/workers`: up to MAX_BULK deployments of one account in one request, each checked,
   * validated and answered on its own as `PUT /v1/workers/:name` would be, and stored in one
   * transaction. The whole request is bounded as one deployment's body is.
   */
  async #deployMany(call: Call): Promise<void> {
    const { caller } = call;
    if (caller.admin && !call.url.searchParams.has('account')) {
      throw new ApiError('invalid', 'The admin token deploys workers for an account: add ?account=<account> to the URL.');
    }
    const accountId = await this.#deployingAccount(call);
    const { rules, quotas } = await this.#deployRules(caller, accountId);
    const release = this.#platform.deploySlots.acquireAccount(accountId);
    try {
      const body = await readJson(call.req, this.#rules.maxScriptBytes * 2 + MAX_SMALL_BODY);
      const entries = (body as { workers?: unknown } | undefined)?.workers;
      if (body === null || typeof body !== 'object' || Array.isArray(body) || Object.keys(body).some((key) => key !== 'workers') ||
        !Array.isArray(entries) || entries.length === 0 || entries.length > MAX_BULK) {
        throw new ApiError('invalid', `The body must be {"workers": [...]}: 1 to ${MAX_BULK} deployments, each {"name": "<worker>", ...the fields of PUT /v1/workers/:name}.`);
      }
      const results: ({ name: string; error: ApiError } | { name: string; existing: WorkerInfo | undefined; deployment: ParsedDeployment })[] = [];
      const seen = new Set<string>();
      for (const [index, entry] of (entries as unknown[]).entries()) {
        const { name, ...fields } = (entry !== null && typeof entry === 'object' && !Array.isArray(entry) ? entry : {}) as Record<string, unknown>;
        const label = typeof name === 'string' ? name : `workers[${index}]`;
        try {
          if (typeof name !== 'string') throw new ApiError('invalid', `workers[${index}] must be an object with "name", the worker's name, and the fields of a deployment.`);
          checkWorkerName(name);
          if (seen.has(name)) throw new ApiError('invalid', `The worker '${name}' appears more than once in this request: deploy it once.`);
          seen.add(name);
          const existing = await this.#platform.store.getWorker(name);
          if (existing !== undefined && existing.accountId !== accountId) throw nameTaken(name);
          results.push({ name, existing, deployment: parseDeployment(fields, rules) });
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          results.push({ name: label, error });
        }
      }
      const accepted = results.filter((r) => 'deployment' in r);
      const deployed = await this.#platform.deployMany(accountId, accepted, caller.tokenId, { checkZones: !caller.admin, maxWorkers: quotas?.maxWorkers });
      const answers = new Map(accepted.map((r, i) => [r, deployed[i]!]));
      json(call.res, 200, {
        results: results.map((r) => {
          const answer = 'error' in r ? r.error : answers.get(r)!;
          if (answer instanceof ApiError) return { name: r.name, status: answer.status, ...answer.toJSON() };
          const routes = 'deployment' in r ? (r.deployment.routes ?? r.existing?.routes ?? []) : [];
          return { name: r.name, status: 201, version: versionJson(answer), urls: this.#urls(r.name, routes) };
        }),
      });
    } finally {
      release();
    }
  }

  /** The account a deployment is for: an account token's own (`?account=` may only name it), or the operator's `?account=`. */
  async #deployingAccount(call: Call): Promise<string> {
    const { caller, url } = call;
    if (caller.admin) return (await this.#account(url.searchParams.get('account')!)).id;
    if (url.searchParams.has('account')) {
      const named = await this.#platform.store.findAccount(url.searchParams.get('account')!);
      if (named?.id !== caller.accountId) throw new ApiError('forbidden', 'An account token deploys only to its own account: drop ?account=.');
    }
    return caller.accountId;
  }

  /** What an account's deployment is checked against: its quotas; the operator only the server's ceilings. */
  async #deployRules(caller: Caller, accountId: string): Promise<{ rules: DeploymentRules; quotas: AccountQuotas | undefined }> {
    const quotas = caller.admin ? undefined : await this.#quotasOf(accountId);
    if (quotas === undefined) return { rules: this.#rules, quotas };
    return {
      quotas,
      rules: {
        ...this.#rules,
        limitCaps: {
          ...this.#rules.limitCaps,
          cpuMs: Math.min(this.#rules.limitCaps.cpuMs, quotas.cpuMs),
          startupCpuMs: Math.min(this.#rules.limitCaps.startupCpuMs, quotas.startupCpuMs),
          memoryMb: Math.min(this.#rules.limitCaps.memoryMb, quotas.memoryMb),
        },
        capHint: "ask the operator to raise the account's quota (PUT /v1/accounts/:account/quotas)",
      },
    };
  }

  /** Where a worker answers: its own host, then its routes (as patterns). */
  #urls(name: string, routes: string[]): string[] {
    return [...(this.#workerUrl ? [this.#workerUrl(name)] : []), ...routes];
  }

  async #getWorker(call: Call, name: string): Promise<void> {
    const worker = await this.#owned(call.caller, name);
    const store = this.#platform.store;
    const active = await store.activeVersion(name);
    const secrets = await store.listSecrets(name);
    const content = active?.content ?? {};
    const details: WorkerDetails = {
      ...workerJson(worker),
      vars: content.vars ?? {},
      limits: { ...this.#limits, ...content.limits },
      compatibilityDate: content.compatibilityDate ?? null,
      crons: content.crons ?? [],
      compatibilityFlags: content.compatibilityFlags ?? [],
      bindings: content.bindings ?? {},
      secrets: secrets.map((s) => s.name),
    };
    json(call.res, 200, details);
  }

  /** The active version's cron triggers and the worker's most recent runs, newest first. */
  async #listCrons(call: Call, name: string): Promise<void> {
    await this.#owned(call.caller, name);
    const store = this.#platform.store;
    const active = await store.activeVersion(name);
    const runs = await store.listCronRuns(name);
    json(call.res, 200, {
      crons: active?.content.crons ?? [],
      runs: runs.map(({ worker: _worker, ...run }) => ({ ...run, scheduledTime: new Date(run.scheduledTime).toISOString() })),
    });
  }

  /** Runs one of the active version's cron triggers now, on this node, and answers with the run. */
  async #runCronNow(call: Call, name: string): Promise<void> {
    await this.#owned(call.caller, name);
    const runCron = this.#runCron;
    if (runCron === undefined) throw notFound(call.url.pathname);
    const body = await readJson(call.req, 4096);
    const cron = (body as { cron?: unknown } | undefined)?.cron;
    const crons = (await this.#platform.store.activeVersion(name))?.content.crons ?? [];
    if (typeof cron !== 'string' || !crons.includes(cron)) {
      throw new ApiError(
        'invalid',
        crons.length === 0
          ? `The worker '${name}' has no cron triggers: deploy it with [triggers] crons = [...] first.`
          : `The body is {"cron": "<one of the worker's triggers>"}: ${crons.map((c) => JSON.stringify(c)).join(', ')}.`,
      );
    }
    const run = await runCron(name, cron);
    json(call.res, 200, { ...run, scheduledTime: new Date(run.scheduledTime).toISOString() });
  }

  async #deleteWorker(call: Call, name: string): Promise<void> {
    const worker = await this.#owned(call.caller, name);
    await this.#platform.deleteWorker(name, call.caller.tokenId, worker.accountId);
    noContent(call.res);
  }

  async #listVersions(call: Call, name: string): Promise<void> {
    await this.#owned(call.caller, name);
    json(call.res, 200, (await this.#platform.store.listVersions(name)).map(versionJson));
  }

  async #rollback(call: Call, name: string): Promise<void> {
    const worker = await this.#owned(call.caller, name);
    const body = (await readJson(call.req, MAX_SMALL_BODY)) ?? {};
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new ApiError('invalid', 'The body is {"version": <id or number>}, or empty for the version before the active one.');
    }
    let ref = (body as { version?: unknown }).version;
    if (typeof ref === 'string' && /^\d+$/.test(ref)) ref = Number(ref);
    if (ref !== undefined && !(typeof ref === 'string' && ref !== '') && !(typeof ref === 'number' && Number.isSafeInteger(ref) && ref > 0)) {
      throw new ApiError('invalid', '`version` must be a version id or a version number (1, 2, ...).');
    }
    // Bound to the owner seen before the body: if the name changed hands meanwhile, it is a 404.
    const version = await this.#platform.rollback(name, ref as string | number | undefined, call.caller.tokenId, worker.accountId);
    json(call.res, 200, { activeVersion: versionJson(version) });
  }

  // Secrets

  async #listSecrets(call: Call, name: string): Promise<void> {
    await this.#owned(call.caller, name);
    json(call.res, 200, await this.#platform.store.listSecrets(name));
  }

  async #putSecret(call: Call, name: string, key: string): Promise<void> {
    const worker = await this.#owned(call.caller, name);
    checkSecretName(key);
    const body = await readJson(call.req, MAX_SECRET_BYTES * 8);
    const value = (body as { value?: unknown } | undefined)?.value;
    if (typeof value !== 'string') throw new ApiError('invalid', 'The body is {"value": "<the secret, as text>"}.');
    if (Buffer.byteLength(value) > MAX_SECRET_BYTES) throw new ApiError('too_large', `A secret is at most ${MAX_SECRET_BYTES} bytes.`);
    // Bound to the owner seen before the body: if the name changed hands meanwhile, it is a 404.
    await this.#platform.putSecret(name, key, value, call.caller.tokenId, worker.accountId);
    noContent(call.res);
  }

  async #deleteSecret(call: Call, name: string, key: string): Promise<void> {
    const worker = await this.#owned(call.caller, name);
    checkSecretName(key);
    if (!(await this.#platform.deleteSecret(name, key, call.caller.tokenId, worker.accountId))) {
      throw new ApiError('not_found', `The worker '${name}' has no secret '${key}'.`);
    }
    noContent(call.res);
  }

  // Static assets' blobs (src/server/assets/asset-uploads.ts), for the deploying account

  async #missingAssets(call: Call): Promise<void> {
    const accountId = await this.#assetsAccount(call);
    json(call.res, 200, await missingAssets(this.#platform.store, accountId, await readJson(call.req, MAX_MISSING_BODY)));
  }

  async #uploadAssets(call: Call): Promise<void> {
    const accountId = await this.#assetsAccount(call);
    // Held from the first byte, as a deployment's: one account may not hold many large bodies open.
    const release = this.#platform.deploySlots.acquireAccount(accountId);
    try {
      json(call.res, 200, await uploadAssets(this.#platform.store, accountId, await readJson(call.req, MAX_UPLOAD_BODY)));
    } finally {
      release();
    }
  }

  async #assetsAccount(call: Call): Promise<string> {
    if (call.caller.admin && !call.url.searchParams.has('account')) {
      throw new ApiError('invalid', "The admin token uploads assets for an account: add ?account=<account> to the URL.");
    }
    return this.#deployingAccount(call);
  }

  // Metrics: each worker's last hour, every node's

  async #workerMetrics(call: Call, name: string): Promise<void> {
    await this.#owned(call.caller, name);
    const metrics = this.#metricsOf(call);
    const others = (await this.#metrics?.sync?.others(name)) ?? [];
    metrics.fold();
    json(call.res, 200, { worker: name, intervalSeconds: 60, points: metrics.series.read(name, others) });
  }

  /** Every worker's last-hour totals: an account's own, or for the operator all (or `?account=`'s). */
  async #allWorkerMetrics(call: Call): Promise<void> {
    const metrics = this.#metricsOf(call);
    const { caller, url } = call;
    const account = caller.admin ? (url.searchParams.has('account') ? (await this.#account(url.searchParams.get('account')!)).id : undefined) : caller.accountId;
    const own = account === undefined ? undefined : new Set((await this.#platform.store.listWorkers(account)).map((worker) => worker.name));
    const others = (await this.#metrics?.sync?.others()) ?? [];
    metrics.fold();
    const workers = metrics.series.totals(others).filter((row) => own === undefined || own.has(row.worker));
    json(call.res, 200, { minutes: SERIES_MINUTES, workers });
  }

  #metricsOf(call: Call): MetricsEndpoint['metrics'] {
    if (this.#metrics === undefined) throw notFound(call.url.pathname);
    return this.#metrics.metrics;
  }

  // Live logs

  async #tail(call: Call, name: string): Promise<void> {
    const { req, res, caller } = call;
    const worker = await this.#owned(caller, name);
    let filter;
    try {
      filter = parseTailFilter(call.url.searchParams);
    } catch (error) {
      throw new ApiError('invalid', (error as Error).message);
    }
    const limit = this.#tailBufferBytes;
    const log = this.#log;
    // Bound to this worker (not the name: a later worker of that name may be another
    // account's) and to this token: deleting the one or revoking the other ends the stream.
    const binding = { workerId: worker.id, tokenId: caller.tokenId };
    let ended = false;
    const subscriber = {
      accepts: filter,
      write(line: string): boolean {
        if (res.destroyed) return false;
        res.write(line);
        return res.writableLength <= limit;
      },
      drop(reason: DropReason): void {
        if (ended) return;
        ended = true;
        if (reason === 'slow') {
          log('info', 'admin', 'tail client dropped: it read slower than the worker logged', { worker: name });
          res.destroy();
          return;
        }
        log('info', 'admin', 'tail closed', { worker: name, reason });
        if (reason !== 'closing' && !res.destroyed) res.write(JSON.stringify(tailEnd(name, reason)) + '\n');
        res.end();
      },
    };
    const unsubscribe = this.#bus.subscribe(name, subscriber, binding);
    res.on('close', unsubscribe);
    req.on('close', () => {
      if (!res.writableEnded) res.end();
    });
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.flushHeaders();
    // The checks above ran before the subscription existed: a deletion or a revocation in
    // between ended no stream, so look again now that one would.
    const store = this.#platform.store;
    const current = await store.getWorker(name);
    if (current?.id !== worker.id) return endTail(this.#bus, name, subscriber, 'worker-deleted');
    if (!caller.admin && (await store.findToken(call.tokenHash)) === undefined) return endTail(this.#bus, name, subscriber, 'token-revoked');
  }

  // Helpers

  async #authenticate(req: IncomingMessage): Promise<{ caller: Caller; hash: Buffer }> {
    const hash = bearerHash(req.headers.authorization);
    if (hash === undefined) {
      throw new ApiError('unauthorized', 'Send a token as `Authorization: Bearer <token>` (the admin token, or an account token from POST /v1/accounts/:account/tokens).');
    }
    if (sameToken(hash, this.#adminHash)) return { caller: { admin: true, tokenId: 'admin' }, hash };
    const token = await this.#platform.store.findToken(hash);
    if (token === undefined) throw new ApiError('unauthorized', 'This token is unknown or was revoked: ask the operator for a new one.');
    return { caller: { admin: false, tokenId: token.id, accountId: token.accountId }, hash };
  }

  async #account(ref: string): Promise<Account> {
    const account = await this.#platform.store.findAccount(ref);
    if (account === undefined) throw new ApiError('not_found', `No account '${ref}': list them with GET /v1/accounts.`);
    return account;
  }

  /** The worker, if it exists and the caller may act on it; another account's is a 404 like none at all. */
  async #owned(caller: Caller, name: string): Promise<WorkerInfo> {
    checkWorkerName(name);
    const worker = await this.#platform.store.getWorker(name);
    if (worker === undefined || (!caller.admin && worker.accountId !== caller.accountId)) {
      throw new ApiError('not_found', `No worker '${name}': deploy it with PUT /v1/workers/${name}.`);
    }
    return worker;
  }

  #fail(req: IncomingMessage, res: ServerResponse, error: unknown): void {
    let apiError: ApiError;
    if (error instanceof ApiError) apiError = error;
    else if (error instanceof StoreError) apiError = new ApiError(error.code, error.message);
    else if (error instanceof StoreUnavailableError) {
      apiError = new ApiError('unavailable', `${error.message} Nothing was changed; this node keeps serving the last state it applied. Try again once the database is back (GET /healthz says when).`, undefined, 1);
    }
    else {
      this.#log('error', 'admin', 'request failed', {
        method: req.method,
        path: (req.url ?? '').split('?')[0],
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      });
      apiError = new ApiError('internal', 'The server failed to handle this request; its log says why.');
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (apiError.code === 'unauthorized') res.setHeader('www-authenticate', 'Bearer');
    if (apiError.retryAfter !== undefined) res.setHeader('retry-after', String(apiError.retryAfter));
    // A request whose body was not read (refused before reading, or too large) must not leave
    // its unread bytes on a connection that would carry the next request.
    if (!req.complete) res.setHeader('connection', 'close');
    json(res, apiError.status, apiError.toJSON());
  }
}

function requireAdmin(caller: Caller): void {
  if (!caller.admin) throw new ApiError('forbidden', 'Only the admin token may manage accounts and tokens.');
}

function nameTaken(name: string): ApiError {
  return new ApiError('forbidden', `The worker name '${name}' is taken: pick another name.`);
}

/** The last line of a tail the server ends, shaped like a log entry so clients show it. */
function tailEnd(worker: string, reason: DropReason): Record<string, unknown> {
  const message =
    reason === 'worker-deleted'
      ? `The worker '${worker}' was deleted: this tail has ended.`
      : 'The token that opened this tail was revoked: this tail has ended.';
  return { time: new Date().toISOString(), level: 'warn', type: 'tail', worker, reason, message };
}

function endTail(bus: LogBus, worker: string, subscriber: LogSubscriber, reason: DropReason): void {
  bus.unsubscribe(worker, subscriber);
  subscriber.drop(reason);
}

function zoneJson(zone: ZoneInfo): Record<string, unknown> {
  return { zone: zone.zone, account: zone.accountName, createdAt: zone.createdAt };
}

function notFound(path: string): ApiError {
  return new ApiError('not_found', `No endpoint ${path}: see docs/ADMIN_API.md for the endpoints.`);
}

function badMethod(method: string, path: string): ApiError {
  return new ApiError('not_found', `No endpoint ${method} ${path}: see docs/ADMIN_API.md for the methods it takes.`);
}

function checkSecretName(name: string): void {
  if (!SECRET_NAME.test(name)) {
    throw new ApiError('invalid', `Invalid secret name '${name}': use letters, digits and '_', not starting with a digit (the worker reads it as env.${name}).`);
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ApiError('invalid', `Malformed percent-encoding in the path: '${segment}'.`);
  }
}

/** Reads and parses a JSON body; undefined when there is none. Over `limit` bytes is a 413. */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const body = await readBody(req, limit);
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new ApiError('invalid', `The body is not valid JSON: ${(error as Error).message}`);
  }
}

/** Reads the whole body; over `limit` bytes is a 413. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    throw new ApiError('too_large', `The request body is ${declared} bytes, over the limit of ${limit} for this endpoint.`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new ApiError('too_large', `The request body is over the limit of ${limit} bytes for this endpoint.`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

export function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

export function noContent(res: ServerResponse): void {
  res.writeHead(204);
  res.end();
}

function accountJson(account: Account): AccountSummary {
  return { id: account.id, name: account.name, createdAt: account.createdAt };
}

function versionJson(version: VersionInfo): Version {
  return {
    id: version.id,
    number: version.number,
    hash: version.hash,
    createdAt: version.createdAt,
    author: version.author,
    message: version.message,
    active: version.active,
  };
}

function workerJson(worker: WorkerInfo): WorkerSummary {
  return {
    name: worker.name,
    account: worker.accountName,
    activeVersion: worker.activeVersion === undefined ? null : versionJson(worker.activeVersion),
    routes: worker.routes,
    updatedAt: worker.updatedAt,
  };
}
