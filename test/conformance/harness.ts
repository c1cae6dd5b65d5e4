// The differential conformance harness: the same workers served by workerd (Cloudflare's
// runtime, the reference) and by isolet (Runtime + HTTP front), the same requests sent to both
// over real HTTP, and the answers compared. One workerd process serves every worker (one
// socket per worker, each on its own 127.0.0.1 port); one isolet Runtime serves them all
// behind one front, routed by the first label of the Host header. Both see the same Host
// header, so `request.url` is the same string in both.
//
// A probe worker answers with JSON: one key per check. Such answers are compared check by
// check, so a diff names the edge case that differs. Other answers (frameworks, raw HTTP
// behaviour) are compared as status, headers and body.

import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { join } from 'node:path';
import { serve, type Served } from '../support/serve.ts';
import { freePort } from '../support/free-port.ts';
import { DEVIATIONS, KNOWN_DIFFERENCES, PENDING_CHECKS, type Deviation } from './deviations.ts';

/** The compatibility date both runtimes get (workerd's `compatibilityDate`, isolet's definition). */
export const COMPATIBILITY_DATE = '2025-09-01';

/** The host suffix every request carries: `<worker>.conformance.test`. */
export const HOST_SUFFIX = 'conformance.test';

export interface ConformanceWorker {
  name: string;
  /** ES modules; the first is the entry. Names are how the modules import each other. */
  modules: { name: string; source: string }[];
}

export interface ProbeRequest {
  method?: string;
  /** Path and query, e.g. "/headers?x=1". */
  path: string;
  /** Header pairs in order; names may repeat. Host is added by the harness. */
  headers?: [string, string][];
  body?: string | Uint8Array;
}

/** What came back over the wire, framing stripped. */
export interface WireResponse {
  status: number;
  statusText: string;
  /** Lower-cased names, in wire order. */
  headers: [string, string][];
  body: Buffer;
}

export interface Case {
  /** Unique id, e.g. "headers/validation"; a check id is `<case id>/<check key>`. */
  id: string;
  /** The API area the pass rate is counted under (see docs/COMPATIBILITY.md). */
  area: string;
  worker: string;
  request: ProbeRequest;
  /** json: the body is a probe's JSON of checks; http: status, headers and body are three checks. */
  kind: 'json' | 'http';
  /** Set while the API is being built: the fast subset skips the case, the full run reports it. */
  pending?: string;
  /** Part of the fast subset `npm test` runs. */
  fast?: boolean;
}

export interface CheckResult {
  id: string;
  area: string;
  /**
   * pass; deviation (differs only as deviations.ts allows); pending (API being built); known (a
   * recorded finding, KNOWN_DIFFERENCES); fail (a difference nobody has recorded).
   */
  outcome: 'pass' | 'fail' | 'deviation' | 'pending' | 'known';
  workerd?: unknown;
  isolet?: unknown;
  /** The deviation or pending reason that applied. */
  note?: string;
}

// ---------------------------------------------------------------------------------------------
// Workers

const WORKERS_DIR = join(import.meta.dirname, 'workers');

