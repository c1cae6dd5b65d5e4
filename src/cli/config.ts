// Reads a worker's wrangler configuration (wrangler.toml, wrangler.json or wrangler.jsonc) the
// way wrangler does, `[env.NAME]` sections included, so an existing Workers project deploys
// without changes, and its `.dev.vars` for `isolet dev`. Every key wrangler knows is in KEYS,
// and every key of a table inside one ([dev], a route, a kv_namespaces entry, ...) in TABLES:
// read, refused by name (a feature isolet does not have), or accepted without effect (a key
// about Cloudflare's own platform). An unknown key, at any depth, or a key with the wrong shape,
// is a ConfigError that names the file, the field and the fix.

import { readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parse as parseToml, TomlDate, TomlError } from 'smol-toml';
import { parse as parseJsonc, printParseErrorCode, type ParseError } from 'jsonc-parser';
import type { BindingSpec, JsonValue } from '../runtime/types.ts';
import { HTML_HANDLINGS, NOT_FOUND_HANDLINGS, type AssetsConfig, type HtmlHandling, type NotFoundHandling } from '../assets/manifest.ts';
import type { BuildSettings } from '../bundle/bundle.ts';
import { COMPATIBILITY_FLAGS, compatibilityNotes, compatibilityProblem } from '../runtime/compatibility.ts';
import { ENV_NAME } from '../bridge/bindings.ts';
import { WORKER_NAME } from '../server/deployment.ts';
import { checkCrons, CronError } from '../cron/cron.ts';

/** What isolet takes from a wrangler config, in the admin API's terms. */
export interface WorkerConfig {
  /** Absolute path of the file it came from; undefined when there is none. */
  file?: string;
  name?: string;
  /** Absolute path of the entry (`main` is relative to the config file's directory). */
  main?: string;
  compatibilityDate?: string;
  /** Text and JSON values the worker sees as `env`. */
  vars: Record<string, JsonValue>;
  /** Route patterns, `host/path*`, from `routes` or `route`. */
  routes: string[];
  limits: { cpuMs?: number; subrequests?: number };
  /** Flags from `compatibility_flags`, as written (checked where they are used). */
  compatibilityFlags?: string[];
  /** Bundler settings wrangler passes to esbuild. */
  build?: BuildSettings;
  /** `[dev]` settings isolet dev takes. */
  dev?: { port?: number; ip?: string };
  /** The `[env.NAME]` this config was resolved for, if any. */
  env?: string;
  /** `[assets]`: static files served with the worker. */
  assets?: AssetsDirectoryConfig;
  /** Cron triggers, from `[triggers] crons`; undefined when the config has no `triggers`. */
  crons?: string[];
  /** `kv_namespaces`: each binding's env name and the namespace's id. */
  kvNamespaces?: { binding: string; id: string }[];
  /** `services`: each service binding's env name, the worker it names, and the entrypoint, if a named one. */
  services?: ServiceBindingConfig[];
}

/** One entry of `services = [{ binding = "OTHER", service = "other-worker", entrypoint = "Api" }]`. */
export interface ServiceBindingConfig {
  binding: string;
  service: string;
  entrypoint?: string;
}

/** `[assets]` in isolet's terms. */
export interface AssetsDirectoryConfig extends AssetsConfig {
  /** Absolute path of the directory (`directory` is relative to the config file's). */
  directory: string;
  /** The env name the worker reaches them by (`env.ASSETS.fetch(request)`). */
  binding?: string;
}

export interface LoadedConfig {
  config: WorkerConfig;
  /** One-line notes for the user (fields that are ignored), without the trailing newline. */
  notes: string[];
}

/** A config file that cannot be used; `message` names the file, the field and the fix. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly file: string;
  readonly field?: string;
  constructor(file: string, field: string | undefined, message: string) {
    super(field === undefined ? `${file}: ${message}` : `${file}: ${field}: ${message}`);
    this.file = file;
    this.field = field;
  }
}

/** The file names wrangler looks for, in its order of preference. */
export const CONFIG_FILES = ['wrangler.json', 'wrangler.jsonc', 'wrangler.toml'] as const;

/** The first config file in `dir` (wrangler's order), or undefined. */
export function findConfigFile(dir: string): string | undefined {
  for (const name of CONFIG_FILES) {
    const path = join(dir, name);
    if (isFile(path)) return path;
  }
  return undefined;
}

/**
 * The config of `--config <path>` when given (it must exist), else the one in `cwd`, else an
 * empty config (a worker can be deployed from flags alone). With `env`, the config of that
 * `[env.NAME]` section, resolved by wrangler's inheritance rules.
 */
export function loadConfig(options: { cwd: string; configPath?: string; env?: string }): LoadedConfig {
  if (options.configPath !== undefined) {
    const path = resolve(options.cwd, options.configPath);
    if (!isFile(path)) {
      throw new ConfigError(options.configPath, undefined, 'no such file. Fix: check the --config path, or leave --config out to use wrangler.toml/json/jsonc from this directory');
    }
    return readConfig(path, options.env);
  }
  const found = findConfigFile(options.cwd);
  if (found !== undefined) return readConfig(found, options.env);
  if (options.env !== undefined) throw new ConfigError('--env', undefined, `there is no wrangler.toml, wrangler.json or wrangler.jsonc here to hold [env.${options.env}]. Fix: leave --env out, or pass --config`);
  return { config: emptyConfig(), notes: [] };
}

/**
 * Reads and checks one config file; its format comes from its extension (.toml, else JSON with
 * comments). `env` picks an `[env.NAME]` section.
 */
export function readConfig(path: string, env?: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(path, undefined, `cannot read it: ${(error as Error).message}`);
  }
  const shown = basename(path);
  const raw = path.endsWith('.toml') ? parseTomlText(text, shown) : parseJsoncText(text, shown);
  return checkConfig(raw, path, env);
}

function emptyConfig(): WorkerConfig {
  return { vars: {}, routes: [], limits: {} };
}

