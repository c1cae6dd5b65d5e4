// What a deployment (`PUT /v1/workers/:name`) may hold, checked before any code runs: the
// shape of the body, names, limits, routes and size. Everything here is a 400 (or a 413 for
// size) whose message says what to change.

import { compatibilityProblem } from '../runtime/compatibility.ts';
import { wasmBytes } from '../runtime/wasm-modules.ts';
import { DEFAULT_LIMITS, type BindingSpec, type JsonValue, type WorkerLimits, type WorkerModule } from '../runtime/types.ts';
import { BINDING_LIMITS, ENV_NAME } from '../bridge/bindings.ts';
import { specProblem } from '../api/bindings/checks.ts';
import type { AccountQuotas, WorkerContent } from '../store/store.ts';
import { isPublicSuffix } from '../store/zones.ts';
import { ApiError } from './api-error.ts';
import { parseRoutePattern } from './routes.ts';
import { parseAssetsContent } from '../assets/manifest.ts';

/** Worker names are DNS labels (they are hosts: `<worker>.<domain>`), in lowercase. */
export const WORKER_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const ACCOUNT_NAME = /^[a-z0-9]([a-z0-9-_]{0,61}[a-z0-9])?$/;
/** Secret names are what the worker reads as `env.NAME`. */
export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

export const DEFAULT_MAX_SCRIPT_BYTES = 10 * 1024 * 1024;

/**
 * The most any deployment may ask for, whatever an account's quotas say: the ceiling of what
 * the operator may grant (`isolet serve` can change them).
 */
export const DEFAULT_LIMIT_CAPS: WorkerLimits = Object.freeze({
  cpuMs: 30_000,
  startupCpuMs: 10_000,
  memoryMb: 512,
  subrequests: 1000,
});

/**
 * What an account gets unless the operator says otherwise: sized for a shared host, where one
 * tenant's worker must not take a core or a large share of memory.
 */
export const DEFAULT_QUOTAS: AccountQuotas = Object.freeze({
  maxWorkers: 100,
  cpuMs: 50,
  startupCpuMs: 400,
  memoryMb: 128,
});

export interface DeploymentRules {
  /** The platform domain: routes may not claim hosts under it. */
  domain: string;
  /** Most bytes of code (all modules, or the script) one version may have. */
  maxScriptBytes: number;
  limitCaps: WorkerLimits;
  /** Where a deployment over a cap is told to ask for more (default: the operator). */
  capHint?: string;
}

export interface ParsedDeployment {
  content: WorkerContent;
  /** Normalized route patterns; undefined when the deployment did not say (keep the current ones). */
  routes: string[] | undefined;
  message: string;
}

const FIELDS = new Set(['modules', 'main', 'script', 'vars', 'limits', 'routes', 'compatibilityDate', 'compatibilityFlags', 'bindings', 'message', 'assets']);
const MAX_MODULES = 1000;
const MAX_ROUTES = 100;
const MAX_MESSAGE = 1000;
const MAX_VARS_BYTES = 1024 * 1024;
/** Deepest nesting of objects and arrays in vars: far beyond any configuration, far below what strains a stack. */
export const MAX_VARS_DEPTH = 32;

export function checkWorkerName(name: string): void {
  if (!WORKER_NAME.test(name)) {
    throw new ApiError(
      'invalid',
      `Invalid worker name '${name}': use 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit (it becomes the host '<name>.<domain>').`,
    );
  }
}

