// WebAssembly modules shipped with a worker: `import mod from './x.wasm'` gives a
// WebAssembly.Module compiled by the host, in the Runtime, through a server with a runtime
// process (the module crosses as base64 JSON), and bundled by isolet's bundler; compiling bytes
// at run time stays refused however the tenant reaches for V8's compiler.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile, realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../src/runtime/runtime.ts';
import { WorkerLoadError } from '../src/runtime/types.ts';
import { bundleWorker, BundleError } from '../src/bundle/bundle.ts';
import { fetchText } from './support/fetch-text.ts';
import { ADD_WASM, QUAD_WASM, WASM_WORKER } from './support/wasm.ts';
import { startTestServer, type TestServer } from './server-support.ts';

const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const MODULES = [
  { name: 'worker.js', source: WASM_WORKER },
  { name: 'add.wasm', type: 'wasm' as const, source: base64(ADD_WASM) },
  { name: 'quad.wasm', type: 'wasm' as const, source: base64(QUAD_WASM) },
];
const EXPECTED = { direct: 5, viaInstantiate: 20, isModule: true, exports: ['add'], imports: ['env.double'] };

function assertRefused(refusals: Record<string, string>): void {
  for (const [what, outcome] of Object.entries(refusals)) {
    // V8 has compileStreaming only where the embedder gives it a way to read a Response.
    if (what === 'compileStreaming' && outcome === 'TypeError: WebAssembly.compileStreaming is not a function') continue;
    assert.match(outcome, /^CompileError: Wasm code generation disallowed by embedder$/, what);
  }
}

describe('in the Runtime', () => {
  const runtime = new Runtime();
  after(() => runtime.close());

  test('an imported .wasm is a WebAssembly.Module the worker instantiates, with imports', async () => {
    await runtime.load('wasm', { modules: MODULES, main: 'worker.js' });
    const answer = await fetchText(runtime, 'wasm', '/');
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(JSON.parse(answer.text), EXPECTED);
  });

  test('compiling bytes from tenant code is refused on every path', async () => {
    await runtime.load('wasm-refused', { modules: MODULES, main: 'worker.js' });
    const answer = await fetchText(runtime, 'wasm-refused', '/refused');
    assert.equal(answer.status, 200, answer.text);
    assertRefused(JSON.parse(answer.text));
  });

  test('a module that is not WebAssembly fails the load, naming it', async () => {
    await assert.rejects(
      runtime.load('wasm-bad', { modules: [MODULES[0]!, { name: 'add.wasm', type: 'wasm', source: base64(new TextEncoder().encode('not wasm')) }, MODULES[2]!], main: 'worker.js' }),
      (error: unknown) => error instanceof WorkerLoadError && /add\.wasm: cannot load this WebAssembly module: it is not a WebAssembly binary module/.test(error.message),
    );
  });
});

describe('through the server and a runtime process', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ processes: 1 });
    await t.account('acme');
  });
  after(() => t.close());

  const deploy = (name: string, modules: unknown[]) => t.api('PUT', `/v1/workers/${name}?account=acme`, { body: { modules, main: 'worker.js' } });

  test('deployed as base64 modules, served', async () => {
    const answer = await deploy('wasm', MODULES);
    assert.equal(answer.status, 201, answer.text);
    const response = await t.request('wasm.localhost', '/');
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), EXPECTED);
    const refused = await t.request('wasm.localhost', '/refused');
    assertRefused((await refused.json()) as Record<string, string>);
  });

  test('a wasm module that is not base64, not WebAssembly or not valid is a 400 naming it', async () => {
    const broken = new Uint8Array(ADD_WASM);
    broken[broken.length - 2] = 0xff; // an opcode that does not exist
    for (const [source, message] of [
      ['AGFzbQEAAAA*', /modules\[1\] \(add\.wasm\) is not base64/],
      [base64(new TextEncoder().encode('hello')), /is not a WebAssembly binary module/],
      [base64(broken), /is not a valid WebAssembly module/],
    ] as const) {
      const answer = await deploy('wasm-bad', [MODULES[0], { name: 'add.wasm', type: 'wasm', source }, MODULES[2]]);
      assert.equal(answer.status, 400);
      assert.match(answer.text, message);
    }
    const otherType = await deploy('wasm-bad', [MODULES[0], { name: 'add.wasm', type: 'text', source: 'x' }]);
    assert.match(otherType.text, /type must be \\"wasm\\"/);
    const wasmMain = await t.api('PUT', '/v1/workers/wasm-bad?account=acme', { body: { modules: [MODULES[1], MODULES[0]] } });
    assert.match(wasmMain.text, /main module must be JavaScript/);
  });
});

describe('bundled', () => {
  let root = '';
  before(async () => {
    root = await realpath(await mkdtemp(join(tmpdir(), 'isolet-wasm-')));
    await mkdir(join(root, 'src', 'wasm'), { recursive: true });
    await writeFile(join(root, 'src', 'wasm', 'add.wasm'), ADD_WASM);
    await writeFile(join(root, 'src', 'wasm', 'quad.wasm'), QUAD_WASM);
  });
  after(() => rm(root, { recursive: true, force: true }));

  test('each .wasm import becomes a module of its own, named by its contents, and an input to watch', async () => {
    await writeFile(join(root, 'src', 'index.ts'), WASM_WORKER.replace("'./add.wasm'", "'./wasm/add.wasm'").replace("'./quad.wasm?module'", "'./wasm/quad.wasm?module'"));
    const { worker, inputs } = await bundleWorker('src/index.ts', { cwd: root });
    assert.ok('modules' in worker);
    const [main, ...wasm] = worker.modules;
    assert.equal(main!.name, 'worker.js');
    assert.deepEqual(wasm.map((m) => m.type), ['wasm', 'wasm']);
    assert.match(wasm[0]!.name, /^add-[0-9a-f]{12}\.wasm$/);
    assert.equal(wasm[0]!.source, base64(ADD_WASM));
    assert.ok(main!.source.includes(`"./${wasm[0]!.name}"`) && main!.source.includes(`"./${wasm[1]!.name}"`));
    assert.ok(inputs.includes(join(root, 'src', 'wasm', 'add.wasm')));

    const runtime = new Runtime();
    try {
      await runtime.load('bundled', { ...worker });
      assert.deepEqual(JSON.parse((await fetchText(runtime, 'bundled', '/')).text), EXPECTED);
    } finally {
      await runtime.close();
    }
  });

  test('a service-worker script cannot import WebAssembly: a bundle error says to use a module worker', async () => {
    await writeFile(join(root, 'src', 'sw.js'), "import add from './wasm/add.wasm';\naddEventListener('fetch', (e) => e.respondWith(new Response(String(add))));\n");
    await assert.rejects(bundleWorker('src/sw.js', { cwd: root }), (error: unknown) => error instanceof BundleError && /only a module worker can/.test(error.message));
  });
});
