// Bundles a tenant's entry file (TypeScript, npm imports) into what Runtime.load takes: one ES
// module for a module worker (`export default { fetch }`), or one classic script for a
// service-worker style worker (`addEventListener('fetch', ...)`, no exports). The esbuild
// settings resolve packages the way Cloudflare's workerd does (its export conditions first).

import { build, type BuildOptions, type Message, type Metafile } from 'esbuild';
import { isBuiltin } from 'node:module';
import { relative, resolve } from 'node:path';
import type { WorkerModule } from '../runtime/types.ts';
import { WasmImports } from './wasm-modules.ts';

/** What wrangler's minify, keep_names, define, alias, tsconfig and jsx_* settings ask of esbuild. */
export interface BuildSettings {
  minify?: boolean;
  keepNames?: boolean;
  /** Names to JavaScript expressions (as text) put in their place. */
  define?: Record<string, string>;
  /** Module names to what replaces them (a package name or an absolute path). */
  alias?: Record<string, string>;
  /** Absolute path of the tsconfig.json to use. */
  tsconfig?: string;
  jsxFactory?: string;
  jsxFragment?: string;
}

export interface BundleOptions extends BuildSettings {
  /** Directory that file names in messages are relative to (default: process.cwd()). */
  cwd?: string;
  /** Append an inline source map, so stack traces point into the tenant's sources. */
  sourcemap?: boolean;
  /** What `process.env.NODE_ENV` reads as in bundled packages (default 'production'). */
  nodeEnv?: string;
}

/** A bundled worker, ready to spread into a WorkerDefinition. */
export type BundledWorker = { modules: WorkerModule[]; main: string } | { script: string };

export interface BundleResult {
  worker: BundledWorker;
  /** Absolute paths of every source file that went into the bundle (what to watch). */
  inputs: string[];
  /** Warnings, each as `file:line:col: warning: message`. */
  warnings: string[];
}

/** One problem esbuild reported, with a 1-based line and column. */
export interface BundleProblem {
  message: string;
  file?: string;
  line?: number;
  column?: number;
}

/**
 * The entry could not be bundled. `message` holds every problem, one per line, each as
 * `file:line:col: message` (file relative to the working directory); `location` is the first's.
 */
export class BundleError extends Error {
  override name = 'BundleError';
  /** `file:line:col` of the first problem, when it has one. */
  location?: string;
  problems: BundleProblem[];
  constructor(problems: BundleProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.problems = problems;
    const first = problems[0];
    if (first?.file !== undefined) this.location = `${first.file}:${first.line}:${first.column}`;
  }
}

/** The name of the bundle's module (or script), which runtime messages and stack traces use. */
export const BUNDLE_MODULE = 'worker.js';
const MODULE_NAME = BUNDLE_MODULE;

/** Bundles `entry` (a path, relative to `options.cwd`) into a module worker or a service-worker script. */
export async function bundleWorker(entry: string, options: BundleOptions = {}): Promise<BundleResult> {
  const cwd = options.cwd ?? process.cwd();
  const wasm = new WasmImports();
  const common: BuildOptions & { metafile: true; write: false } = {
    absWorkingDir: cwd,
    entryPoints: [entry],
    outfile: MODULE_NAME,
    bundle: true,
    write: false,
    metafile: true,
    logLevel: 'silent',
    // 'browser' rather than 'neutral' for one reason: only then does esbuild honour the object
    // form of package.json's "browser" field ({"fs": false}), which many npm packages rely on
    // to drop their Node-only paths. Conditions and main fields are set explicitly anyway.
    platform: 'browser',
    target: 'es2022',
    // workerd's own condition first, as wrangler does, then what browsers get.
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['browser', 'module', 'main'],
    // Wrangler's default module rules: text and binary imports.
    loader: { '.txt': 'text', '.html': 'text', '.bin': 'binary' },
    define: { 'process.env.NODE_ENV': JSON.stringify(options.nodeEnv ?? 'production'), ...options.define },
    // The platform's own modules (cloudflare:workers) are linked by the runtime, not bundled.
    external: ['cloudflare:*'],
    sourcemap: options.sourcemap ? 'inline' : false,
    minify: options.minify ?? false,
    keepNames: options.keepNames ?? false,
    plugins: [wasm.plugin()],
  };
  if (options.alias !== undefined) common.alias = options.alias;
  if (options.tsconfig !== undefined) common.tsconfig = options.tsconfig;
  if (options.jsxFactory !== undefined) common.jsxFactory = options.jsxFactory;
  if (options.jsxFragment !== undefined) common.jsxFragment = options.jsxFragment;

  let result = await run({ ...common, format: 'esm' });
  const output = Object.values(result.metafile.outputs)[0]!;
  const exports = output.exports;

  if (exports.length === 0 && wasm.files.length > 0) {
    throw new BundleError([
      {
        message:
          `${entry} imports WebAssembly (${wasm.files.map((file) => relative(cwd, file)).join(', ')}), which only a module worker can: ` +
          'use `export default { async fetch(request, env, ctx) { ... } }` instead of addEventListener',
        file: output.entryPoint ?? entry,
        line: 1,
        column: 1,
      },
    ]);
  }
  if (exports.length === 0) {
    // No exports: a service-worker script. Bundle it again as a classic script, so that what
    // only a module may have (import.meta, top-level await) is an error here, not at load.
    result = await run({ ...common, format: 'iife' });
    return { worker: { script: result.text }, inputs: inputsOf(result.metafile, cwd), warnings: result.warnings };
  }
  if (!exports.includes('default')) {
    throw new BundleError([
      {
        message:
          `${entry} exports ${exports.map((name) => `'${name}'`).join(', ')} but no default: a module worker needs ` +
          "`export default { async fetch(request, env, ctx) { ... } }` (or, for a service-worker script, no exports " +
          "and addEventListener('fetch', ...))",
        file: output.entryPoint ?? entry,
        line: 1,
        column: 1,
      },
    ]);
  }
  return {
    worker: { modules: [{ name: MODULE_NAME, source: result.text }, ...wasm.modules()], main: MODULE_NAME },
    inputs: [...inputsOf(result.metafile, cwd), ...wasm.files],
    warnings: result.warnings,
  };
}

