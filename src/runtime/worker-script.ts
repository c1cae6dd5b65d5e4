// The worker's own code in its isolate: ES modules linked by name (their imports resolved
// among the worker's modules only), or one service-worker script, compiled and run in the
// worker's context. Errors name the module and line, and say how to fix an import isolet
// cannot satisfy.

import type ivm from 'isolated-vm';
import { posix } from 'node:path';
import { WorkerLoadError, type WorkerDefinition } from './types.ts';
import { HOLDER_SPECIFIER, wasmModuleIn } from './wasm-modules.ts';

/**
 * Runs the worker's top-level code; returns the main module's namespace (module syntax), or
 * undefined for a service-worker script.
 */
export async function runWorkerCode(
  isolate: ivm.Isolate,
  context: ivm.Context,
  definition: WorkerDefinition,
  exposeBuiltin: (name: string) => Promise<void>,
): Promise<ivm.Reference<unknown> | undefined> {
  if (definition.modules && definition.modules.length > 0) return runModules(isolate, context, definition, exposeBuiltin);
  if (typeof definition.script === 'string') {
    await runScript(isolate, context, definition.script);
    return undefined;
  }
  throw new WorkerLoadError('The worker has no code: give it `modules` (ES modules) or a `script` (service-worker syntax).');
}

/**
 * The source of `cloudflare:workers`: its exports are what the sandbox put in a global for it
 * (exposeBuiltinModule), taken and the global deleted by its first line. It is evaluated apart,
 * before the worker's modules are linked, so no tenant code runs before it.
 */
const CLOUDFLARE_WORKERS_SOURCE = `const cf = globalThis.__isolet_builtin; delete globalThis.__isolet_builtin;
export const WorkerEntrypoint = cf.WorkerEntrypoint;
export const DurableObject = cf.DurableObject;
export const RpcTarget = cf.RpcTarget;
export const env = cf.env;
`;

/** Built-in modules by specifier: what a worker may import besides its own modules. */
const BUILTIN_MODULES: Record<string, string> = { 'cloudflare:workers': CLOUDFLARE_WORKERS_SOURCE };

async function builtinModule(isolate: ivm.Isolate, context: ivm.Context, specifier: string, exposeBuiltin: (name: string) => Promise<void>): Promise<ivm.Module> {
  await exposeBuiltin(specifier);
  const module = await isolate.compileModule(BUILTIN_MODULES[specifier]!, { filename: specifier });
  await module.instantiate(context, () => {
    throw new Error(`${specifier} imports nothing`);
  });
  await module.evaluate();
  return module;
}

async function runModules(isolate: ivm.Isolate, context: ivm.Context, definition: WorkerDefinition, exposeBuiltin: (name: string) => Promise<void>): Promise<ivm.Reference<unknown>> {
  const modules = definition.modules!;
  const byName = new Map<string, ivm.Module>();
  const names = new Map<ivm.Module, string>();
  /** Each WebAssembly module's wrapper to the holder it re-exports from. */
  const holders = new Map<ivm.Module, ivm.Module>();
  for (const mod of modules) {
    const name = normalizeModuleName(mod.name);
    if (byName.has(name)) throw new WorkerLoadError(`Two modules are named '${name}': give each module a unique name.`);
    let compiled: ivm.Module;
    if (mod.type === 'wasm') {
      try {
        const { wrapper, holder } = await wasmModuleIn(isolate, context, mod, name);
        holders.set(wrapper, holder);
        compiled = wrapper;
      } catch (error) {
        throw new WorkerLoadError(`${name}: cannot load this WebAssembly module: ${error instanceof Error ? error.message : String(error)}`, name);
      }
    } else {
      try {
        compiled = await isolate.compileModule(mod.source, { filename: name });
      } catch (error) {
        throw syntaxError(error, name);
      }
    }
    byName.set(name, compiled);
    names.set(compiled, name);
  }
  const builtins = new Map<string, ivm.Module>();
  for (const compiled of names.keys()) {
    for (const specifier of compiled.dependencySpecifiers) {
      if (Object.hasOwn(BUILTIN_MODULES, specifier) && !builtins.has(specifier)) {
        builtins.set(specifier, await builtinModule(isolate, context, specifier, exposeBuiltin));
      }
    }
  }
  const mainName = normalizeModuleName(definition.main ?? modules[0]!.name);
  const main = byName.get(mainName);
  if (!main) {
    throw new WorkerLoadError(`The main module '${mainName}' is not among the worker's modules (${[...byName.keys()].join(', ')}).`);
  }
  await main.instantiate(context, (specifier, referrer) => {
    const holder = holders.get(referrer);
    if (holder !== undefined && specifier === HOLDER_SPECIFIER) return holder;
    const from = names.get(referrer) ?? mainName;
    const builtin = builtins.get(specifier);
    if (builtin !== undefined) return builtin;
    if (/^cloudflare:/.test(specifier)) {
      throw new Error(
        `Cannot import '${specifier}' (imported from ${from}): isolet provides 'cloudflare:workers' (WorkerEntrypoint, env) ` +
          'and no other cloudflare: module yet.',
      );
    }
    const resolved = resolveSpecifier(specifier, from);
    const target = resolved === undefined ? undefined : byName.get(resolved);
    if (!target && /^node:/.test(specifier)) {
      throw new Error(
        `Cannot import '${specifier}' (imported from ${from}): isolet does not provide Node.js's built-in modules. ` +
          'Use the Web platform APIs (fetch, crypto.subtle, streams, TextEncoder, ...), or bundle a polyfill for it.',
      );
    }
    if (!target) {
      throw new Error(
        `Cannot find module '${specifier}' imported from ${from}. The worker's modules are: ${[...byName.keys()].join(', ')}. ` +
          'Bundle npm packages into the worker (isolet dev and isolet deploy do this).',
      );
    }
    return target;
  });
  await main.evaluate();
  return main.namespace;
}

async function runScript(isolate: ivm.Isolate, context: ivm.Context, source: string): Promise<void> {
  let script: ivm.Script;
  try {
    script = await isolate.compileScript(source, { filename: 'worker.js' });
  } catch (error) {
    throw syntaxError(error, 'worker.js');
  }
  await script.run(context, { release: true });
}

function normalizeModuleName(name: string): string {
  const normalized = posix.normalize(name.replace(/^\.\//, ''));
  return normalized.startsWith('/') ? normalized.slice(1) : normalized;
}

function resolveSpecifier(specifier: string, from: string): string | undefined {
  // wrangler's spelling of a WebAssembly import names the same module.
  if (specifier.endsWith('.wasm?module')) specifier = specifier.slice(0, -'?module'.length);
  if (specifier.startsWith('./') || specifier.startsWith('../')) {
    const joined = posix.normalize(posix.join(posix.dirname(from), specifier));
    return joined.startsWith('../') ? undefined : joined;
  }
  if (specifier.startsWith('/')) return normalizeModuleName(specifier);
  return normalizeModuleName(specifier);
}

function syntaxError(error: unknown, moduleName: string): WorkerLoadError {
  const message = error instanceof Error ? error.message : String(error);
  const match = /^(.*) \[(.+):(\d+):(\d+)\]$/.exec(message);
  if (match) {
    const location = `${match[2]}:${match[3]}:${match[4]}`;
    return new WorkerLoadError(`${location}: SyntaxError: ${match[1]}`, location);
  }
  return new WorkerLoadError(`${moduleName}: ${message}`, moduleName);
}
