// `isolet dev <entry>`: runs a worker locally, with production limits, and reloads it when
// its sources, its wrangler config or its local vars change; with more than one -c, the first
// config's worker is served and the others run beside it, reached through service bindings, as
// `wrangler dev -c a -c b` runs them (each built, watched and reloaded on its own, with its own
// vars and assets; one local KV store for the session). A change that does not build (or
// does not load) prints where the problem is, in the tenant's own files (source maps), and
// leaves the last good version serving. What to watch comes from esbuild's own list of the
// bundle's inputs; a file is rebuilt for only when its contents changed, so files written
// inside the project (local state, logs) never start a rebuild loop.

import { createHash } from 'node:crypto';
import { readFileSync, watch, statSync, type FSWatcher } from 'node:fs';
import type { SourceMap } from 'node:module';
import { basename, dirname, extname, resolve, join, sep } from 'node:path';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { CliCommand, CliContext } from '../main.ts';
import { bundleWorker, BundleError, type BuildSettings, type BundledWorker } from '../../bundle/bundle.ts';
import { mapBundlePlaces, splitSourceMap } from '../../bundle/source-map.ts';
import { createHttpFront, type RuntimeFetcher } from '../../http/front.ts';
import { Runtime } from '../../runtime/runtime.ts';
import { WorkerLoadError, type BindingSpec, type JsonValue, type RuntimeRequest, type RuntimeResponse, type WorkerLimits, type WorkerLogEntry } from '../../runtime/types.ts';
import { ConfigError, devVarsFiles, loadConfig, readDevVars, serviceBindings, type AssetsDirectoryConfig } from '../config.ts';
import { DiskAssets } from '../../assets/directory.ts';
import { serveAsset } from '../../assets/respond.ts';
import { navigationPrefersAssets } from '../../runtime/compatibility.ts';
import { assetAnswer, assetRequestOf } from '../../assets/binding.ts';
import { BindingError, type BindingAnswer, type BindingCall } from '../../runtime/types.ts';
import { LocalKv } from '../dev-kv.ts';

const USAGE = `Usage: isolet dev <entry> [--port 8787] [--ip 127.0.0.1] [--var KEY:VALUE]... [--config FILE]... [--env ENV] [--test-scheduled]

Runs the worker in <entry> (TypeScript or JavaScript; npm imports and .wasm files are bundled)
on a local HTTP server with production limits, and reloads it when its source files, its
config or its local vars change. Stack traces point at your source files (source maps).

More workers run beside it with more configs, as with 'wrangler dev -c a -c b': the first
config's worker is the one served on the port, the others are reached through its service
bindings (services = [{ binding = "AUTH", service = "<their name>" }]). Each is built, watched
and reloaded on its own, with its own vars, local vars and assets; --env and --var apply to
every one. A binding to a worker of no config given fails at call time and says so.

Reads wrangler.json, wrangler.jsonc or wrangler.toml from the current directory (or --config)
as 'isolet deploy' does: main (the entry when none is given), name, vars, limits, build
settings, [dev] port/ip and [assets], whose directory is served from disk as a server serves
it (a file changed there is served at once; with no entry, the files alone). Local vars, as
wrangler dev reads them, are merged over vars, and --var over both: .dev.vars (KEY=VALUE lines,
next to the config; .dev.vars.<env> with --env when it exists), or when there is none .env,
.env.local, and with --env .env.<env> and .env.<env>.local. kv_namespaces are local,
kept in .isolet/kv/isolet.db next to the (first) config (a SQLite file), so their keys stay
across restarts; each namespace is found there by its id, by every worker of the session.
'isolet kv key ... --local' reads and writes them.

Cron triggers ([triggers] crons) do not fire on their schedule here, as in 'wrangler dev': with
--test-scheduled, GET /__scheduled?cron=<expression> runs the worker's scheduled handler once
(controller.cron is the expression, controller.scheduledTime now or ?time=<ms>) and answers
with its outcome.

Options:
  -p, --port <port>      Port to listen on (default: [dev] port in the config, else 8787; 0 picks a free one)
      --ip <address>     Address to listen on (default: [dev] ip in the config, else 127.0.0.1)
      --var KEY:VALUE    Set env.KEY to VALUE (repeatable; VALUE may contain ':')
  -c, --config <file>    Config file (default: wrangler.json/.jsonc/.toml in this directory);
                         repeat it to run more workers beside the first
  -e, --env <env>        Use the config's [env.<env>] section, as wrangler does
      --minify           Minify the bundle (as minify = true in the config)
      --test-scheduled   Serve /__scheduled, which runs the scheduled handler
  -h, --help             Show this help

Exit codes: 0 stopped with Ctrl-C/SIGTERM, 1 cannot start (no entry file, port taken),
2 usage or configuration error.
`;

