// `isolet dev <entry>`: runs one worker locally, with production limits, and reloads it when
// its sources change. A change that does not build (or does not load) prints where the
// problem is and leaves the last good version serving.

import { watch, statSync, type FSWatcher } from 'node:fs';
import { basename, dirname, extname, resolve, join, sep } from 'node:path';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { CliCommand, CliContext } from '../main.ts';
import { bundleWorker, BundleError, type BundledWorker } from '../../bundle/bundle.ts';
import { createHttpFront, type RuntimeFetcher } from '../../http/front.ts';
import { Runtime } from '../../runtime/runtime.ts';
import { BindingError, WorkerLoadError, type BindingAnswer, type BindingCall, type BindingSpec, type JsonValue, type RuntimeRequest, type RuntimeResponse, type WorkerLimits, type WorkerLogEntry } from '../../runtime/types.ts';
import { ConfigError, loadConfig, readDevVars } from '../config.ts';
import { LocalKv } from '../dev-kv.ts';

const USAGE = `Usage: isolet dev <entry> [--port 8787] [--ip 127.0.0.1] [--var KEY:VALUE]... [--config FILE]

Runs the worker in <entry> (TypeScript or JavaScript; npm imports are bundled) on a local
HTTP server with production limits, and reloads it when its source files change.

Reads wrangler.json, wrangler.jsonc or wrangler.toml from the current directory (or --config)
as 'isolet deploy' does: main (the entry when none is given), name, vars, limits.cpu_ms and
kv_namespaces. .dev.vars (KEY=VALUE lines, next to the config) is merged over vars, and --var
over both. KV namespaces are local, kept in .isolet/kv/isolet.db next to the config (a SQLite
file), so their keys stay across restarts; each namespace is found there by its id.

Options:
  -p, --port <port>      Port to listen on (default 8787; 0 picks a free one)
      --ip <address>     Address to listen on (default 127.0.0.1)
      --var KEY:VALUE    Set env.KEY to VALUE (repeatable; VALUE may contain ':')
  -c, --config <file>    Config file (default: wrangler.json/.jsonc/.toml in this directory)
  -h, --help             Show this help

Exit codes: 0 stopped with Ctrl-C/SIGTERM, 1 cannot start (no entry file, port taken),
2 usage or configuration error.
`;

export const command: CliCommand = {
  usage: USAGE,
  run,
};

/** How long to wait after the last file event before rebuilding (editors write in bursts). */
const DEBOUNCE_MS = 50;

async function run(_argv: string[], cli: CliContext): Promise<number> {
  const { values, positionals } = cli.parseArgs({
    options: {
      port: { type: 'string', short: 'p', default: '8787' },
      ip: { type: 'string', default: '127.0.0.1' },
      var: { type: 'string', multiple: true, default: [] },
      config: { type: 'string', short: 'c' },
    },
    allowPositionals: true,
  });
  if (positionals.length > 1) cli.usageError(`unexpected argument '${positionals[1]}'`);
  const port = parsePort(values.port, cli);
  const flagVars = parseVars(values.var, cli);

  // The config and .dev.vars, as wrangler reads them: vars, then .dev.vars over them, then --var.
  let config;
  let devVars;
  try {
    const loaded = loadConfig({ cwd: process.cwd(), configPath: values.config });
    config = loaded.config;
    for (const note of loaded.notes) cli.stderr.write(note + '\n');
    devVars = readDevVars(config.file === undefined ? process.cwd() : dirname(config.file));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    cli.stderr.write(`isolet dev: ${error.message}\n`);
    return 2;
  }
  if (devVars) cli.stderr.write(`using vars from ${devVars.file}\n`);
  const vars: Record<string, JsonValue> = { ...config.vars, ...devVars?.vars, ...flagVars };
  const limits: Partial<WorkerLimits> = config.limits.cpuMs === undefined ? {} : { cpuMs: config.limits.cpuMs };

  if (positionals.length === 0 && config.main === undefined) {
    cli.usageError(`missing <entry>, the worker file to run (or set main in ${config.file === undefined ? 'wrangler.toml' : basename(config.file)})`);
  }
  const entry = positionals[0] !== undefined ? resolve(positionals[0]) : config.main!;
  if (!isFile(entry)) {
    cli.stderr.write(`isolet dev: no such file: ${positionals[0] ?? `${entry} (main in ${basename(config.file!)})`}\n`);
    return 1;
  }

  const bindings: Record<string, BindingSpec> = {};
  for (const { binding, id } of config.kvNamespaces) bindings[binding] = { type: 'kv', namespaceId: id };
  const projectDir = config.file === undefined ? process.cwd() : dirname(config.file);
  const session = new DevSession(entry, config.name ?? workerName(entry), vars, limits, cli, { bindings, projectDir });
  await session.reload();
  try {
    await session.listen(port, values.ip);
  } catch (error) {
    cli.stderr.write(`isolet dev: cannot listen on ${values.ip}:${port}: ${(error as Error).message}\n`);
    await session.close();
    return 1;
  }
  await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
  await session.close();
  return 0;
}

