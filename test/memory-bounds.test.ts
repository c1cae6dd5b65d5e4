// Memory a tenant holds outside what isolated-vm counts on its own (WebAssembly memories and
// tables, resizable ArrayBuffers, ICU objects behind Intl) is charged to the isolate's memory
// limit, and no path leads to a SharedArrayBuffer. Each attack runs in a worker limited to 32 MB
// and stops itself well short of what could hurt the machine; the process's RSS is checked after
// each one, and a neighbour worker in the same Runtime must keep answering.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../src/runtime/runtime.ts';
import type { WorkerDefinition } from '../src/runtime/types.ts';
import { fetchText } from './support/fetch-text.ts';

const MB = 1024 * 1024;
/** Growth of this process's RSS any one attack may cause (its budget is 32 MB, about twice with charge blocks). */
const RSS_GUARD = 160 * MB;

function moduleWorker(source: string, memoryMb = 32): WorkerDefinition {
  return { modules: [{ name: 'main.js', source }], limits: { memoryMb, cpuMs: 5000, startupCpuMs: 2000 } };
}

// Each path runs an attack that stops at the first error, or after a bounded number of steps,
// and answers with what happened: { error: 'RangeError: ...' } or { held: n }.
const attacker = moduleWorker(`
let keep = [];
const MB = 1024 * 1024;
function attempt(steps, make) {
  keep = [];
  try {
    for (let i = 0; i < steps; i++) keep.push(make(i));
    return { held: keep.length };
  } catch (error) {
    return { error: error.constructor.name + ': ' + error.message, held: keep.length };
  }
}
const attacks = {
  // 8 x 16 MB of wasm pages, each filled: 128 MB against a 32 MB limit.
  '/wasm-memory': () => attempt(8, () => { const m = new WebAssembly.Memory({ initial: 256 }); new Uint8Array(m.buffer).fill(1); return m; }),
  '/wasm-grow': () => attempt(8, () => { const m = new WebAssembly.Memory({ initial: 0, maximum: 65536 }); m.grow(256); new Uint8Array(m.buffer).fill(1); return m; }),
  '/wasm-grow-subclass': () => attempt(8, () => {
    const Native = Object.getPrototypeOf(new WebAssembly.Memory({ initial: 0 })).constructor;
    const m = Reflect.construct(Native, [{ initial: 0 }]);
    Native.prototype.grow.call(m, 256);
    new Uint8Array(m.buffer).fill(1);
    return m;
  }),
  '/wasm-huge': () => attempt(1, () => new WebAssembly.Memory({ initial: 65536 })),
  '/wasm-getter': () => {
    // A getter that would show the check a small size and the constructor a large one.
    const result = attempt(8, () => {
      let reads = 0;
      return new WebAssembly.Memory({ get initial() { return reads++ === 0 ? 1 : 256; } });
    });
    return { ...result, bytes: keep.reduce((sum, m) => sum + m.buffer.byteLength, 0) };
  },
  '/table': () => attempt(1, () => new WebAssembly.Table({ initial: 5_000_000, element: 'anyfunc' })),
  '/table-maximum': () => attempt(1, () => new WebAssembly.Table({ initial: 1, maximum: 5_000_000, element: 'anyfunc' })),
  '/table-grow': () => attempt(1, () => { const t = new WebAssembly.Table({ initial: 1, element: 'anyfunc' }); t.grow(3_000_000); return t; }),
  '/resizable': () => attempt(8, () => { const b = new ArrayBuffer(0, { maxByteLength: 16 * MB }); b.resize(16 * MB); new Uint8Array(b).fill(1); return b; }),
  '/resizable-huge': () => attempt(100_000, () => new ArrayBuffer(0, { maxByteLength: 2 ** 32 })),
  '/resizable-transfer': () => attempt(8, () => {
    const b = new ArrayBuffer(0, { maxByteLength: 16 * MB });
    const moved = b.transfer(16 * MB);
    new Uint8Array(moved).fill(1);
    return moved;
  }),
  '/intl': () => attempt(20_000, (i) => new Intl.DateTimeFormat('en-US', { timeZone: 'UTC', hour: i % 2 ? 'numeric' : undefined })),
  '/intl-without-new': () => attempt(20_000, () => Intl.DateTimeFormat('en-US')),
  '/intl-segments': () => {
    const segmenter = new Intl.Segmenter('en', { granularity: 'word' });
    return attempt(100_000, () => segmenter.segment('hello world')[Symbol.iterator]());
  },
  '/intl-relative': () => attempt(20_000, () => new Intl.RelativeTimeFormat('en')),
  // Garbage is not held against the worker: the charge blocks go with the objects.
  '/intl-garbage': () => {
    let made = 0;
    for (let i = 0; i < 5_000; i++) { new Intl.DateTimeFormat('en-US'); made++; }
    return { made };
  },
  '/shared': () => {
    const out = {};
    const probe = (name, f) => { try { const v = f(); out[name] = v === undefined ? 'undefined' : typeof v === 'function' ? 'function ' + v.name : String(v); } catch (e) { out[name] = e.constructor.name; } };
    probe('global', () => typeof SharedArrayBuffer);
    probe('atomics', () => typeof Atomics);
    probe('wasmShared', () => new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer.constructor);
    probe('wasmSharedGetter', () => { let n = 0; return new WebAssembly.Memory({ initial: 1, maximum: 1, get shared() { return n++ > 0; } }).buffer.constructor.name; });
    probe('nativeMemoryShared', () => Reflect.construct(Object.getPrototypeOf(new WebAssembly.Memory({ initial: 0 })).constructor, [{ initial: 1, maximum: 1, shared: true }]).buffer.constructor.name);
    probe('toResizableBuffer', () => typeof WebAssembly.Memory.prototype.toResizableBuffer);
    probe('bufferProto', () => Object.getPrototypeOf(new WebAssembly.Memory({ initial: 1 }).buffer).constructor.name);
    probe('growableShared', () => new ArrayBuffer(1, { maxByteLength: 2 }).constructor.name);
    probe('clone', () => structuredClone(new WebAssembly.Memory({ initial: 1 }).buffer).constructor.name);
    return out;
  },
  '/compat': () => {
    const m = new WebAssembly.Memory({ initial: 1, maximum: 4 });
    const old = m.grow(1);
    const t = new WebAssembly.Table({ initial: 2, element: 'anyfunc' });
    t.grow(2);
    const b = new ArrayBuffer(4, { maxByteLength: 64 });
    b.resize(32);
    class Sub extends ArrayBuffer {}
    const dtf = new Intl.DateTimeFormat('en-US', { timeZone: 'UTC' });
    return {
      memoryInstance: m instanceof WebAssembly.Memory, old, bytes: m.buffer.byteLength,
      tableLength: t.length, tableInstance: t instanceof WebAssembly.Table,
      resized: b.byteLength, resizable: b.resizable, abInstance: new ArrayBuffer(1) instanceof ArrayBuffer,
      sub: new Sub(8) instanceof Sub && new Sub(8).byteLength === 8,
      ctor: Object.getPrototypeOf(new Uint8Array(1).buffer).constructor === ArrayBuffer,
      species: ArrayBuffer[Symbol.species] === ArrayBuffer, isView: ArrayBuffer.isView(new Uint8Array(1)),
      sliced: b.slice(0, 8).byteLength,
      date: dtf.format(0), dtfInstance: dtf instanceof Intl.DateTimeFormat,
      supported: Intl.DateTimeFormat.supportedLocalesOf(['en-US']),
      locale: new Intl.Locale('en').maximize().toString(),
      segments: [...new Intl.Segmenter('en', { granularity: 'word' }).segment('a b')].length,
      number: new Intl.NumberFormat('en-US').format(1234.5), collator: new Intl.Collator('en').compare('a', 'b'),
      names: [ArrayBuffer.name, ArrayBuffer.length, WebAssembly.Memory.name, Intl.DateTimeFormat.name],
    };
  },
};
export default {
  async fetch(request) {
    const attack = attacks[new URL(request.url).pathname];
    if (!attack) return new Response('ok');
    keep = [];
    return Response.json(attack());
  },
};`);