export const command: CliCommand = {
  usage: USAGE,
  run,
};

/** The path that runs the scheduled handler under --test-scheduled (wrangler's). */
const SCHEDULED_PATH = '/__scheduled';

/** How long to wait after the last file event before rebuilding (editors write in bursts). */
const DEBOUNCE_MS = 50;

/** What `isolet dev` was started with; the config and .dev.vars are read again on every reload. */
interface DevOptions {
  cwd: string;
  configPath?: string;
  env?: string;
  /** The entry given on the command line, which wins over main. */
  entryArg?: string;
  flagVars: Record<string, JsonValue>;
  minify: boolean;
  /** Serve /__scheduled, as `wrangler dev --test-scheduled` does. */
  testScheduled: boolean;
}

/** One reading of the config and .dev.vars: what a build and a load need. */
interface DevSettings {
  /** Undefined for a project of static assets alone. */
  entry: string | undefined;
  assets: { config: AssetsDirectoryConfig; navigationPrefersAssets: boolean } | undefined;
  /** Service bindings from the config. */
  bindings: Record<string, BindingSpec>;
  name: string;
  vars: Record<string, JsonValue>;
  limits: Partial<WorkerLimits>;
  crons: string[] | undefined;
  build: BuildSettings;
  dev: { port?: number; ip?: string };
  /** The config file and the files of local vars that may exist next to it (.dev.vars, .env, ...): watched too. */
  configFiles: string[];
  notes: string[];
  /** `kv_namespaces`: served from a local store in the project (src/cli/dev-kv.ts). */
  kvNamespaces: { binding: string; id: string }[];
  /** The config's directory, where the local KV is kept. */
  projectDir: string;
}

async function run(_argv: string[], cli: CliContext): Promise<number> {
  const { values, positionals } = cli.parseArgs({
    options: {
      port: { type: 'string', short: 'p' },
      ip: { type: 'string' },
      var: { type: 'string', multiple: true, default: [] },
      config: { type: 'string', short: 'c', multiple: true, default: [] },
      env: { type: 'string', short: 'e' },
      minify: { type: 'boolean', default: false },
      'test-scheduled': { type: 'boolean', default: false },
    },
    allowPositionals: true,
  });
  if (positionals.length > 1) cli.usageError(`unexpected argument '${positionals[1]}'`);
  const flagVars = parseVars(values.var, cli);
  // The first config is the primary worker (served, and the one <entry> replaces main of); each
  // further one a worker beside it, as `wrangler dev -c a -c b`.
  const configs: (string | undefined)[] = values.config.length === 0 ? [undefined] : values.config;
  const options: DevOptions[] = configs.map((configPath, index) => ({
    cwd: process.cwd(),
    configPath,
    env: values.env,
    entryArg: index === 0 ? positionals[0] : undefined,
    flagVars,
    minify: values.minify,
    testScheduled: values['test-scheduled'],
  }));
  const flagPort = values.port === undefined ? undefined : parsePort(values.port, cli);

  const settings: DevSettings[] = [];
  for (const [index, option] of options.entries()) {
    // A message about a worker beside the primary names its config.
    const about = (message: string) => (index === 0 ? message : `${option.configPath}: ${message}`);
    try {
      settings.push(readSettings(option));
    } catch (error) {
      if (error instanceof ConfigError) {
        cli.stderr.write(`isolet dev: ${about(error.message)}\n`);
        return 2;
      }
      if (error instanceof MissingEntry) {
        if (error.usage) cli.usageError(about(error.message));
        cli.stderr.write(`isolet dev: ${about(error.message)}\n`);
        return 1;
      }
      throw error;
    }
    const name = settings[index]!.name;
    const same = settings.findIndex((other) => other.name === name);
    if (same !== index) {
      cli.stderr.write(`isolet dev: ${configs[same] ?? 'the config here'} and ${option.configPath} both name the worker '${name}': each worker of a dev session needs a name of its own (service bindings call it by name)\n`);
      return 2;
    }
    for (const note of settings[index]!.notes) cli.stderr.write(about(note) + '\n');
  }
  const port = flagPort ?? settings[0]!.dev.port ?? 8787;
  const ip = values.ip ?? settings[0]!.dev.ip ?? '127.0.0.1';

  const session = new DevSession(options, settings, cli);
  // Listened for before 'listening on' is printed: a signal sent as soon as that line is seen
  // would otherwise meet Node's default action and end the process without a clean stop.
  const stop = Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
  await session.reload();
  try {
    await session.listen(port, ip);
  } catch (error) {
    cli.stderr.write(`isolet dev: cannot listen on ${ip}:${port}: ${(error as Error).message}\n`);
    await session.close();
    return 1;
  }
  await stop;
  await session.close();
  return 0;
}

