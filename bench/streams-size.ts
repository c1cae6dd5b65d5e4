// What streams and compression cost each isolate: heap of an idle isolate from the runtime
// snapshot against a bare context, the same with the stream libraries bundled into the
// snapshot (eagerly, or wrapped in lazy init functions) for comparison, and what an isolate
// pays on first use of the sandbox modules (CPU and heap).
//
//   node --no-node-snapshot bench/streams-size.ts [--isolates 100]

import ivm from 'isolated-vm';
import { build } from 'esbuild';
import { bundleSandboxRuntime } from '../src/runtime/runtime-image.ts';
import { buildSandboxModules, loadSandboxModule } from '../src/runtime/sandbox-modules.ts';

const args = process.argv.slice(2);
const N = Number(args[args.indexOf('--isolates') + 1] || 100);
const median = (xs: number[]): number => xs.slice().sort((a, b) => a - b)[xs.length >> 1]!;
const kb = (n: number): string => (n / 1024).toFixed(1) + ' KB';

function idleHeap(code: string): number {
  const snapshot = ivm.Isolate.createSnapshot([{ code }]);
  const used: number[] = [];
  const isolates: ivm.Isolate[] = [];
  for (let i = 0; i < N; i++) {
    const isolate = new ivm.Isolate({ snapshot, memoryLimit: 64 });
    isolate.createContextSync();
    used.push(isolate.getHeapStatisticsSync().used_heap_size);
    isolates.push(isolate);
  }
  for (const isolate of isolates) isolate.dispose();
  return median(used);
}

async function libBundle(contents: string): Promise<string> {
  const result = await build({
    stdin: { contents, resolveDir: process.cwd(), loader: 'ts' }, bundle: true, write: false, format: 'iife',
    platform: 'neutral', mainFields: ['module', 'main'], target: 'es2024', minify: true, legalComments: 'none',
  });
  return result.outputFiles[0]!.text;
}

const runtime = await bundleSandboxRuntime();
const modules = await buildSandboxModules();
const empty = idleHeap('');
console.log(`runtime bundle ${kb(runtime.length)}; sandbox modules: ${Object.entries(modules).map(([n, m]) => `${n} ${kb(m.source.length)}`).join(', ')}`);
console.log(`\nidle heap per isolate, median of ${N} (over an empty snapshot):`);
console.log(`  runtime snapshot (streams and compression as sandbox modules)  +${kb(idleHeap(runtime) - empty)}`);
const eager = await libBundle(`import * as s from 'web-streams-polyfill'; import * as f from 'fflate'; (globalThis as any).x = [s, f.Gzip, f.Gunzip, f.Deflate, f.Inflate, f.Zlib, f.Unzlib];`);
console.log(`  the libraries alone in a snapshot, eager                          +${kb(idleHeap(eager) - empty)}`);
const lazy = await libBundle(`declare const require: any; (globalThis as any).x = () => [require('web-streams-polyfill'), require('fflate')];`);
console.log(`  the libraries alone in a snapshot, in lazy init functions         +${kb(idleHeap(lazy) - empty)}`);

// First use: load each module into a runtime isolate, as the host does.
const snapshot = ivm.Isolate.createSnapshot([{ code: runtime }]);
const cpu: Record<string, number[]> = { streams: [], compression: [] };
const heap: Record<string, number[]> = { streams: [], compression: [] };
for (let i = 0; i < 20; i++) {
  for (const name of ['streams', 'compression']) {
    const isolate = new ivm.Isolate({ snapshot, memoryLimit: 64 });
    const context = isolate.createContextSync();
    const before = isolate.getHeapStatisticsSync().used_heap_size;
    const receive = context.evalSync('(n, e) => { globalThis.__m = e; }', { reference: true }) as ivm.Reference<(...a: unknown[]) => unknown>;
    const t0 = isolate.cpuTime;
    loadSandboxModule(isolate, context, modules, 'streams', receive);
    if (name === 'compression') loadSandboxModule(isolate, context, modules, 'compression', receive);
    cpu[name]!.push(Number(isolate.cpuTime - t0) / 1e6);
    heap[name]!.push(isolate.getHeapStatisticsSync().used_heap_size - before);
    isolate.dispose();
  }
}
console.log('\nfirst use (load and evaluate; median of 20):');
console.log(`  streams               ${median(cpu.streams!).toFixed(2)} ms CPU, +${kb(median(heap.streams!))} heap`);
console.log(`  streams + compression ${median(cpu.compression!).toFixed(2)} ms CPU, +${kb(median(heap.compression!))} heap`);
