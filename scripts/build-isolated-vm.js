#!/usr/bin/env node
// Builds isolated-vm from its own sources with isolet's patch (native/isolated-vm/*.patch) and
// puts the result where isolated-vm itself loads a local build from (build/Release, which
// node-gyp-build prefers over the package's prebuilt binaries).
//
// Why a patched build: each patch is headed by its reason. In short, stock isolated-vm gives
// every isolate a second context nothing uses (a copy of isolet's runtime, with a snapshot),
// counts waiting for a core as CPU time, starts a thread for every isolate it wakes while its
// pool is busy, has no way to give an idle isolate's memory back, and frees the large buffers
// and strings the host moves in on the isolate's own thread, at the isolate's CPU cost, and lets
// code in an isolate crash the process through an error's `stack`; docs/BENCHMARKS.md has what
// each costs.
//
// It runs as isolet's postinstall, and by hand with `npm run build:native`. It never fails an
// install: without a compiler or Node's headers isolet runs on the prebuilt binary, which works
// the same and only costs more memory per isolate. Plain JavaScript, so it runs on any Node.
//
//   node scripts/build-isolated-vm.js [--force]
//   ISOLET_NATIVE_BUILD=0 skips it.

import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PATCH_DIR = join(ROOT, 'native', 'isolated-vm');
const MARKER = 'isolet-build.json';
const require = createRequire(join(ROOT, 'package.json'));

function log(message) {
  process.stderr.write(`isolet: ${message}\n`);
}

function packageDir(name) {
  return dirname(require.resolve(`${name}/package.json`));
}

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** What the build is made of: a different isolated-vm, Node or patch means a rebuild. */
function buildIdentity(ivmDir, patches, nodeVersion) {
  const hash = createHash('sha256');
  for (const patch of patches) hash.update(readFileSync(join(PATCH_DIR, patch)));
  return { isolatedVm: readJson(join(ivmDir, 'package.json')).version, node: nodeVersion, patches: hash.digest('hex').slice(0, 16) };
}

/** The Node isolet runs on: the `node` dependency, whose version the headers must match. */
function targetNodeVersion() {
  try {
    return readJson(join(packageDir('node'), 'package.json')).version;
  } catch {
    return process.versions.node;
  }
}

function headersAt(dir, version) {
  const versionFile = join(dir, 'include', 'node', 'node_version.h');
  if (!existsSync(join(dir, 'include', 'node', 'common.gypi')) || !existsSync(versionFile)) return false;
  const text = readFileSync(versionFile, 'utf8');
  const part = (name) => new RegExp(`#define\\s+NODE_${name}_VERSION\\s+(\\d+)`).exec(text)?.[1];
  return `${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}` === version;
}

/**
 * Node's headers for the target version. The `node` package installs `node-<os>-<arch>`, which
 * ships them, but a later `npm install` may prune it (it is installed with --no-save), so fetch
 * that package from the registry when it is gone.
 */
