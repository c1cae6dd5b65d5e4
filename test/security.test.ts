// Escape routes and Spectre defences: tenant code must never reach an isolated-vm handle, a
// host object or a high-resolution clock, and cannot generate code from strings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serve, moduleWorker, type Served } from './support/serve.ts';

const probe = moduleWorker(`
const results = {};
const hostish = (value) => {
  // Anything that smells of isolated-vm or of the host's realm.
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false;
  let name = '';
  try { name = String(value.constructor && value.constructor.name); } catch {}
  return /^(Reference|ExternalCopy|Callback|Isolate|Context|Script|Module|Dereference|NativeModule|Copy)$/.test(name)
    || typeof value.derefInto === 'function' || typeof value.applySync === 'function' || typeof value.copyInto === 'function';
};

// Walks every value reachable through own properties and prototypes, looking for host objects.
function walk(root, label, found, seen = new Set(), depth = 0) {
  if (root === null || (typeof root !== 'object' && typeof root !== 'function') || seen.has(root) || depth > 6) return;
  seen.add(root);
  if (hostish(root)) found.push(label);
  let keys = [];
  try { keys = Reflect.ownKeys(root); } catch {}
  for (const key of keys) {
    let value;
    try {
      const d = Object.getOwnPropertyDescriptor(root, key);
      value = d && ('value' in d ? d.value : undefined);
      if (d && d.get) { try { value = d.get.call(root); } catch {} }
    } catch { continue; }
    walk(value, label + '.' + String(key), found, seen, depth + 1);
  }
  try { walk(Object.getPrototypeOf(root), label + '.__proto__', found, seen, depth + 1); } catch {}
}

export default {
  async fetch(request, env, ctx) {
    const { pathname } = new URL(request.url);
    if (pathname === '/globals') {
      return Response.json(Object.getOwnPropertyNames(globalThis).filter((n) => /ivm|isolet|isolated|_host|^__/i.test(n)));
    }
    if (pathname === '/walk') {
      const found = [];
      walk(globalThis, 'globalThis', found);
      walk(request, 'request', found);
      walk(env, 'env', found);
      walk(ctx, 'ctx', found);
      try { await request.text(); } catch (e) { walk(e, 'bodyError', found); }
      try { crypto.getRandomValues(new Float64Array(1)); } catch (e) { walk(e, 'cryptoError', found); }
      try { setTimeout('1'); } catch (e) { walk(e, 'timerError', found); }
      return Response.json(found);
    }
    if (pathname === '/constructor-chains') {
      const out = {};
      for (const [name, value] of Object.entries({ request, env, ctx, headers: request.headers, signal: request.signal, response: new Response('x') })) {
        try {
          const F = value.constructor.constructor;
          out[name] = F('return globalThis')() === globalThis ? 'reached a Function' : 'odd';
        } catch (e) { out[name] = e.name + ': ' + e.message; }
      }
      return Response.json(out);
    }
    if (pathname === '/prepare-stack-trace') {
      const leaked = [];
      Error.prepareStackTrace = (error, frames) => {
        for (const frame of frames) {
          const fn = frame.getFunction && frame.getFunction();
          const self = frame.getThis && frame.getThis();
          if (hostish(fn) || hostish(self)) leaked.push(String(frame));
          if (fn && fn !== Error && /isolet:runtime/.test(String(frame.getFileName()))) leaked.push('runtime function: ' + String(frame));
        }
        return 'prepared';
      };
      // Errors thrown from inside the runtime, on the way back from host calls.
      try { crypto.getRandomValues(new Uint8Array(70000)); } catch (e) { e.stack; }
      try { await new Request('http://x/', { method: 'GET', body: 'x' }).text(); } catch (e) { e.stack; }
      try { new Response('', { status: 9999 }); } catch (e) { e.stack; }
      try { await request.json(); } catch (e) { e.stack; }
      delete Error.prepareStackTrace;
      return Response.json(leaked);
    }
    if (pathname === '/codegen') {
      const out = {};
      const attempts = {
        eval: () => eval('1 + 1'),
        indirectEval: () => (0, eval)('1 + 1'),
        Function: () => new Function('return 1')(),
        FunctionCall: () => Function('return 1')(),
        constructorOfFunction: () => (function () {}).constructor('return 1')(),
        asyncFunction: () => (async function () {}).constructor('return 1'),
        generatorFunction: () => (function* () {}).constructor('yield 1'),
        asyncGeneratorFunction: () => (async function* () {}).constructor('yield 1'),
        stringTimer: () => setTimeout('globalThis.x = 1', 0),
        stringInterval: () => setInterval('globalThis.x = 1', 10),
      };
      for (const [name, attempt] of Object.entries(attempts)) {
        try { attempt(); out[name] = 'allowed'; } catch (e) { out[name] = e.constructor.name; }
      }
      try { await WebAssembly.compile(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])); out.wasmCompile = 'allowed'; } catch (e) { out.wasmCompile = e.constructor.name; }
      try { new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])); out.wasmModule = 'allowed'; } catch (e) { out.wasmModule = e.constructor.name; }
      return Response.json(out);
    }
    if (pathname === '/spectre') {
      const t0 = Date.now();
      const p0 = performance.now();
      const d0 = new Date().getTime();
      let x = 0;
      for (let i = 0; i < 3e6; i++) x += i % 7;
      const sameDuringWork = Date.now() === t0 && performance.now() === p0 && new Date().getTime() === d0;
      await new Promise((resolve) => setTimeout(resolve, 20));
      const advancedAtIo = Date.now() > t0;
      return Response.json({
        sameDuringWork, advancedAtIo, x: x > 0,
        sharedArrayBuffer: typeof SharedArrayBuffer,
        atomics: typeof Atomics,
        performanceEqualsDate: performance.now() === Date.now(),
        dateInstance: new Date() instanceof Date,
        dateString: typeof Date(),
        parsed: new Date(0).toISOString(),
      });
    }
    return new Response('?', { status: 404 });
  },
};`);