function parseTomlText(text: string, file: string): Record<string, unknown> {
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    const message = error.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
    throw new ConfigError(`${file}:${error.line}:${error.column}`, undefined, `${message} (not valid TOML)\n${error.codeblock}`.trimEnd());
  }
}

function parseJsoncText(text: string, file: string): Record<string, unknown> {
  const errors: ParseError[] = [];
  const value: unknown = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false, allowEmptyContent: false });
  const first = errors[0];
  if (first) {
    const { line, column } = lineAndColumn(text, first.offset);
    throw new ConfigError(`${file}:${line}:${column}`, undefined, `${describeJsonError(printParseErrorCode(first.error))} (not valid JSON)`);
  }
  if (!isPlainObject(value)) throw new ConfigError(file, undefined, 'must hold one JSON object, { "name": ..., "main": ... }');
  return value;
}

function describeJsonError(code: string): string {
  // 'CommaExpected' -> 'comma expected'
  return code.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - (before.lastIndexOf('\n') + 1) + 1;
  return { line, column };
}

// ---------------------------------------------------------------------------------------------
// The keys of a wrangler config. Every key wrangler knows has one entry in KEYS, saying how an
// `[env.NAME]` section treats it (wrangler's inheritance rules) and what isolet does with it:
// reads it, refuses it (a feature isolet does not have), or accepts it without effect (a key
// about Cloudflare's own platform). Any other key is an error, with a "did you mean" for a typo.
// ---------------------------------------------------------------------------------------------

/**
 * How a key behaves under `[env.NAME]`, as wrangler defines it:
 * - 'inherited': an env takes the top-level value unless it sets its own;
 * - 'per-env': never inherited (vars and bindings): an env has only what it sets itself;
 * - 'top-level': only at the top level, the same for every env.
 */
export type KeyScope = 'inherited' | 'per-env' | 'top-level';

/** Where a key's value was found, and the config a reader fills. */
export interface KeyReading {
  /** The config file's name, for messages. */
  file: string;
  /** The config file's directory: paths in the config are relative to it. */
  dir: string;
  /** The key as messages name it: `vars`, or `env.staging.vars` when set in an env section. */
  field: string;
  config: WorkerConfig;
  /** One-line notes for the user. */
  notes: string[];
}

/** Checks a key's value (throwing a ConfigError that names `at.field`) and stores it in `at.config`. */
export type KeyReader = (value: unknown, at: KeyReading) => void;

export interface KeyRule {
  scope: KeyScope;
  /** Set for the keys isolet acts on. */
  read?: KeyReader;
  /** Set for the keys isolet refuses: what the key is, for the message. */
  unsupported?: string;
  /** For an accepted key without effect: a note shown when it is set, if it deserves one. */
  note?: string;
  /** Keys of one group are inherited together: an env that sets one of them inherits none. */
  group?: string;
  /** What an inherited value becomes in env `env` (the worker's name gets the env's name). */
  inheritAs?: (value: unknown, env: string) => unknown;
}

const reads = (scope: KeyScope, read: KeyReader, more: Partial<KeyRule> = {}): KeyRule => ({ scope, read, ...more });
const refused = (scope: KeyScope, what: string): KeyRule => ({ scope, unsupported: what });
const accepted = (scope: KeyScope, note?: string): KeyRule => (note === undefined ? { scope } : { scope, note });