export function parseDeployment(body: unknown, rules: DeploymentRules): ParsedDeployment {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError('invalid', 'The deployment must be a JSON object with `modules` (and `main`) or `script`.');
  }
  const input = body as Record<string, unknown>;
  for (const key of Object.keys(input)) {
    if (!FIELDS.has(key)) throw new ApiError('invalid', `Unknown field '${key}' in the deployment: the fields are ${[...FIELDS].join(', ')}.`);
  }
  const content: WorkerContent = {};
  let bytes = 0;

  if (input.assets !== undefined) {
    try {
      content.assets = parseAssetsContent(input.assets);
    } catch (error) {
      throw new ApiError('invalid', (error as Error).message);
    }
  }
  const hasModules = input.modules !== undefined;
  const hasScript = input.script !== undefined;
  // A version of static assets alone has no code.
  if ((hasModules && hasScript) || (!hasModules && !hasScript && content.assets === undefined)) {
    throw new ApiError('invalid', 'Give either `modules` (ES modules, with `main`) or `script` (service-worker syntax), not both or neither (only a version with `assets` may have no code).');
  }
  if (!hasModules && !hasScript) {
    if (input.main !== undefined) throw new ApiError('invalid', '`main` goes with `modules`.');
  } else if (hasModules) {
    if (!Array.isArray(input.modules) || input.modules.length === 0 || input.modules.length > MAX_MODULES) {
      throw new ApiError('invalid', `\`modules\` must be a list of 1 to ${MAX_MODULES} {"name", "source"} objects.`);
    }
    const modules: WorkerModule[] = [];
    for (const [index, mod] of (input.modules as unknown[]).entries()) {
      const { name, source, type } = (mod ?? {}) as Record<string, unknown>;
      if (typeof name !== 'string' || name.length === 0 || name.length > 256 || typeof source !== 'string') {
        throw new ApiError('invalid', `modules[${index}] must be {"name": "<path, e.g. worker.js>", "source": "<JavaScript>"}.`);
      }
      if (type !== undefined && type !== 'wasm') {
        throw new ApiError('invalid', `modules[${index}].type must be "wasm" (a WebAssembly module, its bytes in base64) or absent (JavaScript), not ${JSON.stringify(type)}.`);
      }
      if (type === 'wasm') {
        const wasm = wasmBytes(source);
        if ('problem' in wasm) throw new ApiError('invalid', `modules[${index}] (${name}) ${wasm.problem}.`);
        bytes += wasm.length;
        modules.push({ name, source, type });
        continue;
      }
      bytes += Buffer.byteLength(source);
      modules.push({ name, source });
    }
    content.modules = modules;
    const mainModule = modules.find((m) => m.name === (input.main ?? modules[0]!.name));
    if (mainModule?.type === 'wasm') throw new ApiError('invalid', `The main module must be JavaScript, not the WebAssembly module ${mainModule.name}: put the worker's module first or name it in \`main\`.`);
    if (input.main !== undefined) {
      if (typeof input.main !== 'string' || !modules.some((m) => m.name === input.main)) {
        throw new ApiError('invalid', `\`main\` must be the name of one of the modules (${modules.map((m) => m.name).join(', ')}).`);
      }
      content.main = input.main;
    }
  } else {
    if (typeof input.script !== 'string') throw new ApiError('invalid', '`script` must be a string of JavaScript.');
    if (input.main !== undefined) throw new ApiError('invalid', '`main` goes with `modules`, not with `script`.');
    bytes += Buffer.byteLength(input.script);
    content.script = input.script;
  }
  if (bytes > rules.maxScriptBytes) {
    throw new ApiError(
      'too_large',
      `The worker's code is ${bytes} bytes, over the limit of ${rules.maxScriptBytes}: make it smaller (minify, drop unused dependencies).`,
    );
  }

  if (input.vars !== undefined) {
    if (input.vars === null || typeof input.vars !== 'object' || Array.isArray(input.vars)) {
      throw new ApiError('invalid', '`vars` must be an object of names to text or JSON values.');
    }
    for (const [name, value] of Object.entries(input.vars)) {
      if (!SECRET_NAME.test(name)) throw new ApiError('invalid', `Invalid var name '${name}': use letters, digits and '_', not starting with a digit.`);
      if (nestedBeyond(value, MAX_VARS_DEPTH)) {
        throw new ApiError('invalid', `The var '${name}' nests objects or arrays more than ${MAX_VARS_DEPTH} deep: flatten it.`);
      }
    }
    if (Buffer.byteLength(JSON.stringify(input.vars)) > MAX_VARS_BYTES) {
      throw new ApiError('too_large', `\`vars\` is over ${MAX_VARS_BYTES} bytes of JSON: keep large data out of vars.`);
    }
    content.vars = input.vars as Record<string, JsonValue>;
  }

  if (input.limits !== undefined) content.limits = parseLimits(input.limits, rules.limitCaps, rules.capHint);

  if (input.bindings !== undefined) content.bindings = parseBindings(input.bindings, content.vars);

  if (input.compatibilityDate !== undefined) {
    if (typeof input.compatibilityDate !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(input.compatibilityDate) || Number.isNaN(Date.parse(input.compatibilityDate))) {
      throw new ApiError('invalid', '`compatibilityDate` must be a date as YYYY-MM-DD, e.g. "2024-09-01".');
    }
    content.compatibilityDate = input.compatibilityDate;
  }
  if (input.compatibilityFlags !== undefined) {
    if (!Array.isArray(input.compatibilityFlags) || input.compatibilityFlags.some((flag) => typeof flag !== 'string')) {
      throw new ApiError('invalid', '`compatibilityFlags` must be a list of flag names, e.g. ["nodejs_compat"].');
    }
    content.compatibilityFlags = input.compatibilityFlags as string[];
  }
  const compatibility = compatibilityProblem(content.compatibilityDate, content.compatibilityFlags);
  if (compatibility !== undefined) throw new ApiError('invalid', `${compatibility[0]!.toUpperCase()}${compatibility.slice(1)}.`);

  let routes: string[] | undefined;
  if (input.routes !== undefined) {
    if (!Array.isArray(input.routes) || input.routes.length > MAX_ROUTES) {
      throw new ApiError('invalid', `\`routes\` must be a list of at most ${MAX_ROUTES} patterns such as "api.example.com/v1/*".`);
    }
    const seen = new Set<string>();
    for (const text of input.routes as unknown[]) {
      let pattern: string;
      try {
        const route = parseRoutePattern(text as string, rules.domain);
        pattern = route.pattern;
        if (isPublicSuffix(route.host)) {
          throw new Error(`Invalid route '${text}': '${route.host}' is a public suffix, shared by many owners; a route names a host in your own domain, e.g. '${route.wildcard ? '*.' : ''}example.${route.host}${route.path}${route.prefix ? '*' : ''}'.`);
        }
      } catch (error) {
        throw new ApiError('invalid', (error as Error).message);
      }
      seen.add(pattern);
    }
    routes = [...seen].sort();
  }

  let message = '';
  if (input.message !== undefined) {
    if (typeof input.message !== 'string' || input.message.length > MAX_MESSAGE) {
      throw new ApiError('invalid', `\`message\` must be text of at most ${MAX_MESSAGE} characters.`);
    }
    message = input.message;
  }
  return { content, routes, message };
}

