// Shared pieces of the benchmarks: statistics, the machine description, markdown output, and
// the plumbing that lets each benchmark run alone (`node --no-node-snapshot bench/x.ts`) or
// under bench/run.ts, which collects every benchmark's result into docs/BENCHMARKS.md.
//
// Benchmarks are not tests: nothing here fails on a missed target, it only reports it. The
// machines they run on are shared and noisy, so every comparison is made side by side in the
// same run, and what gets quoted is medians, percentiles and ratios.

import { spawn, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { RuntimeResponse } from '../src/runtime/types.ts';
import { RUNTIME_HOST_FLAGS } from '../src/runtime/engine-flags.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const DOC = fileURLToPath(new URL('../docs/BENCHMARKS.md', import.meta.url));
/** Node 24 (the pinned `node` package), whatever `node` is on PATH. */
export const NODE = process.execPath;

/** How a benchmark starts a Node process that hosts a Runtime: as runtime processes start. */
export const RUNTIME_HOST_NODE_ARGS: readonly string[] = ['--no-node-snapshot', ...RUNTIME_HOST_FLAGS];

// ---------------------------------------------------------------------------------------------
// Arguments

/** The number after `name` in `args`, or `fallback` without one. */
export function numberArg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

/** The number after `name` in `args` when it is one above 0; `fallback` otherwise. */
export function positiveArg(args: string[], name: string, fallback: number): number {
  const value = numberArg(args, name, NaN);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

// ---------------------------------------------------------------------------------------------
// Statistics

export interface Summary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** Reads a Runtime response's body to its end (a whole body is already read). */
export async function drainBody(response: RuntimeResponse): Promise<void> {
  if (response.body !== null && !(response.body instanceof Uint8Array)) for await (const _ of response.body) { /* read to the end */ }
}

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function summarize(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    mean: sorted.length ? sum / sorted.length : NaN,
    min: sorted[0] ?? NaN,
    max: sorted[sorted.length - 1] ?? NaN,
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Milliseconds since `start` (a process.hrtime.bigint() reading). */
export function msSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

// ---------------------------------------------------------------------------------------------
// Formatting

export function fmt(value: number, digits = 2): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function fmtInt(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return Math.round(value).toLocaleString('en-US');
}

export function mb(bytes: number, digits = 2): string {
  return fmt(bytes / (1024 * 1024), digits);
}

export function table(head: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------
// The machine

export interface Machine {
  date: string;
  nproc: number;
  cpu: string;
  node: string;
  v8: string;
  loadavg: string;
}

export function machine(): Machine {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (match) cpu = match[1]!.trim();
  } catch {}
  let nproc = cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || nproc;
  } catch {}
  let loadavg = '';
  try {
    loadavg = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {}
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    nproc,
    cpu,
    node: process.version,
    v8: process.versions.v8,
    loadavg,
  };
}

export function machineLine(m: Machine, command: string): string {
  return (
    `Run ${m.date} on ${m.nproc} CPUs (${m.cpu}), Node ${m.node}, V8 ${m.v8}` +
    (m.loadavg ? `, load average ${m.loadavg} at start` : '') +
    `; command: \`${command}\``
  );
}

// ---------------------------------------------------------------------------------------------
// Results

export interface Target {
  /** What is promised, e.g. "cold start p50 ≤ 1.5 ms". */
  name: string;
  met: boolean | undefined;
  /** The measured number and, when missed, by how much. */
  detail: string;
}

export interface BenchResult {
  name: string;
  title: string;
  /** Markdown body: tables and notes (no heading). */
  markdown: string;
  targets: Target[];
  /** Raw numbers, for whoever wants to compare runs. */
  data: unknown;
}

export function targetLine(t: Target): string {
  const mark = t.met === undefined ? 'not measured' : t.met ? 'met' : 'NOT met';
  return `- **${t.name}**: ${mark}. ${t.detail}`;
}

export function renderSection(result: BenchResult, m: Machine, command: string): string {
  return [
    `<!-- bench:${result.name} -->`,
    `### ${result.title}`,
    '',
    machineLine(m, command),
    '',
    result.markdown.trim(),
    '',
    ...(result.targets.length ? ['Targets:', '', ...result.targets.map(targetLine), ''] : []),
    `<!-- /bench:${result.name} -->`,
  ].join('\n');
}

/**
 * Replaces the section of one benchmark in docs/BENCHMARKS.md (between its markers), or adds it
 * before the end marker of the results part, so that running one benchmark leaves the others'
 * latest results in place.
 */
export function writeSection(section: string, name: string): void {
  const doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Benchmarks\n\n<!-- results -->\n<!-- /results -->\n';
  const start = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  let next: string;
  if (i >= 0 && j > i) {
    next = doc.slice(0, i) + section + doc.slice(j + end.length);
  } else {
    const anchor = doc.indexOf('<!-- /results -->');
    next = anchor >= 0 ? doc.slice(0, anchor) + section + '\n\n' + doc.slice(anchor) : doc.trimEnd() + '\n\n' + section + '\n';
  }
  writeFileSync(DOC, next);
}

/**
 * The tail of every benchmark file: when the file is run directly, runs it, prints the markdown,
 * and with `--write` puts it into docs/BENCHMARKS.md; with `--json FILE` (how bench/run.ts runs
 * it) writes the result as JSON instead.
 */
export async function runStandalone(name: string, main: (args: string[]) => Promise<BenchResult>): Promise<void> {
  const args = process.argv.slice(2);
  const jsonAt = args.indexOf('--json');
  const jsonFile = jsonAt >= 0 ? args[jsonAt + 1] : undefined;
  const write = args.includes('--write');
  const m = machine();
  let result: BenchResult;
  try {
    result = await main(args);
  } finally {
    cleanupChildren();
  }
  if (jsonFile) {
    writeFileSync(jsonFile, JSON.stringify({ result, machine: m }));
  } else {
    const command = `node --no-node-snapshot bench/${name}.ts ${args.join(' ')}`.trim();
    const section = renderSection(result, m, command);
    process.stdout.write('\n' + section + '\n');
    if (write) {
      writeSection(section, name);
      process.stdout.write(`\nwritten to ${DOC}\n`);
    }
  }
  // isolated-vm's thread pool and open handles must not keep a finished benchmark alive.
  process.exit(0);
}

/** Progress lines go to stderr, so stdout stays the result. */
export function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

// ---------------------------------------------------------------------------------------------
// Processes and ports

const children = new Set<ChildProcess>();

/**
 * Spawns a child in its own process group, remembered so that it (and anything it started) is
 * killed when the benchmark ends, however it ends.
 */
export function spawnTracked(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options, detached: true });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function killTree(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {}
  }
}

