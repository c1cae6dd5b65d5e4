// Sandbox modules: parts of the sandbox runtime that every isolate may need but most never
// use (streams, compression), kept out of the runtime snapshot and evaluated in an isolate
// the first time its code touches them.
//
// Why not in the snapshot: run at load, web-streams-polyfill and fflate alone would add ~385 KB
// of heap to every idle isolate, against ~215 KB for the whole runtime (bench/api-cost.ts).
// Wrapped in functions that run on first use they add ~8 KB with isolet's isolated-vm build,
// which shares a snapshot's source text among its isolates, but ~100 KB on the prebuilt binary,
// where each isolate keeps its own copy; and a first call would compile them without a code
// cache, on the request's CPU. Here an idle isolate pays nothing; the first use pays
// a compile (from a code cache made once per process), the module's top-level code and its
// create(), charged to no request: the host credits the isolate's CPU meter with them, up to a
// bound, and the native CPU budget holds them as it holds the rest of the run (worker-isolate.ts).
//
// How a module gets in: the sandbox's loadModule(name) (src/sandbox/host-calls.ts) calls the host
// synchronously; the host compiles and runs the module's script in the isolate's context
// (nested in that call: isolated-vm runs it on the thread already inside the isolate), takes
// a Reference to the script's completion value (a function that makes the module's exports
// from the runtime's captured built-ins, see shared-primordials.ts) and hands it to the
// sandbox's `receiveModule` entry point, which calls it, still nested in the host's call. No
// global is involved, so tenant code can neither see nor intercept the delivery; and only names
// from SANDBOX_MODULES can be asked for.

import ivm from 'isolated-vm';
import type { EntryPoints } from './sandbox-entries.ts';
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { boundLibrariesPlugin } from './bound-libraries.ts';
import { modulePrimordialsPlugin, PRIMORDIALS_PARAMETER } from './shared-primordials.ts';

/**
 * Module name -> entry file. Each file's exports are what the sandbox gets. The paths go
 * through '../../src/' because this file runs from src/runtime in a checkout and from
 * dist/runtime in the npm package, and the sandbox sources are in src/ in both.
 */
export const SANDBOX_MODULES: Record<string, string> = {
  streams: fileURLToPath(new URL('../../src/api/streams/sandbox/module.ts', import.meta.url)),
  compression: fileURLToPath(new URL('../../src/api/compression/sandbox/module.ts', import.meta.url)),
  blob: fileURLToPath(new URL('../../src/api/blob/sandbox/module.ts', import.meta.url)),
  'form-data': fileURLToPath(new URL('../../src/api/form-data/sandbox/module.ts', import.meta.url)),
  'url-pattern': fileURLToPath(new URL('../../src/api/url-pattern/sandbox/module.ts', import.meta.url)),
  crypto: fileURLToPath(new URL('../../src/api/crypto/sandbox/module.ts', import.meta.url)),
  timers: fileURLToPath(new URL('../../src/api/timers/sandbox/module.ts', import.meta.url)),
  encoding: fileURLToPath(new URL('../../src/api/encoding/sandbox/module.ts', import.meta.url)),
  events: fileURLToPath(new URL('../../src/api/events/sandbox/module.ts', import.meta.url)),
  'url-search-params': fileURLToPath(new URL('../../src/api/url/sandbox/search-params.ts', import.meta.url)),
  fetch: fileURLToPath(new URL('../../src/api/fetch/sandbox/module.ts', import.meta.url)),
  console: fileURLToPath(new URL('../../src/api/console/sandbox/module.ts', import.meta.url)),
  'structured-clone': fileURLToPath(new URL('../../src/api/structured-clone/sandbox/module.ts', import.meta.url)),
  assets: fileURLToPath(new URL('../../src/api/assets/sandbox/module.ts', import.meta.url)),
  kv: fileURLToPath(new URL('../../src/api/kv/sandbox/module.ts', import.meta.url)),
  service: fileURLToPath(new URL('../../src/api/service/sandbox/module.ts', import.meta.url)),
  'cloudflare-workers': fileURLToPath(new URL('../../src/api/cloudflare-workers/sandbox/module.ts', import.meta.url)),
};

