// The client side of the admin API (docs/ADMIN_API.md), and what the commands that speak it
// share: where the API is and which token to use, the exit codes scripts rely on, and how a
// failure is told to the user.

import type { CliContext } from './main.ts';
import type { BindingSpec, JsonValue, WorkerLogEntry } from '../runtime/types.ts';
import type { AssetsContent } from '../assets/manifest.ts';
import type { SecretSummary, Version, WorkerDetails, WorkerSummary } from '../server/admin-shapes.ts';
import { tailQuery, type TailFilterOptions } from '../observability/tail-filter.ts';

export const DEFAULT_API = 'http://127.0.0.1:8788';

/** How long a request (other than tail) may take before the API counts as unreachable. */
const REQUEST_TIMEOUT_MS = 120_000;

// ---------------------------------------------------------------------------------------------
// The contract's shapes (the answers' shapes are declared once, in src/server/admin-shapes.ts)

export type { SecretSummary, Version, WorkerDetails, WorkerSummary };

/** `activeVersion` as the server may give it: the Version, its number or id, or none. */
export type ActiveVersion = Version | number | string | null | undefined;

/** The body of `PUT /v1/workers/:name`. */
export interface Deployment {
  modules?: { name: string; source: string; type?: 'wasm' }[];
  main?: string;
  script?: string;
  vars?: Record<string, JsonValue>;
  limits?: { cpuMs?: number; memoryMb?: number; subrequests?: number };
  routes?: string[];
  compatibilityDate?: string;
  crons?: string[];
  compatibilityFlags?: string[];
  message?: string;
  /** Static assets: their manifest (uploaded first: uploadAssets) and how they are served. */
  assets?: AssetsContent;
  /** Platform bindings by env name (KV namespaces, services, assets), e.g. { ASSETS: { type: 'assets' } }. */
  bindings?: Record<string, BindingSpec>;
}

/** The answer to a deployment. `urls` is not in the contract yet; used when a server sends it. */
export interface Deployed {
  version: Version;
  urls?: string[];
}

export interface KvNamespaceSummary {
  id: string;
  title: string;
  account: string;
  createdAt: string;
}

/** One page of `GET /v1/kv/namespaces/:id/keys`, in Cloudflare's shape. */
export interface KvKeyPage {
  keys: { name: string; expiration?: number; metadata?: JsonValue }[];
  list_complete: boolean;
  cursor?: string;
}

/** The server answered with an error (`{"error": {code, message, location?}}`). */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;
  readonly code: string;
  /** `module:line:col` of a rejected upload, when the server knows it. */
  readonly location?: string;
  constructor(status: number, code: string, message: string, location?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.location = location;
  }
}

/** The API could not be reached at all (refused, unresolvable, reset, timed out). */
export class ApiUnreachable extends Error {
  override name = 'ApiUnreachable';
  readonly api: string;
  readonly reason: string;
  constructor(api: string, reason: string) {
    super(`cannot reach the isolet admin API at ${api} (${reason})`);
    this.api = api;
    this.reason = reason;
  }
}

/** A client for one admin API address and token. */
export class AdminClient {
  readonly api: string;
  readonly #token: string;

  constructor(api: string, token: string) {
    this.api = api.replace(/\/+$/, '');
    this.#token = token;
  }

  /** `account`: with the admin token, only that account's workers (default: all). */
  listWorkers(account?: string): Promise<WorkerSummary[]> {
    return this.#json('GET', '/v1/workers' + accountQuery(account));
  }

  getWorker(name: string): Promise<WorkerDetails> {
    return this.#json('GET', `/v1/workers/${enc(name)}`);
  }

  /** `account`: with the admin token, the account a new worker goes to. */
  deploy(name: string, deployment: Deployment, account?: string): Promise<Deployed> {
    return this.#json('PUT', `/v1/workers/${enc(name)}` + accountQuery(account), deployment);
  }

  /** Of these asset hashes, those the account does not hold yet. */
  async missingAssets(hashes: string[], account?: string): Promise<string[]> {
    const answer = await this.#json<{ missing: string[] }>('POST', '/v1/assets/missing' + accountQuery(account), { hashes });
    return answer.missing;
  }