/** Ends a child and waits for it (SIGKILL after a grace period). */
export async function stopChild(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  killTree(child, 'SIGTERM');
  const timer = setTimeout(() => killTree(child, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export function cleanupChildren(): void {
  for (const child of children) killTree(child, 'SIGKILL');
  children.clear();
}

process.once('exit', cleanupChildren);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    cleanupChildren();
    process.exit(130);
  });
}

/** A port free on 127.0.0.1 right now (for servers that cannot report the one they got). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves with the first stdout line of a child that matches `pattern`. */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    let stderr = '';
    const timer = setTimeout(() => finish(new Error(`timed out waiting for ${pattern} (stderr: ${stderr.slice(-2000)})`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      const match = pattern.exec(buffered);
      if (match) finish(undefined, match);
    };
    const onErr = (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
    };
    const onExit = (code: number | null) => finish(new Error(`exited (${code}) before ${pattern}; stderr: ${stderr.slice(-2000)}`));
    function finish(error: Error | undefined, match?: RegExpExecArray) {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onErr);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(match!);
    }
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onErr);
    child.once('exit', onExit);
  });
}

/** The environment for child Node processes: NODE_EXTRA_CA_CERTS makes every Node start slower. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.NODE_OPTIONS;
  return env;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The admin token the benchmarks give the `isolet serve` they start. */
export const BENCH_ADMIN_TOKEN = 'isl_bench-admin-token-0123456789abcdef';

/** One call of a started server's admin API with BENCH_ADMIN_TOKEN; the answer's status and body as text. */
export async function adminApi(admin: string, method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> {
  const response = await fetch(admin + path, {
    method,
    headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, text: await response.text() };
}
