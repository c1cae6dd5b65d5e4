// What the sandbox's Web platform classes (src/sandbox/web-platform.ts) cost every isolate:
// bundle bytes (plain and minified, and per source file), and heap per isolate when isolates
// start from a V8 snapshot of the bundle, against isolates from a snapshot of an empty script.
// Heap is read right after creating a context (what an idle isolate pays), and again after a
// small warm-up that touches each class (what the first request adds: lazily compiled code).
//
//   node --no-node-snapshot bench/sandbox-size.ts [--isolates 200] [--compare other-bundle.js]
//
// --compare takes any script (e.g. an alternative URL implementation bundled on its own) and
// reports its heap cost measured the same way.

import ivm from 'isolated-vm';
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i === -1 ? undefined : args[i + 1];
};
const N = Number(flag('--isolates') ?? 200);

async function bundle(minify: boolean) {
  const result = await build({
    entryPoints: [path.join(root, 'src/sandbox/web-platform.ts')],
    bundle: true, write: false, format: 'iife', globalName: 'WP', target: 'es2024', minify, metafile: true,
  });
  return { code: result.outputFiles[0].text, bytes: result.outputFiles[0].contents.length, metafile: result.metafile };
}

const median = (xs: number[]): number => xs.slice().sort((a, b) => a - b)[xs.length >> 1];

/** Median used/total heap of N isolates from a snapshot of `code`, after an optional warm-up. */
function heapPerIsolate(code: string, warmup?: string): { used: number; total: number } {
  const snapshot = ivm.Isolate.createSnapshot([{ code }]);
  const used: number[] = [], total: number[] = [];
  const isolates: ivm.Isolate[] = [];
  for (let i = 0; i < N; i++) {
    const isolate = new ivm.Isolate({ snapshot, memoryLimit: 64 });
    const context = isolate.createContextSync();
    if (warmup) context.evalSync(warmup);
    const s = isolate.getHeapStatisticsSync();
    used.push(s.used_heap_size);
    total.push(s.total_heap_size);
    isolates.push(isolate);
  }
  for (const isolate of isolates) isolate.dispose();
  return { used: median(used), total: median(total) };
}

// Only the classes in the snapshot: the lazy ones (URLSearchParams, TextEncoder, structuredClone,
// ...) are sandbox modules, which this bundle alone, without a host, cannot load. No bodies: this
// runs at the top level, where the runtime refuses to make one (as Workers do), and a body's
// stream is a lazy module anyway.
const WARMUP = `
  const g = WP.webPlatformGlobals;
  const u = new g.URL('https://example.com/a/b?x=1#f'); u.pathname;
  const h = new g.Headers({ 'content-type': 'text/plain' }); [...h];
  const r = new g.Response(null, { status: 204, headers: h }); r.clone();
  new g.Request('https://example.com/', { method: 'DELETE', headers: h });
  new g.AbortController().abort();
`;

const kb = (n: number): string => (n / 1024).toFixed(1) + ' KB';

const plain = await bundle(false);
const min = await bundle(true);
console.log(`web-platform bundle: ${plain.bytes} bytes (${kb(plain.bytes)}), minified ${min.bytes} bytes (${kb(min.bytes)})`);
console.log('minified bytes by source file:');
const output = Object.values(min.metafile.outputs)[0];
for (const [file, info] of Object.entries(output.inputs).sort((a, b) => b[1].bytesInOutput - a[1].bytesInOutput)) {
  console.log(`  ${file.padEnd(44)} ${String(info.bytesInOutput).padStart(7)}`);
}

const empty = heapPerIsolate('');
const idle = heapPerIsolate(min.code);
const warm = heapPerIsolate(min.code, WARMUP);
const idlePlain = heapPerIsolate(plain.code);
console.log(`\nheap per isolate, median of ${N} (used / total):`);
console.log(`  empty snapshot                 ${kb(empty.used)} / ${kb(empty.total)}`);
console.log(`  web-platform (minified), idle  ${kb(idle.used)} / ${kb(idle.total)}   +${kb(idle.used - empty.used)} used, +${kb(idle.total - empty.total)} total`);
console.log(`  web-platform (plain), idle     ${kb(idlePlain.used)} / ${kb(idlePlain.total)}   +${kb(idlePlain.used - empty.used)} used`);
console.log(`  web-platform (minified), warm  ${kb(warm.used)} / ${kb(warm.total)}   +${kb(warm.used - empty.used)} used (after touching every class once)`);

const compare = flag('--compare');
if (compare) {
  const other = heapPerIsolate(readFileSync(compare, 'utf8'));
  console.log(`  ${path.basename(compare).padEnd(30)} ${kb(other.used)} / ${kb(other.total)}   +${kb(other.used - empty.used)} used`);
}