/** Every key wrangler knows, one entry each. */
export const KEYS: Readonly<Record<string, KeyRule>> = {
  // What isolet reads.
  name: reads('inherited', readName, { inheritAs: (name, env) => (typeof name === 'string' ? `${name}-${env}` : name) }),
  main: reads('inherited', readMain),
  compatibility_date: reads('inherited', readCompatibilityDate),
  compatibility_flags: reads('inherited', readCompatibilityFlags),
  vars: reads('per-env', readVars),
  routes: reads('inherited', readRoutes, { group: 'routes' }),
  route: reads('inherited', readRoute, { group: 'routes' }),
  limits: reads('inherited', readLimits),
  minify: reads('inherited', readBuildFlag('minify', 'minify')),
  keep_names: reads('inherited', readBuildFlag('keep_names', 'keepNames')),
  define: reads('per-env', readDefine),
  alias: reads('top-level', readAlias),
  tsconfig: reads('inherited', readBuildPath('tsconfig', 'tsconfig')),
  jsx_factory: reads('inherited', readBuildText('jsx_factory', 'jsxFactory')),
  jsx_fragment: reads('inherited', readBuildText('jsx_fragment', 'jsxFragment')),
  dev: reads('top-level', readDev),
  assets: reads('inherited', readAssets),
  services: reads('per-env', readServices),
  triggers: reads('inherited', readTriggers),
  // wrangler v3's Node.js polyfills: wrangler v4 refuses the key, pointing to nodejs_compat.
  node_compat: reads('inherited', readNodeCompat),

  // Bindings and features isolet does not have (yet): refused by name, at deploy and in dev.
  kv_namespaces: reads('per-env', readKvNamespaces),
  durable_objects: refused('per-env', 'Durable Objects'),
  migrations: refused('inherited', 'Durable Object migrations'),
  exports: refused('inherited', 'Durable Object exports'),
  workflows: refused('per-env', 'Workflows'),
  queues: refused('per-env', 'Queues'),
  r2_buckets: refused('per-env', 'R2 buckets'),
  d1_databases: refused('per-env', 'D1 databases'),
  vectorize: refused('per-env', 'Vectorize indexes'),
  hyperdrive: refused('per-env', 'Hyperdrive'),
  analytics_engine_datasets: refused('per-env', 'Analytics Engine datasets'),
  browser: refused('per-env', 'Browser Rendering'),
  ai: refused('per-env', 'Workers AI'),
  ai_search: refused('per-env', 'AI Search'),
  ai_search_namespaces: refused('per-env', 'AI Search namespaces'),
  agent_memory: refused('per-env', 'agent memory'),
  websearch: refused('per-env', 'web search'),
  images: refused('per-env', 'Images'),
  media: refused('per-env', 'Media Transformations'),
  stream: refused('per-env', 'Stream'),
  version_metadata: refused('per-env', 'version metadata'),
  send_email: refused('per-env', 'Email sending'),
  connect: refused('per-env', 'connect bindings'),
  mtls_certificates: refused('per-env', 'mTLS certificates'),
  tail_consumers: refused('per-env', 'tail workers'),
  streaming_tail_consumers: refused('per-env', 'streaming tail workers'),
  dispatch_namespaces: refused('per-env', 'dispatch namespaces'),
  pipelines: refused('per-env', 'Pipelines'),
  secrets_store_secrets: refused('per-env', 'Secrets Store'),
  secrets: refused('per-env', 'declared secrets (use isolet secret put)'),
  artifacts: refused('per-env', 'artifacts'),
  flagship: refused('per-env', 'Flagship'),
  ratelimits: refused('per-env', 'rate limiting bindings'),
  worker_loaders: refused('per-env', 'Worker Loaders'),
  vpc_services: refused('per-env', 'VPC services'),
  vpc_networks: refused('per-env', 'VPC networks'),
  containers: refused('per-env', 'Containers'),
  cloudchamber: refused('per-env', 'Containers'),
  unsafe: refused('per-env', 'unsafe bindings'),
  unsafe_hello_world: refused('per-env', 'unsafe bindings'),
  logfwdr: refused('inherited', 'logfwdr bindings'),
  wasm_modules: refused('top-level', 'service-worker WASM bindings (import the .wasm file instead)'),
  text_blobs: refused('top-level', 'service-worker text bindings (import the file instead)'),
  data_blobs: refused('top-level', 'service-worker data bindings (import the file instead)'),
  site: refused('top-level', 'Workers Sites'),
  pages_build_output_dir: refused('top-level', 'Pages projects'),
  python_modules: refused('inherited', 'Python workers'),
  // Build settings isolet's bundler does not take: refused, since the bundle would differ.
  build: refused('inherited', 'a custom build command (build it first, then point main at the output)'),
  no_bundle: refused('inherited', 'deploying without bundling'),
  rules: refused('inherited', 'custom module rules'),
  find_additional_modules: refused('inherited', 'additional unbundled modules'),
  preserve_file_names: refused('inherited', 'additional unbundled modules'),
  base_dir: refused('inherited', 'additional unbundled modules'),

  // Keys about Cloudflare's own platform, which change nothing in what the worker does here.
  $schema: accepted('top-level'), // the editor's schema
  account_id: accepted('inherited'), // the account is the API token's
  send_metrics: accepted('top-level'), // wrangler's own telemetry
  dependencies_instrumentation: accepted('top-level'), // wrangler's own telemetry
  keep_vars: accepted('top-level'), // vars set in Cloudflare's dashboard: isolet has none
  compliance_region: accepted('inherited'), // Cloudflare's data centres
  placement: accepted('inherited'), // Smart Placement: where Cloudflare runs the worker
  first_party_worker: accepted('inherited'), // Cloudflare-internal
  observability: accepted('inherited'), // isolet always logs (isolet tail, the server's log)
  logpush: accepted('inherited'), // Cloudflare's log export; isolet's log is JSON on the server
  upload_source_maps: accepted('inherited'), // isolet deploy always keeps the map, in the project (.isolet/source-maps), for isolet tail
  preview_urls: accepted('inherited'), // Cloudflare's per-version preview URLs
  previews: accepted('inherited'), // Cloudflare's per-branch previews
  access: accepted('inherited'), // Cloudflare Access in front of the worker
  cache: accepted('inherited'), // Cloudflare's edge cache in front of the worker
  addresses: accepted('top-level'), // Cloudflare's address configuration
  usage_model: accepted('inherited'), // billing; removed from wrangler but still in old projects
  // workers_dev = false turns off *.workers.dev; isolet always serves a worker at <name>.<domain>.
  workers_dev: accepted('inherited', 'workers_dev has no effect: isolet always serves the worker at <name>.<domain> as well as its routes'),
};

// The keys of the tables inside a config ([dev], [assets], [limits], [triggers], a route, a
// kv_namespaces or services entry), as wrangler's config types list them, one entry each as in
// KEYS: what isolet does with it. Any other key is an error with a "did you mean", as at the top.
// ---------------------------------------------------------------------------------------------

/** 'read': a reader checks and uses it; 'ignored': accepted without effect (`note` shown when set); 'refused': an error saying `why`. */
type FieldRule = { use: 'read' } | { use: 'ignored'; note?: string } | { use: 'refused'; why: string };

interface TableRule {
  /** How messages name one of its keys: "a [dev] key". */
  what: string;
  keys: Readonly<Record<string, FieldRule>>;
}

const read: FieldRule = { use: 'read' };
const ignored = (note?: string): FieldRule => (note === undefined ? { use: 'ignored' } : { use: 'ignored', note });
/** wrangler's own dev server (inspector, protocols, containers, types): nothing of it here. */
const DEV_ONLY = ignored('has no effect on isolet dev');

