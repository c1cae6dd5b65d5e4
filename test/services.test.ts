// Service bindings in the library Runtime: env.OTHER.fetch() and RPC to the default export or a
// named WorkerEntrypoint, `cloudflare:workers`, errors crossing, the depth and cycle rules, the
// account rule, and each side's CPU charged to itself.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../src/runtime/runtime.ts';
import type { WorkerDefinition, WorkerLogEntry } from '../src/runtime/types.ts';
import { bodyText } from './support/fetch-text.ts';
import { DEFAULT_LIMITS, WorkerLoadError } from '../src/runtime/types.ts';
import { RpcValue } from '../src/runtime/rpc-value.ts';
import { serviceAsyncOps } from '../src/api/service/host.ts';
import type { OpContext } from '../src/runtime/host-ops.ts';

const logs: WorkerLogEntry[] = [];
const runtime = new Runtime({ log: (entry) => logs.push(entry) });
after(() => runtime.close());

function mod(source: string, extra: Partial<WorkerDefinition> = {}): WorkerDefinition {
  return { modules: [{ name: 'index.js', source }], ...extra };
}

async function get(name: string, path = '/'): Promise<{ status: number; body: string }> {
  const response = await runtime.fetch(name, { method: 'GET', url: `https://${name}.example${path}`, headers: [] });
  return { status: response.status, body: await bodyText(response) };
}

const API = `
import { WorkerEntrypoint, env as importedEnv } from 'cloudflare:workers';
export class Api extends WorkerEntrypoint {
  add(a, b) { return a + b; }
  async echo(value) { return { value, greeting: this.env.GREETING, same: this.env === importedEnv }; }
  fail() { throw new RangeError('out of range: ' + this.env.GREETING); }
  fetch(request) { return new Response('api fetch ' + new URL(request.url).pathname); }
}
export default {
  async fetch(request, env) {
    const body = request.method === 'POST' ? await request.text() : '';
    return new Response('default ' + request.method + ' ' + new URL(request.url).pathname + ' ' + body, { headers: { 'x-from': 'api' } });
  },
  hello(name) { return 'hello ' + name; },
};
`;

test('env.OTHER.fetch() reaches the other worker, with the same argument handling as fetch()', async () => {
  await runtime.load('api', mod(API, { vars: { GREETING: 'hi' } }));
  await runtime.load('caller', mod(`
export default {
  async fetch(request, env) {
    const a = await env.API.fetch('https://api.internal/path?q=1');
    const b = await env.API.fetch(new Request('https://x/post', { method: 'POST', body: 'payload' }));
    const c = await env.API.fetch('https://x/stream', { method: 'POST', body: new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('streamed')); c.close(); } }), duplex: 'half' });
    return new Response([await a.text(), a.headers.get('x-from'), await b.text(), await c.text()].join('|'));
  },
};`, { bindings: { API: { type: 'service', service: 'api' } } }));
  const { status, body } = await get('caller');
  assert.equal(status, 200, body);
  assert.equal(body, 'default GET /path |api|default POST /post payload|default POST /stream streamed');
});

test('RPC calls methods of a named WorkerEntrypoint and of the default export; errors cross as errors', async () => {
  await runtime.load('rpc-caller', mod(`
export default {
  async fetch(request, env) {
    const out = [];
    out.push(await env.API.add(2, 3));
    const echoed = await env.API.echo(new Map([['k', new Date(0)]]));
    out.push(echoed.value instanceof Map, echoed.value.get('k') instanceof Date, echoed.greeting, echoed.same);
    try { await env.API.fail(); } catch (error) { out.push(error instanceof RangeError, error.message); }
    try { await env.API.missing(); } catch (error) { out.push(error.name + ': ' + error.message); }
    try { await env.API.add(() => 1); } catch (error) { out.push('clone ' + /could not be cloned/.test(error.message)); }
    out.push(await env.DEFAULT.hello('you'));
    out.push(typeof env.API.then, String(env.API), await (await env.API.fetch('https://x/entry')).text());
    return new Response(out.join('|'));
  },
};`, { bindings: { API: { type: 'service', service: 'api', entrypoint: 'Api' }, DEFAULT: { type: 'service', service: 'api' } } }));
  const { status, body } = await get('rpc-caller');
  assert.equal(status, 200, body);
  assert.equal(body, '5|true|true|hi|true|true|out of range: hi|TypeError: The RPC receiver does not implement the method "missing".|clone true|hello you|undefined|[object Object]|api fetch /entry');
});

