// Service bindings on `isolet serve`, through real HTTP, with the two workers placed in different
// runtime processes: env.OTHER.fetch() with bodies streamed both ways and RPC to a named
// WorkerEntrypoint; the deploy check (another account's worker refused, a worker not deployed
// yet allowed and failing clearly until it is); the account rule again at call time; a cycle
// across processes; calls nested 16 deep and no deeper, by fetch and by RPC; service calls
// counted as the caller's subrequests; each side's CPU charged to itself; Durable Objects
// refused at deploy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessPool } from '../src/supervisor/process-pool.ts';
import { homeIndex } from '../src/supervisor/placement.ts';
import { moduleDeployment, startTestServer, type TestAccount, type TestServer } from './server-support.ts';

let t: TestServer;
let acme: TestAccount;
let mallory: TestAccount;
before(async () => {
  t = await startTestServer({ processes: 2 });
  acme = await t.account('acme');
  mallory = await t.account('mallory');
});
after(() => t.close());

/** A worker name whose home is process `index` of the default tier's 2. */
function nameOn(prefix: string, index: number): string {
  for (let n = 0; ; n++) if (homeIndex(`${prefix}${n}`, 'default', 2) === index) return `${prefix}${n}`;
}

function pool(): ProcessPool {
  const host = t.server.platform.host;
  assert.ok(host instanceof ProcessPool);
  return host;
}

async function deploy(account: TestAccount, name: string, source: string, extra: Record<string, unknown> = {}) {
  return t.api('PUT', `/v1/workers/${name}`, { token: account.token, body: moduleDeployment(source, extra) });
}

const TARGET = `
import { WorkerEntrypoint } from 'cloudflare:workers';
export class Api extends WorkerEntrypoint {
  add(a, b) { return a + b; }
  describe(value) { return { keys: [...value.keys()], when: value.get('when').toISOString(), owner: this.env.OWNER }; }
  burn() { let x = 0; for (let i = 0; i < 2e7; i++) x += i % 3; return x > 0; }
  fail() { throw new RangeError('no such thing'); }
  fetch(request) { return new Response('Api entrypoint ' + new URL(request.url).pathname); }
}
export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/echo') {
      // Streams the request body back as it reads it.
      const { readable, writable } = new TransformStream();
      request.body.pipeTo(writable);
      return new Response(readable, { headers: { 'x-target': 'yes' } });
    }
    if (url.pathname === '/big') {
      let left = 64;
      return new Response(new ReadableStream({ pull(c) { if (left-- === 0) return c.close(); c.enqueue(new Uint8Array(16384).fill(97)); } }));
    }
    return new Response('target ' + request.method + ' ' + url.pathname);
  },
};`;

test('fetch and RPC between workers in two runtime processes, over HTTP', { timeout: 120_000 }, async () => {
  const caller = nameOn('front', 0);
  const target = nameOn('backend', 1);
  assert.equal((await deploy(acme, target, TARGET, { vars: { OWNER: 'acme' } })).status, 201);
  const deployed = await deploy(acme, caller, `export default { async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === '/echo') return env.BACKEND.fetch('https://backend/echo', { method: 'POST', body: request.body, duplex: 'half' });
    if (url.pathname === '/big') return env.BACKEND.fetch('https://backend/big');
    const plain = await (await env.BACKEND.fetch('https://backend/hello')).text();
    const sum = await env.API.add(40, 2);
    const described = await env.API.describe(new Map([['when', new Date(0)]]));
    let failed; try { await env.API.fail(); } catch (error) { failed = error.constructor.name + ': ' + error.message; }
    const entry = await (await env.API.fetch('https://backend/named')).text();
    return Response.json({ plain, sum, described, failed, entry });
  } };`, { bindings: { BACKEND: { type: 'service', service: target }, API: { type: 'service', service: target, entrypoint: 'Api' } } });
  assert.equal(deployed.status, 201, deployed.text);

  const answer = await t.request(`${caller}.localhost`, '/');
  assert.equal(answer.status, 200);
  assert.deepEqual(await answer.json(), {
    plain: 'target GET /hello', sum: 42, described: { keys: ['when'], when: '1970-01-01T00:00:00.000Z', owner: 'acme' }, failed: 'RangeError: no such thing',
    entry: 'Api entrypoint /named',
  });
  // The two workers run in different runtime processes: the calls crossed the control process.
  assert.notEqual(pool().placement(caller)!.index, pool().placement(target)!.index);

  // A body streamed from the client through the caller to the target and back, larger than the
  // channel's window each way.
  const upload = new TextEncoder().encode(Array.from({ length: 32 }, (_, i) => String(i).padStart(2, '0').repeat(8192)).join(''));
  const echoed = await t.request(`${caller}.localhost`, '/echo', { method: 'POST', body: upload });
  assert.equal(echoed.status, 200);
  assert.equal(echoed.headers.get('x-target'), 'yes');
  const text = await echoed.text();
  assert.equal(text.length, 32 * 16384);
  assert.equal(text.slice(0, 4), '0000');
  assert.equal(text.slice(-4), '3131');
  // A streamed response larger than the channel's window.
  const big = await t.request(`${caller}.localhost`, '/big');
  assert.equal((await big.arrayBuffer()).byteLength, 64 * 16384);
});