  /** Stores assets' bytes for the account (each under the SHA-256 of its bytes). */
  uploadAssets(files: { hash: string; base64: string }[], account?: string): Promise<{ stored: number }> {
    return this.#json('POST', '/v1/assets/upload' + accountQuery(account), { files });
  }

  deleteWorker(name: string): Promise<void> {
    return this.#json('DELETE', `/v1/workers/${enc(name)}`);
  }

  versions(name: string): Promise<Version[]> {
    return this.#json('GET', `/v1/workers/${enc(name)}/versions`);
  }

  /** `version`: a number or an id; undefined means the one before the active one. */
  rollback(name: string, version?: number | string): Promise<{ activeVersion: Version }> {
    return this.#json('POST', `/v1/workers/${enc(name)}/rollback`, version === undefined ? {} : { version });
  }

  listSecrets(name: string): Promise<SecretSummary[]> {
    return this.#json('GET', `/v1/workers/${enc(name)}/secrets`);
  }

  putSecret(name: string, key: string, value: string): Promise<void> {
    return this.#json('PUT', `/v1/workers/${enc(name)}/secrets/${enc(key)}`, { value });
  }

  deleteSecret(name: string, key: string): Promise<void> {
    return this.#json('DELETE', `/v1/workers/${enc(name)}/secrets/${enc(key)}`);
  }

  /** `account`: with the admin token, the account the namespace is for. */
  createKvNamespace(title: string, account?: string): Promise<KvNamespaceSummary> {
    return this.#json('POST', '/v1/kv/namespaces' + accountQuery(account), { title });
  }

  listKvNamespaces(account?: string): Promise<KvNamespaceSummary[]> {
    return this.#json('GET', '/v1/kv/namespaces' + accountQuery(account));
  }

  deleteKvNamespace(id: string): Promise<void> {
    return this.#json('DELETE', `/v1/kv/namespaces/${enc(id)}`);
  }

  listKvKeys(id: string, options: { prefix?: string; limit?: number; cursor?: string }): Promise<KvKeyPage> {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(options)) if (value !== undefined) query.set(name, String(value));
    const text = query.toString();
    return this.#json('GET', `/v1/kv/namespaces/${enc(id)}/keys${text === '' ? '' : `?${text}`}`);
  }

  /** `metadata`: JSON text. */
  putKvValue(id: string, key: string, value: Uint8Array, options: { expiration?: number; expirationTtl?: number; metadata?: string }): Promise<void> {
    const query = new URLSearchParams();
    if (options.expiration !== undefined) query.set('expiration', String(options.expiration));
    if (options.expirationTtl !== undefined) query.set('expiration_ttl', String(options.expirationTtl));
    if (options.metadata !== undefined) query.set('metadata', options.metadata);
    const text = query.toString();
    return this.#json('PUT', `/v1/kv/namespaces/${enc(id)}/values/${enc(key)}${text === '' ? '' : `?${text}`}`, value);
  }

  async getKvValue(id: string, key: string): Promise<Uint8Array> {
    const response = await this.#send('GET', `/v1/kv/namespaces/${enc(id)}/values/${enc(key)}`, undefined, AbortSignal.timeout(REQUEST_TIMEOUT_MS));
    if (!response.ok) throw await errorFrom(response);
    return new Uint8Array(await response.arrayBuffer());
  }

  getKvMetadata(id: string, key: string): Promise<{ metadata: JsonValue; expiration: number | null }> {
    return this.#json('GET', `/v1/kv/namespaces/${enc(id)}/metadata/${enc(key)}`);
  }

  deleteKvValue(id: string, key: string): Promise<void> {
    return this.#json('DELETE', `/v1/kv/namespaces/${enc(id)}/values/${enc(key)}`);
  }

  /**
   * Opens the worker's live log. Resolves once the server has answered (from then on every
   * entry is delivered) to the entries as they happen, until `signal` aborts or the server ends
   * the stream. `filter`: only the lines the tail's filters let through (tail-filter.ts).
   */
  async openTail(name: string, signal: AbortSignal, filter: TailFilterOptions = {}): Promise<AsyncIterable<WorkerLogEntry>> {
    const response = await this.#send('GET', `/v1/workers/${enc(name)}/tail${tailQuery(filter)}`, undefined, signal);
    if (!response.ok) throw await errorFrom(response);
    return readNdjson(response, signal);
  }

  async #json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.#send(method, path, body, AbortSignal.timeout(REQUEST_TIMEOUT_MS));
    if (!response.ok) throw await errorFrom(response);
    const text = await response.text();
    if (text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(response.status, 'bad_answer', `the admin API answered ${method} ${path} with something that is not JSON: ${clip(text)}`);
    }
  }

  async #send(method: string, path: string, body: unknown, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}`, accept: 'application/json' };
    // Bytes go as they are (a KV value); anything else as JSON.
    const raw = body instanceof Uint8Array;
    if (body !== undefined) headers['content-type'] = raw ? 'application/octet-stream' : 'application/json';
    try {
      return await fetch(this.api + path, {
        method,
        headers,
        body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
        signal,
      });
    } catch (error) {
      if (signal.aborted && (signal.reason as Error | undefined)?.name === 'TimeoutError') {
        throw new ApiUnreachable(this.api, `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`);
      }
      if (signal.aborted) throw error;
      throw new ApiUnreachable(this.api, networkReason(error));
    }
  }
}