test('RPC values cross whole and as they were when the call was made, both ways, large or small', async () => {
  // The host hands arguments and results on between the isolates without reading them
  // (src/runtime/rpc-value.ts): what arrives is still a structured clone, taken at the call.
  await runtime.load('rpc-values', mod(`
import { WorkerEntrypoint } from 'cloudflare:workers';
export class Store extends WorkerEntrypoint {
  describe(...args) {
    return args.map((a) => a === null ? 'null' : a instanceof Map ? 'Map:' + [...a].join(';') : a instanceof Set ? 'Set:' + [...a].join(';')
      : a instanceof Date ? 'Date:' + a.getTime() : a instanceof Uint8Array ? 'u8:' + a.join(',') : a instanceof ArrayBuffer ? 'ab:' + a.byteLength
      : typeof a === 'bigint' ? 'big:' + a : typeof a === 'object' ? 'obj:' + JSON.stringify(a) : typeof a + ':' + String(a)).join(' ');
  }
  size(text, bytes) { return text.length + '+' + bytes.byteLength + '+' + bytes[bytes.length - 1]; }
  make(mb) { const bytes = new Uint8Array(mb * 1024 * 1024); bytes[bytes.length - 1] = 7; return { text: 'm'.repeat(mb * 1024 * 1024), bytes, when: new Date(5) }; }
  nothing() {}
}
export default {
  async fetch(request, env) {
    const out = [];
    out.push(await env.STORE.describe());
    out.push(await env.STORE.describe(undefined, null, 1.5, 'text', true, 12n, new Date(3), new Map([[1, 'a']]), new Set(['s']), new Uint8Array([1, 2]), new ArrayBuffer(4), { nested: [1, { deep: 'x' }] }));
    // Changed after the call was made: the callee sees the value as it was.
    const later = { n: 1 };
    const bytes = new Uint8Array([9]);
    const pending = env.STORE.describe(later, bytes);
    later.n = 2;
    bytes[0] = 8;
    out.push(await pending);
    const big = new Uint8Array(2 * 1024 * 1024);
    big[big.length - 1] = 3;
    out.push(await env.STORE.size('t'.repeat(2 * 1024 * 1024), big));
    const made = await env.STORE.make(2);
    out.push(made.text.length, made.bytes.byteLength, made.bytes[made.bytes.length - 1], made.when instanceof Date && made.when.getTime());
    out.push(String(await env.STORE.nothing()));
    return new Response(out.join('|'));
  },
};`, {
    bindings: { STORE: { type: 'service', service: 'rpc-values', entrypoint: 'Store' } },
    // Megabytes copied on a loaded machine: what is tested here is what arrives, not the CPU it costs.
    limits: { cpuMs: 5000 },
  }));
  const { status, body } = await get('rpc-values');
  assert.equal(status, 200, body);
  assert.equal(body, [
    '',
    'undefined:undefined null number:1.5 string:text boolean:true big:12 Date:3 Map:1,a Set:s u8:1,2 ab:4 obj:{"nested":[1,{"deep":"x"}]}',
    'obj:{"n":1} u8:9',
    `${2 * 1024 * 1024}+${2 * 1024 * 1024}+3`,
    2 * 1024 * 1024, 2 * 1024 * 1024, 7, 5,
    'undefined',
  ].join('|'));
  // Runtime.call reads them on the embedder's side.
  const made = await runtime.call('rpc-values', 'make', [1], { entrypoint: 'Store' }) as { text: string; bytes: Uint8Array; when: Date };
  assert.equal(made.text.length, 1024 * 1024);
  assert.ok(made.bytes instanceof Uint8Array && made.bytes[made.bytes.length - 1] === 7);
  assert.ok(made.when instanceof Date);
});

test('service.call takes its arguments only as the value it carries', async () => {
  // What a caller that took over its sandbox could send instead: a plain list, through `async`.
  const ctx = {
    worker: 'w', account: 'w', limits: DEFAULT_LIMITS, request: { signal: new AbortController().signal, chain: [], subrequests: 0 },
    requestById: () => undefined, scope: new Map(), chargeCpu: () => {}, takePayload: async () => null,
    bindings: { get: () => ({ kind: 'spec', spec: { type: 'service', service: 'api' } }) },
    services: { fetch: async () => assert.fail('no call'), call: async () => assert.fail('no call') },
  } as unknown as OpContext;
  await assert.rejects(serviceAsyncOps['service.call'](ctx, ['API', 'add', [1, 2]]), /^TypeError: env\.API\.add\(\): invalid arguments\.$/);
  const services = ctx.services as { call: unknown };
  services.call = async (_call: unknown, method: string, args: RpcValue) => RpcValue.of(`${method}:${JSON.stringify(args.read())}`);
  const result = await serviceAsyncOps['service.call']({ ...ctx, values: [RpcValue.of([1, 2])] }, ['API', 'add']);
  assert.ok(result instanceof RpcValue);
  assert.equal(result.read(), 'add:[1,2]');
  const value = RpcValue.of([1]);
  assert.deepEqual(value.read(), [1]);
  assert.throws(() => value.read(), /handed on once/);
});