/** No entry to run: `usage` when none was named at all (a usage error), else the file is missing. */
class MissingEntry extends Error {
  readonly usage: boolean;
  constructor(message: string, usage: boolean) {
    super(message);
    this.usage = usage;
  }
}

/** Reads the config and the local vars as wrangler does: vars, then .dev.vars (or the .env files) over them, then --var. */
function readSettings(options: DevOptions): DevSettings {
  const { config, notes } = loadConfig({ cwd: options.cwd, configPath: options.configPath, env: options.env });
  const configDir = config.file === undefined ? options.cwd : dirname(config.file);
  const devVars = readDevVars(configDir, options.env);
  if (devVars) notes.push(`using vars from ${devVars.files.join(', ')}`);
  if (config.crons !== undefined && config.crons.length > 0 && !options.testScheduled) {
    notes.push('note: cron triggers do not fire on their schedule in isolet dev; start it with --test-scheduled and GET /__scheduled?cron=... to run the scheduled handler');
  }
  if (options.entryArg === undefined && config.main === undefined && config.assets === undefined) {
    throw new MissingEntry(`missing <entry>, the worker file to run (or set main in ${config.file === undefined ? 'wrangler.toml' : basename(config.file)})`, true);
  }
  // Without an entry, a project with [assets] serves its files alone.
  const entry = options.entryArg !== undefined ? resolve(options.cwd, options.entryArg) : config.main;
  if (entry !== undefined && !isFile(entry)) throw new MissingEntry(`no such file: ${options.entryArg ?? `${entry} (main in ${basename(config.file!)})`}`, false);
  if (config.assets !== undefined && !isDirectory(config.assets.directory)) {
    throw new ConfigError(basename(config.file!), 'assets.directory', `no such folder: ${config.assets.directory}. Fix: create it, or point directory at your static files`);
  }
  return {
    entry,
    assets: config.assets && { config: config.assets, navigationPrefersAssets: navigationPrefersAssets(config.compatibilityDate, config.compatibilityFlags) },
    bindings: serviceBindings(config.services ?? []),
    name: config.name ?? (entry === undefined ? 'assets' : workerName(entry)),
    vars: { ...config.vars, ...devVars?.vars, ...options.flagVars },
    limits: { ...config.limits },
    crons: config.crons,
    build: { ...config.build, ...(options.minify ? { minify: true } : {}) },
    dev: config.dev ?? {},
    configFiles: [...(config.file === undefined ? [] : [config.file]), ...devVarsFiles(configDir, options.env)],
    notes,
    kvNamespaces: config.kvNamespaces ?? [],
    projectDir: configDir,
  };
}

/** File names whose appearance may fix a failed build (a module being created); anything else written beside the sources is not a reason to rebuild. */
const MODULE_FILE = /\.(?:[cm]?[jt]sx?|json|wasm|txt|html|bin)$/;

