// `import mod from './x.wasm'` (or './x.wasm?module', wrangler's other spelling): the bundle
// keeps the import, pointing at a module of its own that holds the file's bytes, as wrangler
// uploads it. The runtime compiles that module on the host when the worker loads and the import
// gives the worker a WebAssembly.Module; the worker never compiles bytes itself.

import type { Plugin } from 'esbuild';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, isAbsolute, resolve } from 'node:path';
import type { WorkerModule } from '../runtime/types.ts';

const WASM_IMPORT = /\.wasm(\?module)?$/;

/** The .wasm files one build imported: absolute path to the module name the bundle imports. */
export class WasmImports {
  readonly #names = new Map<string, string>();
  readonly #bytes = new Map<string, Uint8Array>();

  get files(): string[] {
    return [...this.#names.keys()];
  }

  /** The module name of `file`, made from its name and contents so that two files never share one. */
  nameOf(file: string): string {
    let name = this.#names.get(file);
    if (name === undefined) {
      const bytes = readFileSync(file);
      const stem = basename(file, '.wasm').replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 60) || 'module';
      name = `${stem}-${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}.wasm`;
      this.#names.set(file, name);
      this.#bytes.set(file, bytes);
    }
    return name;
  }

  /** The worker modules the imports need. */
  modules(): WorkerModule[] {
    return [...this.#names].map(([file, name]) => ({ name, type: 'wasm', source: Buffer.from(this.#bytes.get(file)!).toString('base64') }));
  }

  /** The esbuild plugin that records the imports and leaves them in the bundle. */
  plugin(): Plugin {
    return {
      name: 'isolet-wasm-modules',
      setup: (build) => {
        build.onResolve({ filter: WASM_IMPORT }, async (args) => {
          if (args.pluginData === WASM_IMPORT) return undefined;
          const specifier = args.path.replace(/\?module$/, '');
          let file: string;
          if (specifier.startsWith('.') || isAbsolute(specifier)) {
            file = resolve(args.resolveDir, specifier);
          } else {
            // A .wasm file of a package: resolved as esbuild resolves any import.
            const found = await build.resolve(specifier, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: WASM_IMPORT });
            if (found.errors.length > 0) return { errors: found.errors };
            file = found.path;
          }
          try {
            return { path: `./${this.nameOf(file)}`, external: true };
          } catch (error) {
            return { errors: [{ text: `cannot read ${args.path}: ${(error as Error).message}` }] };
          }
        });
      },
    };
  }
}
