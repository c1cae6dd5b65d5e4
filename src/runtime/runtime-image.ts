// The runtime image: the sandbox runtime (src/sandbox/main.ts and the API folders) bundled
// into one script, and a V8 startup snapshot of it. Every new isolate is deserialised from
// the snapshot instead of parsing and running the runtime again; that is what makes a cold
// start cost about as much as a bare isolate (numbers in docs/BENCHMARKS.md).

import ivm from 'isolated-vm';
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { buildSandboxModules, type SandboxModule } from './sandbox-modules.ts';

const entry = fileURLToPath(new URL('../sandbox/main.ts', import.meta.url));

export interface RuntimeImage {
  /** The bundled sandbox runtime. */
  source: string;
  /** V8 snapshot of a context that ran `source`. */
  snapshot: ivm.ExternalCopy<ArrayBuffer>;
  /** Modules isolates load on first use, outside the snapshot (see sandbox-modules.ts). */
  modules: Record<string, SandboxModule>;
}

export async function bundleSandboxRuntime(): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'neutral',
    target: 'es2024',
    // Names stay (tenants see class names such as Headers in errors and console output);
    // whitespace and syntax are minified to keep the snapshot small.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    banner: { js: '"use strict";' },
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

let cached: Promise<RuntimeImage> | undefined;

/** Built once per process: every Runtime in it shares the same image. */
export function runtimeImage(): Promise<RuntimeImage> {
  cached ??= (async () => {
    const source = await bundleSandboxRuntime();
    const snapshot = ivm.Isolate.createSnapshot([{ code: source, filename: 'isolet:runtime.js' }]);
    return { source, snapshot, modules: await buildSandboxModules() };
  })();
  return cached;
}