test('RPC values made of bytes that do not read (from a runtime process taken over) fail the call, not the worker', { skip: !RpcValue.crossesAsBytes && 'needs isolet\'s isolated-vm build' }, async () => {
  // What a runtime process that tenant code took over could send in place of a value's bytes.
  const junk = [Buffer.from([0xff, 0x0f, 0x5c, 1, 2, 3]), Buffer.from([0xff, 0x0f, 0xff, 0x0f, 0x22, 0x7f]), Buffer.from([0xff, 0x0f, 0xff, 0x0f, 0x5c, 0, 0])];
  await runtime.load('adder', mod(`export default { add(a, b) { return a + b; }, fetch() { return new Response('adder'); } };`));
  for (const bytes of junk) {
    await assert.rejects(runtime.callCarrying('adder', 'add', RpcValue.fromBytes(bytes)), (error: Error) => error.name === 'DataCloneError' && /^The arguments could not be read/.test(error.message));
  }
  assert.equal(await runtime.call('adder', 'add', [1, 2]), 3);
  // A result: what the service host answers the caller's call with.
  let answer = 0;
  const other = new Runtime({
    log: () => {},
    serviceHost: {
      fetch: async () => ({ status: 500, statusText: '', headers: [], body: null }),
      call: async (_call, _method, args) => {
        args.release();
        return answer++ < junk.length ? RpcValue.fromBytes(junk[answer - 1]!) : RpcValue.of(['fine']);
      },
    },
  });
  try {
    await other.load('reader', mod(`export default { async fetch(request, env) {
      const out = [];
      for (let i = 0; i < 4; i++) { try { out.push(await env.API.get()); } catch (error) { out.push(error.name + ': ' + /^The result could not be read/.test(error.message)); } }
      return new Response(out.join('|'));
    } };`, { bindings: { API: { type: 'service', service: 'api' } } }));
    const response = await other.fetch('reader', { method: 'GET', url: 'https://reader/', headers: [] });
    assert.equal(await bodyText(response), 'DataCloneError: true|DataCloneError: true|DataCloneError: true|fine');
  } finally {
    await other.close();
  }
});

