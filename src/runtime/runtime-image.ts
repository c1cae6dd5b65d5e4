// The runtime image: the sandbox runtime (src/sandbox/main.ts and the API folders) bundled
// into one script, and a V8 startup snapshot of it. Every new isolate is deserialised from
// the snapshot instead of parsing and running the runtime again; that is what makes a cold
// start cost about as much as a bare isolate (numbers in docs/BENCHMARKS.md).

import ivm from 'isolated-vm';
import { build, type BuildResult } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { buildSandboxModules, type SandboxModule } from './sandbox-modules.ts';
import { runtimePrimordialsPlugin } from './shared-primordials.ts';
import { ENTRIES_GLOBAL, HOST_CALL_ORDER } from '../bridge/protocol.ts';
import { applyEngineFlags } from './engine-flags.ts';

// '../../src/': this file runs as src/runtime/*.ts in a checkout and as dist/runtime/*.js in
// the npm package, and the sandbox's TypeScript sources are in src/ in both.
const entry = fileURLToPath(new URL('../../src/sandbox/main.ts', import.meta.url));

export interface RuntimeImage {
  /** The bundled sandbox runtime. */
  source: string;
  /** V8 snapshot of a context that ran `source`. */
  snapshot: ivm.ExternalCopy<ArrayBuffer>;
  /** Modules isolates load on first use, outside the snapshot (see sandbox-modules.ts). */
  modules: Record<string, SandboxModule>;
}

export async function bundleSandboxRuntime(): Promise<string> {
  return (await buildSandboxRuntime(false)).outputFiles[0]!.text;
}

/** The runtime bundle, with esbuild's metafile when asked (what each file adds: bench/api-cost.ts). */
export function buildSandboxRuntime<M extends boolean>(metafile: M): Promise<BuildResult<{ write: false; metafile: M }>> {
  return build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'neutral',
    target: 'es2024',
    // Fully minified: the names the runtime's scopes and objects keep are heap in every isolate
    // (identifiers minified saved 31 KB per isolate), and so is the whole source text on the
    // prebuilt isolated-vm (the patched build shares one copy per process among the isolates made
    // from the snapshot: native/isolated-vm/zzzzzzzz-shared-snapshot-sources.patch). The names tenants
    // see (Headers, FetchEvent, ... in errors and console output) are pinned where the classes
    // are defined (src/sandbox/web-platform.ts, dispatch.ts).
    minify: true,
    legalComments: 'none',
    banner: { js: '"use strict";' },
    logLevel: 'silent',
    metafile,
    plugins: [runtimePrimordialsPlugin],
  });
}

/**
 * Runs once while the snapshot is made, in a throwaway context: it takes a request through the
 * runtime's hot path (with stand-in host functions) so V8 compiles those functions and the
 * snapshot keeps their bytecode. Without it every new isolate compiles them again on its first
 * request, which was most of a cold start's CPU. The context's state is discarded: isolates
 * start exactly as the runtime script left them.
 */
const WARMUP = `(() => {
  const api = globalThis[${JSON.stringify(ENTRIES_GLOBAL)}];
  const noop = () => {};
  let answered = false;
  const stand = { sync: () => new ArrayBuffer(0), respond: () => { answered = true; }, respondSimple: () => { answered = true; }, respondSimpleNow: () => { answered = true; } };
  api.init(false, ...${JSON.stringify(HOST_CALL_ORDER)}.map((name) => stand[name] ?? noop));
  api.register({ default: { fetch(request, env, ctx) {
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    headers.set('x-warm', url.pathname);
    return new Response('warm ' + request.method, { status: 200, headers });
  } } }, {}, false);
  api.dispatch(1, 'GET', 'http://warm.localhost/path?q=1', 'host\\nwarm.localhost\\naccept\\n*/*', false, 0, '', false);
  Response.json({ a: 1 });
  // ICU builds its caches (calendars, time zones, number patterns, collation and break rules)
  // once per process, on first use: 15-45 ms of CPU, which the first request in the process to
  // format a date or a number would otherwise be charged (a 503 under the 50 ms limit). Later
  // isolates pay under 1 ms. The objects go with this context; the caches stay in the process.
  const when = new Date(0);
  new Intl.DateTimeFormat().format(when);
  new Intl.DateTimeFormat('en-US', { dateStyle: 'full', timeStyle: 'full', timeZone: 'America/New_York' }).format(when);
  when.toLocaleString();
  new Intl.NumberFormat().format(1234.5);
  new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' }).format(1234.5);
  (1234.5).toLocaleString();
  new Intl.Collator().compare('a', 'b');
  'a'.localeCompare('b');
  new Intl.PluralRules().select(1);
  new Intl.RelativeTimeFormat().format(-1, 'day');
  new Intl.ListFormat().format(['a', 'b']);
  for (const segment of new Intl.Segmenter(undefined, { granularity: 'word' }).segment('a b')) void segment;
  new Intl.DisplayNames('en', { type: 'region' }).of('US');
  return answered;
})();`;

let cached: Promise<RuntimeImage> | undefined;

/** Built once per process: every Runtime in it shares the same image. */
export function runtimeImage(): Promise<RuntimeImage> {
  cached ??= (async () => {
    // Before the first isolate of the process: every tenant's isolate runs under them.
    applyEngineFlags();
    const source = await bundleSandboxRuntime();
    // shareSource (isolet's isolated-vm build): the isolates made from the snapshot share one copy
    // of the runtime's text instead of each deserialising its own; the snapshot is then good only
    // in this process, which is the only one that uses it. The prebuilt binary ignores it.
    const script = { code: source, filename: 'isolet:runtime.js', shareSource: true };
    const snapshot = ivm.Isolate.createSnapshot([script], WARMUP);
    return { source, snapshot, modules: await buildSandboxModules() };
  })();
  return cached;
}