function accountQuery(account: string | undefined): string {
  return account === undefined ? '' : `?account=${encodeURIComponent(account)}`;
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

async function* readNdjson(response: Response, signal: AbortSignal): AsyncGenerator<WorkerLogEntry> {
  if (!response.body) return;
  const decoder = new TextDecoder();
  let buffered = '';
  try {
    for await (const chunk of response.body) {
      buffered += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line !== '') yield parseEntry(line);
      }
    }
  } catch (error) {
    if (signal.aborted) return;
    throw error;
  }
  const rest = (buffered + decoder.decode()).trim();
  if (rest !== '') yield parseEntry(rest);
}

function parseEntry(line: string): WorkerLogEntry {
  try {
    return JSON.parse(line) as WorkerLogEntry;
  } catch {
    // A line that is not JSON is still worth showing.
    return { time: new Date().toISOString(), worker: '', level: 'log', type: 'console', message: line };
  }
}

async function errorFrom(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => '');
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; location?: unknown } };
    const error = parsed.error;
    if (error && typeof error.message === 'string') {
      return new ApiError(
        response.status,
        typeof error.code === 'string' ? error.code : `http_${response.status}`,
        error.message,
        typeof error.location === 'string' ? error.location : undefined,
      );
    }
  } catch {
    // not JSON: fall through
  }
  const detail = text.trim() === '' ? response.statusText : clip(text.trim());
  return new ApiError(response.status, `http_${response.status}`, `HTTP ${response.status}: ${detail}`);
}

/** What went wrong with a fetch that never got an answer, e.g. 'connection refused'. */
function networkReason(error: unknown): string {
  const codes: string[] = [];
  const collect = (value: unknown): void => {
    if (typeof value !== 'object' || value === null) return;
    const code = (value as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    const cause = (value as { cause?: unknown }).cause;
    if (cause !== undefined) collect(cause);
    const errors = (value as { errors?: unknown }).errors;
    if (Array.isArray(errors)) for (const item of errors) collect(item);
  };
  collect(error);
  const known: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ENOTFOUND: 'no such host',
    EAI_AGAIN: 'host name lookup failed',
    ECONNRESET: 'connection reset',
    ETIMEDOUT: 'connection timed out',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    UND_ERR_SOCKET: 'connection closed',
  };
  for (const code of codes) if (known[code]) return known[code];
  if (codes[0]) return codes[0];
  const cause = (error as { cause?: { message?: string } }).cause;
  return cause?.message ?? (error as Error).message ?? String(error);
}

function clip(text: string): string {
  return text.length > 200 ? text.slice(0, 197) + '...' : text;
}