/** Static files as `isolet dev` serves them: from disk, by the config's rules. */
interface ServedAssets {
  config: AssetsDirectoryConfig;
  source: DiskAssets;
  navigationPrefersAssets: boolean;
}

/**
 * One running `isolet dev`: the runtime, the server, the local KV and the workers of the
 * session. The first config's worker is the primary, served on the port; the others run beside
 * it in the same Runtime, reached through service bindings, as `wrangler dev -c a -c b` runs
 * them. Each worker is built, watched and reloaded on its own (DevWorker).
 */
class DevSession implements RuntimeFetcher {
  readonly #out: NodeJS.WritableStream;
  readonly #err: NodeJS.WritableStream;
  readonly #runtime: Runtime;
  readonly #server: ReturnType<typeof createHttpFront>;
  readonly #cwd: string;
  readonly #testScheduled: boolean;
  readonly #primary: DevWorker;
  readonly #workers: DevWorker[];
  /** Local KV, opened when a worker first has a KV binding; one store for the session, in the primary's project. */
  #kv: LocalKv | undefined;
  readonly #kvDir: string;

  constructor(options: DevOptions[], settings: DevSettings[], cli: CliContext) {
    this.#out = cli.stdout;
    this.#err = cli.stderr;
    this.#cwd = options[0]!.cwd;
    this.#testScheduled = options[0]!.testScheduled;
    this.#kvDir = settings[0]!.projectDir;
    // Local development talks to local backends: loopback and private networks are allowed
    // here, unlike on a server (isolet serve refuses them unless the operator allows them).
    this.#runtime = new Runtime({
      log: (entry) => this.#printLog(entry),
      bindingHost: { call: (call) => this.#bindingCall(call) },
      egress: { allow: ['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7', 'localhost'] },
    });
    const host: WorkerHostOfDev = {
      runtime: this.#runtime,
      out: this.#out,
      err: this.#err,
      openKv: () => this.#openKv(),
    };
    this.#workers = options.map((option, index) => new DevWorker(option, settings[index]!, host, index === 0));
    this.#primary = this.#workers[0]!;
    this.#server = createHttpFront(this, { worker: () => this.#primary.name });
  }

  /** RuntimeFetcher for the front: the primary worker, or why there is none yet. */
  async fetch(name: string, request: RuntimeRequest): Promise<RuntimeResponse> {
    const primary = this.#primary;
    // Static files first, by the rules a server applies; what matches none goes to the worker.
    const assets = primary.assets;
    if (assets !== undefined) {
      const mode = primary.settings.entry === undefined ? 'assets' : 'front';
      const answer = await serveAsset(request, assets.config, assets.source, { mode, navigationPrefersAssets: assets.navigationPrefersAssets });
      if (answer !== undefined) {
        this.#logRequest(name, request, answer.status);
        return answer;
      }
    }
    if (primary.loaded) {
      if (this.#testScheduled && new URL(request.url).pathname === SCHEDULED_PATH) return this.#scheduled(name, request);
      const response = await this.#runtime.fetch(name, request);
      this.#logRequest(name, request, response.status);
      return response;
    }
    return {
      status: 503,
      statusText: 'Service Unavailable',
      headers: [['content-type', 'text/plain; charset=utf-8']],
      body: new TextEncoder().encode(primary.problem + '\n'),
    };
  }

  /** The platform bindings of a worker, served locally: its env.ASSETS from its directory, KV from .isolet/kv. */
  async #bindingCall(call: BindingCall): Promise<BindingAnswer> {
    if (call.binding.type === 'kv' && this.#kv !== undefined) return this.#kv.call(call);
    const assets = this.#workers.find((worker) => worker.name === call.worker)?.assets;
    if (call.binding.type === 'assets' && assets !== undefined) {
      return assetAnswer((await serveAsset(assetRequestOf(call), assets.config, assets.source, { mode: 'assets' }))!);
    }
    throw new BindingError('Error', `env.${call.name}: ${call.binding.type} bindings are not available in isolet dev.`);
  }

  #openKv(): void {
    if (this.#kv !== undefined) return;
    this.#kv = new LocalKv(this.#kvDir);
    this.#err.write(`using local KV in ${this.#kv.path}\n`);
  }

  /**
   * `/__scheduled?cron=...[&time=ms]`: runs the primary's scheduled handler once. The cron is
   * taken as given, as wrangler does; the answer is wrangler's text when it went well, else the
   * outcome.
   */
  async #scheduled(name: string, request: RuntimeRequest): Promise<RuntimeResponse> {
    const url = new URL(request.url);
    const cron = url.searchParams.get('cron') ?? '';
    const time = url.searchParams.get('time');
    const scheduledTime = time === null ? Date.now() : Number(time);
    const text = (status: number, body: string): RuntimeResponse => ({
      status,
      statusText: status === 200 ? 'OK' : status === 400 ? 'Bad Request' : 'Internal Server Error',
      headers: [['content-type', 'text/plain; charset=utf-8']],
      body: new TextEncoder().encode(body),
    });
    if (!Number.isFinite(scheduledTime) || cron.length > 1000) {
      return text(400, `${SCHEDULED_PATH} takes ?cron=<expression> (at most 1000 characters) and ?time=<ms since the epoch>.\n`);
    }
    const result = await this.#runtime.scheduled(name, { cron, scheduledTime });
    this.#err.write(`[${name}] scheduled "${cron}" ${result.outcome}\n`);
    if (result.outcome === 'ok') return text(200, 'Ran scheduled event');
    // The stack names places in the bundle: answer with places in the sources, as stderr shows them.
    const map = this.#workers.find((worker) => worker.name === name)?.map;
    return text(500, `Scheduled event failed: ${result.outcome}\n${mapBundlePlaces(result.error ?? '', map, this.#cwd)}\n`);
  }

  #logRequest(name: string, request: RuntimeRequest, status: number): void {
    const url = new URL(request.url);
    this.#err.write(`[${name}] ${request.method} ${url.pathname}${url.search} ${status}\n`);
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

  /** Builds and loads every worker: the others first, so that the primary's first requests find them. */
  async reload(): Promise<void> {
    for (const worker of this.#workers.slice(1)) await worker.reload();
    await this.#primary.reload();
    if (this.#workers.length > 1) {
      this.#err.write(`also running ${this.#workers.slice(1).map((worker) => `${worker.name} (${worker.configShown})`).join(', ')}, reached through service bindings\n`);
    }
  }

  async close(): Promise<void> {
    this.#server.close();
    this.#server.closeAllConnections();
    await Promise.all(this.#workers.map((worker) => worker.close()));
    await this.#runtime.close();
    await this.#kv?.close();
  }

  #printLog(entry: WorkerLogEntry): void {
    let line: string;
    if (entry.type === 'console') {
      line = entry.level === 'log' || entry.level === 'info' ? entry.message : `${entry.level}: ${entry.message}`;
    } else if (entry.type === 'request' || entry.type === 'scheduled') {
      return; // fetch() and #scheduled() above print each request and event
    } else {
      line = `${entry.type}: ${entry.message}`;
    }
    // Stack traces and messages name places in the bundle: print them as places in the sources.
    const map = this.#workers.find((worker) => worker.name === entry.worker)?.map;
    this.#err.write(`[${entry.worker}] ${mapBundlePlaces(line, map, this.#cwd)}\n`);
  }
}