export interface SandboxModule {
  source: string;
  /**
   * `source` copied out once per process. isolet's isolated-vm build compiles it without copying
   * it again, so every isolate using the module shares these bytes rather than holding a copy of
   * its own (native/isolated-vm/zzzzzzzzz-shared-script-code.patch). Undefined on the prebuilt
   * binary, which compiles only strings.
   */
  sharedSource: ivm.ExternalCopy<string> | undefined;
  /** V8 code cache for `source`, made once per process. */
  cachedData: ivm.ExternalCopy<ArrayBuffer> | undefined;
}

/**
 * Bundles one sandbox module into a script whose completion value is a function of the
 * runtime's primordialValues() that evaluates the module and returns its exports object.
 */
export async function bundleSandboxModule(name: string): Promise<string> {
  const entry = SANDBOX_MODULES[name];
  if (!entry) throw new Error(`No sandbox module is named ${name}`);
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'iife',
    globalName: '__module',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    target: 'es2024',
    // Unlike the snapshot, these may minify identifiers: the classes tenants see have their
    // names pinned with Object.defineProperty, and the bytes are heap in every isolate using them.
    minify: true,
    legalComments: 'none',
    // A script, not a module: wrap the IIFE in a function so that the var stays local, the
    // function is the completion value and the module runs when the sandbox calls it.
    banner: { js: `"use strict";(function(${PRIMORDIALS_PARAMETER}){` },
    footer: { js: 'return __module})' },
    logLevel: 'silent',
    plugins: [boundLibrariesPlugin, modulePrimordialsPlugin],
  });
  return result.outputFiles[0]!.text;
}

/** isolet's isolated-vm build also compiles code given as an ExternalCopy of a string, and shares its bytes. */
interface CodeSharingIsolate {
  compileScriptSync(code: string | ivm.ExternalCopy<string>, scriptInfo?: ivm.ScriptInfo): ivm.Script;
}

/** Whether `isolate` compiles code from an ExternalCopy (isolet's build) or only from a string (the prebuilt binary). */
function compilesSharedCode(isolate: ivm.Isolate): boolean {
  const probe = new ivm.ExternalCopy('0');
  try {
    (isolate as unknown as CodeSharingIsolate).compileScriptSync(probe).release();
    return true;
  } catch (error) {
    if (error instanceof TypeError) return false;
    throw error;
  } finally {
    probe.release();
  }
}

/** Every sandbox module, bundled and with a code cache. */
export async function buildSandboxModules(): Promise<Record<string, SandboxModule>> {
  const modules: Record<string, SandboxModule> = {};
  const isolate = new ivm.Isolate({ memoryLimit: 64 });
  try {
    const shareCode = compilesSharedCode(isolate);
    for (const name of Object.keys(SANDBOX_MODULES)) {
      const source = await bundleSandboxModule(name);
      const script = isolate.compileScriptSync(source, { filename: `isolet:${name}.js`, produceCachedData: true });
      modules[name] = {
        source,
        sharedSource: shareCode ? new ivm.ExternalCopy(source) : undefined,
        cachedData: (script as ivm.Script & ivm.CachedDataResult).cachedData,
      };
      script.release();
    }
  } finally {
    isolate.dispose();
  }
  return modules;
}

/**
 * Runs module `name`'s script in `context` and delivers its completion value to the sandbox through
 * `receive` (its receiveModule entry point). Called synchronously from inside the isolate.
 */
export function loadSandboxModule(
  isolate: ivm.Isolate,
  context: ivm.Context,
  modules: Record<string, SandboxModule>,
  name: unknown,
  receive: EntryPoints['receiveModule'],
): void {
  const module = typeof name === 'string' && Object.hasOwn(modules, name) ? modules[name] : undefined;
  if (!module) throw new TypeError(`Unknown sandbox module ${JSON.stringify(String(name)).slice(0, 100)}`);
  const script = (isolate as unknown as CodeSharingIsolate).compileScriptSync(module.sharedSource ?? module.source, {
    filename: `isolet:${name as string}.js`,
    ...(module.cachedData ? { cachedData: module.cachedData } : {}),
  });
  try {
    const completion = script.runSync(context, { reference: true }) as ivm.Reference<unknown>;
    try {
      // receiveModule evaluates the module. Held to the worker's native CPU budget like the rest of
      // the run: tenant code can run in it (an accessor the tenant added to a prototype, read by a
      // library's top-level code), and unbudgeted, a loop there would hold the process's thread.
      receive.applySync(undefined, [name as string, completion.derefInto() as never]);
    } finally {
      completion.release();
    }
  } finally {
    script.release();
  }
}