interface BuildOutput {
  text: string;
  metafile: Metafile;
  warnings: string[];
}

async function run(options: BuildOptions & { metafile: true; write: false }): Promise<BuildOutput> {
  try {
    const result = await build(options);
    return {
      text: result.outputFiles[0]!.text,
      metafile: result.metafile,
      warnings: result.warnings.map((warning) => formatProblem({ ...toProblem(warning), message: `warning: ${warning.text}` })),
    };
  } catch (error) {
    const errors = (error as { errors?: Message[] }).errors;
    if (!Array.isArray(errors) || errors.length === 0) throw error;
    throw new BundleError(errors.map(toProblem));
  }
}

function toProblem(message: Message): BundleProblem {
  const location = message.location;
  const problem: BundleProblem = { message: explain(message.text) };
  if (location) {
    problem.file = location.file;
    problem.line = location.line;
    problem.column = location.column + 1; // esbuild counts columns from 0, editors from 1
  }
  return problem;
}

// What to use instead of a Node built-in, for the ones people reach for most.
const INSTEAD: Record<string, string> = {
  buffer: 'Uint8Array, TextEncoder/TextDecoder, btoa/atob',
  crypto: 'crypto.subtle and crypto.getRandomValues (the Web Crypto API)',
  events: 'EventTarget',
  fs: 'nothing (workers have no file system): import the file so it is bundled, or fetch it',
  http: 'fetch()',
  https: 'fetch()',
  path: 'URL, or a package such as pathe',
  stream: 'ReadableStream/WritableStream/TransformStream',
  url: 'URL and URLSearchParams',
  util: 'TextEncoder/TextDecoder and structuredClone',
  timers: 'setTimeout/setInterval',
};

function explain(text: string): string {
  const match = /^Could not resolve "(.+)"$/.exec(text);
  if (!match || !isBuiltin(match[1]!)) return text;
  const name = match[1]!;
  const base = name.replace(/^node:/, '').split('/')[0]!;
  const instead = INSTEAD[base] ?? 'the Web APIs workers have (fetch, URL, streams, crypto.subtle, ...)';
  return (
    `"${name}" is a Node.js built-in module, which workers cannot import. ` +
    `Fix: use ${instead} instead, or a package that runs in browsers or workers.`
  );
}

function formatProblem(problem: BundleProblem): string {
  return problem.file === undefined ? problem.message : `${problem.file}:${problem.line}:${problem.column}: ${problem.message}`;
}

function inputsOf(metafile: Metafile, cwd: string): string[] {
  // Keys are relative to absWorkingDir; some (e.g. "<define:...>" or namespaced) are not files.
  return Object.keys(metafile.inputs)
    .filter((key) => !key.includes(':') || /^[A-Za-z]:[\\/]/.test(key))
    .map((key) => resolve(cwd, key));
}
