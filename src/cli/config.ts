// Reads a worker's wrangler configuration (wrangler.toml, wrangler.json or wrangler.jsonc) the
// way wrangler does, so an existing Workers project deploys without changes, and its
// `.dev.vars` for `isolet dev`. Only the fields isolet acts on are read; every other field is
// named in one note and ignored, and a field with the wrong shape is a ConfigError that names
// the file, the field and the fix.

import { readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parse as parseToml, TomlDate, TomlError } from 'smol-toml';
import { parse as parseJsonc, printParseErrorCode, type ParseError } from 'jsonc-parser';
import type { JsonValue } from '../runtime/types.ts';
import { ENV_NAME } from '../bridge/bindings.ts';

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
  limits: { cpuMs?: number };
  /** `kv_namespaces`: each binding's env name and the namespace's id. */
  kvNamespaces: { binding: string; id: string }[];
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
 * empty config (a worker can be deployed from flags alone).
 */
export function loadConfig(options: { cwd: string; configPath?: string }): LoadedConfig {
  if (options.configPath !== undefined) {
    const path = resolve(options.cwd, options.configPath);
    if (!isFile(path)) {
      throw new ConfigError(options.configPath, undefined, 'no such file. Fix: check the --config path, or leave --config out to use wrangler.toml/json/jsonc from this directory');
    }
    return readConfig(path);
  }
  const found = findConfigFile(options.cwd);
  return found === undefined ? { config: emptyConfig(), notes: [] } : readConfig(found);
}

/** Reads and checks one config file; its format comes from its extension (.toml, else JSON with comments). */
export function readConfig(path: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(path, undefined, `cannot read it: ${(error as Error).message}`);
  }
  const shown = basename(path);
  const raw = path.endsWith('.toml') ? parseTomlText(text, shown) : parseJsoncText(text, shown);
  return checkConfig(raw, path);
}

function emptyConfig(): WorkerConfig {
  return { vars: {}, routes: [], limits: {}, kvNamespaces: [] };
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

/** Fields isolet reads; all others are ignored with a note. */
const KNOWN = new Set(['name', 'main', 'compatibility_date', 'vars', 'routes', 'route', 'limits', 'kv_namespaces']);
/** Fields that say nothing about the worker itself, ignored without a note. */
const SILENT = new Set(['$schema']);

function checkConfig(raw: Record<string, unknown>, path: string): LoadedConfig {
  const file = basename(path);
  const config: WorkerConfig = { file: path, ...emptyConfig() };
  const ignored: string[] = [];
  for (const key of Object.keys(raw)) if (!KNOWN.has(key) && !SILENT.has(key)) ignored.push(key);

  if (raw.name !== undefined) {
    if (typeof raw.name !== 'string' || raw.name === '') throw new ConfigError(file, 'name', `must be a non-empty string (the worker's name), not ${show(raw.name)}`);
    config.name = raw.name;
  }
  if (raw.main !== undefined) {
    if (typeof raw.main !== 'string' || raw.main === '') {
      throw new ConfigError(file, 'main', `must be the path of the worker's entry file, e.g. main = "src/index.ts", not ${show(raw.main)}`);
    }
    config.main = resolve(dirname(path), raw.main);
  }
  if (raw.compatibility_date !== undefined) config.compatibilityDate = checkDate(raw.compatibility_date, file);
  if (raw.vars !== undefined) config.vars = checkVars(raw.vars, file);

  if (raw.routes !== undefined && raw.route !== undefined) {
    throw new ConfigError(file, 'route', 'is set together with routes. Fix: keep one of them (routes = [...] takes any number)');
  }
  if (raw.routes !== undefined) {
    if (!Array.isArray(raw.routes)) throw new ConfigError(file, 'routes', `must be a list, e.g. routes = ["example.com/*"], not ${show(raw.routes)}`);
    config.routes = raw.routes.map((route, index) => checkRoute(route, file, `routes[${index}]`));
  } else if (raw.route !== undefined) {
    config.routes = [checkRoute(raw.route, file, 'route')];
  }

  if (raw.limits !== undefined) {
    if (!isPlainObject(raw.limits)) throw new ConfigError(file, 'limits', `must be a table, e.g. [limits] cpu_ms = 50, not ${show(raw.limits)}`);
    for (const key of Object.keys(raw.limits)) if (key !== 'cpu_ms') ignored.push(`limits.${key}`);
    const cpu = raw.limits.cpu_ms;
    if (cpu !== undefined) {
      if (typeof cpu !== 'number' || !Number.isFinite(cpu) || cpu <= 0) {
        throw new ConfigError(file, 'limits.cpu_ms', `must be a positive number of milliseconds, e.g. cpu_ms = 50, not ${show(cpu)}`);
      }
      config.limits.cpuMs = cpu;
    }
  }

  if (raw.kv_namespaces !== undefined) config.kvNamespaces = checkKvNamespaces(raw.kv_namespaces, file);

  const notes = ignored.length === 0 ? [] : [`note: ${file}: ignoring ${ignored.join(', ')} (isolet does not use ${ignored.length === 1 ? 'it' : 'them'})`];
  return { config, notes };
}

function checkDate(value: unknown, file: string): string {
  // An unquoted TOML date (compatibility_date = 2024-09-01) is a date value, not a string.
  if (value instanceof TomlDate && value.isDate()) return value.toISOString();
  if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value) && !Number.isNaN(Date.parse(value))) return value;
  throw new ConfigError(file, 'compatibility_date', `must be a date as "YYYY-MM-DD", e.g. compatibility_date = "2024-09-01", not ${show(value)}`);
}