const neighbour = moduleWorker(`export default { fetch() { return new Response('still here'); } };`, 128);

let runtime: Runtime;

before(async () => {
  runtime = new Runtime({ log: () => {}, spareIsolates: 0 });
  await runtime.load('neighbour', neighbour);
});

after(async () => {
  await runtime.close();
});

const get = (worker: string, path: string) => fetchText(runtime, worker, path);

let attackers = 0;

/**
 * Runs an attack in a fresh attacker (what one attack holds must not count against the next),
 * and checks the RSS guard and that the neighbour is still served.
 */
async function attack(path: string): Promise<{ error?: string; held?: number }> {
  const name = `attacker${++attackers}`;
  await runtime.load(name, attacker);
  const rssBefore = process.memoryUsage().rss;
  const { status, text } = await get(name, path);
  const grown = process.memoryUsage().rss - rssBefore;
  await runtime.unload(name);
  assert.ok(grown < RSS_GUARD, `${path} grew RSS by ${Math.round(grown / MB)} MB`);
  assert.equal((await get('neighbour', '/')).text, 'still here');
  assert.equal(status, 200, `${path}: ${text}`);
  return JSON.parse(text);
}

function assertRefused(result: { error?: string }, pattern: RegExp): void {
  assert.ok(result.error, `expected a refusal, got ${JSON.stringify(result)}`);
  assert.match(result.error, /^RangeError: /);
  assert.match(result.error, pattern);
}

