// WebAssembly modules shipped with a worker (WorkerModule type 'wasm'): their bytes are checked
// where a deployment is accepted, and compiled on the host when the worker loads (once per
// definition, shared by all its isolates), then copied into the isolate as a ready
// WebAssembly.Module. The isolate itself never compiles bytes (src/api/codegen/sandbox.ts).

import ivm from 'isolated-vm';
import type { WorkerModule } from './types.ts';

/** Node's WebAssembly (the project's TypeScript libs declare its types, not the global). */
const hostWasm = (globalThis as unknown as { WebAssembly: { validate(bytes: Uint8Array): boolean; compile(bytes: Uint8Array): Promise<WasmModule> } }).WebAssembly;
/** A compiled WebAssembly.Module of the host. */
type WasmModule = object;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** "\0asm" and version 1: the start of every WebAssembly binary module. */
const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

/** The module's bytes, or what is wrong with them (not base64, not WebAssembly, invalid). */
export function wasmBytes(source: string): Uint8Array | { problem: string } {
  if (!BASE64.test(source)) return { problem: 'is not base64 (a wasm module\'s source holds its bytes in base64)' };
  const bytes = new Uint8Array(Buffer.from(source, 'base64'));
  if (bytes.length < HEADER.length || HEADER.some((byte, index) => bytes[index] !== byte)) {
    return { problem: 'is not a WebAssembly binary module (it must start with \\0asm and version 1)' };
  }
  if (!hostWasm.validate(bytes)) return { problem: 'is not a valid WebAssembly module' };
  return bytes;
}

const compiled = new WeakMap<WorkerModule, Promise<WasmModule>>();

/** The module compiled on the host; one compilation per module object. */
export function compileWasm(module: WorkerModule): Promise<WasmModule> {
  let promise = compiled.get(module);
  if (promise === undefined) {
    const bytes = wasmBytes(module.source);
    promise = 'problem' in bytes ? Promise.reject(new Error(`it ${bytes.problem}`)) : hostWasm.compile(bytes);
    compiled.set(module, promise);
  }
  return promise;
}

/**
 * An ES module of the isolate whose default export is `module`, compiled on the host. It
 * re-exports from a holder module that is filled once, here, before any tenant code runs;
 * `holderOf` resolves the wrapper's one import (the holder is importable from nowhere else).
 */
export async function wasmModuleIn(
  isolate: ivm.Isolate,
  context: ivm.Context,
  module: WorkerModule,
  name: string,
): Promise<{ wrapper: ivm.Module; holder: ivm.Module }> {
  const wasm = await compileWasm(module);
  const holder = await isolate.compileModule(HOLDER_SOURCE, { filename: `${name}#holder` });
  await holder.instantiate(context, () => {
    throw new Error('the holder of a wasm module imports nothing');
  });
  await holder.evaluate();
  const fill = (await holder.namespace.get('fill', { reference: true })) as ivm.Reference<(value: unknown) => void>;
  await fill.apply(undefined, [new ivm.ExternalCopy(wasm).copyInto({ release: true })]);
  fill.release();
  const wrapper = await isolate.compileModule(`export { default } from ${JSON.stringify(HOLDER_SPECIFIER)};`, { filename: name });
  return { wrapper, holder };
}

/** The specifier by which a wasm wrapper imports its holder. */
export const HOLDER_SPECIFIER = 'isolet:wasm-holder';

const HOLDER_SOURCE = 'let value; let open = true; export { value as default }; export function fill(module) { if (open) { value = module; open = false; } }';