export const TABLES = {
  dev: {
    what: 'a [dev] key',
    keys: {
      ip: read, port: read, inspector_port: DEV_ONLY, inspector_ip: DEV_ONLY, local_protocol: DEV_ONLY, upstream_protocol: DEV_ONLY,
      host: DEV_ONLY, enable_containers: DEV_ONLY, container_engine: DEV_ONLY, generate_types: DEV_ONLY,
    },
  },
  assets: { what: 'an [assets] key', keys: { directory: read, binding: read, html_handling: read, not_found_handling: read, run_worker_first: read } },
  limits: { what: 'a limit', keys: { cpu_ms: read, subrequests: read } },
  triggers: { what: 'a trigger', keys: { crons: read, events: { use: 'refused', why: 'Artifacts event triggers' } } },
  // A route is matched by its pattern alone: isolet's zones are the server's (docs/ADMIN_API.md).
  route: { what: 'a key of a route', keys: { pattern: read, custom_domain: read, zone_name: ignored(), zone_id: ignored(), enabled: ignored(), previews_enabled: ignored() } },
  // preview_id and remote are for wrangler's remote previews: isolet dev keeps KV locally.
  kvNamespace: { what: 'a key of a kv_namespaces entry', keys: { binding: read, id: read, preview_id: ignored(), remote: ignored() } },
  service: {
    what: 'a key of a service binding',
    keys: {
      binding: read, service: read, entrypoint: read, environment: read, remote: ignored(),
      props: { use: 'refused', why: 'props for the called worker (its ctx.props is {})' },
    },
  },
} as const satisfies Record<string, TableRule>;

/** Checks a table's keys against its rule: a typo is an error with the nearest known key, a refused key an error saying why. */
function checkTable(table: Record<string, unknown>, rule: TableRule, file: string, field: string, notes: string[]): void {
  for (const key of Object.keys(table)) {
    const use = Object.hasOwn(rule.keys, key) ? rule.keys[key]! : undefined;
    if (use === undefined) {
      const known = Object.keys(rule.keys);
      const near = closest(key, known);
      throw new ConfigError(file, `${field}.${key}`, `is not ${rule.what} wrangler knows. Fix: ${near === undefined ? `use ${known.join(', ')}` : `did you mean ${near}?`}`);
    }
    if (use.use === 'refused') throw new ConfigError(file, `${field}.${key}`, `isolet does not support ${use.why}. Fix: remove it`);
    if (use.use === 'ignored' && use.note !== undefined) notes.push(`note: ${file}: ${field}.${key} ${use.note}`);
  }
}

/** The key of the `[env.NAME]` sections; handled apart from KEYS. */
const ENV_KEY = 'env';

/** The unsupported keys in `raw` (a resolved config), in KEYS order. */
function unsupportedKeys(raw: Record<string, unknown>): string[] {
  return Object.keys(KEYS).filter((key) => KEYS[key]!.unsupported !== undefined && raw[key] !== undefined);
}

function checkConfig(raw: Record<string, unknown>, path: string, envName: string | undefined): LoadedConfig {
  const file = basename(path);
  const notes: string[] = [];
  checkKnownKeys(raw, file, '', true);
  const envs = readEnvSections(raw[ENV_KEY], file);
  const section = envName === undefined ? undefined : envs[envName];
  if (envName !== undefined && section === undefined) {
    const known = Object.keys(envs);
    throw new ConfigError(
      file,
      undefined,
      `there is no environment '${envName}'. ` +
        (known.length === 0 ? `Fix: add an [env.${envName}] section, or leave --env out` : `Fix: use one of ${known.join(', ')} with --env, or add [env.${envName}]`),
    );
  }

  // Each key's value for this env, and the name messages give it.
  const values: Record<string, unknown> = {};
  const fields: Record<string, string> = {};
  const setGroups = new Set<string>();
  if (section !== undefined) for (const key of Object.keys(section)) if (KEYS[key]?.group !== undefined) setGroups.add(KEYS[key].group!);
  for (const [key, rule] of Object.entries(KEYS)) {
    const own = section?.[key];
    if (section !== undefined && own !== undefined) {
      values[key] = own;
      fields[key] = `env.${envName}.${key}`;
      continue;
    }
    const top = raw[key];
    if (top === undefined) continue;
    if (section === undefined || rule.scope === 'top-level') {
      values[key] = top;
    } else if (rule.scope === 'inherited') {
      if (rule.group !== undefined && setGroups.has(rule.group)) continue;
      values[key] = rule.inheritAs ? rule.inheritAs(top, envName!) : top;
    } else {
      notes.push(`note: ${file}: ${key} is not inherited by environments, so env.${envName} has none. Fix: repeat it under [env.${envName}] if the environment needs it`);
      continue;
    }
    fields[key] = key;
  }

  const refused = unsupportedKeys(values);
  if (refused.length > 0) {
    const named = refused.map((key) => `${fields[key]} (${KEYS[key]!.unsupported})`);
    throw new ConfigError(
      file,
      undefined,
      `isolet does not support ${named.join(', ')}. Fix: remove ${refused.length === 1 ? 'it' : 'them'} from ${file}` +
        (envs && Object.keys(envs).length > 0 ? ', or keep it in an environment you do not deploy to isolet' : ''),
    );
  }

  const config: WorkerConfig = { file: path, ...emptyConfig() };
  if (envName !== undefined) config.env = envName;
  const dir = dirname(path);
  for (const [key, value] of Object.entries(values)) {
    const rule = KEYS[key]!;
    if (rule.read) rule.read(value, { file, dir, field: fields[key]!, config, notes });
    else if (rule.note !== undefined) notes.push(`note: ${file}: ${rule.note}`);
  }
  if (values.route !== undefined && values.routes !== undefined) {
    throw new ConfigError(file, fields.route, 'is set together with routes. Fix: keep one of them (routes = [...] takes any number)');
  }
  if (config.assets?.binding !== undefined && config.main === undefined) {
    throw new ConfigError(file, `${fields.assets}.binding`, 'needs a worker to bind to. Fix: set main = "src/index.ts", or drop binding to serve the assets alone');
  }
  return { config, notes };
}

/** Refuses keys wrangler does not know (with the nearest known key) and top-level keys inside an env. */
function checkKnownKeys(raw: Record<string, unknown>, file: string, prefix: string, topLevel: boolean): void {
  for (const key of Object.keys(raw)) {
    if (topLevel && key === ENV_KEY) continue;
    const rule = KEYS[key];
    if (rule === undefined) {
      const near = closest(key, topLevel ? [...Object.keys(KEYS), ENV_KEY] : Object.keys(KEYS).filter((name) => KEYS[name]!.scope !== 'top-level'));
      throw new ConfigError(file, prefix + key, `is not a wrangler configuration key. Fix: ${near === undefined ? 'remove it' : `did you mean ${near}?`}`);
    }
    if (!topLevel && rule.scope === 'top-level') {
      throw new ConfigError(file, prefix + key, `can only be set at the top level, not in an environment. Fix: move it out of [${prefix.slice(0, -1)}]`);
    }
  }
}

