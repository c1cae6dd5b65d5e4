// Test support: small WebAssembly modules written out byte by byte from their text form, so
// tests need no toolchain.

/** A name in a WebAssembly binary: its length, then its UTF-8 bytes. */
function name(text: string): number[] {
  const bytes = [...Buffer.from(text)];
  return [bytes.length, ...bytes];
}

/** A section: its id, its size (one LEB128 byte: these are small), its contents. */
function section(id: number, contents: number[]): number[] {
  if (contents.length > 127) throw new Error('section too large for this helper');
  return [id, contents.length, ...contents];
}

const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const I32 = 0x7f;

/** (module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)) */
export const ADD_WASM = new Uint8Array([
  ...HEADER,
  ...section(1, [1, 0x60, 2, I32, I32, 1, I32]),
  ...section(3, [1, 0]),
  ...section(7, [1, ...name('add'), 0x00, 0]),
  ...section(10, [1, 7, 0, 0x20, 0, 0x20, 1, 0x6a, 0x0b]),
]);

/**
 * (module (import "env" "double" (func $double (param i32) (result i32)))
 *   (func (export "quad") (param i32) (result i32) local.get 0 call $double call $double))
 */
export const QUAD_WASM = new Uint8Array([
  ...HEADER,
  ...section(1, [1, 0x60, 1, I32, 1, I32]),
  ...section(2, [1, ...name('env'), ...name('double'), 0x00, 0]),
  ...section(3, [1, 0]),
  ...section(7, [1, ...name('quad'), 0x00, 1]),
  ...section(10, [1, 8, 0, 0x20, 0, 0x10, 0, 0x10, 0, 0x0b]),
]);

/** A worker module that imports ./add.wasm and ./quad.wasm and reports what it can do with them. */
export const WASM_WORKER = `
import add from './add.wasm';
import quad from './quad.wasm?module';
export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/refused') {
      return Response.json(await refusals());
    }
    const direct = new WebAssembly.Instance(add).exports.add(2, 3);
    const viaInstantiate = (await WebAssembly.instantiate(quad, { env: { double: (n) => n * 2 } })).exports.quad(5);
    return Response.json({
      direct,
      viaInstantiate,
      isModule: add instanceof WebAssembly.Module,
      exports: WebAssembly.Module.exports(add).map((e) => e.name),
      imports: WebAssembly.Module.imports(quad).map((i) => i.module + '.' + i.name),
    });
  },
};
async function refusals() {
  const bytes = new Uint8Array(${JSON.stringify([...ADD_WASM])});
  const outcome = async (fn) => { try { await fn(); return 'allowed'; } catch (error) { return error.name + ': ' + error.message; } };
  return {
    compile: await outcome(() => WebAssembly.compile(bytes)),
    instantiateBytes: await outcome(() => WebAssembly.instantiate(bytes)),
    moduleConstructor: await outcome(() => new WebAssembly.Module(bytes)),
    prototypeConstructor: await outcome(() => new (Object.getPrototypeOf(add).constructor)(bytes)),
    compileStreaming: await outcome(() => WebAssembly.compileStreaming(new Response(bytes))),
    instantiateFake: await outcome(() => WebAssembly.instantiate(Object.create(WebAssembly.Module.prototype))),
  };
}
`;
