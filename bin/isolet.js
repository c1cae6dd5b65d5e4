#!/usr/bin/env node
// The isolet launcher. It must run on whatever Node is on PATH (even an old one), so it is
// plain JavaScript with no imports beyond Node's own. isolated-vm needs Node 24 and
// --no-node-snapshot; the pinned Node 24 comes with the package (the `node` dependency), so
// when this process is not already that, re-run the CLI under it.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// In a checkout the CLI runs from its TypeScript sources; Node will not strip types under
// node_modules, so an installed package runs the JavaScript that `npm pack` compiled (dist/).
const installed = here.split(sep).includes('node_modules');
const cli = installed ? join(here, '..', 'dist', 'cli', 'main.js') : join(here, '..', 'src', 'cli', 'main.ts');
const major = Number(process.versions.node.split('.')[0]);
const ready = major >= 24 && process.execArgv.includes('--no-node-snapshot');

if (ready) {
  await import(cli);
} else {
  const node = findPinnedNode();
  if (!node) {
    process.stderr.write(
      `isolet: needs Node.js 24 (this is ${process.version}) and could not find the pinned one.\n` +
        `Fix: run 'npm install' in the isolet package so its 'node' dependency is installed, or put Node 24 on PATH.\n`,
    );
    process.exit(1);
  }
  const child = spawn(node, ['--no-node-snapshot', ...process.execArgv, cli, ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => child.kill(signal));
  }
  child.on('exit', (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}

function findPinnedNode() {
  if (major >= 24) return process.execPath;
  const require = createRequire(import.meta.url);
  try {
    const pkg = require.resolve('node/package.json');
    const bin = join(dirname(pkg), 'bin', 'node');
    if (existsSync(bin)) return bin;
  } catch {}
  return undefined;
}
