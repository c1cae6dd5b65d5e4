// isolet runs on isolated-vm built with its own patch (scripts/build-isolated-vm.js, run at
// install). These tests prove the build is the one loaded and that it does what it is for: an
// isolate made from a snapshot keeps the snapshot's globals out of its internal default context,
// and `createContext()` still gets them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ivm from 'isolated-vm';

const ROOT = join(import.meta.dirname, '..');
const require = createRequire(join(ROOT, 'package.json'));
const IVM_DIR = dirname(require.resolve('isolated-vm/package.json'));
const RELEASE = join(IVM_DIR, 'build', 'Release');

// A snapshot whose one global weighs megabytes, so where it lives shows in the heap statistics.
// Only objects and small integers: V8 keeps a snapshot's strings and code with the isolate, shared
// by its contexts, so they would show either way.
const BIG = 'globalThis.big = Array.from({ length: 200000 }, (_, i) => ({ i, j: i + 1 }));';

function usedHeap(isolate: ivm.Isolate): number {
  return isolate.getHeapStatisticsSync().used_heap_size;
}

test('the loaded isolated-vm is the build made with the current patches', () => {
  const marker = join(RELEASE, 'isolet-build.json');
  assert.ok(
    existsSync(marker) && existsSync(join(RELEASE, 'isolated_vm.node')),
    'isolated-vm was not built with isolet\'s patches: run `npm run build:native` and read its output',
  );
  const built = JSON.parse(readFileSync(marker, 'utf8')) as { isolatedVm: string; patches: string };
  const hash = createHash('sha256');
  const patchDir = join(ROOT, 'native', 'isolated-vm');
  for (const name of readdirSync(patchDir).filter((file) => file.endsWith('.patch')).sort()) hash.update(readFileSync(join(patchDir, name)));
  assert.equal(built.patches, hash.digest('hex').slice(0, 16), 'the build predates a change to native/isolated-vm: run `npm run build:native`');
  assert.equal(built.isolatedVm, (JSON.parse(readFileSync(join(IVM_DIR, 'package.json'), 'utf8')) as { version: string }).version);
});

test('an isolate from a snapshot does not hold the snapshot\'s context until createContext', async () => {
  const snapshot = ivm.Isolate.createSnapshot([{ code: BIG }]);
  const bare = new ivm.Isolate({ memoryLimit: 128 });
  const fromSnapshot = new ivm.Isolate({ memoryLimit: 128, snapshot });
  try {
    const bareHeap = usedHeap(bare);
    const idleHeap = usedHeap(fromSnapshot);
    // The global is several MB; the default context must be as light as a plain isolate's.
    assert.ok(idleHeap < bareHeap + 1024 * 1024, `isolate from the snapshot holds ${idleHeap} bytes against ${bareHeap} for a bare one`);

    const context = await fromSnapshot.createContext();
    assert.equal(await context.eval('big.length'), 200000);
    assert.equal(await context.eval('big[199999].j'), 200000);
    assert.ok(usedHeap(fromSnapshot) > idleHeap + 4 * 1024 * 1024, 'createContext() did not bring the snapshot\'s globals');

    // Every context made from the snapshot is its own copy.
    await context.eval('big.length = 1');
    const second = await fromSnapshot.createContext();
    assert.equal(await second.eval('big.length'), 200000);
  } finally {
    bare.dispose();
    fromSnapshot.dispose();
  }
});

test('an isolate without a snapshot still gets plain contexts', async () => {
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  try {
    const context = await isolate.createContext();
    assert.equal(await context.eval('typeof big'), 'undefined');
    assert.equal(await context.eval('[1, 2, 3].map((n) => n * 2).join()'), '2,4,6');
  } finally {
    isolate.dispose();
  }
});