/** The `[env.NAME]` sections, each checked for unknown keys. */
function readEnvSections(value: unknown, file: string): Record<string, Record<string, unknown>> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw new ConfigError(file, ENV_KEY, `must be a table of environments, e.g. [env.staging] name = "my-worker-staging", not ${show(value)}`);
  const envs: Record<string, Record<string, unknown>> = {};
  for (const [name, section] of Object.entries(value)) {
    if (!isPlainObject(section)) throw new ConfigError(file, `${ENV_KEY}.${name}`, `must be a table of settings for that environment, not ${show(section)}`);
    checkKnownKeys(section, file, `${ENV_KEY}.${name}.`, false);
    envs[name] = section;
  }
  return envs;
}

/** The candidate nearest to `word` by edit distance, if near enough to be a typo of it. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // A third of the word may be wrong: catches dropped, doubled and swapped letters without
  // suggesting unrelated short keys. A cut-short key (cpu for cpu_ms) is a near miss too.
  if (bestDistance <= Math.max(1, Math.floor(word.length / 3))) return best;
  return word.length >= 3 ? candidates.find((candidate) => candidate.startsWith(word)) : undefined;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) rows.push([i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}

// ---------------------------------------------------------------------------------------------
// Readers of the keys isolet acts on.
// ---------------------------------------------------------------------------------------------

function readName(value: unknown, at: KeyReading): void {
  if (typeof value !== 'string' || value === '') throw new ConfigError(at.file, at.field, `must be a non-empty string (the worker's name), not ${show(value)}`);
  at.config.name = value;
}

function readMain(value: unknown, at: KeyReading): void {
  if (typeof value !== 'string' || value === '') {
    throw new ConfigError(at.file, at.field, `must be the path of the worker's entry file, e.g. main = "src/index.ts", not ${show(value)}`);
  }
  at.config.main = resolve(at.dir, value);
}

function readCompatibilityDate(value: unknown, at: KeyReading): void {
  // An unquoted TOML date (compatibility_date = 2024-09-01) is a date value, not a string.
  const date = value instanceof TomlDate && value.isDate() ? value.toISOString() : value;
  if (typeof date !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(date))) {
    throw new ConfigError(at.file, at.field, `must be a date as "YYYY-MM-DD", e.g. compatibility_date = "2024-09-01", not ${show(value)}`);
  }
  const problem = compatibilityProblem(date, undefined);
  if (problem !== undefined) throw new ConfigError(at.file, at.field, `${problem}. Fix: set it to a date no later than today`);
  at.config.compatibilityDate = date;
}

function readCompatibilityFlags(value: unknown, at: KeyReading): void {
  if (!Array.isArray(value) || value.some((flag) => typeof flag !== 'string')) {
    throw new ConfigError(at.file, at.field, `must be a list of flag names, e.g. compatibility_flags = ["nodejs_compat"], not ${show(value)}`);
  }
  const flags = value as string[];
  const problem = compatibilityProblem(undefined, flags);
  if (problem !== undefined) {
    const unknown = flags.find((flag) => !Object.hasOwn(COMPATIBILITY_FLAGS, flag));
    const near = unknown === undefined ? undefined : closest(unknown, Object.keys(COMPATIBILITY_FLAGS));
    const fix = near !== undefined ? `did you mean ${near}?` : 'remove the flag (docs/COMPATIBILITY.md lists the flags isolet takes)';
    throw new ConfigError(at.file, at.field, `${problem}. Fix: ${fix}`);
  }
  for (const note of compatibilityNotes(flags)) at.notes.push(`note: ${at.file}: ${note}`);
  at.config.compatibilityFlags = flags;
}

function readNodeCompat(_value: unknown, at: KeyReading): void {
  throw new ConfigError(
    at.file,
    at.field,
    'was wrangler v3\'s Node.js polyfills, which wrangler v4 removed (it refuses the key too). Fix: remove it; wrangler now takes compatibility_flags = ["nodejs_compat"] instead, which isolet accepts but cannot fully honour yet: it has no Node.js APIs, so a node:* import fails to bundle, naming the Web API to use',
  );
}

function readVars(value: unknown, at: KeyReading): void {
  if (!isPlainObject(value)) throw new ConfigError(at.file, at.field, `must be a table of names to values, e.g. [vars] GREETING = "hello", not ${show(value)}`);
  const vars: Record<string, JsonValue> = {};
  for (const [key, item] of Object.entries(value)) vars[key] = toJson(item, at.file, `${at.field}.${key}`);
  at.config.vars = vars;
}

function readRoutes(value: unknown, at: KeyReading): void {
  if (!Array.isArray(value)) throw new ConfigError(at.file, at.field, `must be a list, e.g. routes = ["example.com/*"], not ${show(value)}`);
  at.config.routes = value.map((route, index) => checkRoute(route, at.file, `${at.field}[${index}]`));
}

function readRoute(value: unknown, at: KeyReading): void {
  at.config.routes = [checkRoute(value, at.file, at.field)];
}

function readLimits(value: unknown, at: KeyReading): void {
  if (!isPlainObject(value)) throw new ConfigError(at.file, at.field, `must be a table, e.g. [limits] cpu_ms = 50, not ${show(value)}`);
  checkTable(value, TABLES.limits, at.file, at.field, at.notes);
  const names = { cpu_ms: 'cpuMs', subrequests: 'subrequests' } as const;
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'number' || !Number.isFinite(item) || item <= 0) {
      throw new ConfigError(at.file, `${at.field}.${key}`, `must be a positive number${key === 'cpu_ms' ? ' of milliseconds, e.g. cpu_ms = 50' : ', e.g. subrequests = 50'}, not ${show(item)}`);
    }
    at.config.limits[names[key as keyof typeof names]] = item;
  }
}

function readTriggers(value: unknown, at: KeyReading): void {
  if (!isPlainObject(value)) throw new ConfigError(at.file, at.field, `must be a table, e.g. [triggers] crons = ["*/5 * * * *"], not ${show(value)}`);
  checkTable(value, TABLES.triggers, at.file, at.field, at.notes);
  try {
    at.config.crons = checkCrons(value.crons ?? []);
  } catch (error) {
    if (!(error instanceof CronError)) throw error;
    throw new ConfigError(at.file, `${at.field}.crons`, error.message);
  }
}

