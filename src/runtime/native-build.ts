// Which isolated-vm binary this process runs on: isolet's patched build (made at install by
// scripts/build-isolated-vm.js, loaded from isolated-vm's build/Release) or the package's
// prebuilt fallback. Operators see it in `isolet version` and in a warning at `isolet serve`.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export interface IsolatedVmBuild {
  version: string;
  /** True when isolet's patched build is the one loaded. */
  patched: boolean;
  /** The build's patch hash, when patched. */
  patches?: string;
}

export function isolatedVmBuild(): IsolatedVmBuild {
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve('isolated-vm/package.json'));
  const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string };
  const release = join(dir, 'build', 'Release');
  // node-gyp-build loads build/Release/*.node before any prebuilt binary.
  if (!existsSync(join(release, 'isolated_vm.node'))) return { version, patched: false };
  try {
    const marker = JSON.parse(readFileSync(join(release, 'isolet-build.json'), 'utf8')) as { patches?: unknown };
    return typeof marker.patches === 'string' ? { version, patched: true, patches: marker.patches } : { version, patched: false };
  } catch {
    return { version, patched: false };
  }
}

export function describeIsolatedVmBuild(build: IsolatedVmBuild = isolatedVmBuild()): string {
  return build.patched
    ? `isolated-vm ${build.version} (isolet build, patches ${build.patches})`
    : `isolated-vm ${build.version} (prebuilt: run \`npm run build:native\` in isolet's folder for isolet's build)`;
}
