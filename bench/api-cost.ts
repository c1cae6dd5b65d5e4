// What each Web API costs every isolate. Two kinds of cost:
//
// - In the runtime snapshot: code every isolate carries from its start (the objects the code
//   makes at load are copied into each isolate, and on the prebuilt isolated-vm so is the
//   source text, each byte of bundle a byte of heap in each isolate; isolet's build shares it). Reported per API as its
//   share of the bundle, and as a whole: the idle heap of a context from the runtime snapshot
//   against one from an empty snapshot.
// - Loaded on first use (src/runtime/sandbox-modules.ts): big, rarely used APIs are outside the
//   snapshot and cost nothing until a worker touches them; then the isolate pays a compile
//   (from a code cache made once per process) and the module's code, on that request's CPU
//   time. Reported per module, for a first touch of its API as a worker makes it: size, CPU,
//   heap right after (garbage included) and heap still used after a full GC (what the isolate
//   keeps). For comparison, what the stream and compression libraries would cost every isolate
//   in the snapshot instead, run at load or wrapped in functions that run on first use.
//
//   node --no-node-snapshot bench/api-cost.ts [--isolates 60] [--write]

import ivm from 'isolated-vm';
import { build } from 'esbuild';
import { setFlagsFromString } from 'node:v8';
import { buildSandboxRuntime } from '../src/runtime/runtime-image.ts';
import { buildSandboxModules, loadSandboxModule, SANDBOX_MODULES } from '../src/runtime/sandbox-modules.ts';
import { ENTRIES_GLOBAL, HOST_CALL_ORDER } from '../src/bridge/protocol.ts';
import { fmt, median, progress, runStandalone, table, type BenchResult } from './lib.ts';

// Every context made from here on has a gc() global: the retained heap is read after a full GC.
setFlagsFromString('--expose-gc');

const kb = (bytes: number) => fmt(bytes / 1024, 1);

/** A worker's first touch of each sandbox module's API (each must load that module). */
const FIRST_TOUCH: Record<string, string> = {
  streams: 'new ReadableStream()',
  compression: "new CompressionStream('gzip')",
  blob: "new Blob(['a'])",
  'form-data': 'new FormData()',
  'url-pattern': "new URLPattern({ pathname: '/a/:id' })",
  crypto: 'crypto.getRandomValues(new Uint8Array(4))',
  timers: 'clearTimeout(setTimeout(() => {}, 1))',
  encoding: 'new TextEncoder()',
  events: "new Event('x')",
  'url-search-params': "new URLSearchParams('a=1')",
  fetch: "fetch('http://example.com/').catch(() => {})",
  console: "console.log('x')",
  'structured-clone': 'structuredClone({})',
};

/**
 * Sandbox modules a worker's code cannot touch by itself: loaded for a binding in its env (an
 * assets, KV or service binding) or for its import of `cloudflare:workers`. Not measured here.
 */
const LOADED_BY_DEFINITION = new Set(['assets', 'kv', 'service', 'cloudflare-workers']);

/** A snapshot of `code` made as the Runtime makes its image: isolet's build then shares the source text among its isolates. */
function snapshotOf(code: string): ivm.ExternalCopy<ArrayBuffer> {
  const script = { code, shareSource: true };
  return ivm.Isolate.createSnapshot([script]);
}

function idleHeap(code: string, n: number): number {
  const snapshot = snapshotOf(code);
  const used: number[] = [];
  for (let i = 0; i < n; i++) {
    const isolate = new ivm.Isolate({ snapshot, memoryLimit: 64 });
    isolate.createContextSync();
    used.push(isolate.getHeapStatisticsSync().used_heap_size);
    isolate.dispose();
  }
  return median(used);
}

/** The stream and compression libraries alone, bundled as the snapshot would hold them. */
async function librariesBundle(contents: string): Promise<string> {
  const result = await build({
    stdin: { contents, resolveDir: process.cwd(), loader: 'ts' }, bundle: true, write: false, format: 'iife',
    platform: 'neutral', mainFields: ['module', 'main'], target: 'es2024', minify: true, legalComments: 'none',
  });
  return result.outputFiles[0]!.text;
}

