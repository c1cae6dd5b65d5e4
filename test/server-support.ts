// Test support for the server tests: `isolet serve` in process (startServer on 127.0.0.1,
// ports 0, a temporary data dir), or as a child process, with a small admin API client.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { startServer, type RunningServer, type ServerOptions } from '../src/server/server.ts';
import { hostFetch } from './support/serve.ts';
import { CliProcess } from './support/cli-process.ts';

export const ADMIN_TOKEN = 'isl_test-admin-token-0123456789abcdef';

export interface ApiAnswer {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

/** Calls the admin API at `base` (http://127.0.0.1:port). `token: null` sends none. */
export async function callApi(
  base: string,
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown; rawBody?: string } = {},
): Promise<ApiAnswer> {
  const headers: Record<string, string> = {};
  const token = options.token === undefined ? ADMIN_TOKEN : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | undefined = options.rawBody;
  if (options.body !== undefined && method !== 'GET' && method !== 'HEAD') {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  // A bounded wait, so that a server that never answers fails the test instead of hanging it.
  const response = await fetch(base + path, { method, headers, body, signal: AbortSignal.timeout(90_000) });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: response.status, headers: response.headers, body: parsed, text };
}

/** An account made by TestServer.account, with a token of its own. */
export interface TestAccount {
  id: string;
  name: string;
  token: string;
}

export interface TestServer {
  server: RunningServer;
  dataDir: string;
  /** Every log line the server wrote (its own and the workers'). */
  logs: Record<string, unknown>[];
  api(method: string, path: string, options?: { token?: string | null; body?: unknown; rawBody?: string }): Promise<ApiAnswer>;
  /** A data-plane request with the given Host header. */
  request(host: string, path: string, init?: RequestInit): Promise<Response>;
  /** Creates an account and a token for it. */
  account(name: string): Promise<TestAccount>;
  close(): Promise<void>;
}

export async function startTestServer(options: Partial<ServerOptions> = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'isolet-server-')));
  const logs: Record<string, unknown>[] = [];
  const server = await startServer({
    dataDir,
    port: 0,
    ip: '127.0.0.1',
    adminPort: 0,
    adminIp: '127.0.0.1',
    env: { ISOLET_ADMIN_TOKEN: ADMIN_TOKEN },
    logSink: (entry) => logs.push(entry as unknown as Record<string, unknown>),
    // CPU accounting on a loaded test machine counts time the isolate's thread waited for a
    // core; these tests are not about CPU limits, so a request gets room.
    limits: { cpuMs: 2000 },
    // and tests may ask for more than a shared host's default quota (tests of quotas set their own).
    quotas: { cpuMs: 30_000 },
    // Workers run in the test's own process unless a test asks for runtime processes: the
    // supervisor's tests (test/supervisor*.test.ts) run the real multi-process setup.
    processes: 0,
    ...options,
  });
  const api: TestServer['api'] = (method, path, opts) => callApi(server.adminUrl, method, path, opts);
  return {
    server,
    dataDir,
    logs,
    api,
    request: (host, path, init) => hostFetch(server.port, host, path, init),
    async account(name) {
      const created = await api('POST', '/v1/accounts', { body: { name } });
      if (created.status !== 201) throw new Error(`account: ${created.status} ${created.text}`);
      const token = await api('POST', `/v1/accounts/${name}/tokens`, { body: { description: 'test' } });
      if (token.status !== 201) throw new Error(`token: ${token.status} ${token.text}`);
      return { id: created.body.id, name, token: token.body.token };
    },
    async close() {
      await server.close();
      if (options.dataDir === undefined) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Records the name of every worker the server's host is asked to validate, in order. */
export function recordValidations(t: TestServer): string[] {
  const validated: string[] = [];
  const host = t.server.platform.host;
  const validate = host.validate.bind(host);
  host.validate = (name, definition, placement) => {
    validated.push(name);
    return validate(name, definition, placement);
  };
  return validated;
}

/** A module worker deployment from one source text. */
export function moduleDeployment(source: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { modules: [{ name: 'worker.js', source }], ...extra };
}

/** A worker that answers with `text`. */
export function textWorker(text: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return moduleDeployment(`export default { fetch() { return new Response(${JSON.stringify(text)}); } };`, extra);
}

/** `isolet serve` as a child process, its output collected; waits are for output, never for time. */
export class ServeProcess extends CliProcess {
  constructor(dataDir: string, extraEnv: Record<string, string> = {}, extraArgs: string[] = []) {
    super(
      ['serve', ...extraArgs, '--data', dataDir, '--port', '0', '--admin-port', '0', '--ip', '127.0.0.1', '--admin-ip', '127.0.0.1'],
      { env: { ISOLET_ADMIN_TOKEN: ADMIN_TOKEN, ...extraEnv } },
    );
  }

  /** Waits for both listening lines; returns the data-plane port and the admin API base URL. */
  async ready(): Promise<{ port: number; admin: string }> {
    const data = await this.waitFor('stdout', /"message":"listening on http:\/\/127\.0\.0\.1:(\d+)"/);
    const admin = await this.waitFor('stdout', /"message":"admin API on (http:\/\/127\.0\.0\.1:\d+)"/);
    return { port: Number(data[1]), admin: admin[1]! };
  }
}

/** Sends a request and resolves once the response head has arrived, with a way to read the rest. */
export function startRequest(
  port: number,
  host: string,
  path: string,
  method = 'POST',
): Promise<{ status: number; write(chunk: string): void; end(): void; body: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, headers: { host, 'transfer-encoding': 'chunked' }, agent: false });
    req.on('error', reject);
    req.on('response', (res) => {
      res.setEncoding('utf8');
      let text = '';
      const body = new Promise<string>((done, fail) => {
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => done(text));
        res.on('error', fail);
        res.on('aborted', () => fail(new Error('response aborted')));
      });
      body.catch(() => {}); // a test that fails before awaiting it must not also leave an unhandled rejection
      resolve({ status: res.statusCode ?? 0, write: (chunk) => req.write(chunk), end: () => req.end(), body });
    });
    req.flushHeaders();
    req.write('first;');
  });
}