function readBuildFlag(key: string, option: 'minify' | 'keepNames'): KeyReader {
  return (value, at) => {
    if (typeof value !== 'boolean') throw new ConfigError(at.file, at.field, `must be true or false, e.g. ${key} = true, not ${show(value)}`);
    (at.config.build ??= {})[option] = value;
  };
}

function readBuildText(key: string, option: 'jsxFactory' | 'jsxFragment'): KeyReader {
  return (value, at) => {
    if (typeof value !== 'string' || value === '') throw new ConfigError(at.file, at.field, `must be a name such as "h", not ${show(value)}`);
    (at.config.build ??= {})[option] = value;
  };
}

function readBuildPath(key: string, option: 'tsconfig'): KeyReader {
  return (value, at) => {
    if (typeof value !== 'string' || value === '') throw new ConfigError(at.file, at.field, `must be a file path, e.g. ${key} = "tsconfig.json", not ${show(value)}`);
    (at.config.build ??= {})[option] = resolve(at.dir, value);
  };
}

function readDefine(value: unknown, at: KeyReading): void {
  if (!isPlainObject(value) || Object.values(value).some((item) => typeof item !== 'string')) {
    throw new ConfigError(at.file, at.field, `must be a table of names to JavaScript expressions as text, e.g. [define] DEBUG = "false", not ${show(value)}`);
  }
  (at.config.build ??= {}).define = { ...(value as Record<string, string>) };
}

function readAlias(value: unknown, at: KeyReading): void {
  if (!isPlainObject(value) || Object.values(value).some((item) => typeof item !== 'string' || item === '')) {
    throw new ConfigError(at.file, at.field, `must be a table of module names to what replaces them, e.g. [alias] "fs" = "./src/fs-stub.js", not ${show(value)}`);
  }
  // A relative target is relative to the config file, as wrangler reads it.
  const alias: Record<string, string> = {};
  for (const [name, target] of Object.entries(value as Record<string, string>)) alias[name] = target.startsWith('.') ? resolve(at.dir, target) : target;
  (at.config.build ??= {}).alias = alias;
}

function readDev(value: unknown, at: KeyReading): void {
  if (!isPlainObject(value)) throw new ConfigError(at.file, at.field, `must be a table, e.g. [dev] port = 8787, not ${show(value)}`);
  checkTable(value, TABLES.dev, at.file, at.field, at.notes);
  const dev: { port?: number; ip?: string } = {};
  const { port, ip } = value;
  if (port !== undefined) {
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(at.file, `${at.field}.port`, `must be a port number from 0 to 65535, not ${show(port)}`);
    dev.port = port;
  }
  if (ip !== undefined) {
    if (typeof ip !== 'string' || ip === '') throw new ConfigError(at.file, `${at.field}.ip`, `must be an address such as "127.0.0.1", not ${show(ip)}`);
    dev.ip = ip;
  }
  at.config.dev = dev;
}

/** `kv_namespaces = [{ binding = "MY_KV", id = "..." }]`; `preview_id` is wrangler's for remote previews, and not used. */
function readKvNamespaces(value: unknown, at: KeyReading): void {
  const example = 'kv_namespaces = [{ binding = "MY_KV", id = "<id from isolet kv namespace create>" }]';
  if (!Array.isArray(value)) throw new ConfigError(at.file, at.field, `must be a list, e.g. ${example}, not ${show(value)}`);
  const seen = new Set<string>();
  at.config.kvNamespaces = value.map((entry, index) => {
    const field = `${at.field}[${index}]`;
    if (!isPlainObject(entry)) throw new ConfigError(at.file, field, `must be { binding = "MY_KV", id = "..." }, not ${show(entry)}`);
    checkTable(entry, TABLES.kvNamespace, at.file, field, at.notes);
    const { binding, id } = entry;
    if (typeof binding !== 'string' || !ENV_NAME.test(binding)) {
      throw new ConfigError(at.file, `${field}.binding`, `must be the name the worker reads as env.NAME (letters, digits, '_', '$'), not ${show(binding)}`);
    }
    if (seen.has(binding)) throw new ConfigError(at.file, `${field}.binding`, `'${binding}' is bound twice. Fix: give each namespace its own binding name`);
    seen.add(binding);
    if (typeof id !== 'string' || id === '') {
      throw new ConfigError(at.file, `${field}.id`, `must be the namespace's id (isolet kv namespace create <title> prints it), not ${show(id)}`);
    }
    return { binding, id };
  });
}