let served: Served;
before(async () => {
  served = await serve({ probe }, { limits: { cpuMs: 2000 } });
});
after(() => served.close());

async function json(path: string, init?: RequestInit): Promise<unknown> {
  const response = await served.fetch('probe', path, init);
  assert.equal(response.status, 200, `${path}: ${response.status}`);
  return response.json();
}

test('no runtime internals are left on the global object', async () => {
  assert.deepEqual(await json('/globals'), []);
});

test('no isolated-vm handle is reachable from globals, request, env, ctx or errors from host calls', async () => {
  assert.deepEqual(await json('/walk', { method: 'POST', body: 'hello' }), []);
});

test('constructor chains from values the host hands in end in a Function that refuses code', async () => {
  const out = (await json('/constructor-chains')) as Record<string, string>;
  for (const [name, result] of Object.entries(out)) {
    assert.match(result, /^EvalError: Code generation from strings disallowed/, `${name}: ${result}`);
  }
});

test('Error.prepareStackTrace shows no host objects and no runtime functions', async () => {
  assert.deepEqual(await json('/prepare-stack-trace', { method: 'POST', body: 'not json' }), []);
});

test('eval, new Function, string timers and runtime Wasm compilation are refused', async () => {
  assert.deepEqual(await json('/codegen'), {
    eval: 'EvalError',
    indirectEval: 'EvalError',
    Function: 'EvalError',
    FunctionCall: 'EvalError',
    constructorOfFunction: 'EvalError',
    asyncFunction: 'EvalError',
    generatorFunction: 'EvalError',
    asyncGeneratorFunction: 'EvalError',
    stringTimer: 'TypeError',
    stringInterval: 'TypeError',
    wasmCompile: 'CompileError',
    wasmModule: 'CompileError',
  });
});

test('clocks stand still while code runs and advance at I/O; no shared memory or Atomics', async () => {
  assert.deepEqual(await json('/spectre'), {
    sameDuringWork: true,
    advancedAtIo: true,
    x: true,
    sharedArrayBuffer: 'undefined',
    atomics: 'undefined',
    performanceEqualsDate: true,
    dateInstance: true,
    dateString: 'string',
    parsed: '1970-01-01T00:00:00.000Z',
  });
});