// ---------------------------------------------------------------------------------------------
// What the commands share

/** Exit codes, the same for every command that speaks to the API. */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3 } as const;

/** parseArgs options every API command takes. */
export const API_OPTIONS = {
  api: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

/** The help lines for API_OPTIONS. */
export const API_OPTIONS_HELP = `      --api <url>        Admin API address (default: $ISOLET_API, else ${DEFAULT_API})
      --token <token>    API token (default: $ISOLET_API_TOKEN, which is better: a command line
                         is readable by every local user in the process list)
      --json             Print machine-readable JSON on stdout
  -h, --help             Show this help`;

/** The help section on exit codes. */
export const EXIT_CODES_HELP = `Exit codes:
  0  done
  1  the operation failed (the server refused it, or no such worker, version or secret)
  2  usage or configuration error (bad flags, no token, invalid wrangler config)
  3  could not reach the admin API`;

/** A problem with the command's own setup (no token, bad --api): exit 2 without the usage text. */
export class SetupError extends Error {
  override name = 'SetupError';
}

/** The client for --api/--token, falling back to ISOLET_API/ISOLET_API_TOKEN. */
export function clientFrom(values: { api?: string; token?: string }, env: NodeJS.ProcessEnv = process.env): AdminClient {
  const api = values.api ?? (env.ISOLET_API || undefined) ?? DEFAULT_API;
  let url: URL;
  try {
    url = new URL(api);
  } catch {
    throw new SetupError(`'${api}' is not a URL. Fix: give the admin API address as --api http://HOST:PORT (or set ISOLET_API)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new SetupError(`'${api}' is not an http(s) address. Fix: --api http://HOST:PORT (or set ISOLET_API)`);
  }
  const token = values.token ?? (env.ISOLET_API_TOKEN || undefined);
  if (token === undefined || token === '') {
    throw new SetupError(
      'no API token. Fix: pass --token <token> or set ISOLET_API_TOKEN. The operator\'s admin token is ' +
        "ISOLET_ADMIN_TOKEN of 'isolet serve' (or the file <data dir>/admin-token it prints at first start); " +
        'an account token comes from POST /v1/accounts/:account/tokens',
    );
  }
  return new AdminClient(api, token);
}

/**
 * Runs a command's API work and turns what can go wrong into a message on stderr and the
 * documented exit code. `body` returns the exit code when it succeeds.
 */
export async function runApiCommand(cli: CliContext, command: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof SetupError) {
      cli.stderr.write(`isolet ${command}: ${error.message}\n`);
      return EXIT.usage;
    }
    if (error instanceof ApiUnreachable) {
      cli.stderr.write(
        `isolet ${command}: ${error.message}.\n` +
          `Fix: start the server ('isolet serve', admin API on ${DEFAULT_API} by default), ` +
          'or point --api / ISOLET_API at where it listens.\n',
      );
      return EXIT.unreachable;
    }
    if (error instanceof ApiError) {
      cli.stderr.write(`isolet ${command}: ${describeApiError(error)}\n`);
      return EXIT.failed;
    }
    throw error;
  }
}

export function describeApiError(error: ApiError): string {
  let text = error.message;
  if (error.status === 401) text += ' (check --token or ISOLET_API_TOKEN)';
  else if (error.status === 403) text += ' (this token may not act on that worker)';
  return text;
}

/** Rows as aligned columns under a header; the last column is not padded. */
export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => (row[column] ?? '').length)));
  return all
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n') + '\n';
}

/** The number of an activeVersion in whichever form the server gives it, or '-'. */
export function activeNumber(active: ActiveVersion): string {
  if (active === null || active === undefined) return '-';
  if (typeof active === 'object') return String(active.number);
  return String(active);
}

/** A timestamp as `2024-09-01 12:34:56` (UTC), short enough for a table. */
export function shortTime(iso: string | undefined | null): string {
  if (!iso) return '-';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function writeJson(cli: CliContext, value: unknown): void {
  cli.stdout.write(JSON.stringify(value, null, 2) + '\n');
}