test('the deploy check: another account\'s worker is refused; a worker not deployed yet is allowed and fails clearly until it is', { timeout: 120_000 }, async () => {
  assert.equal((await deploy(mallory, 'mallorys-api', `export default { fetch() { return new Response('mallory secret'); } };`)).status, 201);
  const refused = await deploy(acme, 'snoop', `export default { fetch(request, env) { return env.M.fetch(request); } };`, { bindings: { M: { type: 'service', service: 'mallorys-api' } } });
  assert.equal(refused.status, 403);
  assert.match(refused.text, /The binding M names the worker 'mallorys-api', which belongs to another account: a service binding reaches only workers of your own account/);

  const early = nameOn('early', 0);
  const later = nameOn('later', 1);
  const deployed = await deploy(acme, early, `export default { async fetch(request, env) {
    try { return await env.LATER.fetch('https://later/'); } catch (error) { return new Response(error.message, { status: 502 }); }
  } };`, { bindings: { LATER: { type: 'service', service: later } } });
  assert.equal(deployed.status, 201, deployed.text);
  const before = await t.request(`${early}.localhost`, '/');
  assert.equal(before.status, 502);
  assert.match(await before.text(), new RegExp(`^env\\.LATER names the worker '${later}', which is not running here\\. Fix: deploy a worker named '${later}' to this account`));
  assert.equal((await deploy(acme, later, `export default { fetch() { return new Response('now here'); } };`)).status, 201);
  assert.equal(await (await t.request(`${early}.localhost`, '/')).text(), 'now here');
});

test('the account rule holds at call time: a worker another account deploys under the bound name is not reached', { timeout: 120_000 }, async () => {
  const caller = nameOn('hopeful', 0);
  const taken = nameOn('unclaimed', 1);
  assert.equal((await deploy(acme, caller, `export default { async fetch(request, env) {
    try { return await env.X.fetch('https://x/'); } catch (error) { return new Response(error.message, { status: 502 }); }
  } };`, { bindings: { X: { type: 'service', service: taken } } })).status, 201);
  // Mallory takes the name after acme bound it.
  assert.equal((await deploy(mallory, taken, `export default { fetch() { return new Response('mallory got the call'); }, add() { return 'mallory'; } };`)).status, 201);
  const answer = await t.request(`${caller}.localhost`, '/');
  assert.equal(answer.status, 502);
  assert.match(await answer.text(), new RegExp(`^env\\.X names the worker '${taken}', which belongs to another account`));
});