/**
 * Bindings' shapes only: whether the account may bind each one (owns the namespace, ...) is its
 * type's handler's to say, under the worker's lock (src/server/binding-handlers.ts).
 */
function parseBindings(value: unknown, vars: Record<string, JsonValue> | undefined): Record<string, BindingSpec> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ApiError('invalid', '`bindings` must be an object of env names to bindings such as {"type": "kv", "namespaceId": "..."}.');
  }
  const names = Object.keys(value);
  if (names.length > BINDING_LIMITS.bindings) throw new ApiError('invalid', `A worker may have at most ${BINDING_LIMITS.bindings} bindings; this one has ${names.length}.`);
  for (const name of names) {
    if (!ENV_NAME.test(name)) throw new ApiError('invalid', `Invalid binding name '${name.slice(0, 200)}': use letters, digits, '_' and '$', not starting with a digit (the worker reads it as env.NAME).`);
    if (vars !== undefined && Object.hasOwn(vars, name)) throw new ApiError('invalid', `'${name}' is both a var and a binding: rename one of them.`);
    const spec = (value as Record<string, unknown>)[name];
    const problem = spec === null || typeof spec !== 'object' || Array.isArray(spec) ? 'a binding is an object such as {"type": "kv", "namespaceId": "..."}' : specProblem(spec as Record<string, unknown>);
    if (problem !== undefined) throw new ApiError('invalid', `Invalid binding ${name}: ${problem}.`);
  }
  return value as Record<string, BindingSpec>;
}

function parseLimits(value: unknown, caps: WorkerLimits, capHint = 'ask the operator to raise it'): Partial<WorkerLimits> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ApiError('invalid', `\`limits\` must be an object with any of ${Object.keys(DEFAULT_LIMITS).join(', ')}.`);
  }
  const limits: Partial<WorkerLimits> = {};
  for (const [key, limit] of Object.entries(value)) {
    if (!Object.hasOwn(DEFAULT_LIMITS, key)) {
      throw new ApiError('invalid', `Unknown limit '${key}': the limits are ${Object.keys(DEFAULT_LIMITS).join(', ')}.`);
    }
    const cap = caps[key as keyof WorkerLimits];
    if (typeof limit !== 'number' || !Number.isFinite(limit) || limit <= 0) {
      throw new ApiError('invalid', `Invalid limit ${key}: ${JSON.stringify(limit)}; it must be a number above 0 and at most ${cap}.`);
    }
    if (limit > cap) {
      throw new ApiError('forbidden', `The limit ${key}: ${limit} is over the cap of ${cap}: ask for at most ${cap}, or ${capHint}.`);
    }
    limits[key as keyof WorkerLimits] = limit;
  }
  return limits;
}

/** Whether a JSON value nests objects or arrays deeper than `depth` (stops looking once it does). */
function nestedBeyond(value: unknown, depth: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (depth === 0) return true;
  for (const item of Object.values(value)) if (nestedBeyond(item, depth - 1)) return true;
  return false;
}
