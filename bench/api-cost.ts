// What each Web API costs every isolate. Two kinds of cost:
//
// - In the runtime snapshot: code every isolate carries from its start (an isolate keeps the
//   source text of its scripts, so each byte of bundle is heap in each isolate, and the
//   objects the code makes at load are copied into each isolate too). Reported per API as its
//   share of the bundle, and as a whole: the idle heap of a context from the runtime snapshot
//   against one from an empty snapshot.
// - Loaded on first use (src/runtime/sandbox-modules.ts): big, rarely used APIs are outside the
//   snapshot and cost nothing until a worker touches them; then the isolate pays a compile
//   (from a code cache made once per process) and the module's top-level code, on that
//   request's CPU time. Reported per module: size, CPU and heap of the first use.
//
//   node --no-node-snapshot bench/api-cost.ts [--isolates 60] [--write]

import ivm from 'isolated-vm';
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { buildSandboxModules, loadSandboxModule, SANDBOX_MODULES } from '../src/runtime/sandbox-modules.ts';
import { ENTRIES_GLOBAL, HOST_CALL_ORDER } from '../src/bridge/protocol.ts';
import { fmt, median, progress, runStandalone, table, type BenchResult } from './lib.ts';

const entry = fileURLToPath(new URL('../src/sandbox/main.ts', import.meta.url));
const kb = (bytes: number) => fmt(bytes / 1024, 1);

function idleHeap(code: string, n: number): number {
  const snapshot = ivm.Isolate.createSnapshot([{ code }]);
  const used: number[] = [];
  for (let i = 0; i < n; i++) {
    const isolate = new ivm.Isolate({ snapshot, memoryLimit: 64 });
    isolate.createContextSync();
    used.push(isolate.getHeapStatisticsSync().used_heap_size);
    isolate.dispose();
  }
  return median(used);
}

export async function apiCost(args: string[]): Promise<BenchResult> {
  const at = args.indexOf('--isolates');
  const n = at >= 0 ? Number(args[at + 1]) : 60;

  progress('api-cost: bundle');
  // Built as the runtime image builds it (src/runtime/runtime-image.ts), with a metafile.
  const bundled = await build({
    entryPoints: [entry], bundle: true, write: false, format: 'iife', platform: 'neutral', target: 'es2024',
    minify: true, legalComments: 'none', banner: { js: '"use strict";' }, logLevel: 'silent', metafile: true,
  });
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

  progress('api-cost: first use of each sandbox module');
  const modules = await buildSandboxModules();
  const runtimeSnapshot = ivm.Isolate.createSnapshot([{ code: source }]);
  const firstUse: (string | number)[][] = [];
  for (const name of Object.keys(SANDBOX_MODULES)) {
    const cpu: number[] = [];
    const heap: number[] = [];
    for (let i = 0; i < 20; i++) {
      const isolate = new ivm.Isolate({ snapshot: runtimeSnapshot, memoryLimit: 64 });
      const context = isolate.createContextSync();
      // Connected as in a worker's isolate, for the modules a module loads in turn (compression
      // reads TextDecoder, itself a module); every other host operation does nothing.
      const receive = context.evalSync(`${ENTRIES_GLOBAL}.receiveModule`, { reference: true }) as ivm.Reference<(name: string, exports: unknown) => void>;
      const ops = HOST_CALL_ORDER.map((op) => op === 'loadModule'
        ? new ivm.Callback((nested: string) => loadSandboxModule(isolate, context, modules, nested, receive))
        : new ivm.Callback(() => {}));
      context.evalSync(`${ENTRIES_GLOBAL}.init`, { reference: true }).applySync(undefined, ops);
      const before = isolate.getHeapStatisticsSync().used_heap_size;
      const t0 = isolate.cpuTime;
      loadSandboxModule(isolate, context, modules, name, receive);
      cpu.push(Number(isolate.cpuTime - t0) / 1e6);
      heap.push(isolate.getHeapStatisticsSync().used_heap_size - before);
      isolate.dispose();
    }
    firstUse.push([name, kb(modules[name]!.source.length), fmt(median(cpu)), kb(median(heap))]);
  }

  const rows = [...byApi].sort((a, b) => b[1] - a[1]).map(([api, bytes]) => [api, kb(bytes)]);
  const markdown = [
    `In the runtime snapshot, carried by every isolate from its start: the bundle is ${kb(source.length)} KB; ` +
      `a context from it has **${kb(runtimeHeap - emptyHeap)} KB** more used heap than one from an empty snapshot ` +
      `(median of ${n} isolates). Each API's share of the bundle (KB):`,
    '',
    table(['API (src/api/…)', 'KB in the snapshot bundle'], rows),
    '',
    'Loaded on first use, outside the snapshot (what the first use costs that isolate; median of 20):',
    '',
    table(['sandbox module', 'KB', 'first-use CPU ms', 'heap KB'], firstUse),
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
    data: { bundleBytes: source.length, byApi: Object.fromEntries(byApi), emptyHeap, runtimeHeap, firstUse },
  };
}

await runStandalone('api-cost', apiCost);
