// The sandbox modules (src/runtime/sandbox-modules.ts) run on the built-ins the snapshot captured
// (src/sandbox/primordials.ts), not on a copy of their own.
//
// A module that bundled its own copy evaluated all of primordials.ts on first use: some 150
// captures, each reading a property descriptor and binding a function, whichever few the module
// used. Every module paid it again: ~5.5 KB of source, ~15 KB of heap kept and ~50 KB of garbage
// per module (docs/BENCHMARKS.md, api-cost). Instead:
//  - in the runtime bundle, primordialValues() (in primordials.ts) returns every value that
//    module exports, in the order they are declared;
//  - a module's script is a function of that list (see bundleSandboxModule), and its
//    primordials.ts becomes one constant per export taken from the list by position, marked pure
//    so the bundler drops those the module does not use.
// Both sides read the export names from the same file in the same process, so positions agree.
// The list goes from the runtime to the module in an argument (host-calls.ts loadModule), never
// through a global: tenant code can neither see nor replace it.

import { readFile } from 'node:fs/promises';
import type { Plugin } from 'esbuild';

const FILE = /[\\/]sandbox[\\/]primordials\.ts$/;

/** The function of primordials.ts whose list this writes in. */
const LIST = 'primordialValues';

/** The parameter of a sandbox module's script that receives primordialValues(). */
export const PRIMORDIALS_PARAMETER = '__primordials';

/** The names primordials.ts exports as values, in the order they are declared. */
function exportedNames(source: string): string[] {
  const names: string[] = [];
  for (const match of source.matchAll(/^export (?:const|let|function|class) ([A-Za-z_$][\w$]*)/gm)) names.push(match[1]!);
  return names;
}

/** For the runtime bundle: gives primordials.ts the body of primordialValues(). */
export const runtimePrimordialsPlugin: Plugin = {
  name: 'isolet-runtime-primordials',
  setup(build) {
    build.onLoad({ filter: FILE }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const placeholder = `export function ${LIST}(): readonly unknown[] {\n  return [];\n}`;
      if (source.split(placeholder).length !== 2) throw new Error(`${args.path} no longer reads \`${placeholder}\`, whose list src/runtime/shared-primordials.ts writes in.`);
      const names = exportedNames(source).filter((name) => name !== LIST);
      return { contents: source.replace(placeholder, `export function ${LIST}() { return [${names.join(', ')}]; }`), loader: 'ts' };
    });
  },
};

/** For a sandbox module: primordials.ts becomes the runtime's values, by position. */
export const modulePrimordialsPlugin: Plugin = {
  name: 'isolet-module-primordials',
  setup(build) {
    build.onLoad({ filter: FILE }, async (args) => {
      const names = exportedNames(await readFile(args.path, 'utf8')).filter((name) => name !== LIST);
      const take = `const take = (i) => ${PRIMORDIALS_PARAMETER}[i];\n`;
      const contents = take + names.map((name, i) => `export const ${name} = /* @__PURE__ */ take(${i});`).join('\n');
      return { contents, loader: 'js' };
    });
  },
};
