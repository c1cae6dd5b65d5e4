// Host bindings: an embedder's functions, called by a worker as `env.NAME.method(...)`. Calls
// are async; arguments and results cross as structured clones, errors as their name and message;
// the host's time is not the worker's CPU; nothing of the host is reachable from the worker; a
// call that never settles ends at the binding timeout; calls outside a request are refused.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../src/runtime/runtime.ts';
import { operations, type OpContext } from '../src/runtime/host-ops.ts';
import { WorkerBindings } from '../src/api/bindings/host.ts';
import { RpcValue } from '../src/runtime/rpc-value.ts';
import { WorkerLoadError, type RuntimeResponse, type WorkerDefinition, type WorkerLogEntry } from '../src/runtime/types.ts';
import { moduleWorker } from './support/serve.ts';

const logs: WorkerLogEntry[] = [];
const runtimes: Runtime[] = [];
after(() => Promise.all(runtimes.map((r) => r.close())));

function runtime(options: ConstructorParameters<typeof Runtime>[0] = {}): Runtime {
  const r = new Runtime({ log: (entry) => logs.push(entry), ...options });
  runtimes.push(r);
  return r;
}

async function get(r: Runtime, worker: string, path = '/'): Promise<{ status: number; text: string; response: RuntimeResponse }> {
  const response = await r.fetch(worker, { method: 'GET', url: `https://example.com${path}`, headers: [] });
  return { status: response.status, text: Buffer.from(response.body as Uint8Array).toString(), response };
}

async function json(r: Runtime, worker: string, path = '/'): Promise<any> {
  const { status, text } = await get(r, worker, path);
  assert.equal(status, 200, text);
  return JSON.parse(text);
}

test('env.API.getUser(id) calls the embedder\'s function with a copy of the arguments and `this` the binding, and resolves with a copy of its result', async () => {
  const r = runtime();
  const seen: unknown[] = [];
  const api = {
    async getUser(id: number, options: { tags: Set<string>; at: Date; bytes: Uint8Array }) {
      seen.push(id, options);
      options.tags.add('changed on the host');
      return { id, name: `user ${id}`, tags: [...options.tags], at: options.at, bytes: options.bytes, owner: this === api };
    },
    sum: (...numbers: number[]) => numbers.reduce((a, b) => a + b, 0),
  };
  await r.load('users', moduleWorker(`export default { async fetch(request, env) {
    const tags = new Set(['a']);
    const user = await env.API.getUser(7, { tags, at: new Date(0), bytes: new Uint8Array([1, 2, 3]) });
    return Response.json({
      user, tagsHere: [...tags], isDate: user.at instanceof Date, bytes: [...user.bytes], isBytes: user.bytes instanceof Uint8Array,
      sum: await env.API.sum(1, 2, 3), promise: env.API.sum(1) instanceof Promise,
    });
  } }`, { bindings: { API: api } }));
  const out = await json(r, 'users');
  assert.deepEqual(out.user, { id: 7, name: 'user 7', tags: ['a', 'changed on the host'], at: new Date(0).toISOString(), bytes: { 0: 1, 1: 2, 2: 3 }, owner: true });
  // The worker's Set is its own: the host changed its copy.
  assert.deepEqual(out.tagsHere, ['a']);
  assert.equal(out.isDate, true);
  assert.equal(out.isBytes, true);
  assert.deepEqual(out.bytes, [1, 2, 3]);
  assert.equal(out.sum, 6);
  assert.equal(out.promise, true);
  // The host got plain host values, not handles into the isolate.
  const options = seen[1] as { tags: unknown; at: unknown; bytes: unknown };
  assert.ok(options.tags instanceof Set && options.at instanceof Date && options.bytes instanceof Uint8Array);
});

