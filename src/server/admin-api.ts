// The admin API (docs/ADMIN_API.md): JSON over its own HTTP listener, bearer tokens, one
// handler per endpoint. Authentication comes first (401), then the route (404), then whether
// this token may act on that resource (403).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { DEFAULT_LIMITS, type WorkerLimits } from '../runtime/types.ts';
import { StoreError, type Account, type VersionInfo, type WorkerInfo } from '../store/store.ts';
import { ApiError } from './api-error.ts';
import { ACCOUNT_NAME, SECRET_NAME, checkWorkerName, parseDeployment, type DeploymentRules } from './deployment.ts';
import type { LogBus } from './log-bus.ts';
import type { ServerLog } from './logger.ts';
import type { Platform } from './platform.ts';
import { hashToken, newToken, sameToken } from './tokens.ts';

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
}

/** Who is calling: the operator, or one account. `tokenId` is what versions record as `author`. */
type Caller = { admin: true; tokenId: 'admin' } | { admin: false; tokenId: string; accountId: string };

interface Call {
  req: IncomingMessage;
  res: ServerResponse;
  caller: Caller;
  url: URL;
  /** Path segments after /v1/. */
  parts: string[];
}

const MAX_SECRET_BYTES = 64 * 1024;
const MAX_SMALL_BODY = 1024 * 1024;

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

  constructor(options: AdminApiOptions) {
    this.#platform = options.platform;
    this.#bus = options.bus;
    this.#adminHash = hashToken(options.adminToken);
    this.#rules = options.rules;
    this.#limits = { ...DEFAULT_LIMITS, ...options.defaultLimits };
    this.#log = options.log;
    this.#tailBufferBytes = options.tailBufferBytes ?? 1024 * 1024;
    this.#workerUrl = options.workerUrl;
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
      if (url.pathname === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) return json(res, 200, { ok: true });
      caller = await this.#authenticate(req);
      const parts = url.pathname.split('/').slice(1).map(decodeSegment);
      if (parts[0] !== 'v1') throw notFound(url.pathname);
      await this.#dispatch({ req, res, caller, url, parts: parts.slice(1) });
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
      if (sub === 'tokens' && extra === undefined) {
        if (key === undefined && method === 'POST') return this.#createToken(call, id);
        if (key === undefined && method === 'GET') return this.#listTokens(call, id);
        if (key !== undefined && method === 'DELETE') return this.#deleteToken(call, id, key);
        throw badMethod(method, call.url.pathname);
      }
    } else if (collection === 'workers') {
      if (id === undefined) {
        if (method === 'GET') return this.#listWorkers(call);
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
      if (sub === 'rollback' && key === undefined) {
        if (method === 'POST') return this.#rollback(call, id);
        throw badMethod(method, call.url.pathname);
      }
      if (sub === 'tail' && key === undefined) {
        if (method === 'GET') return this.#tail(call, id);
        throw badMethod(method, call.url.pathname);
      }
      if (sub === 'secrets' && extra === undefined) {
        if (key === undefined && method === 'GET') return this.#listSecrets(call, id);
        if (key !== undefined && method === 'PUT') return this.#putSecret(call, id, key);
        if (key !== undefined && method === 'DELETE') return this.#deleteSecret(call, id, key);
        throw badMethod(method, call.url.pathname);
      }
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
    json(call.res, 200, tokens.map((t) => ({ id: t.id, description: t.description, createdAt: t.createdAt })));
  }

  async #deleteToken(call: Call, accountRef: string, tokenId: string): Promise<void> {
    requireAdmin(call.caller);
    const account = await this.#account(accountRef);
    if (!(await this.#platform.store.deleteToken(account.id, tokenId))) {
      throw new ApiError('not_found', `The account '${account.name}' has no token '${tokenId}': list them with GET /v1/accounts/${account.name}/tokens.`);
    }
    this.#log('info', 'admin', 'token deleted', { account: account.id, tokenId });
    noContent(call.res);
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
    if (!caller.admin) {
      if (url.searchParams.has('account')) {
        const named = await this.#platform.store.findAccount(url.searchParams.get('account')!);
        if (named?.id !== caller.accountId) throw new ApiError('forbidden', 'An account token deploys only to its own account: drop ?account=.');
      }
      accountId = caller.accountId;
    } else if (url.searchParams.has('account')) {
      accountId = (await this.#account(url.searchParams.get('account')!)).id;
    } else if (existing !== undefined) {
      accountId = existing.accountId;
    } else {
      throw new ApiError('invalid', `The admin token deploys a new worker for an account: add ?account=<account> to the URL.`);
    }
    if (existing !== undefined && existing.accountId !== accountId) throw forbidden(name);
    // A deployment's JSON may escape its code (quotes, newlines), so the body may be bigger than
    // the code; the code's own size is checked after parsing.
    const body = await readJson(call.req, this.#rules.maxScriptBytes * 2 + MAX_SMALL_BODY);
    const deployment = parseDeployment(body, this.#rules);
    const version = await this.#platform.deploy(name, accountId, deployment, caller.tokenId);
    // Where it now answers: its own host, then its routes (as patterns).
    const routes = deployment.routes ?? existing?.routes ?? [];
    const urls = [...(this.#workerUrl ? [this.#workerUrl(name)] : []), ...routes];
    json(call.res, 201, { version: versionJson(version), urls });
  }

  async #getWorker(call: Call, name: string): Promise<void> {
    const worker = await this.#owned(call.caller, name);
    const store = this.#platform.store;
    const active = await store.activeVersion(name);
    const secrets = await store.listSecrets(name);
    const content = active?.content ?? {};
    json(call.res, 200, {
      ...workerJson(worker),
      vars: content.vars ?? {},
      limits: { ...this.#limits, ...content.limits },
      compatibilityDate: content.compatibilityDate ?? null,
      secrets: secrets.map((s) => s.name),
    });
  }

  async #deleteWorker(call: Call, name: string): Promise<void> {
    await this.#owned(call.caller, name);
    await this.#platform.deleteWorker(name, call.caller.tokenId);
    noContent(call.res);
  }

  async #listVersions(call: Call, name: string): Promise<void> {
    await this.#owned(call.caller, name);
    json(call.res, 200, (await this.#platform.store.listVersions(name)).map(versionJson));
  }

  async #rollback(call: Call, name: string): Promise<void> {
    await this.#owned(call.caller, name);
    const body = (await readJson(call.req, MAX_SMALL_BODY)) ?? {};
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new ApiError('invalid', 'The body is {"version": <id or number>}, or empty for the version before the active one.');
    }
    let ref = (body as { version?: unknown }).version;
    if (typeof ref === 'string' && /^\d+$/.test(ref)) ref = Number(ref);
    if (ref !== undefined && !(typeof ref === 'string' && ref !== '') && !(typeof ref === 'number' && Number.isSafeInteger(ref) && ref > 0)) {
      throw new ApiError('invalid', '`version` must be a version id or a version number (1, 2, ...).');
    }
    const version = await this.#platform.rollback(name, ref as string | number | undefined, call.caller.tokenId);
    json(call.res, 200, { activeVersion: versionJson(version) });
  }

  // Secrets

  async #listSecrets(call: Call, name: string): Promise<void> {
    await this.#owned(call.caller, name);
    json(call.res, 200, await this.#platform.store.listSecrets(name));
  }

  async #putSecret(call: Call, name: string, key: string): Promise<void> {
    await this.#owned(call.caller, name);
    checkSecretName(key);
    const body = await readJson(call.req, MAX_SECRET_BYTES * 8);
    const value = (body as { value?: unknown } | undefined)?.value;
    if (typeof value !== 'string') throw new ApiError('invalid', 'The body is {"value": "<the secret, as text>"}.');
    if (Buffer.byteLength(value) > MAX_SECRET_BYTES) throw new ApiError('too_large', `A secret is at most ${MAX_SECRET_BYTES} bytes.`);
    await this.#platform.putSecret(name, key, value, call.caller.tokenId);
    noContent(call.res);
  }

  async #deleteSecret(call: Call, name: string, key: string): Promise<void> {
    await this.#owned(call.caller, name);
    checkSecretName(key);
    if (!(await this.#platform.deleteSecret(name, key, call.caller.tokenId))) {
      throw new ApiError('not_found', `The worker '${name}' has no secret '${key}'.`);
    }
    noContent(call.res);
  }

  // Live logs

  async #tail(call: Call, name: string): Promise<void> {
    await this.#owned(call.caller, name);
    const { req, res } = call;
    const limit = this.#tailBufferBytes;
    const unsubscribe = this.#bus.subscribe(name, {
      write(line) {
        if (res.destroyed) return false;
        res.write(line);
        return res.writableLength <= limit;
      },
      drop: (reason) => {
        this.#log('info', 'admin', reason === 'slow' ? 'tail client dropped: it read slower than the worker logged' : 'tail closed', { worker: name });
        if (reason === 'slow') res.destroy();
        else res.end();
      },
    });
    res.on('close', unsubscribe);
    req.on('close', () => {
      if (!res.writableEnded) res.end();
    });
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.flushHeaders();
  }

  // Helpers

  async #authenticate(req: IncomingMessage): Promise<Caller> {
    const header = req.headers.authorization;
    const match = header === undefined ? null : /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header);
    if (match === null) {
      throw new ApiError('unauthorized', 'Send a token as `Authorization: Bearer <token>` (the admin token, or an account token from POST /v1/accounts/:account/tokens).');
    }
    const hash = hashToken(match[1]!);
    if (sameToken(hash, this.#adminHash)) return { admin: true, tokenId: 'admin' };
    const token = await this.#platform.store.findToken(hash);
    if (token === undefined) throw new ApiError('unauthorized', 'This token is unknown or was revoked: ask the operator for a new one.');
    return { admin: false, tokenId: token.id, accountId: token.accountId };
  }

  async #account(ref: string): Promise<Account> {
    const account = await this.#platform.store.findAccount(ref);
    if (account === undefined) throw new ApiError('not_found', `No account '${ref}': list them with GET /v1/accounts.`);
    return account;
  }

  /** The worker, if it exists and the caller may act on it. */
  async #owned(caller: Caller, name: string): Promise<WorkerInfo> {
    checkWorkerName(name);
    const worker = await this.#platform.store.getWorker(name);
    if (worker === undefined) throw new ApiError('not_found', `No worker '${name}': deploy it with PUT /v1/workers/${name}.`);
    if (!caller.admin && worker.accountId !== caller.accountId) throw forbidden(name);
    return worker;
  }

  #fail(req: IncomingMessage, res: ServerResponse, error: unknown): void {
    let apiError: ApiError;
    if (error instanceof ApiError) apiError = error;
    else if (error instanceof StoreError) apiError = new ApiError(error.code, error.message);
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
    // A request whose body was not read (refused before reading, or too large) must not leave
    // its unread bytes on a connection that would carry the next request.
    if (!req.complete) res.setHeader('connection', 'close');
    json(res, apiError.status, apiError.toJSON());
  }
}

function requireAdmin(caller: Caller): void {
  if (!caller.admin) throw new ApiError('forbidden', 'Only the admin token may manage accounts and tokens.');
}

function forbidden(name: string): ApiError {
  return new ApiError('forbidden', `The worker '${name}' belongs to another account: use that account's token, or another name.`);
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
async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
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
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new ApiError('invalid', `The body is not valid JSON: ${(error as Error).message}`);
  }
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

function noContent(res: ServerResponse): void {
  res.writeHead(204);
  res.end();
}

function accountJson(account: Account): { id: string; name: string; createdAt: string } {
  return { id: account.id, name: account.name, createdAt: account.createdAt };
}

function versionJson(version: VersionInfo): Record<string, unknown> {
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

function workerJson(worker: WorkerInfo): Record<string, unknown> {
  return {
    name: worker.name,
    account: worker.accountName,
    activeVersion: worker.activeVersion === undefined ? null : versionJson(worker.activeVersion),
    routes: worker.routes,
    updatedAt: worker.updatedAt,
  };
}