function readAssets(value: unknown, at: KeyReading): void {
  if (!isPlainObject(value)) throw new ConfigError(at.file, at.field, `must be a table, e.g. [assets] directory = "./public", not ${show(value)}`);
  checkTable(value, TABLES.assets, at.file, at.field, at.notes);
  const { directory, binding, html_handling: html, not_found_handling: notFound, run_worker_first: first } = value;
  if (typeof directory !== 'string' || directory === '') {
    throw new ConfigError(at.file, `${at.field}.directory`, `must be the folder of files to serve, e.g. directory = "./public", not ${show(directory)}`);
  }
  const assets: AssetsDirectoryConfig = { directory: resolve(at.dir, directory) };
  if (binding !== undefined) {
    if (typeof binding !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(binding)) {
      throw new ConfigError(at.file, `${at.field}.binding`, `must be a name the worker reads as env.NAME, e.g. binding = "ASSETS", not ${show(binding)}`);
    }
    assets.binding = binding;
  }
  if (html !== undefined) {
    if (!HTML_HANDLINGS.includes(html as HtmlHandling)) throw new ConfigError(at.file, `${at.field}.html_handling`, `must be one of ${HTML_HANDLINGS.map((h) => `"${h}"`).join(', ')}, not ${show(html)}`);
    assets.htmlHandling = html as HtmlHandling;
  }
  if (notFound !== undefined) {
    if (!NOT_FOUND_HANDLINGS.includes(notFound as NotFoundHandling)) {
      throw new ConfigError(at.file, `${at.field}.not_found_handling`, `must be one of ${NOT_FOUND_HANDLINGS.map((h) => `"${h}"`).join(', ')}, not ${show(notFound)}`);
    }
    assets.notFoundHandling = notFound as NotFoundHandling;
  }
  if (first !== undefined) {
    if (typeof first !== 'boolean') {
      throw new ConfigError(at.file, `${at.field}.run_worker_first`, `must be true or false (isolet does not take a list of route patterns yet), not ${show(first)}`);
    }
    assets.runWorkerFirst = first;
  }
  at.config.assets = assets;
}

/** The config's service bindings as the deploy body and the Runtime take them. */
export function serviceBindings(services: ServiceBindingConfig[]): Record<string, BindingSpec> {
  const bindings: Record<string, BindingSpec> = {};
  for (const { binding, service, entrypoint } of services) bindings[binding] = entrypoint === undefined ? { type: 'service', service } : { type: 'service', service, entrypoint };
  return bindings;
}

function readServices(value: unknown, at: KeyReading): void {
  const example = 'services = [{ binding = "OTHER", service = "other-worker" }]';
  if (!Array.isArray(value)) throw new ConfigError(at.file, at.field, `must be a list, e.g. ${example}, not ${show(value)}`);
  const seen = new Set<string>();
  at.config.services = value.map((entry, index) => {
    const field = `${at.field}[${index}]`;
    if (!isPlainObject(entry)) throw new ConfigError(at.file, field, `must be { binding = "OTHER", service = "other-worker" }, not ${show(entry)}`);
    checkTable(entry, TABLES.service, at.file, field, at.notes);
    const { binding, service, entrypoint, environment } = entry;
    if (typeof binding !== 'string' || !ENV_NAME.test(binding)) {
      throw new ConfigError(at.file, `${field}.binding`, `must be the name the worker reads as env.NAME (letters, digits, '_', '$'), not ${show(binding)}`);
    }
    if (seen.has(binding)) throw new ConfigError(at.file, `${field}.binding`, `'${binding}' is bound twice. Fix: give each service its own binding name`);
    seen.add(binding);
    if (typeof service !== 'string' || !WORKER_NAME.test(service)) {
      throw new ConfigError(at.file, `${field}.service`, `must be the name of a worker of your account (lowercase letters, digits and '-'), not ${show(service)}`);
    }
    if (entrypoint !== undefined && (typeof entrypoint !== 'string' || !ENV_NAME.test(entrypoint))) {
      throw new ConfigError(at.file, `${field}.entrypoint`, `must be the name of a class the worker exports (export class Api extends WorkerEntrypoint), not ${show(entrypoint)}`);
    }
    if (environment !== undefined) {
      // Cloudflare's per-environment services are workers of their own name here ([env.NAME] gives a worker NAME-env).
      throw new ConfigError(at.file, `${field}.environment`, `isolet has no service environments: a worker deployed with --env ${show(environment)} is named '${service}-${String(environment)}'. Fix: set service = "${service}-${String(environment)}" and remove environment`);
    }
    return entrypoint === undefined ? { binding, service } : { binding, service, entrypoint };
  });
}

/** A TOML or JSON value as JSON; TOML dates and times become their TOML text. */
function toJson(value: unknown, file: string, field: string): JsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new ConfigError(file, field, `${value} cannot be sent as JSON. Fix: use a finite number, or a string`);
    return value;
  }
  if (typeof value === 'bigint') {
    throw new ConfigError(file, field, 'is an integer too large for JSON numbers. Fix: write it as a string');
  }
  if (value instanceof TomlDate) return value.toISOString();
  if (Array.isArray(value)) return value.map((item, index) => toJson(item, file, `${field}[${index}]`));
  if (isPlainObject(value)) {
    const out: Record<string, JsonValue> = {};
    for (const [key, item] of Object.entries(value)) out[key] = toJson(item, file, `${field}.${key}`);
    return out;
  }
  throw new ConfigError(file, field, `has a value that is not text or JSON: ${show(value)}`);
}

function checkRoute(route: unknown, file: string, field: string): string {
  if (typeof route === 'string') {
    if (route.trim() === '') throw new ConfigError(file, field, 'is empty. Fix: give a pattern such as "example.com/*"');
    return route.trim();
  }
  if (isPlainObject(route)) {
    checkTable(route, TABLES.route, file, field, []);
    const pattern = route.pattern;
    if (typeof pattern !== 'string' || pattern.trim() === '') {
      throw new ConfigError(file, `${field}.pattern`, `must be a route pattern such as "example.com/*", not ${show(pattern)}`);
    }
    if (route.custom_domain !== undefined && typeof route.custom_domain !== 'boolean') {
      throw new ConfigError(file, `${field}.custom_domain`, `must be true or false, not ${show(route.custom_domain)}`);
    }
    return pattern.trim();
  }
  throw new ConfigError(file, field, `must be a pattern string ("example.com/*") or { pattern = "example.com/*", zone_name = "example.com" }, not ${show(route)}`);
}