test('WebAssembly.Memory pages count against the memory limit, however the memory is made or grown', async () => {
  for (const path of ['/wasm-memory', '/wasm-grow', '/wasm-grow-subclass']) {
    const result = await attack(path);
    assertRefused(result, /memory limit of 32 MB is used up/);
    assert.ok(result.held! <= 2, `${path} held ${result.held} memories of 16 MB`);
  }
  assertRefused(await attack('/wasm-huge'), /more than the worker's whole memory limit of 32 MB/);
  // The getter is read once: the size checked is the size made.
  assert.deepEqual(await attack('/wasm-getter'), { held: 8, bytes: 8 * 65536 });
});

test('WebAssembly.Table sizes are bounded (initial, maximum and grow)', async () => {
  for (const path of ['/table', '/table-maximum', '/table-grow']) {
    assertRefused(await attack(path), /more than a table may have here \(8192 for a worker with 32 MB of memory\)/);
  }
});

test('resizable ArrayBuffers count their maxByteLength against the memory limit', async () => {
  for (const path of ['/resizable', '/resizable-transfer']) {
    const result = await attack(path);
    assertRefused(result, /resizable ArrayBuffer.*memory limit of 32 MB/);
    assert.ok(result.held! <= 2, `${path} held ${result.held} buffers of 16 MB`);
  }
  assertRefused(await attack('/resizable-huge'), /more than the worker's whole memory limit/);
});

test('retained Intl objects count their native memory against the memory limit', async () => {
  for (const path of ['/intl', '/intl-without-new', '/intl-segments', '/intl-relative']) {
    const result = await attack(path);
    assertRefused(result, /Intl|Segments.*native memory each.*memory limit of 32 MB is used up/);
  }
  // Objects let go of are not held against the worker.
  const garbage = await attack('/intl-garbage');
  assert.equal((garbage as { made?: number }).made, 5000);
});

test('no SharedArrayBuffer by any path', async () => {
  const out = await attack('/shared') as Record<string, string>;
  assert.equal(out.global, 'undefined');
  assert.equal(out.atomics, 'undefined');
  assert.equal(out.wasmShared, 'TypeError');
  assert.equal(out.wasmSharedGetter, 'ArrayBuffer');
  assert.equal(out.nativeMemoryShared, 'TypeError');
  assert.equal(out.toResizableBuffer, 'undefined');
  assert.equal(out.bufferProto, 'ArrayBuffer');
  assert.equal(out.growableShared, 'ArrayBuffer');
  assert.equal(out.clone, 'ArrayBuffer');
});

test('the locked constructors still behave as the platform\'s', async () => {
  await runtime.load('compat', attacker);
  const { text } = await get('compat', '/compat');
  assert.deepEqual(JSON.parse(text), {
    memoryInstance: true, old: 1, bytes: 2 * 65536,
    tableLength: 4, tableInstance: true,
    resized: 32, resizable: true, abInstance: true, sub: true, ctor: true, species: true, isView: true, sliced: 8,
    date: '1/1/1970', dtfInstance: true, supported: ['en-US'], locale: 'en-Latn-US', segments: 3,
    number: '1,234.5', collator: -1,
    names: ['ArrayBuffer', 1, 'Memory', 'DateTimeFormat'],
  });
});