export async function apiCost(args: string[]): Promise<BenchResult> {
  const at = args.indexOf('--isolates');
  const n = at >= 0 ? Number(args[at + 1]) : 60;

  progress('api-cost: bundle');
  const bundled = await buildSandboxRuntime(true);
  const source = bundled.outputFiles[0]!.text;
  const inputs = Object.values(bundled.metafile!.outputs)[0]!.inputs;
  const byApi = new Map<string, number>();
  for (const [file, { bytesInOutput }] of Object.entries(inputs)) {
    const api = /src\/api\/([^/]+)\//.exec(file)?.[1] ?? (file.includes('src/sandbox/') ? '(runtime core)' : '(libraries)');
    byApi.set(api, (byApi.get(api) ?? 0) + bytesInOutput);
  }

  progress('api-cost: idle heap');
  const emptyHeap = idleHeap('', n);
  const runtimeHeap = idleHeap(source, n);

  progress('api-cost: the stream libraries in a snapshot, for comparison');
  const eager = await librariesBundle(`import * as s from 'web-streams-polyfill'; import * as f from 'fflate'; (globalThis as any).x = [s, f.Gzip, f.Gunzip, f.Deflate, f.Inflate, f.Zlib, f.Unzlib];`);
  const lazy = await librariesBundle(`declare const require: any; (globalThis as any).x = () => [require('web-streams-polyfill'), require('fflate')];`);
  const eagerHeap = idleHeap(eager, n) - emptyHeap;
  const lazyHeap = idleHeap(lazy, n) - emptyHeap;

  progress('api-cost: first use of each sandbox module');
  const modules = await buildSandboxModules();
  const runtimeSnapshot = snapshotOf(source);
  const firstUse: (string | number)[][] = [];
  for (const name of Object.keys(SANDBOX_MODULES)) {
    const touch = FIRST_TOUCH[name];
    if (touch === undefined && LOADED_BY_DEFINITION.has(name)) continue;
    if (touch === undefined) throw new Error(`bench/api-cost.ts: FIRST_TOUCH has no use of sandbox module ${name}`);
    const cpu: number[] = [];
    const heap: number[] = [];
    const kept: number[] = [];
    let loaded: string[] = [];
    for (let i = 0; i < 20; i++) {
      const isolate = new ivm.Isolate({ snapshot: runtimeSnapshot, memoryLimit: 64 });
      const context = isolate.createContextSync();
      // Connected as in a worker's isolate, with the modules a module loads in turn (compression
      // reads TextDecoder, itself a module); every other host call does nothing.
      const receive = context.evalSync(`${ENTRIES_GLOBAL}.receiveModule`, { reference: true }) as ivm.Reference<(name: string, exports: unknown) => void>;
      const ops = HOST_CALL_ORDER.map((op) => op === 'loadModule'
        ? new ivm.Callback((nested: string) => {
          loaded.push(nested);
          loadSandboxModule(isolate, context, modules, nested, receive);
        })
        : new ivm.Callback(() => {}));
      const entries = context.evalSync(`const entries = ${ENTRIES_GLOBAL}; entries.init`, { reference: true });
      // init takes first whether a drain hook runs: none here (the sandbox waits its fixed turns instead).
      entries.applySync(undefined, [false, ...ops]);
      // The touch runs in a request, as a worker's would (fetch() needs one); a request that
      // touches nothing is measured alongside, and taken off.
      context.evalSync(`entries.register({ default: { fetch(request) {
        if (request.url.endsWith('/touch')) void (${touch});
        return new Response('');
      } } }, {}, false)`);
      let id = 0;
      const measure = (path: string): [number, number, number] => {
        context.evalSync('gc()');
        const before = isolate.getHeapStatisticsSync().used_heap_size;
        const t0 = isolate.cpuTime;
        context.evalSync(`entries.dispatch(${++id}, 'GET', 'http://api-cost.localhost${path}', 'host\\napi-cost.localhost', false, 0, '', false)`);
        const cpuMs = Number(isolate.cpuTime - t0) / 1e6;
        const after = isolate.getHeapStatisticsSync().used_heap_size;
        context.evalSync('gc()');
        return [cpuMs, after - before, isolate.getHeapStatisticsSync().used_heap_size - before];
      };
      measure('/');
      const control = measure('/');
      loaded = [];
      const touched = measure('/touch');
      cpu.push(touched[0] - control[0]);
      heap.push(touched[1] - control[1]);
      kept.push(touched[2] - control[2]);
      isolate.dispose();
    }
    if (!loaded.includes(name)) throw new Error(`bench/api-cost.ts: \`${touch}\` did not load sandbox module ${name} (it loaded ${loaded.join(', ') || 'none'})`);
    const others = loaded.filter((other) => other !== name);
    firstUse.push([`${name}${others.length ? ` (and ${others.join(', ')})` : ''}`, `\`${touch}\``, kb(modules[name]!.source.length), fmt(median(cpu)), kb(median(heap)), kb(median(kept))]);
  }

  const rows = [...byApi].sort((a, b) => b[1] - a[1]).map(([api, bytes]) => [api, kb(bytes)]);
  const markdown = [
    `In the runtime snapshot, carried by every isolate from its start: the bundle is ${kb(source.length)} KB; ` +
      `a context from it has **${kb(runtimeHeap - emptyHeap)} KB** more used heap than one from an empty snapshot ` +
      `(median of ${n} isolates). Each API's share of the bundle (KB):`,
    '',
    table(['API (src/api/…)', 'KB in the snapshot bundle'], rows),
    '',
    'Loaded on first use, outside the snapshot: what a worker\'s first touch of the API costs that isolate, with any ' +
      'module that loads in turn (median of 20; heap right after, garbage included, and still used after a full GC):',
    '',
    table(['sandbox module', 'first touch', 'KB', 'first-use CPU ms', 'heap KB', 'kept after GC KB'], firstUse),
    '',
    `For comparison, the stream and compression libraries (web-streams-polyfill, fflate) in the snapshot instead would add ` +
      `${kb(eagerHeap)} KB to every idle isolate run at load, ${kb(lazyHeap)} KB wrapped in functions run on first use.`,
    '',
    'An isolate pays a module only if its worker touches the API (e.g. `ReadableStream`, a `.body`, `CompressionStream`, ' +
      '`Blob`, `FormData`, `URLPattern`, `crypto`, `console`, `setTimeout`, `fetch()`, `TextEncoder`, `URLSearchParams`, `Event`, ' +
      '`structuredClone`); the CPU falls on that request and counts against its CPU limit.',
  ].join('\n');
  return {
    name: 'api-cost',
    title: 'What each Web API costs an isolate',
    markdown,
    targets: [],
    data: { bundleBytes: source.length, byApi: Object.fromEntries(byApi), emptyHeap, runtimeHeap, firstUse, eagerHeap, lazyHeap },
  };
}

await runStandalone('api-cost', apiCost);