/** What a DevWorker uses of its session. */
interface WorkerHostOfDev {
  runtime: Runtime;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  /** Opens the session's local KV (once). */
  openKv(): void;
}

/** One worker of an `isolet dev` session: its config, its build, its watcher and its reloads. */
class DevWorker {
  readonly #options: DevOptions;
  readonly #host: WorkerHostOfDev;
  readonly #primary: boolean;
  /** The settings of the last reading that worked; the first comes from run(). */
  settings: DevSettings;
  /** Whether settings is a reading the next reload has not used yet. */
  #fresh = true;
  /** The name the loaded version serves under. */
  name: string;
  /** The static files served, as the last good reading of the config says. */
  assets: ServedAssets | undefined;
  /** The loaded bundle's source map: places in it are printed as places in the sources. */
  map: SourceMap | undefined;
  /** Set once a version has loaded; until then the primary's requests get `problem` as a 503. */
  loaded = false;
  /** Set after the first build, so later successful ones say they reloaded. */
  #started = false;
  problem = 'worker is starting';
  /** Watched files (the last build's sources outside node_modules, the config, the local vars files) and a digest of what they held then. */
  #inputs = new Map<string, string>();
  /**
   * The inputs' digests as a build started, taken before it reads them: what #watch records for
   * them. Digested when the build ended instead, a save that landed in between (right after an
   * error was printed, say) looked built already, and its event was dropped.
   */
  #atBuildStart = new Map<string, string>();
  #lastBuildFailed = false;
  /** A module file appeared after a failed build: the next #rebuild tries again. */
  #newModule = false;
  readonly #watchers = new Map<string, FSWatcher>();
  #timer: NodeJS.Timeout | undefined;
  #building: Promise<void> | undefined;
  #again = false;
  #closed = false;