test('no host object is reachable: the binding is a frozen plain object of the isolate, results are data of the isolate (getters read on the host, class instances as plain objects), and what cannot be cloned is a clear error', async () => {
  const r = runtime();
  class Secret {
    visible = 1;
    method(): string {
      return 'host method';
    }
  }
  await r.load('walls', moduleWorker(`export default { async fetch(request, env) {
    const out = {};
    out.proto = Object.getPrototypeOf(env.API) === Object.prototype;
    out.frozen = Object.isFrozen(env.API);
    out.keys = Object.keys(env.API);
    out.fnProto = Object.getPrototypeOf(env.API.get) === Function.prototype;
    out.constructible = (() => { try { new env.API.get(); return true; } catch { return false; } })();
    try { env.API.get.constructor('return globalThis')(); out.codegen = 'allowed'; } catch (e) { out.codegen = e.name; }
    const result = await env.API.get();
    out.resultProto = Object.getPrototypeOf(result) === Object.prototype;
    out.nestedProto = Object.getPrototypeOf(result.nested) === Object.prototype && Array.isArray(result.list);
    const descriptor = Object.getOwnPropertyDescriptor(result, 'computed');
    out.getter = { hasGet: 'get' in descriptor && descriptor.get !== undefined, value: descriptor.value };
    const instance = await env.API.instance();
    out.instance = { proto: Object.getPrototypeOf(instance) === Object.prototype, keys: Object.keys(instance), method: typeof instance.method };
    for (const name of ['fn', 'symbol', 'withFn']) {
      try { await env.API[name](); out[name] = 'resolved'; } catch (e) { out[name] = [e.name, e.message, e instanceof TypeError]; }
    }
    try { await env.API.get(() => 1); out.badArg = 'sent'; } catch (e) { out.badArg = [e.name, e.message]; }
    return Response.json(out);
  } }`, {
    bindings: {
      API: {
        get: () => ({ nested: { a: 1 }, list: [1], get computed() { return 'read on the host'; } }),
        instance: () => new Secret(),
        fn: () => () => 'a host function',
        symbol: () => Symbol('s'),
        withFn: () => ({ callback: () => 1 }),
      },
    },
  }));
  const out = await json(r, 'walls');
  assert.equal(out.proto, true);
  assert.equal(out.frozen, true);
  assert.deepEqual(out.keys, ['get', 'instance', 'fn', 'symbol', 'withFn']);
  assert.equal(out.fnProto, true);
  assert.equal(out.constructible, false);
  assert.equal(out.codegen, 'EvalError');
  assert.equal(out.resultProto, true);
  assert.equal(out.nestedProto, true);
  assert.deepEqual(out.getter, { hasGet: false, value: 'read on the host' });
  assert.deepEqual(out.instance, { proto: true, keys: ['visible'], method: 'undefined' });
  for (const name of ['fn', 'withFn']) {
    assert.equal(out[name][0], 'TypeError');
    assert.match(out[name][1], new RegExp(`env\\.API\\.${name}\\(\\) returned a value that cannot be copied into the worker .*could not be cloned`));
  }
  assert.deepEqual(out.symbol.slice(0, 1), ['TypeError']);
  assert.match(out.symbol[1], /returned a symbol/);
  assert.equal(out.badArg[0], 'TypeError');
  assert.match(out.badArg[1], /could not be cloned/);
});

