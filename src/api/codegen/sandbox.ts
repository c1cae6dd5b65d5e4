// No code generation from strings inside a tenant's isolate (Workers refuses it too): `eval`,
// `new Function` and its async/generator siblings throw EvalError, and WebAssembly may not
// compile bytes made at run time. isolated-vm offers no switch for V8's
// AllowCodeGenerationFromStrings, so the constructors are replaced here, before any tenant
// code exists; the originals are kept only in this module's closure.

import { EvalError, PromiseReject } from '../../sandbox/primordials.ts';

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
  // workerd allows WebAssembly modules shipped with the worker but refuses compiling bytes
  // at run time; isolet has no bundled-Wasm path yet, so compiling from bytes is refused.
  const wasm = (global as { WebAssembly?: Record<string, unknown> }).WebAssembly;
  if (wasm) {
    const CompileError = wasm.CompileError as ErrorConstructor;
    const refuseWasm = () => {
      throw new CompileError('Wasm code generation disallowed by embedder');
    };
    for (const name of ['compile', 'instantiate', 'compileStreaming', 'instantiateStreaming']) {
      if (name in wasm) wasm[name] = function () { return PromiseReject(new CompileError('Wasm code generation disallowed by embedder')); };
    }
    wasm.Module = function Module() { refuseWasm(); };
  }

}