test('what a worker\'s RPC calls in flight carry is bounded by its memory limit', { skip: !RpcValue.crossesAsBytes && 'needs isolet\'s isolated-vm build' }, async () => {
  // take() holds its calls until release() (or 10 s, so that a third call let through fails the
  // assertion rather than the test's time): whatever the machine's load, the first two are still
  // in flight when the third arrives.
  await runtime.load('slow-taker', mod(`import { WorkerEntrypoint } from 'cloudflare:workers';
const waiting = [];
export class Taker extends WorkerEntrypoint {
  async take(value) { if (value.length > 5) await new Promise((resolve) => { waiting.push(resolve); setTimeout(resolve, 10_000); }); return value.length; }
  release() { for (const resolve of waiting.splice(0)) resolve(); }
}
export default { fetch() { return new Response('taker'); } };`, { limits: { memoryMb: 256, cpuMs: 5000 } }));
  await runtime.load('big-caller', mod(`export default { async fetch(request, env) {
    const big = 'b'.repeat(30 * 1024 * 1024);
    // The same 30 MiB three times: each call's copy is held until the called worker has it.
    const calls = [env.T.take(big), env.T.take(big), env.T.take(big)];
    await Promise.allSettled([calls[2]]);
    await env.T.release();
    const out = await Promise.allSettled(calls);
    const after = await env.T.take('small');
    return new Response(out.map((r) => r.status === 'fulfilled' ? r.value : r.reason.name + ': ' + r.reason.message).join('|') + '|' + after);
  } };`, { bindings: { T: { type: 'service', service: 'slow-taker', entrypoint: 'Taker' } }, limits: { memoryMb: 64, cpuMs: 5000 } }));
  const { status, body } = await get('big-caller');
  assert.equal(status, 200, body);
  const [first, second, third, after] = body.split('|');
  assert.equal(first, String(30 * 1024 * 1024));
  assert.equal(second, String(30 * 1024 * 1024));
  assert.match(third!, /^RangeError: env\.T\.take\(\): this worker's RPC calls in flight already carry 64 MB of arguments, its memory limit/);
  assert.equal(after, '5');
});

test('a cycle of service calls is refused, and so is a chain deeper than 16', async () => {
  // ping -> pong -> ping: the second call to ping would close a cycle.
  await runtime.load('ping', mod(`export default { async fetch(request, env) {
    try { return await env.PONG.fetch(request); } catch (error) { return new Response('ping caught: ' + error.message, { status: 508 }); }
  } };`, { bindings: { PONG: { type: 'service', service: 'pong' } } }));
  await runtime.load('pong', mod(`export default { async fetch(request, env) {
    try { return await env.PING.fetch(request); } catch (error) { return new Response('pong caught: ' + error.message, { status: 508 }); }
  } };`, { bindings: { PING: { type: 'service', service: 'ping' } } }));
  const cycle = await get('ping');
  assert.equal(cycle.status, 508);
  assert.match(cycle.body, /^pong caught: env\.PING.* cycle of service calls \(ping -> pong -> ping\)/);

  // hop0 -> hop1 -> ... each a worker of its own: 16 nested calls pass, the 17th is refused.
  // Each hop's first request loads the APIs it uses; on a busy machine one of 18 took over the
  // default 50 ms of CPU once, which is not what this test is about.
  const hops = 18;
  for (let i = hops - 1; i >= 0; i--) {
    const next = i + 1 < hops ? { bindings: { NEXT: { type: 'service' as const, service: `hop${i + 1}` } } } : {};
    await runtime.load(`hop${i}`, mod(`export default { async fetch(request, env) {
      if (!env.NEXT) return new Response('end at ${i}');
      try { return await env.NEXT.fetch(request); } catch (error) { return new Response('hop${i} refused: ' + error.message); }
    } };`, { ...next, limits: { cpuMs: 1_000 } }));
  }
  const deep = await get('hop0');
  assert.match(deep.body, /^hop16 refused: env\.NEXT: service calls nest more than 16 deep \(hop0 -> .* -> hop17\)/);
  const shorter = await get('hop1');
  assert.equal(shorter.body, 'end at 17');
});

test('the chain cannot be reset by the worker: a request it builds carries nothing of it', async () => {
  // A worker that forwards a fresh Request, with headers of its own, is still on the same chain.
  await runtime.load('self-a', mod(`export default { async fetch(request, env) {
    try { return await env.B.fetch(new Request('https://fresh/', { headers: { 'x-chain': '', 'cf-worker': 'none' } })); }
    catch (error) { return new Response('refused: ' + error.message); }
  } };`, { bindings: { B: { type: 'service', service: 'self-b' } } }));
  await runtime.load('self-b', mod(`export default { async fetch(request, env) {
    try { return await env.A.fetch('https://again/'); } catch (error) { return new Response('refused: ' + error.message); }
  } };`, { bindings: { A: { type: 'service', service: 'self-a' } } }));
  assert.match((await get('self-a')).body, /^refused: .*cycle of service calls \(self-a -> self-b -> self-a\)/);
});

test('a binding to a worker that is not loaded fails at call time, clearly; another account is refused', async () => {
  await runtime.load('lonely', mod(`export default { async fetch(request, env) {
    const out = [];
    for (const b of [env.MISSING, env.FOREIGN]) {
      try { await b.fetch('https://x/'); } catch (error) { out.push(error.message); }
      try { await b.add(1, 2); } catch (error) { out.push(error.message); }
    }
    return new Response(out.join('\\n'));
  } };`, { account: 'acme', bindings: { MISSING: { type: 'service', service: 'not-yet' }, FOREIGN: { type: 'service', service: 'theirs' } } }));
  await runtime.load('theirs', mod(`export default { fetch() { return new Response('secret'); }, add(a, b) { return a + b; } };`, { account: 'other' }));
  const lines = (await get('lonely')).body.split('\n');
  assert.equal(lines.length, 4);
  assert.match(lines[0]!, /^env\.MISSING names the worker 'not-yet', which is not running here\. Fix: load it in the same Runtime/);
  assert.match(lines[1]!, /^env\.MISSING names the worker 'not-yet'/);
  assert.match(lines[2]!, /^env\.FOREIGN names the worker 'theirs', which belongs to another account/);
  assert.match(lines[3]!, /^env\.FOREIGN names the worker 'theirs', which belongs to another account/);
});

test("each side's CPU is charged to itself", async () => {
  await runtime.load('burner', mod(`
export default {
  burn(ms) { const end = Date.now() + 0; let x = 0; const t = performance.now(); for (let i = 0; i < ms * 200000; i++) x += i % 7; return x > 0; },
  async fetch() { return new Response('ok'); },
};`));
  await runtime.load('waiter', mod(`export default { async fetch(request, env) {
    for (let i = 0; i < 3; i++) await env.BURN.burn(15);
    return new Response('waited');
  } };`, { bindings: { BURN: { type: 'service', service: 'burner' } } }));
  logs.length = 0;
  const { status, body } = await get('waiter');
  assert.equal(status, 200, body);
  const lines = logs.filter((entry) => entry.type === 'request');
  const callee = lines.filter((entry) => entry.worker === 'burner');
  const caller = lines.find((entry) => entry.worker === 'waiter');
  assert.equal(callee.length, 3);
  const calleeCpu = callee.reduce((sum, entry) => sum + (entry.cpuMs as number), 0);
  assert.ok(calleeCpu > 5, `the called worker used its own CPU: ${calleeCpu} ms`);
  assert.ok((caller!.cpuMs as number) < calleeCpu / 2, `the caller is not charged the called worker's CPU: ${caller!.cpuMs} ms against ${calleeCpu} ms`);
  assert.match(callee[0]!.message, /^RPC default\.burn 200$/);
});

test('ctx.waitUntil() of an RPC method keeps its call in flight; console lines are the called worker\'s', async () => {
  await runtime.load('later', mod(`
import { WorkerEntrypoint } from 'cloudflare:workers';
export default class extends WorkerEntrypoint {
  record(value) {
    this.ctx.waitUntil(new Promise((resolve) => setTimeout(() => { console.log('recorded', value); resolve(); }, 20)));
    return 'accepted';
  }
  fetch() { return new Response('class default'); }
}`));
  await runtime.load('later-caller', mod(`export default { async fetch(request, env) {
    return new Response(await env.LATER.record(7) + ' ' + await (await env.LATER.fetch('https://x/')).text());
  } };`, { bindings: { LATER: { type: 'service', service: 'later' } } }));
  logs.length = 0;
  assert.equal((await get('later-caller')).body, 'accepted class default');
  for (let i = 0; i < 100 && !logs.some((entry) => entry.message === 'recorded 7'); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(logs.find((entry) => entry.message === 'recorded 7')?.worker, 'later');
  // The default export is a class: HTTP requests reach its fetch too.
  assert.equal((await get('later')).body, 'class default');
});

test('cloudflare:workers: env is importable at top level, WorkerEntrypoint has this.env and this.ctx', async () => {
  await runtime.load('imports', mod(`
import { env, WorkerEntrypoint } from 'cloudflare:workers';
const atTopLevel = env.GREETING;
export default class extends WorkerEntrypoint {
  fetch(request) { return new Response([atTopLevel, this.env.GREETING, typeof this.ctx.waitUntil, this.env === env, WorkerEntrypoint.name].join(' ')); }
}`, { vars: { GREETING: 'hey' } }));
  assert.equal((await get('imports')).body, 'hey hey function true WorkerEntrypoint');
  await assert.rejects(
    runtime.load('sockets', mod(`import { connect } from 'cloudflare:sockets'; export default { fetch() { return new Response(String(connect)); } };`)),
    (error: unknown) => error instanceof WorkerLoadError && /isolet provides 'cloudflare:workers' \(WorkerEntrypoint, env\) and no other cloudflare: module yet/.test(error.message),
  );
});

test('a worker that exports a Durable Object class does not load: "not supported yet", by name', async () => {
  await assert.rejects(
    runtime.load('counter', mod(`
import { DurableObject } from 'cloudflare:workers';
export class Counter extends DurableObject { fetch() { return new Response('n'); } }
export default { fetch() { return new Response('ok'); } };`)),
    (error: unknown) => error instanceof WorkerLoadError && /^Durable Objects are not supported by isolet yet: the worker exports Counter, a class that extends DurableObject/.test(error.message),
  );
});

test('Runtime.call: an embedder calls a worker\'s RPC methods directly', async () => {
  assert.equal(await runtime.call('api', 'add', [40, 2], { entrypoint: 'Api' }), 42);
  await assert.rejects(runtime.call('api', 'fail', [], { entrypoint: 'Api' }), (error: Error) => error.name === 'RangeError' && error.message === 'out of range: hi');
  await assert.rejects(runtime.call('api', 'add', [1, 2], { entrypoint: 'Nope' }), /The worker has no entrypoint named 'Nope': it exports Api, default/);
});