/** A probe worker from test/conformance/workers/<name>.js, with the shared probe helpers. */
export function probeWorker(name: string): ConformanceWorker {
  return {
    name,
    modules: [
      { name: 'main.js', source: readFileSync(join(WORKERS_DIR, `${name}.js`), 'utf8') },
      { name: '_probe.js', source: readFileSync(join(WORKERS_DIR, '_probe.js'), 'utf8') },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// The two servers

export interface Target {
  name: 'workerd' | 'isolet';
  send(worker: string, request: ProbeRequest): Promise<WireResponse>;
  close(): Promise<void>;
  /** The end of what the process printed, where there is one (workerd): why it stopped answering, when it did. */
  readonly output?: string;
}

function workerdBinary(): string {
  const require = createRequire(import.meta.url);
  const binary = (require('workerd') as { default?: string }).default;
  if (!binary) throw new Error('workerd is not installed: run npm install');
  return binary;
}

// Every workerd this process started, killed on exit even when a test run fails or is cut short.
const children = new Set<ChildProcess>();
function killChild(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL'); // its process group: workerd and anything it started
  } catch {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
}
process.once('exit', () => {
  for (const child of children) killChild(child);
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of children) killChild(child);
    process.exit(130);
  });
}

function capnpString(value: string): string {
  return JSON.stringify(value);
}

/** Starts one workerd serving every worker, each on its own port. */
/**
 * workerd could not bind one of its ports: another test's server took it between freePort()'s
 * check and workerd's bind. Its socket then answers for workerd (the readiness check passes) until
 * that server goes, and every probe of that worker fails. Start again on other ports.
 */
class PortTaken extends Error {}

export async function startWorkerd(workers: ConformanceWorker[]): Promise<Target> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startWorkerdOnce(workers);
    } catch (error) {
      if (!(error instanceof PortTaken) || attempt === 3) throw error;
    }
  }
}

