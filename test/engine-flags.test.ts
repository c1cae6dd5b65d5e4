// The V8 settings a process that runs many tenants' isolates needs (src/runtime/engine-flags.ts)
// hold for the isolates: a function the engine is told to compile with Maglev stays in the
// interpreter; in a process started with the runtime host's flags, as runtime processes are, an
// isolate's young garbage is collected once it fills a tenth of its young generation, and the
// host's larger young generation does not reach the isolates. Checked in child processes of their
// own (docs/BENCHMARKS.md, "Maglev in every isolate" and "Young generations collected at a
// tenth", for why the settings).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hasRuntimeHostFlags, RUNTIME_HOST_FLAGS } from '../src/runtime/engine-flags.ts';
import { testPool } from './support/pool.ts';

const ROOT = join(import.meta.dirname, '..');

/** The script each side runs: whether a function forced to Maglev got Maglev code (V8's status bit 5). */
const PROBE = `
  function f(x) { return x * 2 + 1; }
  %PrepareFunctionForOptimization(f);
  for (let i = 0; i < 10; i++) f(i);
  %OptimizeMaglevOnNextCall(f);
  f(1);
  (%GetOptimizationStatus(f) >> 5) & 1;
`;

function maglevIn(apply: boolean): { node: number; isolate: number } {
  const script = `
    import ivm from 'isolated-vm';
    ${apply ? "(await import('./src/runtime/engine-flags.ts')).applyEngineFlags();" : ''}
    const isolate = new ivm.Isolate({ memoryLimit: 16 });
    const inIsolate = isolate.createContextSync().evalSync(${JSON.stringify(PROBE)});
    const inNode = eval(${JSON.stringify(PROBE)});
    process.stdout.write(JSON.stringify({ node: inNode, isolate: inIsolate }));`;
  const out = execFileSync(process.execPath, ['--no-node-snapshot', '--allow-natives-syntax', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(out) as { node: number; isolate: number };
}

test('with the engine settings applied, nothing is compiled with Maglev, in isolates or in the host', () => {
  // The probe itself works: without the settings, the same function gets Maglev code.
  assert.deepEqual(maglevIn(false), { node: 1, isolate: 1 });
  assert.deepEqual(maglevIn(true), { node: 0, isolate: 0 });
});

/**
 * In a child started with `flags`: an isolate made after the settings are applied allocates about
 * 560 KB of garbage (a little over half its 1 MB semi-space, short of V8's own 80%), then is
 * entered again up to 20 times. Whether a collection took the garbage meanwhile, and the sizes of
 * the isolate's heap and of the host's young generation.
 */
function youngGarbageIn(flags: readonly string[]): { collected: boolean; isolateHeapMb: number; hostNewSpaceMb: number } {
  const script = `
    import ivm from 'isolated-vm';
    import v8 from 'node:v8';
    (await import('./src/runtime/engine-flags.ts')).applyEngineFlags();
    const isolate = new ivm.Isolate({ memoryLimit: 64 });
    const context = isolate.createContextSync();
    const used = () => isolate.getHeapStatisticsSync().used_heap_size;
    context.evalSync('for (let i = 0; i < 4000; i++) [i, i, i, i, i, i, i, i, i, i];');
    const full = used();
    let collected = false;
    // V8 runs the collection as a task of the isolate's, which runs when it is next entered.
    for (let i = 0; i < 20 && !collected; i++) {
      await context.eval('0');
      await new Promise((resolve) => setTimeout(resolve, 10));
      collected = used() < full - 300_000;
    }
    const MB = 1024 * 1024;
    const hostNewSpace = v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
    process.stdout.write(JSON.stringify({ collected, isolateHeapMb: isolate.getHeapStatisticsSync().total_heap_size / MB, hostNewSpaceMb: hostNewSpace.space_size / MB }));`;
  const out = execFileSync(process.execPath, [...flags, '--no-node-snapshot', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(out) as { collected: boolean; isolateHeapMb: number; hostNewSpaceMb: number };
}

test("with the runtime host's flags, an isolate's young garbage is collected at a tenth, and the host's young generation stays the host's", () => {
  const hosted = youngGarbageIn(RUNTIME_HOST_FLAGS);
  assert.equal(hosted.collected, true, 'collected at the next entries');
  assert.ok(hosted.hostNewSpaceMb >= 16, `the host's young generation starts large (${hosted.hostNewSpaceMb} MB)`);
  assert.ok(hosted.isolateHeapMb < 8, `the isolate keeps its own small young generation (${hosted.isolateHeapMb} MB of heap)`);
  // Without them (an embedder's plain Node) V8's own trigger stays: the host would otherwise
  // collect its small young generation every 100 KB.
  const plain = youngGarbageIn([]);
  assert.equal(plain.collected, false, 'V8 leaves it until its semi-space is 80% full');
});

test('hasRuntimeHostFlags: a host semi-space of at least 16 MB, in either spelling', () => {
  assert.equal(hasRuntimeHostFlags(RUNTIME_HOST_FLAGS), true);
  assert.equal(hasRuntimeHostFlags(['--min_semi_space_size=32']), true);
  assert.equal(hasRuntimeHostFlags(['--min-semi-space-size=8']), false);
  assert.equal(hasRuntimeHostFlags(['--max-semi-space-size=16', '--no-node-snapshot']), false);
  assert.equal(hasRuntimeHostFlags([]), false);
});

test("runtime processes start with the runtime host's flags", { timeout: 60_000 }, async () => {
  const { pool } = testPool({ processes: 1 });
  await pool.load('flags', { modules: [{ name: 'worker.js', source: 'export default { fetch() { return new Response("ok"); } };' }] });
  const pid = pool.placement('flags')!.pid!;
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'latin1')).split('\0');
  for (const flag of RUNTIME_HOST_FLAGS) assert.ok(argv.includes(flag), `${flag} in ${argv.join(' ')}`);
});
