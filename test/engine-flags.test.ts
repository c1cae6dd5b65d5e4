// The V8 settings a process that runs many tenants' isolates needs (src/runtime/engine-flags.ts)
// hold for the isolates: a function the engine is told to compile with Maglev stays in the
// interpreter. Checked in a child process of its own, with V8's natives syntax, which asks the
// engine directly (docs/BENCHMARKS.md, "Maglev in every isolate", for why the settings).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

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
