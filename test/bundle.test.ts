// bundleWorker: what a tenant's entry becomes, and how it fails; and its source map, through
// which stacks are shown to the tenant.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, rm, realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { bundleWorker, BundleError } from '../src/bundle/bundle.ts';
import { mapBundlePlaces, splitSourceMap } from '../src/bundle/source-map.ts';
import { shownEntry } from '../src/cli/commands/tail.ts';

let root = '';

async function files(tree: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(tree)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
}

/** Evaluates a bundled module and returns its default export. */
async function evaluate(source: string): Promise<Record<string, unknown>> {
  const module = await import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`);
  return module.default;
}

describe('bundleWorker', () => {
  before(async () => {
    root = await realpath(await mkdtemp(join(tmpdir(), 'isolet-bundle-')));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('a TypeScript module worker with a local import becomes one ES module', async () => {
    await files({
      'ts/worker.ts': [
        "import { greet } from './greet.ts';",
        'interface Env { NAME: string }',
        'export default {',
        '  async fetch(request: Request, env: Env): Promise<Response> { return new Response(greet(env.NAME)); },',
        '};',
      ].join('\n'),
      'ts/greet.ts': 'export const greet = (name: string): string => `hello ${name}`;\n',
    });
    const result = await bundleWorker('ts/worker.ts', { cwd: root });
    assert.ok('modules' in result.worker);
    assert.equal(result.worker.main, 'worker.js');
    assert.equal(result.worker.modules.length, 1);
    assert.equal(result.worker.modules[0]!.name, 'worker.js');
    const source = result.worker.modules[0]!.source;
    assert.doesNotMatch(source, /^import /m, 'imports are bundled in');
    assert.doesNotMatch(source, /interface Env/, 'types are stripped');
    const worker = await evaluate(source);
    assert.equal(typeof worker.fetch, 'function');
    assert.deepEqual(result.inputs.sort(), [join(root, 'ts/greet.ts'), join(root, 'ts/worker.ts')]);
    assert.deepEqual(result.warnings, []);
  });

  test('npm packages resolve with the workerd condition first, then worker and browser', async () => {
    await files({
      'npm/node_modules/picky/package.json': JSON.stringify({
        name: 'picky',
        exports: { '.': { node: './node.js', workerd: './workerd.js', browser: './browser.js', default: './default.js' } },
      }),
      'npm/node_modules/picky/node.js': "export const which = 'node';\n",
      'npm/node_modules/picky/workerd.js': "export const which = 'workerd';\n",
      'npm/node_modules/picky/browser.js': "export const which = 'browser';\n",
      'npm/node_modules/picky/default.js': "export const which = 'default';\n",
      'npm/node_modules/old/package.json': JSON.stringify({ name: 'old', main: './main.js', browser: './browser.js' }),
      'npm/node_modules/old/main.js': "module.exports = 'main';\n",
      'npm/node_modules/old/browser.js': "module.exports = 'browser field';\n",
      'npm/worker.js': [
        "import { which } from 'picky';",
        "import old from 'old';",
        'export default { which, old, fetch() {} };',
      ].join('\n'),
    });
    const result = await bundleWorker('npm/worker.js', { cwd: root });
    assert.ok('modules' in result.worker);
    const worker = await evaluate(result.worker.modules[0]!.source);
    assert.equal(worker.which, 'workerd');
    assert.equal(worker.old, 'browser field');
  });

  test('process.env.NODE_ENV is defined for packages that read it', async () => {
    await files({ 'env/worker.js': 'export default { mode: process.env.NODE_ENV, fetch() {} };\n' });
    const production = await bundleWorker('env/worker.js', { cwd: root });
    assert.ok('modules' in production.worker);
    assert.equal((await evaluate(production.worker.modules[0]!.source)).mode, 'production');
    const development = await bundleWorker('env/worker.js', { cwd: root, nodeEnv: 'development' });
    assert.ok('modules' in development.worker);
    assert.equal((await evaluate(development.worker.modules[0]!.source)).mode, 'development');
  });

  test('a service-worker script (no exports) becomes { script }, a classic script', async () => {
    await files({
      'sw/worker.ts': [
        "import { body } from './body.ts';",
        "addEventListener('fetch', (event: any) => event.respondWith(new Response(body)));",
      ].join('\n'),
      'sw/body.ts': "export const body = 'from a service worker';\n",
    });
    const result = await bundleWorker('sw/worker.ts', { cwd: root });
    assert.ok('script' in result.worker);
    assert.ok(!('modules' in result.worker));
    const script = result.worker.script;
    assert.doesNotMatch(script, /\b(import|export)\b/);
    // It runs as a plain script and registers its listener.
    const listeners: unknown[] = [];
    new Function('addEventListener', 'Response', script)((type: string, fn: unknown) => listeners.push([type, fn]), class {});
    assert.equal(listeners.length, 1);
    assert.deepEqual(result.inputs.sort(), [join(root, 'sw/body.ts'), join(root, 'sw/worker.ts')]);
  });

  test('a service-worker script with top-level await is an error', async () => {
    await files({ 'swtla/worker.js': "await 1;\naddEventListener('fetch', () => {});\n" });
    await assert.rejects(bundleWorker('swtla/worker.js', { cwd: root }), BundleError);
  });

  test('named exports without a default: an error that says what a module worker needs', async () => {
    await files({ 'nodefault/worker.ts': 'export function fetch() {}\n' });
    await assert.rejects(bundleWorker('nodefault/worker.ts', { cwd: root }), (error: unknown) => {
      assert.ok(error instanceof BundleError);
      assert.match(error.message, /^nodefault\/worker\.ts:1:1: /);
      assert.match(error.message, /no default/);
      assert.match(error.message, /export default/);
      return true;
    });
  });

  test('a syntax error: BundleError with file:line:col: message, relative path', async () => {
    await files({
      'syntax/worker.ts': "import { x } from './lib.ts';\nexport default { fetch() { return x } }\n",
      'syntax/lib.ts': 'export const x = 1;\nexport const y = (;\n',
    });
    await assert.rejects(bundleWorker('syntax/worker.ts', { cwd: root }), (error: unknown) => {
      assert.ok(error instanceof BundleError);
      assert.equal(error.name, 'BundleError');
      assert.match(error.message, /^syntax\/lib\.ts:2:\d+: .+/);
      assert.match(error.location!, /^syntax\/lib\.ts:2:\d+$/);
      assert.equal(error.problems[0]!.file, 'syntax/lib.ts');
      assert.equal(error.problems[0]!.line, 2);
      return true;
    });
  });

  test('columns count from 1', async () => {
    await files({ 'col/worker.js': 'const a = 1;\nlet x = = 2;\nexport default { a, x };\n' });
    await assert.rejects(bundleWorker('col/worker.js', { cwd: root }), (error: unknown) => {
      assert.ok(error instanceof BundleError);
      assert.equal(error.location, 'col/worker.js:2:9');
      return true;
    });
  });

  for (const specifier of ['node:fs', 'path', 'fs/promises']) {
    test(`importing the Node built-in "${specifier}" names it and the fix`, async () => {
      const dir = `builtin-${specifier.replace(/\W/g, '-')}`;
      await files({ [`${dir}/worker.ts`]: `import thing from '${specifier}';\nexport default { fetch() { return thing } };\n` });
      await assert.rejects(bundleWorker(`${dir}/worker.ts`, { cwd: root }), (error: unknown) => {
        assert.ok(error instanceof BundleError);
        assert.match(error.message, new RegExp(`^${dir}/worker\\.ts:1:\\d+: "${specifier}" is a Node\\.js built-in module`));
        assert.match(error.message, /Fix: /);
        return true;
      });
    });
  }

  test('a package that maps a built-in away in its browser field bundles fine', async () => {
    await files({
      'mapped/node_modules/uses-fs/package.json': JSON.stringify({ name: 'uses-fs', main: './index.js', browser: { fs: false } }),
      'mapped/node_modules/uses-fs/index.js': "const fs = require('fs');\nmodule.exports = typeof fs;\n",
      'mapped/worker.js': "import kind from 'uses-fs';\nexport default { kind, fetch() {} };\n",
    });
    const result = await bundleWorker('mapped/worker.js', { cwd: root });
    assert.ok('modules' in result.worker);
  });

  test('sourcemap: inline source map on request', async () => {
    await files({ 'map/worker.ts': 'export default { fetch() { return 1 } };\n' });
    const result = await bundleWorker('map/worker.ts', { cwd: root, sourcemap: true });
    assert.ok('modules' in result.worker);
    assert.match(result.worker.modules[0]!.source, /\/\/# sourceMappingURL=data:application\/json;base64,/);
    const plain = await bundleWorker('map/worker.ts', { cwd: root });
    assert.ok('modules' in plain.worker);
    assert.doesNotMatch(plain.worker.modules[0]!.source, /sourceMappingURL/);
  });

  test("a stack as the tenant is shown it (isolet dev, isolet tail): places in the sources, and none of the platform's own frames", async () => {
    await files({ 'trace/src/index.ts': '// a worker\nexport default {\n  fetch(): Response {\n    throw new Error("boom");\n  },\n};\n' });
    const { worker, map } = splitSourceMap((await bundleWorker('trace/src/index.ts', { cwd: root, sourcemap: true })).worker);
    assert.ok(map && 'modules' in worker);
    const line = worker.modules[0]!.source.split('\n').findIndex((text) => text.includes('boom')) + 1;
    const stack = [
      'Uncaught Error: boom',
      `    at Object.fetch (worker.js:${line}:11)`,
      '    at rc (isolet:runtime.js:3:15195)',
      '    at async dispatch (isolet:runtime.js:5:2420)',
      '    at isolet:streams.js:1:200',
      '    at new Promise (<anonymous>)',
    ].join('\n');
    assert.equal(mapBundlePlaces(stack, map, root), ['Uncaught Error: boom', '    at Object.fetch (trace/src/index.ts:4:11)', '    at new Promise (<anonymous>)'].join('\n'));
    // Without a map (isolet tail run elsewhere), the platform's frames go all the same.
    assert.equal(mapBundlePlaces(stack, undefined, root), ['Uncaught Error: boom', `    at Object.fetch (worker.js:${line}:11)`, '    at new Promise (<anonymous>)'].join('\n'));
    // A tenant's own text that merely names the scheme is left alone.
    assert.equal(mapBundlePlaces('fetching isolet:runtime.js:1:1 failed', undefined, root), 'fetching isolet:runtime.js:1:1 failed');
    const entry = { time: '2026-01-01T00:00:00.000Z', worker: 'w', level: 'error', type: 'exception', message: stack } as const;
    assert.doesNotMatch(shownEntry(entry, undefined, root).message, /isolet:/);
    assert.match(shownEntry(entry, map, root).message, /trace\/src\/index\.ts:4:11/);
  });

  test('a missing entry is a BundleError', async () => {
    await assert.rejects(bundleWorker('nope/worker.ts', { cwd: root }), BundleError);
  });

  test('text imports (.txt, .html) are bundled as strings', async () => {
    await files({
      'text/page.html': '<h1>hi</h1>\n',
      'text/worker.js': "import page from './page.html';\nexport default { page, fetch() {} };\n",
    });
    const result = await bundleWorker('text/worker.js', { cwd: root });
    assert.ok('modules' in result.worker);
    assert.equal((await evaluate(result.worker.modules[0]!.source)).page, '<h1>hi</h1>\n');
  });
});