async function startWorkerdOnce(workers: ConformanceWorker[]): Promise<Target> {
  const binary = workerdBinary();
  const dir = mkdtempSync(join(tmpdir(), 'isolet-conformance-'));
  const ports = new Map<string, number>();
  const services: string[] = [];
  const sockets: string[] = [];
  for (const worker of workers) {
    const port = await freePort();
    ports.set(worker.name, port);
    const modules = worker.modules.map((module, i) => {
      const file = `${worker.name}--${i}.js`;
      writeFileSync(join(dir, file), module.source);
      return `(name = ${capnpString(module.name)}, esModule = embed ${capnpString(file)})`;
    });
    services.push(
      `(name = ${capnpString('w-' + worker.name)}, worker = (modules = [${modules.join(', ')}], ` +
        `compatibilityDate = ${capnpString(COMPATIBILITY_DATE)}, globalOutbound = "internet"))`,
    );
    sockets.push(
      `(name = ${capnpString('s-' + worker.name)}, address = ${capnpString(`127.0.0.1:${port}`)}, http = (), service = ${capnpString('w-' + worker.name)})`,
    );
  }
  // fetch() probes talk to an echo server on loopback, which workerd's default outbound refuses.
  services.push('(name = "internet", network = (allow = ["public", "private", "local"]))');
  writeFileSync(
    join(dir, 'config.capnp'),
    `using Workerd = import "/workerd/workerd.capnp";\n\nconst config :Workerd.Config = (\n  services = [\n    ${services.join(',\n    ')}\n  ],\n  sockets = [\n    ${sockets.join(',\n    ')}\n  ],\n);\n`,
  );
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = spawn(binary, ['serve', join(dir, 'config.capnp'), '--verbose'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env,
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const close = async () => {
    killChild(child);
    if (child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.once('exit', resolve));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // Ready when every socket answers (with anything).
    for (const [name, port] of ports) {
      for (let attempt = 0; ; attempt++) {
        if (child.exitCode !== null) throw new Error(`workerd exited (${child.exitCode}):\n${output}`);
        if (await reachable(port)) break;
        if (attempt > 300) throw new Error(`workerd did not listen for ${name} on ${port}:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    // workerd binds every socket as it starts, so a refused bind is in its output by now.
    if (/Address already in use/.test(output)) throw new PortTaken(`workerd could not bind a port:\n${output}`);
  } catch (error) {
    await close();
    throw error;
  }
  return {
    name: 'workerd',
    send(worker, request) {
      const port = ports.get(worker);
      if (port === undefined) throw new Error(`workerd serves no worker ${worker}`);
      return send(port, worker, request);
    },
    close,
    // For debugging a failing run: what workerd printed.
    get output() {
      return output;
    },
  } as Target;
}

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.connect(port, '127.0.0.1');
  });
}
/** Starts one isolet Runtime behind the HTTP front, serving every worker. */
export async function startIsolet(workers: ConformanceWorker[]): Promise<Target & { served: Served }> {
  const definitions = Object.fromEntries(
    workers.map((worker) => [worker.name, { modules: worker.modules, compatibilityDate: COMPATIBILITY_DATE }]),
  );
  // Generous CPU limits: a probe runs hundreds of checks in one request, on a shared machine.
  const served = await serve(definitions, { limits: { cpuMs: 2000, startupCpuMs: 2000 }, egress: { allow: ['127.0.0.1'] } });
  const port = Number(new URL(served.url).port);
  return {
    name: 'isolet',
    served,
    send: (worker, request) => send(port, worker, request),
    close: () => served.close(),
  };
}

/** Starts both; if either fails to start, the other is closed before the error is thrown. */
export async function startBoth(workers: ConformanceWorker[]): Promise<{ workerd: Target; isolet: Target & { served: Served } }> {
  const [workerd, isolet] = await Promise.allSettled([startWorkerd(workers), startIsolet(workers)]);
  if (workerd.status === 'fulfilled' && isolet.status === 'fulfilled') return { workerd: workerd.value, isolet: isolet.value };
  if (workerd.status === 'fulfilled') await workerd.value.close();
  if (isolet.status === 'fulfilled') await isolet.value.close();
  throw workerd.status === 'rejected' ? workerd.reason : (isolet as PromiseRejectedResult).reason;
}

/** One request over a fresh connection; the body read whole. */
export function send(port: number, worker: string, request: ProbeRequest): Promise<WireResponse> {
  const raw: string[] = ['Host', `${worker}.${HOST_SUFFIX}`];
  for (const [name, value] of request.headers ?? []) raw.push(name, value);
  const body = request.body === undefined ? undefined : Buffer.from(request.body);
  if (body !== undefined && !(request.headers ?? []).some(([name]) => /^content-length$/i.test(name))) {
    raw.push('Content-Length', String(body.byteLength));
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path: request.path, method: request.method ?? 'GET', headers: raw, agent: false, timeout: 15_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const headers: [string, string][] = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2) headers.push([res.rawHeaders[i]!.toLowerCase(), res.rawHeaders[i + 1]!]);
          resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers, body: Buffer.concat(chunks) });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer to ${request.method ?? 'GET'} ${request.path} within 15 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------------
// Comparison

/**
 * Response headers that must differ between two servers, dropped before comparing, each with
 * why. Names are compared lower-cased: HTTP field names are case-insensitive (RFC 9110 §5.1)
 * and both runtimes hand them to workers lower-cased anyway.
 */
export const IGNORED_RESPONSE_HEADERS: Record<string, string> = {
  date: 'the time of the answer; Node adds it, workerd does not',
  server: 'names the server software',
  connection: 'hop-by-hop (RFC 9110 §7.6.1): each server manages its own connections',
  'keep-alive': 'hop-by-hop (RFC 9110 §7.6.1): Node advertises its keep-alive timeout',
  'content-length': 'framing (RFC 9112 §6): a length or chunked is each server\'s choice; the body bytes are compared instead',
  'transfer-encoding': 'framing (RFC 9112 §6), as content-length',
};
/** Header name prefixes dropped, with why. */
export const IGNORED_RESPONSE_HEADER_PREFIXES: Record<string, string> = {
  'cf-': "Cloudflare's edge metadata (cf-ray, cf-cache-status, ...): not the runtime's to produce",
};

export function comparableHeaders(headers: [string, string][]): [string, string][] {
  const kept = headers.filter(
    ([name]) => !(name in IGNORED_RESPONSE_HEADERS) && !Object.keys(IGNORED_RESPONSE_HEADER_PREFIXES).some((p) => name.startsWith(p)),
  );
  // The order of different field names carries no meaning (RFC 9110 §5.3); the order of one
  // name's lines does (set-cookie), so the sort is stable and by name only.
  return kept.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function parseJson(body: Buffer): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(body.toString('utf8')) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function matches(pattern: string | RegExp, id: string): boolean {
  return typeof pattern === 'string' ? pattern === id : pattern.test(id);
}

/** The first deviation that names the check and under which the two answers agree. */
function deviationFor(id: string, workerd: unknown, isolet: unknown): Deviation | undefined {
  return DEVIATIONS.find((d) => matches(d.check, id) && d.same(workerd, isolet));
}

/** The API a check waits for, when deviations.ts lists it as pending. */
export function pendingFor(id: string): string | undefined {
  return PENDING_CHECKS.find((p) => matches(p.check, id))?.api;
}

function judge(c: Case, key: string, workerd: unknown, isolet: unknown): CheckResult {
  const id = `${c.id}/${key}`;
  const base = { id, area: c.area, workerd, isolet };
  if (isDeepStrictEqual(workerd, isolet)) return { ...base, outcome: 'pass' };
  const deviation = deviationFor(id, workerd, isolet);
  if (deviation) return { ...base, outcome: 'deviation', note: deviation.reason };
  const api = pendingFor(id);
  if (api) return { ...base, outcome: 'pending', note: `pending: ${api}` };
  if (c.pending) return { ...base, outcome: 'pending', note: `pending: ${c.pending}` };
  const known = KNOWN_DIFFERENCES.find((k) => k.check.test(id));
  if (known) return { ...base, outcome: 'known', note: `${known.finding} (${known.source})` };
  return { ...base, outcome: 'fail' };
}

/** Compares one case's two answers into check results. */
export function compare(c: Case, workerd: WireResponse, isolet: WireResponse): CheckResult[] {
  const results: CheckResult[] = [];
  results.push(judge(c, 'status', workerd.status, isolet.status));
  if (c.kind === 'json') {
    const a = parseJson(workerd.body);
    const b = parseJson(isolet.body);
    if (a === undefined && b === undefined) {
      results.push(judge(c, 'body', workerd.body.toString('utf8'), isolet.body.toString('utf8')));
      return results;
    }
    if (a === undefined || b === undefined) {
      // One side did not run the probe at all (an exception, a missing API at load): every check
      // the reference made fails, so the pass rate counts what is missing.
      const keys = a ? Object.keys(a) : ['body'];
      for (const key of keys) {
        results.push(judge(c, key, a ? a[key] : workerd.body.toString(), b ? b[key] : `no probe answer: ${isolet.body.toString().slice(0, 300)}`));
      }
      return results;
    }
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      results.push(judge(c, key, a[key], b[key]));
    }
    return results;
  }
  results.push(judge(c, 'statusText', workerd.statusText, isolet.statusText));
  results.push(judge(c, 'headers', comparableHeaders(workerd.headers), comparableHeaders(isolet.headers)));
  results.push(judge(c, 'body', workerd.body.toString('utf8'), isolet.body.toString('utf8')));
  return results;
}

/** Runs cases against both targets (sequentially: the machine is small and shared). */
export async function runCases(cases: Case[], workerd: Target, isolet: Target): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const c of cases) results.push(...(await runCase(c, workerd, isolet)));
  return results;
}

export async function runCase(c: Case, workerd: Target, isolet: Target): Promise<CheckResult[]> {
  const errorResponse = (error: unknown): WireResponse => ({
    status: 0,
    statusText: '',
    headers: [],
    body: Buffer.from(`request failed: ${(error as Error).message}`),
  });
  const [a, b] = await Promise.all([
    workerd.send(c.worker, c.request).catch(errorResponse),
    isolet.send(c.worker, c.request).catch(errorResponse),
  ]);
  return compare(c, a, b);
}

/** A short, readable account of the checks with one of `outcomes` (default: the failing ones). */
export function describeFailures(results: CheckResult[], outcomes: CheckResult['outcome'][] = ['fail']): string {
  return results
    .filter((r) => outcomes.includes(r.outcome))
    .map((r) => `  ${r.id}\n    workerd: ${JSON.stringify(r.workerd)}\n    isolet:  ${JSON.stringify(r.isolet)}`)
    .join('\n');
}