function checkVars(value: unknown, file: string): Record<string, JsonValue> {
  if (!isPlainObject(value)) throw new ConfigError(file, 'vars', `must be a table of names to values, e.g. [vars] GREETING = "hello", not ${show(value)}`);
  const vars: Record<string, JsonValue> = {};
  for (const [key, item] of Object.entries(value)) vars[key] = toJson(item, file, `vars.${key}`);
  return vars;
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

/** `kv_namespaces = [{ binding = "MY_KV", id = "..." }]`; `preview_id` is wrangler's for remote previews, and not used. */
function checkKvNamespaces(value: unknown, file: string): { binding: string; id: string }[] {
  const example = 'kv_namespaces = [{ binding = "MY_KV", id = "<id from isolet kv namespace create>" }]';
  if (!Array.isArray(value)) throw new ConfigError(file, 'kv_namespaces', `must be a list, e.g. ${example}, not ${show(value)}`);
  const seen = new Set<string>();
  return value.map((entry, index) => {
    const field = `kv_namespaces[${index}]`;
    if (!isPlainObject(entry)) throw new ConfigError(file, field, `must be { binding = "MY_KV", id = "..." }, not ${show(entry)}`);
    const { binding, id } = entry;
    if (typeof binding !== 'string' || !ENV_NAME.test(binding)) {
      throw new ConfigError(file, `${field}.binding`, `must be the name the worker reads as env.NAME (letters, digits, '_', '$'), not ${show(binding)}`);
    }
    if (seen.has(binding)) throw new ConfigError(file, `${field}.binding`, `'${binding}' is bound twice. Fix: give each namespace its own binding name`);
    seen.add(binding);
    if (typeof id !== 'string' || id === '') {
      throw new ConfigError(file, `${field}.id`, `must be the namespace's id (isolet kv namespace create <title> prints it), not ${show(id)}`);
    }
    return { binding, id };
  });
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

/** `.dev.vars` in `dir`, parsed, or undefined when there is none. */
export function readDevVars(dir: string): { file: string; vars: Record<string, string> } | undefined {
  const file = join(dir, '.dev.vars');
  if (!isFile(file)) return undefined;
  return { file, vars: parseDevVars(readFileSync(file, 'utf8'), '.dev.vars') };
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