function findHeaders(version, scratch) {
  const platform = process.platform === 'win32' ? 'win' : process.platform;
  const name = `${process.platform === 'darwin' && process.arch === 'arm64' ? 'node-bin' : 'node'}-${platform}-${process.arch}`;
  const candidates = [];
  try {
    candidates.push(join(packageDir('node'), 'node_modules', name));
  } catch {}
  try {
    candidates.push(packageDir(name));
  } catch {}
  for (const dir of candidates) if (headersAt(dir, version)) return dir;
  log(`fetching Node ${version}'s headers (${name}@${version}) from the npm registry`);
  const into = join(scratch, 'headers');
  mkdirSync(into);
  const packed = execFileSync('npm', ['pack', `${name}@${version}`, '--silent', '--pack-destination', into], { cwd: scratch, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop();
  execFileSync('tar', ['-xzf', join(into, packed), '-C', into, 'package/include'], { stdio: 'inherit' });
  const dir = join(into, 'package');
  if (!headersAt(dir, version)) throw new Error(`${name}@${version} has no usable include/node`);
  return dir;
}

/** npm's own node-gyp: npm names it in lifecycle scripts, and it sits beside npm otherwise. */
function nodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  if (process.env.npm_execpath) candidates.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  try {
    const npmRoot = execFileSync('npm', ['root', '-g'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    candidates.push(join(npmRoot, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  } catch {}
  const found = candidates.find((path) => path && existsSync(path));
  if (!found) throw new Error('node-gyp not found (it comes with npm); install npm or set npm_config_node_gyp');
  return found;
}

function build(force) {
  const ivmDir = packageDir('isolated-vm');
  const patches = readdirSync(PATCH_DIR).filter((name) => name.endsWith('.patch')).sort();
  const nodeVersion = targetNodeVersion();
  const identity = buildIdentity(ivmDir, patches, nodeVersion);
  const release = join(ivmDir, 'build', 'Release');
  const markerPath = join(release, MARKER);
  if (!force && existsSync(markerPath) && existsSync(join(release, 'isolated_vm.node'))) {
    const built = readJson(markerPath);
    if (built.isolatedVm === identity.isolatedVm && built.node === identity.node && built.patches === identity.patches) {
      log(`isolated-vm ${identity.isolatedVm} is already built with isolet's patches`);
      return;
    }
  }
  const started = Date.now();
  const scratch = mkdtempSync(join(tmpdir(), 'isolet-native-'));
  try {
    const headers = findHeaders(nodeVersion, scratch);
    const source = join(scratch, 'isolated-vm');
    for (const part of ['src', 'vendor', 'binding.gyp', 'package.json']) cpSync(join(ivmDir, part), join(source, part), { recursive: true });
    for (const patch of patches) {
      execFileSync('patch', ['-p1', '--forward', '--batch', '--quiet', '--no-backup-if-mismatch', '-i', join(PATCH_DIR, patch)], { cwd: source, stdio: 'inherit' });
    }
    const jobs = String(Math.max(1, availableParallelism()));
    log(`building isolated-vm ${identity.isolatedVm} for Node ${nodeVersion} with isolet's patches (${patches.join(', ')}); about a minute on 2 cores`);
    // npm hands its config to node-gyp as npm_config_* variables, and node-gyp lets them override
    // its command line: a machine-wide `nodedir` would build against the wrong Node's headers.
    const env = { ...process.env };
    for (const key of ['nodedir', 'target', 'arch', 'runtime', 'dist_url', 'disturl', 'devdir']) {
      delete env[`npm_config_${key}`];
      delete env[`NPM_CONFIG_${key.toUpperCase()}`];
    }
    execFileSync(process.execPath, [nodeGyp(), 'rebuild', '--release', '--loglevel=warn', '-j', jobs, `--nodedir=${headers}`], {
      cwd: source,
      env,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    mkdirSync(release, { recursive: true });
    // Into place by rename, so a process starting meanwhile loads either the old file or the new one.
    const staged = join(release, `isolated_vm.node.${process.pid}`);
    copyFileSync(join(source, 'build', 'Release', 'isolated_vm.node'), staged);
    renameSync(staged, join(release, 'isolated_vm.node'));
    writeFileSync(markerPath, `${JSON.stringify({ ...identity, builtAt: new Date().toISOString() }, null, 2)}\n`);
    log(`isolated-vm built in ${Math.round((Date.now() - started) / 1000)} s: ${join(release, 'isolated_vm.node')}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

if (process.env.ISOLET_NATIVE_BUILD === '0') {
  log('ISOLET_NATIVE_BUILD=0: using isolated-vm\'s prebuilt binary');
} else {
  try {
    build(process.argv.includes('--force'));
  } catch (error) {
    // The prebuilt binary is a working fallback, so a failed build is a warning, never a failed install.
    log(`could not build isolated-vm with isolet's patches, so the prebuilt binary is used (each isolate then holds about 0.1 MB more): ${error instanceof Error ? error.message : error}`);
    log('fix the cause (a C++ compiler, python3 and make are needed) and run `npm run build:native`');
  }
}