/**
 * `.dev.vars` in dotenv style: KEY=VALUE lines, `#` comments, blank lines, an optional
 * `export ` before the key, and values in single quotes (literal), double quotes (with \n, \t,
 * \", \\ escapes, and may span lines) or bare (trimmed, a ` #` starts a comment).
 */
export function parseDevVars(text: string, file = '.dev.vars'): Record<string, string> {
  const vars: Record<string, string> = {};
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let index = 0; index < lines.length; index++) {
    const lineNumber = index + 1;
    const line = lines[index]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/.exec(line);
    if (!match) throw new ConfigError(`${file}:${lineNumber}`, undefined, `expected KEY=VALUE, not '${line}'`);
    const key = match[1]!;
    let rest = match[2]!;
    let value: string;
    const quote = rest[0];
    if (quote === '"' || quote === "'" || quote === '`') {
      // A quoted value may run over several lines, up to its closing quote.
      let body = rest.slice(1);
      let end = findClosingQuote(body, quote);
      while (end < 0 && index + 1 < lines.length) {
        index++;
        body += '\n' + lines[index]!;
        end = findClosingQuote(body, quote);
      }
      if (end < 0) throw new ConfigError(`${file}:${lineNumber}`, key, `has no closing ${quote}. Fix: end the value with ${quote}`);
      value = body.slice(0, end);
      if (quote === '"') value = value.replace(/\\([nrt"\\])/g, (_m, c: string) => ({ n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' })[c]!);
    } else {
      const comment = rest.search(/\s#/);
      if (comment >= 0) rest = rest.slice(0, comment);
      value = rest.trim();
    }
    vars[key] = value;
  }
  return vars;
}

function findClosingQuote(body: string, quote: string): number {
  for (let i = 0; i < body.length; i++) {
    if (quote === '"' && body[i] === '\\') {
      i++;
      continue;
    }
    if (body[i] === quote) return i;
  }
  return -1;
}

/**
 * The local vars `isolet dev` reads next to the config, as wrangler dev does
 * (workers-sdk, wrangler/src/dev/dev-vars.ts): `.dev.vars` (with `env`, `.dev.vars.<env>`
 * instead when it exists); when there is neither, the `.env` files that exist of `.env`,
 * `.env.local`, and with `env` `.env.<env>` and `.env.<env>.local`, each over the ones before,
 * with `${NAME}` references expanded as dotenv-expand does. CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV=false
 * turns the `.env` fallback off, as it does for wrangler. Undefined when no file was read.
 */
export function readDevVars(dir: string, env?: string): { files: string[]; vars: Record<string, string> } | undefined {
  const names = env === undefined ? [DEV_VARS] : [`${DEV_VARS}.${env}`, DEV_VARS];
  for (const name of names) {
    const file = join(dir, name);
    if (isFile(file)) return { files: [file], vars: parseDevVars(readFileSync(file, 'utf8'), name) };
  }
  if (process.env.CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV === 'false') return undefined;
  const files = dotEnvFiles(env).map((name) => join(dir, name)).filter(isFile);
  if (files.length === 0) return undefined;
  const merged: Record<string, string> = {};
  for (const file of files) Object.assign(merged, parseDevVars(readFileSync(file, 'utf8'), basename(file)));
  return { files, vars: expandDotEnv(merged) };
}

/** Every file `readDevVars` may read, whether it exists or not: `isolet dev` reloads when one changes or appears. */
export function devVarsFiles(dir: string, env?: string): string[] {
  return [DEV_VARS, ...(env === undefined ? [] : [`${DEV_VARS}.${env}`]), ...dotEnvFiles(env)].map((name) => join(dir, name));
}

/** The file of local secrets `isolet dev` reads next to the config. */
export const DEV_VARS = '.dev.vars';

/** wrangler's `.env` files, in the order they are merged. */
function dotEnvFiles(env: string | undefined): string[] {
  return ['.env', '.env.local', ...(env === undefined ? [] : [`.env.${env}`, `.env.${env}.local`])];
}

/**
 * `$NAME`, `${NAME}`, `${NAME:-default}` (default when unset or empty) and `${NAME-default}`
 * (when unset) in `.env` values, from the other values, as dotenv-expand does; `\$` is a
 * literal `$`, and a name that is not set becomes ''.
 */
function expandDotEnv(vars: Record<string, string>): Record<string, string> {
  const expanded: Record<string, string> = {};
  const resolving = new Set<string>();
  const valueOf = (name: string): string | undefined => {
    if (Object.hasOwn(expanded, name)) return expanded[name];
    if (!Object.hasOwn(vars, name)) return undefined;
    // A reference to itself, directly or not, stays as written rather than looping.
    if (resolving.has(name)) return vars[name];
    resolving.add(name);
    const value = expand(vars[name]!);
    resolving.delete(name);
    expanded[name] = value;
    return value;
  };
  const expand = (text: string): string =>
    text.replace(/(\\)?\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g, (whole, escaped: string | undefined, braced: string | undefined, operator: string | undefined, fallback: string | undefined, bare: string | undefined) => {
      if (escaped !== undefined) return whole.slice(1);
      const value = valueOf(braced ?? bare!);
      if (operator === ':-' && (value === undefined || value === '')) return expand(fallback!);
      if (operator === '-' && value === undefined) return expand(fallback!);
      return value ?? '';
    });
  for (const name of Object.keys(vars)) valueOf(name);
  return expanded;
}

/** `--var KEY:VALUE` flags as vars; undefined names the first bad one. */
export function parseVarFlags(pairs: string[]): { vars: Record<string, string> } | { bad: string } {
  const vars: Record<string, string> = {};
  for (const pair of pairs) {
    const colon = pair.indexOf(':');
    if (colon <= 0) return { bad: pair };
    vars[pair.slice(0, colon)] = pair.slice(colon + 1);
  }
  return { vars };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function show(value: unknown): string {
  if (value instanceof Date) return String(value);
  if (typeof value === 'bigint') return `${value}`;
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? text.slice(0, 57) + '...' : text;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
