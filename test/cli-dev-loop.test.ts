// The `isolet dev` loop: reloads when wrangler.toml, .dev.vars or the .env files change, never
// rebuilds for files that are not inputs or whose contents did not change (no loop from files
// written in the project), --env, --minify, stack traces at the source file and line, WebAssembly imports.
// Waits are for output or exits, never for a length of time, except where a save must be seen
// half-way and its debounce must lapse (the same-bytes test: no output says nothing happened).

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CliProcess, writeProject } from './support/cli-process.ts';
import { mkdtemp, mkdir, rm, writeFile, rename, realpath } from 'node:fs/promises';
import { closeSync, openSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADD_WASM, QUAD_WASM, WASM_WORKER } from './support/wasm.ts';

const LISTENING = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/m;

/** Replaces a file the way careful editors do (write aside, rename over). */
async function save(path: string, text: string | Uint8Array): Promise<void> {
  await writeFile(path + '.tmp', text);
  await rename(path + '.tmp', path);
}

function count(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern.source, 'gm'))?.length ?? 0;
}

describe('isolet dev: the loop', { timeout: 180_000 }, () => {
  let dir = '';
  const running: CliProcess[] = [];

  before(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'isolet-dev-loop-')));
  });
  after(async () => {
    for (const dev of running) dev.kill();
    await Promise.all(running.map((dev) => dev.exited));
    await rm(dir, { recursive: true, force: true });
  });

  async function project(name: string, files: Record<string, string | Uint8Array>): Promise<string> {
    const cwd = join(dir, name);
    await writeProject(cwd, files);
    return cwd;
  }

  async function start(args: string[], cwd: string): Promise<{ dev: CliProcess; base: string }> {
    const dev = new CliProcess(['dev', '--port', '0', ...args], { cwd });
    running.push(dev);
    const base = (await dev.waitFor('stdout', LISTENING))[1]!;
    return { dev, base };
  }

  const ENV_WORKER = 'export default { fetch(request, env) { return Response.json(env); } };\n';

  test('a change to wrangler.toml or .dev.vars reloads; a broken config keeps the last good version', async () => {
    const cwd = await project('config-reload', {
      'wrangler.toml': 'name = "cfg"\nmain = "src/index.js"\n[vars]\nA = "1"\n',
      '.dev.vars': 'S=one\n',
      'src/index.js': ENV_WORKER,
    });
    const { dev, base } = await start([], cwd);
    assert.deepEqual(await (await fetch(base)).json(), { A: '1', S: 'one' });

    let mark = dev.mark();
    await save(join(cwd, 'wrangler.toml'), 'name = "cfg"\nmain = "src/index.js"\n[vars]\nA = "2"\n');
    await dev.waitFor('stdout', /^reloaded in \d+ ms$/m, mark);
    assert.deepEqual(await (await fetch(base)).json(), { A: '2', S: 'one' });

    mark = dev.mark();
    await save(join(cwd, '.dev.vars'), 'S=two\n');
    await dev.waitFor('stdout', /^reloaded in \d+ ms$/m, mark);
    assert.deepEqual(await (await fetch(base)).json(), { A: '2', S: 'two' });

    mark = dev.mark();
    await save(join(cwd, 'wrangler.toml'), 'name = "cfg"\nmain = "src/index.js"\ncompatibilty_date = "2024-09-01"\n');
    await dev.waitFor('stderr', /^isolet dev: wrangler\.toml: compatibilty_date: .*did you mean compatibility_date\?$/m, mark);
    await dev.waitFor('stderr', /^\(still serving the last version that loaded\)$/m, mark);
    assert.deepEqual(await (await fetch(base)).json(), { A: '2', S: 'two' });

    mark = dev.mark();
    await save(join(cwd, 'wrangler.toml'), 'name = "cfg"\nmain = "src/index.js"\n[vars]\nA = "3"\n[[r2_buckets]]\nbinding = "B"\n');
    await dev.waitFor('stderr', /isolet does not support r2_buckets \(R2 buckets\)/, mark);
    mark = dev.mark();
    await save(join(cwd, 'wrangler.toml'), 'name = "cfg"\nmain = "src/index.js"\n[vars]\nA = "3"\n');
    await dev.waitFor('stdout', /^reloaded in \d+ ms$/m, mark);
    assert.deepEqual(await (await fetch(base)).json(), { A: '3', S: 'two' });
  });

  test('without .dev.vars, local vars come from .env files (and .env.<env> with --env), as wrangler dev does; a change to them, or a .dev.vars appearing, reloads', async () => {
    const cwd = await project('dot-env', {
      'wrangler.toml': 'name = "dotenv"\nmain = "src/index.js"\n[vars]\nA = "toml"\n',
      '.env': 'S=env\nT=env\n',
      '.env.staging': 'T=env-staging\n',
      'src/index.js': ENV_WORKER,
    });
    const { dev, base } = await start([], cwd);
    assert.match(dev.stderr, /^using vars from .*\.env$/m);
    assert.deepEqual(await (await fetch(base)).json(), { A: 'toml', S: 'env', T: 'env' });

    let mark = dev.mark();
    await save(join(cwd, '.env'), 'S=env2\nT=env\n');
    await dev.waitFor('stdout', /^reloaded in \d+ ms$/m, mark);
    assert.deepEqual(await (await fetch(base)).json(), { A: 'toml', S: 'env2', T: 'env' });

    mark = dev.mark();
    await save(join(cwd, '.env.local'), 'T=local\n');
    await dev.waitFor('stdout', /^reloaded in \d+ ms$/m, mark);
    assert.deepEqual(await (await fetch(base)).json(), { A: 'toml', S: 'env2', T: 'local' });

    // A .dev.vars file, once there, is read instead of every .env file.
    mark = dev.mark();
    await save(join(cwd, '.dev.vars'), 'S=dev\n');
    await dev.waitFor('stdout', /^reloaded in \d+ ms$/m, mark);
    assert.deepEqual(await (await fetch(base)).json(), { A: 'toml', S: 'dev' });

    const staging = await project('dot-env-staging', {
      'wrangler.toml': 'name = "dotenv"\nmain = "src/index.js"\n[env.staging]\nvars = { A = "toml-staging" }\n',
      '.env': 'S=env\nT=env\n',
      '.env.staging': 'T=env-staging\n',
      'src/index.js': ENV_WORKER,
    });
    const second = await start(['--env', 'staging'], staging);
    assert.deepEqual(await (await fetch(second.base)).json(), { A: 'toml-staging', S: 'env', T: 'env-staging' });
  });

  test('files written in the project, and sources rewritten unchanged, start no rebuild', async () => {
    const cwd = await project('no-loop', {
      'wrangler.toml': 'name = "quiet"\nmain = "worker.js"\n',
      'worker.js': "export default { fetch() { return new Response('v1'); } };\n",
    });
    const { dev, base } = await start([], cwd);
    const mark = dev.mark();
    await mkdir(join(cwd, '.isolet', 'kv'), { recursive: true });
    for (let i = 0; i < 20; i++) {
      // Local state, logs and build output next to the entry, and the entry saved unchanged.
      await writeFile(join(cwd, '.isolet', 'kv', `key-${i}`), `value ${i}`);
      await writeFile(join(cwd, 'dev.log'), `line ${i}\n`, { flag: 'a' });
      await writeFile(join(cwd, `out-${i % 3}.js`), `// generated ${i}\n`);
      await save(join(cwd, 'worker.js'), "export default { fetch() { return new Response('v1'); } };\n");
    }
    // One real change: exactly one reload follows, none came before it.
    await save(join(cwd, 'worker.js'), "export default { fetch() { return new Response('v2'); } };\n");
    await dev.waitFor('stdout', /^reloaded in \d+ ms$/m, mark);
    assert.equal(await (await fetch(base)).text(), 'v2');
    assert.equal(count(dev.stdout.slice(mark.stdout), /^reloaded in/), 1, dev.stdout);
  });

  test('a source rewritten with the same bytes by truncating then writing, as a shell redirection does, starts no rebuild', async () => {
    const source = "export default { fetch() { return new Response('v1'); } };\n";
    const cwd = await project('same-bytes', { 'wrangler.toml': 'name = "same"\nmain = "worker.js"\n', 'worker.js': source });
    const { dev, base } = await start([], cwd);
    const mark = dev.mark();
    const file = join(cwd, 'worker.js');
    // `cat saved > worker.js`: the file is empty for 10 ms, long enough for dev to see it so;
    // then the same bytes again. The pause blocks this thread (no timer of a busy event loop can
    // stretch it past dev's 50 ms debounce, after which dev judges the rewrite).
    const truncateThenWrite = (text: string) => {
      const fd = openSync(file, 'w');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      writeSync(fd, text);
      closeSync(fd);
    };
    for (let i = 0; i < 10; i++) {
      truncateThenWrite(source);
      await sleep(150);
    }
    // One real change, made the same way: exactly one reload follows, none came before it.
    truncateThenWrite(source.replace('v1', 'v2'));
    await dev.waitFor('stdout', /^reloaded in \d+ ms$/m, mark);
    assert.equal(await (await fetch(base)).text(), 'v2');
    assert.equal(count(dev.stdout.slice(mark.stdout), /^reloaded in/), 1, dev.stdout);
  });

  test('after a failed build, only a module file can start another attempt', async () => {
    const cwd = await project('no-loop-failed', {
      'worker.js': "import { x } from './missing.js';\nexport default { fetch() { return new Response(x); } };\n",
    });
    const dev = new CliProcess(['dev', 'worker.js', '--port', '0'], { cwd });
    running.push(dev);
    const base = (await dev.waitFor('stdout', LISTENING))[1]!;
    assert.equal(count(dev.stderr, /Could not resolve "\.\/missing\.js"/), 1);
    const mark = dev.mark();
    for (let i = 0; i < 20; i++) await writeFile(join(cwd, 'dev.log'), `line ${i}\n`, { flag: 'a' });
    await save(join(cwd, 'missing.js'), "export const x = 'fixed';\n");
    await dev.waitFor('stdout', /^reloaded in \d+ ms$/m, mark);
    assert.equal(await (await fetch(base)).text(), 'fixed');
    assert.equal(count(dev.stderr.slice(mark.stderr), /Could not resolve/), 0, dev.stderr);
  });

  for (const minify of [false, true]) {
    test(`an uncaught error's stack points at the source file and line${minify ? ' (--minify)' : ''}`, async () => {
      const cwd = await project(`stack-${minify}`, {
        'wrangler.toml': 'name = "traced"\nmain = "src/index.ts"\n',
        'src/index.ts': [
          "import { fail } from './lib/fail.ts';",
          'export default {',
          '  fetch(request: Request): Response {',
          '    return fail(new URL(request.url).pathname);',
          '  },',
          '};',
          '',
        ].join('\n'),
        'src/lib/fail.ts': ['// a helper that throws', 'export function fail(path: string): never {', '  throw new Error(`boom at ${path}`);', '}', ''].join('\n'),
      });
      const { dev, base } = await start(minify ? ['--minify'] : [], cwd);
      const response = await fetch(base + '/here');
      await response.arrayBuffer();
      assert.equal(response.status, 500);
      await dev.waitFor('stderr', /^\[traced\] exception: Uncaught Error: boom at \/here$/m);
      await dev.waitFor('stderr', /^\s+at .*src\/lib\/fail\.ts:3:\d+\)?$/m);
      await dev.waitFor('stderr', /^\s+at .*src\/index\.ts:4:\d+\)?$/m);
      assert.doesNotMatch(dev.stderr, /worker\.js:\d+:\d+/);
      // The platform's own frames are not the tenant's to read.
      assert.doesNotMatch(dev.stderr, /isolet:runtime\.js/);
    });
  }

  test('--env picks the section: its vars, <name>-<env>, .dev.vars.<env>', async () => {
    const cwd = await project('env', {
      'wrangler.toml': 'name = "app"\nmain = "w.js"\n[vars]\nMODE = "top"\n[env.staging.vars]\nMODE = "staging"\n',
      '.dev.vars': 'S=default\n',
      '.dev.vars.staging': 'S=staging\n',
      'w.js': "export default { fetch(request, env) { console.log('mode', env.MODE); return Response.json(env); } };\n",
    });
    const { dev, base } = await start(['--env', 'staging'], cwd);
    assert.deepEqual(await (await fetch(base)).json(), { MODE: 'staging', S: 'staging' });
    await dev.waitFor('stderr', /^\[app-staging\] mode staging$/m);
    const unknown = new CliProcess(['dev', '--port', '0', '--env', 'prod'], { cwd });
    running.push(unknown);
    assert.equal((await unknown.exited).code, 2);
    assert.match(unknown.stderr, /there is no environment 'prod'\. Fix: use one of staging/);
  });

  test('a worker importing .wasm runs, and a new .wasm reloads it', async () => {
    const cwd = await project('wasm', {
      'wrangler.toml': 'name = "wasm"\nmain = "src/index.js"\n',
      'src/index.js': WASM_WORKER,
      'src/add.wasm': ADD_WASM,
      'src/quad.wasm': QUAD_WASM,
    });
    const { dev, base } = await start([], cwd);
    assert.deepEqual(await (await fetch(base)).json(), { direct: 5, viaInstantiate: 20, isModule: true, exports: ['add'], imports: ['env.double'] });
    const refused = (await (await fetch(base + '/refused')).json()) as Record<string, string>;
    assert.match(refused.compile!, /^CompileError: Wasm code generation disallowed by embedder$/);
    // add.wasm replaced by a module whose 'add' subtracts: the .wasm is an input like any source.
    const sub = new Uint8Array(ADD_WASM);
    sub[sub.length - 2] = 0x6b; // i32.sub
    const mark = dev.mark();
    await save(join(cwd, 'src', 'add.wasm'), sub);
    await dev.waitFor('stdout', /^reloaded in \d+ ms$/m, mark);
    assert.equal(((await (await fetch(base)).json()) as { direct: number }).direct, -1);
  });
});