/** One running `isolet dev`: the runtime, the server, and the watcher that reloads. */
class DevSession implements RuntimeFetcher {
  readonly #entry: string;
  readonly #name: string;
  readonly #vars: Record<string, JsonValue>;
  readonly #limits: Partial<WorkerLimits>;
  readonly #out: NodeJS.WritableStream;
  readonly #err: NodeJS.WritableStream;
  readonly #runtime: Runtime;
  readonly #server: ReturnType<typeof createHttpFront>;
  readonly #bindings: Record<string, BindingSpec>;
  /** Local KV, opened when the worker has a KV binding. */
  readonly #kv: LocalKv | undefined;

  /** Set once a version has loaded; until then requests get #problem as a 503. */
  #loaded = false;
  /** Set after the first build, so later successful ones say they reloaded. */
  #started = false;
  #problem = 'worker is starting';
  /** Source files of the last build (good or not) whose changes trigger a rebuild. */
  #sources = new Set<string>();
  #lastBuildFailed = false;
  readonly #watchers = new Map<string, FSWatcher>();
  #timer: NodeJS.Timeout | undefined;
  #building: Promise<void> | undefined;
  #again = false;
  #closed = false;

  constructor(
    entry: string,
    name: string,
    vars: Record<string, JsonValue>,
    limits: Partial<WorkerLimits>,
    cli: CliContext,
    platform: { bindings: Record<string, BindingSpec>; projectDir: string },
  ) {
    this.#entry = entry;
    this.#bindings = platform.bindings;
    if (Object.values(platform.bindings).some((spec) => spec.type === 'kv')) {
      this.#kv = new LocalKv(platform.projectDir);
      cli.stderr.write(`using local KV in ${this.#kv.path}\n`);
    }
    this.#name = name;
    this.#vars = vars;
    this.#limits = limits;
    this.#out = cli.stdout;
    this.#err = cli.stderr;
    // Local development talks to local backends: loopback and private networks are allowed
    // here, unlike on a server (isolet serve refuses them unless the operator allows them).
    this.#runtime = new Runtime({
      log: (entry) => this.#printLog(entry),
      egress: { allow: ['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7', 'localhost'] },
      bindingHost: { call: (call) => this.#bindingCall(call) },
    });
    this.#server = createHttpFront(this, { worker: () => name });
  }

  /** The worker's platform bindings, answered locally. */
  #bindingCall(call: BindingCall): Promise<BindingAnswer> {
    if (call.binding.type === 'kv' && this.#kv !== undefined) return this.#kv.call(call);
    return Promise.reject(new BindingError('Error', `env.${call.name} is a '${call.binding.type}' binding, which isolet dev does not provide.`));
  }

  /** RuntimeFetcher for the front: the worker, or why there is none yet. */
  async fetch(name: string, request: RuntimeRequest): Promise<RuntimeResponse> {
    if (this.#loaded) {
      const response = await this.#runtime.fetch(name, request);
      const url = new URL(request.url);
      this.#err.write(`[${name}] ${request.method} ${url.pathname}${url.search} ${response.status}\n`);
      return response;
    }
    return {
      status: 503,
      statusText: 'Service Unavailable',
      headers: [['content-type', 'text/plain; charset=utf-8']],
      body: new TextEncoder().encode(this.#problem + '\n'),
    };
  }

  async listen(port: number, ip: string): Promise<void> {
    this.#server.listen(port, ip);
    await Promise.race([
      once(this.#server, 'listening'),
      once(this.#server, 'error').then(([error]) => Promise.reject(error)),
    ]);
    const address = this.#server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.#out.write(`listening on http://${host}:${address.port}\n`);
  }

  /** Bundles and loads the entry; on failure prints the problem and keeps the last good version. */
  async reload(): Promise<void> {
    try {
      await this.#load();
    } finally {
      this.#started = true;
    }
  }

  async #load(): Promise<void> {
    const started = performance.now();
    let worker: BundledWorker;
    try {
      const result = await bundleWorker(this.#entry, { nodeEnv: 'development' });
      worker = result.worker;
      this.#sources = new Set(result.inputs);
      for (const warning of result.warnings) this.#err.write(warning + '\n');
    } catch (error) {
      if (!(error instanceof BundleError)) throw error;
      this.#failed(error.message, 'worker has a syntax error, fix it and save');
      // Watch the broken files' directories too, so that fixing them is noticed.
      for (const problem of error.problems) if (problem.file !== undefined) this.#sources.add(resolve(problem.file));
      this.#syncWatchers();
      return;
    }
    this.#syncWatchers();
    if (this.#closed) return;
    try {
      await this.#runtime.load(this.#name, { ...worker, vars: this.#vars, limits: this.#limits, bindings: this.#bindings });
    } catch (error) {
      if (!(error instanceof WorkerLoadError)) throw error;
      this.#failed(error.message, 'worker failed to load, fix it and save');
      return;
    }
    this.#lastBuildFailed = false;
    if (this.#started) this.#out.write(`reloaded in ${Math.round(performance.now() - started)} ms\n`);
    this.#loaded = true;
  }

  #failed(message: string, summary: string): void {
    this.#lastBuildFailed = true;
    this.#err.write(message + '\n');
    if (!this.#loaded) this.#problem = `${summary}\n\n${message}`;
    else this.#err.write('(still serving the last version that loaded)\n');
  }

  // Watches the directory of every source file outside node_modules (plus the entry's), not
  // each file: editors that save by writing a new file and renaming it replace the file a
  // per-file watch would follow.
  #syncWatchers(): void {
    if (this.#closed) return;
    const dirs = new Set([dirname(this.#entry)]);
    for (const file of this.#sources) if (!file.split(sep).includes('node_modules')) dirs.add(dirname(file));
    for (const [dir, watcher] of this.#watchers) {
      if (!dirs.has(dir)) {
        watcher.close();
        this.#watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (this.#watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, (_event, file) => this.#changed(file === null ? undefined : join(dir, file)));
        watcher.on('error', () => {
          watcher.close();
          this.#watchers.delete(dir);
        });
        this.#watchers.set(dir, watcher);
      } catch {
        // The directory is gone; it is watched again if a later build needs it.
      }
    }
  }

  #changed(file: string | undefined): void {
    // After a failure any change may be the fix (a new file, a renamed import); otherwise only
    // the bundle's own sources matter, not editor swap files or unrelated neighbours.
    if (!this.#lastBuildFailed && file !== undefined && !this.#sources.has(file)) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#rebuild(), DEBOUNCE_MS);
  }

  #rebuild(): void {
    if (this.#closed) return;
    if (this.#building) {
      this.#again = true;
      return;
    }
    this.#building = this.reload()
      .catch((error: unknown) => {
        this.#err.write(`isolet dev: reload failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      })
      .finally(() => {
        this.#building = undefined;
        if (this.#again) {
          this.#again = false;
          this.#rebuild();
        }
      });
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
    this.#server.close();
    this.#server.closeAllConnections();
    await this.#building;
    await this.#runtime.close();
    await this.#kv?.close();
  }

  #printLog(entry: WorkerLogEntry): void {
    let line: string;
    if (entry.type === 'console') {
      line = entry.level === 'log' || entry.level === 'info' ? entry.message : `${entry.level}: ${entry.message}`;
    } else if (entry.type === 'request') {
      return; // fetch() above prints each request with its method and path
    } else {
      line = `${entry.type}: ${entry.message}`;
    }
    this.#err.write(`[${entry.worker}] ${line}\n`);
  }
}

function parsePort(text: string, cli: CliContext): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) cli.usageError(`--port must be a number from 0 to 65535, not '${text}'`);
  return port;
}

function parseVars(pairs: string[], cli: CliContext): Record<string, JsonValue> {
  const vars: Record<string, JsonValue> = {};
  for (const pair of pairs) {
    const colon = pair.indexOf(':');
    if (colon <= 0) cli.usageError(`--var takes KEY:VALUE, not '${pair}'`);
    vars[pair.slice(0, colon)] = pair.slice(colon + 1);
  }
  return vars;
}

/** The entry's file name without extension, made into a valid worker name ('worker' if nothing is left). */
function workerName(entry: string): string {
  const name = basename(entry, extname(entry))
    .replace(/[^A-Za-z0-9_-]+/g, '-')
    .replace(/^[-_]+|[-_]+$/g, '')
    .slice(0, 63);
  return name === '' ? 'worker' : name;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
