// The package as users get it: `npm pack`, installed into an empty folder with the npm on
// PATH (whatever Node that is), then `npx isolet` and `import { Runtime } from 'isolet'`. This
// is what proves the launcher finds the pinned Node 24, that the dependencies' install scripts
// the package needs run, and that the compiled JavaScript (Node strips no types under
// node_modules) and the sandbox sources are all in the tarball.
//
// isolet's postinstall would build isolated-vm from source (minutes of both cores on a busy
// machine). The build it makes depends only on isolated-vm's version, Node's and the patches,
// all the same as this checkout's, so the install skips it (ISOLET_NATIVE_BUILD=0) and is given
// this checkout's build instead; without one here the package runs on the prebuilt binary,
// which the test accepts too. The build script has its own test (isolated-vm-build.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
const ownRelease = join(dirname(createRequire(join(root, 'package.json')).resolve('isolated-vm/package.json')), 'build', 'Release');

test('npm pack, install into an empty folder, run the CLI and the library', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'isolet-install-'));
  try {
    // npm's own environment variables from the surrounding `npm test` would leak into the
    // nested npm commands (e.g. npm_config_* of this project); give them a clean one.
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) if (!/^npm_/i.test(key)) env[key] = value;
    env.ISOLET_NATIVE_BUILD = '0';
    await run('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: root, env, maxBuffer: 16 << 20 });
    const tarball = readdirSync(dir).find((name) => name.endsWith('.tgz'));
    assert.ok(tarball, 'npm pack made a tarball');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'empty', version: '1.0.0', type: 'module', private: true }));
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', `./${tarball}`], { cwd: dir, env, maxBuffer: 16 << 20 });
    const patched = existsSync(join(ownRelease, 'isolated_vm.node'));
    if (patched) cpSync(ownRelease, join(dir, 'node_modules', 'isolated-vm', 'build', 'Release'), { recursive: true });

    const version = await run('npx', ['isolet', 'version'], { cwd: dir, env });
    assert.match(version.stdout, /^isolet \d+\.\d+\.\d+\nnode 24\.\d+\.\d+\nv8 \d+/);
    if (patched) assert.match(version.stdout, /isolet build, patches/);

    writeFileSync(
      join(dir, 'use.mjs'),
      `import { Runtime } from 'isolet';
const runtime = new Runtime({ log: () => {} });
await runtime.load('hello', { modules: [{ name: 'main.js', source: "export default { fetch(r) { return new Response('hi from ' + new URL(r.url).hostname) } }" }] });
const response = await runtime.fetch('hello', { method: 'GET', url: 'http://example.test/', headers: [] });
console.log(response.status, Buffer.from(response.body).toString());
await runtime.close();
`,
    );
    const node = join(dir, 'node_modules', 'node', 'bin', 'node');
    const used = await run(node, ['--no-node-snapshot', 'use.mjs'], { cwd: dir, env });
    assert.equal(used.stdout.trim(), '200 hi from example.test');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