test('errors cross as errors of the same name and message, without the host\'s stack or properties', async () => {
  const r = runtime();
  await r.load('errors', moduleWorker(`export default { async fetch(request, env) {
    const out = {};
    for (const name of ['notFound', 'typeError', 'rangeError', 'text', 'weird', 'sync']) {
      try { await env.API[name](); out[name] = 'resolved'; } catch (e) {
        out[name] = { name: e.name, message: e.message, isError: e instanceof Error, ctor: e.constructor.name, extra: e.code, stack: String(e.stack).includes('host-bindings.test') };
      }
    }
    return Response.json(out);
  } }`, {
    bindings: {
      API: {
        notFound: async () => {
          const error = new Error('no user 7') as Error & { code: string };
          error.name = 'NotFoundError';
          error.code = 'E_SECRET_DETAIL';
          throw error;
        },
        typeError: async () => { throw new TypeError('wrong type'); },
        rangeError: () => { throw new RangeError('too far'); },
        text: async () => { throw 'a thrown string'; },
        weird: async () => { throw { name: 'not an identifier!', message: 'odd' }; },
        sync: () => { throw new Error('thrown synchronously'); },
      },
    },
  }));
  const out = await json(r, 'errors');
  assert.deepEqual(out.notFound, { name: 'NotFoundError', message: 'no user 7', isError: true, ctor: 'Error', stack: false });
  assert.deepEqual(out.typeError, { name: 'TypeError', message: 'wrong type', isError: true, ctor: 'TypeError', stack: false });
  assert.deepEqual(out.rangeError, { name: 'RangeError', message: 'too far', isError: true, ctor: 'RangeError', stack: false });
  assert.deepEqual(out.text, { name: 'Error', message: 'a thrown string', isError: true, ctor: 'Error', stack: false });
  assert.deepEqual(out.weird, { name: 'Error', message: 'odd', isError: true, ctor: 'Error', stack: false });
  assert.deepEqual(out.sync, { name: 'Error', message: 'thrown synchronously', isError: true, ctor: 'Error', stack: false });
});

test('time on the host is not the worker\'s CPU: a host function that computes synchronously for longer than the CPU limit, then waits, leaves the request well within it', async () => {
  const r = runtime({ limits: { cpuMs: 30 } });
  await r.load('slowhost', moduleWorker(`export default { async fetch(request, env) {
    const a = await env.API.work();
    const b = await env.API.work();
    return new Response(a + b);
  } }`, {
    bindings: {
      API: {
        async work() {
          const until = performance.now() + 60;
          while (performance.now() < until) {}
          await new Promise((resolve) => setTimeout(resolve, 50));
          return 1;
        },
      },
    },
  }));
  const { status, text } = await get(r, 'slowhost');
  assert.equal(status, 200, text);
  assert.equal(text, '2');
  const line = logs.find((entry) => entry.worker === 'slowhost' && entry.type === 'request');
  assert.ok(line, 'a request line');
  // 120 ms of host work, 100 ms of host waiting: the worker's own CPU is far below 30 ms.
  assert.ok((line.cpuMs as number) < 30, `cpuMs ${line.cpuMs}`);
  assert.ok(!logs.some((entry) => entry.worker === 'slowhost' && entry.type === 'limit'));
});

test('a host function that never settles rejects at the binding timeout, and the request goes on', async () => {
  const r = runtime({ bindingTimeoutMs: 200 });
  await r.load('stuck', moduleWorker(`export default { async fetch(request, env) {
    try { await env.API.never(); return new Response('settled'); } catch (e) { return new Response(e.name + ': ' + e.message); }
  } }`, { bindings: { API: { never: () => new Promise(() => {}) } } }));
  const { status, text } = await get(r, 'stuck');
  assert.equal(status, 200);
  assert.equal(text, 'TimeoutError: env.API.never() did not settle within 200 ms.');
});