test('a cycle across runtime processes is refused; each side\'s CPU is charged to itself', { timeout: 30_000 }, async () => {
  const ping = nameOn('ping', 0);
  const pong = nameOn('pong', 1);
  const relay = `export default { async fetch(request, env) {
    try { return await env.NEXT.fetch(request); } catch (error) { return new Response('refused: ' + error.message, { status: 508 }); }
  } };`;
  assert.equal((await deploy(acme, ping, relay, { bindings: { NEXT: { type: 'service', service: pong } } })).status, 201);
  assert.equal((await deploy(acme, pong, relay, { bindings: { NEXT: { type: 'service', service: ping } } })).status, 201);
  const cycle = await t.request(`${ping}.localhost`, '/');
  assert.equal(cycle.status, 508);
  assert.match(await cycle.text(), new RegExp(`^refused: env\\.NEXT.*cycle of service calls \\(${ping} -> ${pong} -> ${ping}\\)`));

  const target = nameOn('cruncher', 1);
  const caller = nameOn('asker', 0);
  assert.equal((await deploy(acme, target, TARGET, { vars: { OWNER: 'acme' } })).status, 201);
  assert.equal((await deploy(acme, caller, `export default { async fetch(request, env) { await env.API.burn(); return new Response('done'); } };`, { bindings: { API: { type: 'service', service: target, entrypoint: 'Api' } } })).status, 201);
  assert.equal(await (await t.request(`${caller}.localhost`, '/')).text(), 'done');
  let lines: Record<string, unknown>[] = [];
  for (let i = 0; i < 100; i++) {
    lines = t.logs.filter((entry) => entry.type === 'request' && (entry.worker === caller || entry.worker === target));
    if (lines.length >= 2) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const calleeCpu = lines.find((entry) => entry.worker === target)!.cpuMs as number;
  const callerCpu = lines.find((entry) => entry.worker === caller)!.cpuMs as number;
  assert.ok(calleeCpu > 5, `the called worker's CPU is its own: ${calleeCpu} ms`);
  assert.ok(callerCpu < calleeCpu / 2, `the caller is not charged the called worker's CPU: ${callerCpu} ms against ${calleeCpu} ms`);
});

test('calls may nest 16 deep across runtime processes, by fetch and by RPC; the 17th is refused with the chain', { timeout: 240_000 }, async () => {
  // 18 workers each calling the next, their homes alternating between the two processes, so
  // that every call crosses the control process.
  const hops = 18;
  const chain = (prefix: string) => Array.from({ length: hops }, (_, i) => nameOn(`${prefix}${i}-`, i % 2));
  const byFetch = chain('fh');
  const byRpc = chain('rh');
  for (let i = hops - 1; i >= 0; i--) {
    const next = i + 1 < hops ? { bindings: { NEXT: { type: 'service', service: byFetch[i + 1] } } } : {};
    assert.equal((await deploy(acme, byFetch[i]!, `export default { async fetch(request, env) {
      if (!env.NEXT) return new Response('end at ${i}');
      try { return await env.NEXT.fetch(request); } catch (error) { return new Response('${byFetch[i]} refused: ' + error.message); }
    } };`, next)).status, 201);
    const rpcNext = i + 1 < hops ? { bindings: { NEXT: { type: 'service', service: byRpc[i + 1] } } } : {};
    assert.equal((await deploy(acme, byRpc[i]!, `import { WorkerEntrypoint } from 'cloudflare:workers';
    export default class extends WorkerEntrypoint {
      async hop() {
        if (!this.env.NEXT) return 'end at ${i}';
        try { return await this.env.NEXT.hop(); } catch (error) { return '${byRpc[i]} refused: ' + error.message; }
      }
      async fetch() { return new Response(await this.hop()); }
    }`, rpcNext)).status, 201);
  }
  for (const names of [byFetch, byRpc]) {
    for (let i = 0; i + 1 < hops; i++) assert.notEqual(homeIndex(names[i]!, 'default', 2), homeIndex(names[i + 1]!, 'default', 2));
  }
  for (const names of [byFetch, byRpc]) {
    // From the first: 16 nested calls pass, the 17th (made by the 17th worker) is refused.
    const deep = await (await t.request(`${names[0]}.localhost`, '/')).text();
    assert.match(deep, new RegExp(`^${names[16]} refused: .*service calls nest more than 16 deep \\(${names[0]} -> .* -> ${names[17]}\\)`), deep);
    // From the second: 16 nested calls reach the end.
    assert.equal(await (await t.request(`${names[1]}.localhost`, '/')).text(), 'end at 17');
  }
});

test('service calls count against the caller\'s 50 subrequests, by fetch and by RPC, across runtime processes', { timeout: 120_000 }, async () => {
  const target = nameOn('counted', 1);
  const caller = nameOn('counter-caller', 0);
  assert.equal((await deploy(acme, target, TARGET, { vars: { OWNER: 'acme' } })).status, 201);
  assert.equal((await deploy(acme, caller, `export default { async fetch(request, env) {
    const made = [];
    try {
      for (let i = 0; i < 25; i++) made.push(await (await env.WEB.fetch('https://target/n')).text());
      for (let i = 0; i < 25; i++) made.push(await env.API.add(i, 1));
    } catch (error) { return new Response('early: ' + error.name + ': ' + error.message + ' after ' + made.length, { status: 500 }); }
    const refused = [];
    for (const call of [() => env.API.add(1, 1), () => env.WEB.fetch('https://target/'), () => fetch('https://example.com/')]) {
      try { await call(); refused.push('passed'); } catch (error) { refused.push(error.name + ': ' + error.message); }
    }
    return Response.json({ made: made.length, refused });
  } };`, { bindings: { WEB: { type: 'service', service: target }, API: { type: 'service', service: target, entrypoint: 'Api' } } })).status, 201);
  for (let round = 0; round < 2; round++) {
    // Each request has its own 50.
    const response = await t.request(`${caller}.localhost`, '/');
    const text = await response.text();
    assert.equal(response.status, 200, text);
    assert.deepEqual(JSON.parse(text), { made: 50, refused: Array(3).fill('TypeError: Too many subrequests.') });
  }
});

test('a worker with a Durable Object is refused at deploy, by name', { timeout: 60_000 }, async () => {
  const refused = await deploy(acme, 'counter', `
import { DurableObject } from 'cloudflare:workers';
export class Counter extends DurableObject {}
export default { fetch() { return new Response('ok'); } };`);
  assert.equal(refused.status, 400);
  assert.match(refused.text, /Durable Objects are not supported by isolet yet: the worker exports Counter/);
});