  constructor(options: DevOptions, settings: DevSettings, host: WorkerHostOfDev, primary: boolean) {
    this.#options = options;
    this.#host = host;
    this.#primary = primary;
    this.settings = settings;
    this.name = settings.name;
    this.assets = assetsOf(settings);
  }

  /** The worker's config as the user named it (for messages about a worker beside the primary). */
  get configShown(): string {
    return this.#options.configPath ?? this.settings.configFiles[0] ?? 'wrangler.toml';
  }

  /** Reads the config, bundles and loads the entry; on failure prints the problem and keeps the last good version. */
  async reload(): Promise<void> {
    try {
      await this.#load();
    } finally {
      this.#started = true;
    }
  }

  async #load(): Promise<void> {
    const started = performance.now();
    this.#atBuildStart = new Map([...this.#inputs.keys(), ...this.settings.configFiles].map((file) => [file, digest(file)]));
    const err = this.#host.err;
    if (!this.#fresh) {
      try {
        this.settings = readSettings(this.#options);
        for (const note of this.settings.notes) err.write(this.#about(note) + '\n');
      } catch (error) {
        if (!(error instanceof ConfigError) && !(error instanceof MissingEntry)) throw error;
        this.#failed(`isolet dev: ${this.#about(error.message)}`, 'the configuration has a problem, fix it and save');
        this.#watch([...this.#inputs.keys()]);
        return;
      }
    }
    this.#fresh = false;
    const settings = this.settings;
    this.assets = assetsOf(settings, this.assets);
    if (settings.entry === undefined) {
      // Assets alone: nothing to build; the config is still watched for changes.
      this.name = settings.name;
      this.#watch([...settings.configFiles]);
      return;
    }
    let worker: BundledWorker;
    let map: SourceMap | undefined;
    try {
      const result = await bundleWorker(settings.entry, { ...settings.build, cwd: this.#options.cwd, nodeEnv: 'development', sourcemap: true });
      ({ worker, map } = splitSourceMap(result.worker));
      for (const warning of result.warnings) err.write(warning + '\n');
      this.#watch([...result.inputs, ...settings.configFiles]);
    } catch (error) {
      if (!(error instanceof BundleError)) throw error;
      this.#failed(this.#about(error.message), 'worker has a syntax error, fix it and save');
      // Watch the broken files too, so that fixing them is noticed.
      const broken = error.problems.flatMap((problem) => (problem.file === undefined ? [] : [resolve(this.#options.cwd, problem.file)]));
      this.#watch([...this.#inputs.keys(), ...broken, settings.entry!, ...settings.configFiles]);
      return;
    }
    if (this.#closed) return;
    try {
      // A service binding to a worker of this session (itself, another entrypoint, a worker of
      // another -c config) is served here; one to any other fails at call time and says how to
      // add it (README, "Service bindings").
      const bindings: Record<string, BindingSpec> = { ...settings.bindings };
      const binding = settings.assets?.config.binding;
      if (binding !== undefined) bindings[binding] = { type: 'assets' };
      for (const { binding: name, id } of settings.kvNamespaces) bindings[name] = { type: 'kv', namespaceId: id };
      if (settings.kvNamespaces.length > 0) this.#host.openKv();
      await this.#host.runtime.load(settings.name, { ...worker, vars: settings.vars, limits: settings.limits, crons: settings.crons, bindings });
    } catch (error) {
      if (!(error instanceof WorkerLoadError)) throw error;
      this.#failed(this.#about(mapBundlePlaces(error.message, map, this.#options.cwd)), 'worker failed to load, fix it and save');
      return;
    }
    // A worker renamed in its config no longer serves under its old name.
    if (this.loaded && this.name !== settings.name) await this.#host.runtime.unload(this.name);
    this.map = map;
    this.name = settings.name;
    this.#lastBuildFailed = false;
    if (this.#started) this.#host.out.write(`reloaded ${this.#primary ? '' : `${this.name} `}in ${Math.round(performance.now() - started)} ms\n`);
    this.loaded = true;
  }

  /** A message about this worker: as it is for the primary, naming its config for the others. */
  #about(message: string): string {
    return this.#primary ? message : `${this.configShown} (worker ${this.name}): ${message}`;
  }

  #failed(message: string, summary: string): void {
    this.#lastBuildFailed = true;
    const err = this.#host.err;
    err.write(message + '\n');
    if (!this.loaded) this.problem = `${summary}\n\n${message}`;
    else err.write(this.#primary ? '(still serving the last version that loaded)\n' : `(${this.name} keeps running the last version that loaded)\n`);
  }

  /**
   * Remembers what each input holds now and watches the directory of every one outside
   * node_modules (plus the entry's), not each file: editors that save by writing a new file and
   * renaming it replace the file a per-file watch would follow.
   */
  #watch(files: string[]): void {
    if (this.#closed) return;
    // What each file held as the build started, never newer than what the build read, so that
    // a save made meanwhile differs; a file this build found first, what it holds now.
    const inputs = new Map<string, string>();
    for (const file of files) if (!file.split(sep).includes('node_modules')) inputs.set(file, this.#atBuildStart.get(file) ?? digest(file));
    this.#inputs = inputs;
    const dirs = new Set([...(this.settings.entry === undefined ? [] : [dirname(this.settings.entry)]), ...[...inputs.keys()].map((file) => dirname(file))]);
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

  /**
   * A file event: worth a look after the debounce when it may concern an input (the event did
   * not say which file, or it names one), or, after a failed build, a new module (a file an
   * import wanted may be the fix). Files written beside the sources (logs, local state, editor
   * files) do not matter. Contents are not read here: a save that truncates and then writes is
   * seen half-way, as an empty file.
   */
  #changed(file: string | undefined): void {
    if (file !== undefined && !this.#inputs.has(file)) {
      if (!(this.#lastBuildFailed && MODULE_FILE.test(file))) return;
      this.#newModule = true;
    }
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#rebuild(), DEBOUNCE_MS);
  }

  /**
   * After the debounce: builds again when an input's contents differ from what was built (not
   * for a touch, nor a rewrite of the same bytes), or a new module appeared after a failure.
   * `force`: an event came while the last build ran; inputs are digested when a build ends, so
   * its change would look built already.
   */
  #rebuild(force = false): void {
    if (this.#closed) return;
    if (this.#building) {
      this.#again = true;
      return;
    }
    const newModule = this.#newModule;
    this.#newModule = false;
    if (!force && !newModule && [...this.#inputs].every(([input, before]) => digest(input) === before)) return;
    this.#building = this.reload()
      .catch((error: unknown) => {
        this.#host.err.write(`isolet dev: ${this.#about(`reload failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)}\n`);
      })
      .finally(() => {
        this.#building = undefined;
        if (this.#again) {
          this.#again = false;
          this.#rebuild(true);
        }
      });
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
    await this.#building;
  }
}

/** A digest of a file's contents ('' when it cannot be read, e.g. it does not exist). */
function digest(file: string): string {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('base64');
  } catch {
    return '';
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

/** The static files `settings` serve: the same source as `previous` when the folder is the same. */
function assetsOf(settings: DevSettings, previous?: ServedAssets | undefined): ServedAssets | undefined {
  const assets = settings.assets;
  if (assets === undefined) return undefined;
  const source = previous !== undefined && previous.config.directory === assets.config.directory ? previous.source : new DiskAssets(assets.config.directory);
  return { ...assets, source };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