test('a call that never settles ends with its request when the client goes away', async () => {
  let abortedCalls = 0;
  const r = runtime({ bindingTimeoutMs: 60_000 });
  await r.load('leaves', moduleWorker(`export default { async fetch(request, env) {
    await env.API.never();
    return new Response('settled');
  } }`, { bindings: { API: { never: () => new Promise(() => { abortedCalls++; }) } } }));
  const controller = new AbortController();
  const pending = r.fetch('leaves', { method: 'GET', url: 'https://example.com/', headers: [], signal: controller.signal });
  while (abortedCalls === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  controller.abort();
  const response = await pending;
  // The call rejected as its request ended, so the handler threw: the answer is a 500, at once, not after the timeout.
  assert.equal(response.status, 500);
});

test('the host refuses what the sandbox cannot be trusted to hold back: unknown names and methods (constructor, __proto__), and calls outside a request', async () => {
  const definition: WorkerDefinition = { bindings: { API: { get: () => 1 }, KV: { type: 'kv', namespaceId: 'n1' } } };
  const bindings = new WorkerBindings(definition, undefined);
  const request = { id: 1, chain: ['w'], signal: new AbortController().signal, subrequests: 0, readBody: async () => null, readWholeBody: async () => '' };
  const ctx = (inRequest: boolean, values: unknown[] | undefined): OpContext => ({
    worker: 'w', account: 'w', limits: { cpuMs: 50, startupCpuMs: 400, memoryMb: 128, subrequests: 50 },
    request: inRequest ? request : undefined, requestById: () => undefined, scope: new Map(), bindings, chargeCpu: () => {}, takePayload: async () => null,
    ...(values === undefined ? {} : { values: values.map((value) => RpcValue.of(value)) }),
  });
  const call = (args: unknown[], values: unknown[] | undefined = [], inRequest = true) => operations['binding.call'](ctx(inRequest, values), args);
  for (const method of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    await assert.rejects(call(['API', method, null]), { name: 'TypeError', message: `env.API.${method}() is not a function of that binding.` });
  }
  await assert.rejects(call(['OTHER', 'get', null]), { name: 'TypeError', message: /no binding of that name/ });
  await assert.rejects(call(['API', 'get', null], [], false), { name: 'Error', message: /called outside a request \(in top-level code, or after its request ended\)/ });
  // The arguments come only as the values the call carries, never as a list among its arguments.
  await assert.rejects(call(['API', 'get', [], null], undefined), { name: 'TypeError', message: /binding\.call takes \(name, method, bytes/ });
  // A platform binding with no BindingHost is not available here.
  await assert.rejects(call(['KV', 'get', null], ['key']), { name: 'Error', message: 'env.KV.get(): kv bindings are not available in this runtime (it has no binding host).' });
});

test("an instance of a class is a binding of its methods, its class's and inherited ones, called on the instance; its state, getters, constructor and Object's methods are not reachable", async () => {
  const r = runtime();
  class Store {
    #rows = new Map<number, string>([[7, 'ada']]);
    protected calls = 0;
    find(id: number) {
      this.calls++;
      return this.#rows.get(id) ?? null;
    }
    describe() {
      return 'store';
    }
  }
  class UsersApi extends Store {
    readonly db = { secret: 'state of the instance' };
    get count() {
      throw new Error('a getter is not read at load');
    }
    getUser(id: number) {
      return { id, name: this.find(id), calls: this.calls };
    }
    override describe() {
      return 'users, ' + super.describe();
    }
  }
  const api = new UsersApi();
  // An own function of the instance is a method too.
  (api as unknown as { ping: () => string }).ping = () => 'pong';
  await r.load('instance', moduleWorker(`export default { async fetch(request, env) {
    const names = Object.keys(env.API).sort();
    const refused = async (f) => { try { await f(); return 'called'; } catch (error) { return error.name + ': ' + error.message; } };
    return Response.json({
      names,
      user: await env.API.getUser(7),
      again: await env.API.getUser(7),
      describe: await env.API.describe(),
      ping: await env.API.ping(),
      db: env.API.db === undefined,
      constructor: Object.hasOwn(env.API, 'constructor'),
      toString: Object.hasOwn(env.API, 'toString'),
    });
  } }`, { bindings: { API: api } }));
  const out = await json(r, 'instance');
  assert.deepEqual(out.names, ['describe', 'find', 'getUser', 'ping']);
  assert.deepEqual(out.user, { id: 7, name: 'ada', calls: 1 });
  assert.deepEqual(out.again, { id: 7, name: 'ada', calls: 2 });
  assert.equal(out.describe, 'users, store');
  assert.equal(out.ping, 'pong');
  assert.equal(out.db, true);
  assert.equal(out.constructor, false);
  assert.equal(out.toString, false);
});

test('bindings are checked when the worker loads: names, shapes, and no name both a var and a binding', async () => {
  const r = runtime();
  const source = 'export default { fetch() { return new Response("ok"); } }';
  const cases: [WorkerDefinition['bindings'], Partial<WorkerDefinition>, RegExp][] = [
    [{ 'not-a-name': { get: () => 1 } }, {}, /Invalid binding name "not-a-name"/],
    [{ API: { get: () => 1, data: 5 } as never }, {}, /env\.API\.data is not a function/],
    [{ API: { get: () => 1 } }, { vars: { API: 'x' } }, /env\.API is both a var and a binding/],
    [{ KV: { type: 'kv' } as never }, {}, /env\.KV: a kv binding needs 'namespaceId'/],
    [{ KV: { type: 'queue' } as never }, {}, /env\.KV: unknown binding type "queue"/],
    [{ KV: { type: 'kv', namespaceId: 'n', extra: 'x' } as never }, {}, /has no field 'extra'/],
  ];
  for (const [bindings, extra, message] of cases) {
    await assert.rejects(r.load('checked', moduleWorker(source, { bindings, ...extra })), (error: unknown) => {
      assert.ok(error instanceof WorkerLoadError);
      assert.match(error.message, message);
      return true;
    });
  }
});

test('service-worker syntax sees its bindings as globals, as in Workers', async () => {
  const r = runtime();
  await r.load('sw', {
    script: `addEventListener('fetch', (event) => event.respondWith(API.hello('sw').then((text) => new Response(text))));`,
    bindings: { API: { hello: (who: string) => `hello ${who}` } },
  });
  assert.equal((await get(r, 'sw')).text, 'hello sw');
});

test('arguments that cannot be sent leave nothing pending: more of them than the pending-call bound, then a good call', async () => {
  const r = runtime();
  await r.load('leak', moduleWorker(`export default { async fetch(request, env) {
    let refused = 0;
    for (let i = 0; i < 1500; i++) { try { await env.API.echo(() => i); } catch { refused++; } }
    return new Response(refused + ' ' + await env.API.echo('ok'));
  } }`, { bindings: { API: { echo: (value: unknown) => value } }, limits: { cpuMs: 5000 } }));
  assert.equal((await get(r, 'leak')).text, '1500 ok');
});

test('arguments reach the embedder\'s function whatever their number: a few one by one, large buffers and strings moved, hundreds of thousands as one list', async () => {
  const r = runtime();
  const seen: { count: number; first: unknown; last: unknown; kinds: string[] }[] = [];
  const api = {
    take(...args: unknown[]) {
      seen.push({ count: args.length, first: args[0], last: args.at(-1), kinds: args.slice(0, 3).map((a) => a instanceof Uint8Array ? `u8:${a.byteLength}:${a[a.byteLength - 1]}` : typeof a === 'string' ? `s:${a.length}` : typeof a) });
      return args.length;
    },
  };
  await r.load('many', {
    limits: { cpuMs: 5000 },
    bindings: { API: api },
    modules: [{ name: 'm.js', source: `export default { async fetch(request, env) {
      const big = new Uint8Array(3 * 1024 * 1024); big[big.length - 1] = 9;
      const out = [];
      out.push(await env.API.take(big, 'x'.repeat(2 * 1024 * 1024), 7));
      for (const n of [64, 65, 120000]) out.push(await env.API.take(...Array.from({ length: n }, (_, i) => i)));
      return new Response(out.join(','));
    } };` }],
  });
  const { status, text } = await get(r, 'many');
  assert.equal(status, 200, text);
  assert.equal(text, '3,64,65,120000');
  assert.deepEqual(seen[0]!.kinds, [`u8:${3 * 1024 * 1024}:9`, `s:${2 * 1024 * 1024}`, 'number']);
  assert.deepEqual(seen.slice(1).map((s) => [s.count, s.first, s.last]), [[64, 0, 63], [65, 0, 64], [120000, 0, 119999]]);
});

// An argument's copy is made on the worker's thread as it calls; what is inside objects and
// arrays is read on the host's, which every tenant of the process shares, and a copy is the
// host's memory until the call settles. Both are bounded; a large top-level value moves in.
test('a call whose arguments hold more than 8 MiB inside objects is refused before the host reads them; the same bytes as an argument of their own arrive', async () => {
  const r = runtime();
  const seen: number[] = [];
  await r.load('nested', moduleWorker(`export default { async fetch(request, env) {
    const big = 'x'.repeat(9 * 1024 * 1024);
    const out = [];
    try { await env.API.take({ big }); out.push('nested taken'); } catch (e) { out.push(e.name + ': ' + e.message); }
    try { await env.API.take([big]); out.push('listed taken'); } catch (e) { out.push(e.name); }
    out.push(await env.API.take(big));
    out.push(await env.API.take({ small: 'x'.repeat(1024 * 1024) }));
    return new Response(out.join('\\n'));
  } }`, { bindings: { API: { take: (value: unknown) => { seen.push(typeof value === 'string' ? value.length : JSON.stringify(value).length); return 'taken'; } } }, limits: { cpuMs: 5000 } }));
  const { status, text } = await get(r, 'nested');
  assert.equal(status, 200, text);
  const [nested, listed, topLevel, small] = text.split('\n');
  assert.match(nested!, /^RangeError: env\.API\.take\(\): its arguments hold \d+ bytes inside objects or arrays, more than the 8388608 a binding call may: pass large data as an argument of its own/);
  assert.equal(listed, 'RangeError');
  assert.equal(topLevel, 'taken');
  assert.equal(small, 'taken');
  // The embedder's function saw only the two calls that went through.
  assert.deepEqual(seen, [9 * 1024 * 1024, 1024 * 1024 + 12]);
});

test("what a worker's binding calls in flight carry is bounded by its memory limit; settled calls give it back", async () => {
  const r = runtime();
  const waiting: (() => void)[] = [];
  await r.load('carrier', moduleWorker(`export default { async fetch(request, env) {
    const big = 'y'.repeat(20 * 1024 * 1024);
    const calls = [];
    for (let i = 0; i < 5; i++) calls.push(env.API.slow(big).then(() => 'ok', (e) => e.name + ': ' + e.message));
    // Three copies of 20 MiB fit in 64 MB: the last two are refused as they arrive, while the
    // first three wait in slow() until release().
    const refused = await Promise.all(calls.slice(3));
    await env.API.release();
    const first = await Promise.all(calls.slice(0, 3));
    // Given back: two more fit again.
    const again = await Promise.all([env.API.quick(big), env.API.quick(big)]);
    return new Response(JSON.stringify({ first, refused, again }));
  } }`, {
    bindings: { API: { slow: () => new Promise<void>((resolve) => { waiting.push(resolve); }), release: () => { for (const w of waiting.splice(0)) w(); }, quick: () => 'quick' } },
    limits: { cpuMs: 5000, memoryMb: 64 },
  }));
  const { status, text } = await get(r, 'carrier');
  assert.equal(status, 200, text);
  const { first, refused, again } = JSON.parse(text) as { first: string[]; refused: string[]; again: string[] };
  assert.deepEqual(first, ['ok', 'ok', 'ok']);
  assert.equal(refused.length, 2);
  for (const answer of refused) assert.match(answer, /^RangeError: env\.API\.slow\(\): this worker's binding calls in flight already carry 64 MB of arguments, its memory limit/);
  assert.deepEqual(again, ['quick', 'quick']);
});
