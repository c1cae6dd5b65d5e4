// No code generation from strings inside a tenant's isolate (Workers refuses it too): `eval`,
// `new Function` and its async/generator siblings throw EvalError, and WebAssembly may not
// compile bytes made at run time (modules shipped with the worker are compiled by the host). isolated-vm offers no switch for V8's
// AllowCodeGenerationFromStrings, so the constructors are replaced here, before any tenant
// code exists; the originals are kept only in this module's closure.

import { EvalError, ObjectDefineProperty, PromiseReject } from '../../sandbox/primordials.ts';

const MESSAGE = 'Code generation from strings disallowed for this context';

function refuse(): never {
  throw new EvalError(MESSAGE);
}

function lockConstructor(prototype: object): void {
  const Blocked = function Function() {
    refuse();
  };
  Object.defineProperty(Blocked, 'prototype', { value: prototype, writable: false });
  Object.defineProperty(prototype, 'constructor', {
    value: Blocked, writable: false, enumerable: false, configurable: false,
  });
}

export function lockCodeGeneration(global: typeof globalThis): void {
  const FunctionPrototype = Function.prototype;
  const AsyncFunctionPrototype = Object.getPrototypeOf(async function () {});
  const GeneratorFunctionPrototype = Object.getPrototypeOf(function* () {});
  const AsyncGeneratorFunctionPrototype = Object.getPrototypeOf(async function* () {});
  for (const prototype of [FunctionPrototype, AsyncFunctionPrototype, GeneratorFunctionPrototype, AsyncGeneratorFunctionPrototype]) {
    lockConstructor(prototype);
  }
  Object.defineProperty(global, 'Function', {
    value: FunctionPrototype.constructor, writable: true, enumerable: false, configurable: true,
  });
  const blockedEval = function () {
    refuse();
  };
  Object.defineProperty(blockedEval, 'name', { value: 'eval' });
  Object.defineProperty(global, 'eval', { value: blockedEval, writable: true, enumerable: false, configurable: true });

}

/** The static side of V8's WebAssembly.Module (the sandbox is compiled without the WebAssembly types). */
interface WasmModuleConstructor {
  prototype: object;
  exports(module: object): unknown;
  imports(module: object): unknown;
  customSections(module: object, name: string): unknown;
}

/**
 * V8 installs WebAssembly, SharedArrayBuffer and Atomics into each new context after it is
 * deserialised from the snapshot (and refuses a snapshot whose global lacks Atomics), so these
 * are locked per context, at init.
 */
export function lockContextFeatures(global: typeof globalThis): void {
  // No shared memory or atomics: they build high-resolution timers (Spectre).
  for (const name of ['SharedArrayBuffer', 'Atomics']) {
    delete (global as unknown as Record<string, unknown>)[name];
  }
  // As workerd: a WebAssembly module shipped with the worker (`import mod from './x.wasm'`,
  // compiled by the host when the worker loads) can be instantiated, but bytes made or fetched
  // at run time cannot be compiled. Every path to V8's own Module constructor is closed: the
  // global, and the `constructor` of the prototype that imported modules share.
  const wasm = (global as { WebAssembly?: Record<string, unknown> }).WebAssembly;
  if (wasm) {
    const CompileError = wasm.CompileError as ErrorConstructor;
    const NativeModule = wasm.Module as WasmModuleConstructor;
    const nativeInstantiate = wasm.instantiate as (module: object, imports?: unknown) => Promise<unknown>;
    const moduleExports = NativeModule.exports;
    const refused = () => PromiseReject(new CompileError('Wasm code generation disallowed by embedder'));
    for (const name of ['compile', 'compileStreaming', 'instantiateStreaming']) {
      if (name in wasm) wasm[name] = function () { return refused(); };
    }
    // A real module (V8's brand check in Module.exports), never bytes, reaches V8's instantiate.
    const isModule = (value: unknown): value is object => {
      try {
        moduleExports(value as object);
        return true;
      } catch {
        return false;
      }
    };
    const instantiate = function instantiate(source: unknown, imports?: unknown) {
      return isModule(source) ? nativeInstantiate(source, imports) : refused();
    };
    const Module = function Module() { throw new CompileError('Wasm code generation disallowed by embedder'); };
    ObjectDefineProperty(Module, 'prototype', { value: NativeModule.prototype, writable: false, enumerable: false, configurable: false });
    ObjectDefineProperty(NativeModule.prototype, 'constructor', { value: Module, writable: true, enumerable: false, configurable: true });
    for (const name of ['exports', 'imports', 'customSections'] as const) {
      ObjectDefineProperty(Module, name, { value: NativeModule[name], writable: true, enumerable: false, configurable: true });
    }
    wasm.instantiate = instantiate;
    wasm.Module = Module;
  }

}

