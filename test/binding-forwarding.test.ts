// Platform bindings across the process boundary: on `isolet serve` a worker's binding call goes
// from its runtime process to the control process, which resolves it against what it deployed
// there and hands it to the handler registered for its type (src/server/binding-handlers.ts).
// Covered: the round trip over real HTTP (JSON arguments and a binary payload each way, the
// account and spec the server's own), errors (a BindingError's name and message; anything else
// logged and not shown), the deploy checks, and calls a runtime process forges: well-formed ones
// are refused one by one, malformed ones break the protocol and end that process.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { duplexPair } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { startTestServer, moduleDeployment, type TestServer } from './server-support.ts';
import { registerBindingHandler } from '../src/server/binding-handlers.ts';
import { ProcessPool } from '../src/supervisor/process-pool.ts';
import { homeIndex } from '../src/supervisor/placement.ts';
import { Channel } from '../src/supervisor/channel.ts';
import type { Message } from '../src/supervisor/messages.ts';
import { BindingError, type BindingCall, type RuntimeResponse, type WorkerDefinition } from '../src/runtime/types.ts';

const servers: TestServer[] = [];
const pools: ProcessPool[] = [];
after(async () => {
  await Promise.all([...servers.map((s) => s.close()), ...pools.map((p) => p.close())]);
});

/** A worker that calls its 'raw' binding R as the query says and answers with what came back. */
const CALLER = `export default { async fetch(request, env) {
  const url = new URL(request.url);
  const size = Number(url.searchParams.get('bytes') ?? 0);
  const bytes = size > 0 ? new Uint8Array(size).map((_, i) => i % 251) : null;
  try {
    const answer = await env.R.call(url.searchParams.get('method') ?? 'echo', JSON.parse(url.searchParams.get('args') ?? '[]'), bytes);
    const back = answer.bytes === null ? null : new Uint8Array(answer.bytes);
    let sum = 0;
    if (back) for (const b of back) sum = (sum + b) % 65521;
    return Response.json({ value: answer.value, bytes: back === null ? null : { length: back.byteLength, sum, first: back[0] } });
  } catch (e) {
    return Response.json({ error: { name: e.name, message: e.message, type: e.constructor.name } });
  }
} };`;

function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) % 65521;
  return sum;
}

test('over HTTP on isolet serve with runtime processes: a binding call reaches the registered handler with the server\'s spec and account, JSON and bytes cross both ways, and errors cross as name and message only', { timeout: 120_000 }, async () => {
  const calls: BindingCall[] = [];
  const unregister = registerBindingHandler('raw', {
    async call(call) {
      calls.push(call);
      if (call.method === 'range') throw new BindingError('RangeError', 'that is too far');
      if (call.method === 'broken') throw new Error('connection to db.internal:5432 refused');
      const bytes = call.bytes === undefined ? undefined : Uint8Array.from(call.bytes).reverse();
      return { value: { args: call.args, worker: call.worker, account: call.account, name: call.name, spec: call.binding }, bytes };
    },
  });
  try {
    const t = await startTestServer({ processes: 2 });
    servers.push(t);
    const acme = await t.account('acme');
    const deployed = await t.api('PUT', '/v1/workers/caller', { token: acme.token, body: moduleDeployment(CALLER, { bindings: { R: { type: 'raw' } } }) });
    assert.equal(deployed.status, 201, deployed.text);

    const args = JSON.stringify([1, 'two', { three: [3] }, null, true]);
    const size = 1024 * 1024 + 7;
    const echo: any = await (await t.request('caller.localhost', `/?args=${encodeURIComponent(args)}&bytes=${size}`)).json();
    assert.deepEqual(echo.value, { args: JSON.parse(args), worker: 'caller', account: acme.id, name: 'R', spec: { type: 'raw' } });
    const sent = new Uint8Array(size).map((_, i) => i % 251);
    assert.deepEqual(echo.bytes, { length: size, sum: checksum(sent), first: sent[size - 1] });
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.bytes!.byteLength, size);

    const none = await (await t.request('caller.localhost', '/')).json();
    assert.deepEqual(none, { value: { args: [], worker: 'caller', account: acme.id, name: 'R', spec: { type: 'raw' } }, bytes: null });

    const range: any = await (await t.request('caller.localhost', '/?method=range')).json();
    assert.deepEqual(range.error, { name: 'RangeError', message: 'that is too far', type: 'RangeError' });

    const broken: any = await (await t.request('caller.localhost', '/?method=broken')).json();
    assert.deepEqual(broken.error, { name: 'Error', message: 'env.R.broken() failed on the server; its log says why.', type: 'Error' });
    const logged = t.logs.find((line) => line.message === 'a binding call failed');
    assert.ok(logged, 'the server logged the cause');
    assert.match(String(logged.error), /db\.internal:5432/);
    assert.equal(logged.worker, 'caller');
  } finally {
    unregister();
  }
});

test('a deployment\'s bindings are checked before its code runs: shape, names, a type the server offers, and the type\'s own ownership check', { timeout: 60_000 }, async () => {
  const unregister = registerBindingHandler('raw', {
    call: async () => ({ value: null }),
    async checkDeploy(_spec, deploy) {
      const { ApiError } = await import('../src/server/api-error.ts');
      if (deploy.name === 'THEIRS') throw new ApiError('forbidden', `The binding ${deploy.name} names something account ${deploy.account} does not own.`);
    },
  });
  try {
    const t = await startTestServer();
    servers.push(t);
    const acme = await t.account('acme');
    const deploy = (bindings: unknown, extra: Record<string, unknown> = {}) =>
      t.api('PUT', '/v1/workers/checked', { token: acme.token, body: moduleDeployment(CALLER, { bindings, ...extra }) });
    const cases: [unknown, Record<string, unknown>, number, RegExp][] = [
      [['R'], {}, 400, /`bindings` must be an object/],
      [{ 'bad-name': { type: 'raw' } }, {}, 400, /Invalid binding name 'bad-name'/],
      [{ R: { type: 'queue' } }, {}, 400, /Invalid binding R: unknown binding type "queue"/],
      [{ R: { type: 'kv' } }, {}, 400, /Invalid binding R: a kv binding needs 'namespaceId'/],
      [{ R: { type: 'raw' } }, { vars: { R: 'x' } }, 400, /'R' is both a var and a binding/],
      [{ R: { type: 'kv', namespaceId: 'n1' } }, {}, 400, /The binding R names the KV namespace 'n1', which this account does not have/],
      [{ THEIRS: { type: 'raw' } }, {}, 403, /names something account .* does not own/],
    ];
    for (const [bindings, extra, status, message] of cases) {
      const answer = await deploy(bindings, extra);
      assert.equal(answer.status, status, answer.text);
      assert.match(answer.body.error.message, message);
    }
    const ok = await deploy({ R: { type: 'raw' } });
    assert.equal(ok.status, 201, ok.text);
    // Stored with the version: what the server sends its runtime.
    const version = await t.api('GET', '/v1/workers/checked', { token: acme.token });
    assert.equal(version.status, 200, version.text);
    // env has one value per name: a secret may not take a binding's name, nor a binding a secret's.
    const clash = await t.api('PUT', '/v1/workers/checked/secrets/R', { token: acme.token, body: { value: 'x' } });
    assert.equal(clash.status, 400, clash.text);
    assert.match(clash.body.error.message, /has a binding named 'R'/);
    assert.equal((await t.api('PUT', '/v1/workers/checked/secrets/S', { token: acme.token, body: { value: 'x' } })).status, 204);
    const hidden = await deploy({ R: { type: 'raw' }, S: { type: 'raw' } });
    assert.equal(hidden.status, 400, hidden.text);
    assert.match(hidden.body.error.message, /a secret named 'S'/);
    const serving = await t.request('checked.localhost', '/');
    assert.notEqual(serving.status, 503, 'the worker still serves its last good version');
  } finally {
    unregister();
  }
});

const FORGING = fileURLToPath(new URL('./support/forging-runtime.ts', import.meta.url));

async function read(response: RuntimeResponse): Promise<string> {
  if (response.body === null) return '';
  if (response.body instanceof Uint8Array) return Buffer.from(response.body).toString();
  const chunks: Uint8Array[] = [];
  for await (const chunk of response.body) chunks.push(chunk);
  return Buffer.concat(chunks).toString();
}

/** The first name with this prefix whose home is process `index` of a default tier of 2. */
function nameOn(prefix: string, index: number): string {
  for (let n = 0; ; n++) if (homeIndex(`${prefix}${n}`, 'default', 2) === index) return `${prefix}${n}`;
}

test('calls a runtime process forges are refused one by one against what the control process deployed there; a malformed one ends that process, as any broken message does', { timeout: 120_000 }, async () => {
  const calls: BindingCall[] = [];
  const lines: { level: string; message: string }[] = [];
  const pool = new ProcessPool({
    processes: 2,
    spare: false,
    execArgv: ['--import', FORGING],
    runtime: { limits: { cpuMs: 5000 } },
    workerLog: () => {},
    log: (level, message) => lines.push({ level, message }),
    bindingHost: { call: async (call) => (calls.push(call), { value: { worker: call.worker, name: call.name, account: call.account } }) },
  });
  pools.push(pool);
  const mine = nameOn('mine', 0);
  const sameProcess = nameOn('idle', 0);
  const elsewhere = nameOn('other', 1);
  const worker = (account: string, bindings: WorkerDefinition['bindings']): WorkerDefinition => ({ modules: [{ name: 'w.js', source: CALLER }], account, bindings });
  await pool.load(mine, worker('acct-mine', { R: { type: 'raw' } }));
  await pool.load(sameProcess, worker('acct-idle', { R: { type: 'raw' }, IDLE: { type: 'raw' } }));
  await pool.load(elsewhere, worker('acct-other', { R: { type: 'raw' }, SECRET: { type: 'raw' } }));
  // The other process holds its worker: a forged call naming it is refused anyway.
  assert.equal((await pool.fetch(elsewhere, { method: 'GET', url: 'https://x/', headers: [] })).status, 200);
  calls.length = 0;
  const ask = async (method: string) => {
    const response = await pool.fetch(mine, { method: 'GET', url: `https://x/?method=${encodeURIComponent(method)}`, headers: [] });
    return { status: response.status, body: await read(response) };
  };

  const honest = JSON.parse((await ask('echo')).body);
  assert.deepEqual(honest.value, { worker: mine, name: 'R', account: 'acct-mine' });
  const refusals: [Record<string, unknown>, string, RegExp][] = [
    [{ worker: elsewhere }, 'Error', new RegExp(`the worker ${elsewhere} is not served by this runtime process`)],
    // Homed in the same process, but never sent to it: nothing of it was deployed there.
    [{ worker: sameProcess }, 'Error', new RegExp(`the worker ${sameProcess} is not served by this runtime process`)],
    [{ worker: 'nobody' }, 'Error', /the worker nobody is not served by this runtime process/],
    [{ name: 'SECRET' }, 'TypeError', /the worker has no binding of that name/],
    [{ name: 'IDLE' }, 'TypeError', /the worker has no binding of that name/],
  ];
  for (const [forged, name, message] of refusals) {
    const { status, body } = await ask(`forge:${JSON.stringify(forged)}`);
    assert.equal(status, 200, body);
    const { error } = JSON.parse(body);
    assert.equal(error?.name, name, body);
    assert.match(error.message, message);
  }
  assert.equal(calls.length, 1, `only the honest call reached the binding host: ${JSON.stringify(calls.map((c) => [c.worker, c.name, c.method]))}`);
  assert.ok(!lines.some((line) => line.message.includes('broke the protocol')), 'refusals end nothing');
  assert.deepEqual(JSON.parse((await ask('echo')).body).value, { worker: mine, name: 'R', account: 'acct-mine' });

  // Arguments that are not JSON break the message table: the process is killed and replaced.
  const broken = await ask(`forge:${JSON.stringify({ args: 'not a list' })}`);
  assert.equal(broken.status, 502, broken.body);
  assert.ok(lines.some((line) => line.message === 'runtime process broke the protocol; killed'));
  assert.deepEqual(JSON.parse((await ask('echo')).body).value, { worker: mine, name: 'R', account: 'acct-mine' });
  // The three honest calls, nothing forged.
  assert.equal(calls.length, 3);
});

test('at the channel: binding calls of the wrong shape or size close the channel; a good one and an answer cross intact', async () => {
  const open = () => {
    const [a, b] = duplexPair();
    const received: Message[] = [];
    const errors: Error[] = [];
    const control = new Channel(a, 'control', { message: (m) => received.push(m), error: (e) => errors.push(e), close() {} });
    const runtime = new Channel(b, 'runtime', { message: (m) => received.push(m), error: (e) => errors.push(e), close() {} });
    return { control, runtime, received, errors };
  };
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  const good = { worker: 'w', name: 'KV', method: 'get', args: ['key', { type: 'text' }], bytes: true };

  const ok = open();
  ok.runtime.send('bindingCall', 5, { head: good, body: Buffer.from('value') });
  ok.control.send('bindingAnswer', 5, { head: { ok: true, value: { found: true }, bytes: true }, body: Buffer.from('answer') });
  ok.control.send('bindingAnswer', 6, { head: { ok: false, error: { name: 'RangeError', message: 'no' } }, body: new Uint8Array(0) });
  await settle();
  assert.deepEqual(ok.errors, []);
  assert.deepEqual(ok.received.map((m) => [m.name, m.id]), [['bindingCall', 5], ['bindingAnswer', 5], ['bindingAnswer', 6]]);
  const call = ok.received[0]!.payload as { head: unknown; body: Uint8Array };
  assert.deepEqual(call.head, good);
  assert.equal(Buffer.from(call.body).toString(), 'value');

  const hostile: [string, Record<string, unknown>, Uint8Array][] = [
    ['a binding name that is no env name', { ...good, name: 'not-a-name' }, new Uint8Array(0)],
    ['a worker name that is too long', { ...good, worker: 'w'.repeat(64) }, new Uint8Array(0)],
    ['arguments that are not a list', { ...good, args: 'x' }, new Uint8Array(0)],
    ['arguments nested past the bound', { ...good, args: [JSON.parse('['.repeat(40) + ']'.repeat(40))] }, new Uint8Array(0)],
    ['bytes without the flag', { ...good, bytes: false }, Buffer.from('x')],
    ['bytes past the bound', good, new Uint8Array(32 * 1024 * 1024 + 1)],
    ['arguments past the bound', { ...good, args: ['x'.repeat(1024 * 1024 + 8192)] }, new Uint8Array(0)],
  ];
  for (const [what, head, body] of hostile) {
    const c = open();
    c.runtime.send('bindingCall', 1, { head: head as never, body });
    await settle();
    await settle();
    assert.equal(c.received.length, 0, what);
    assert.equal(c.errors.length, 1, what);
    assert.equal(c.control.closed, true, what);
  }
});

test('binding values that would overfill the channel between processes are refused; no process is dropped for it', { timeout: 120_000 }, async () => {
  const ends: string[] = [];
  const big = new Uint8Array(20 * 1024 * 1024).fill(7);
  const pool = new ProcessPool({
    processes: 2,
    spare: false,
    runtime: { limits: { cpuMs: 10_000, memoryMb: 1024 } },
    workerLog: () => {},
    log: (_level, message) => { if (/ended/.test(message)) ends.push(message); },
    // Every answer 20 MiB: ten at once are 200 MiB for the channel to the worker's process,
    // past the 128 MiB after which it would be taken for broken.
    bindingHost: { call: async () => ({ value: null, bytes: big }) },
  });
  pools.push(pool);
  const flooder = nameOn('flooder', 0);
  const bystander = nameOn('bystander', 0);
  await pool.load(flooder, { modules: [{ name: 'w.js', source: `export default { async fetch(request, env) {
    const calls = [];
    for (let i = 0; i < 10; i++) calls.push(env.R.call('get', [], null));
    const out = await Promise.allSettled(calls);
    return new Response(out.map((r) => r.status === 'fulfilled' ? 'ok ' + r.value.bytes.byteLength : r.reason.name + ': ' + r.reason.message).join('\\n'));
  } };` }], account: 'acct', bindings: { R: { type: 'raw' } } });
  await pool.load(bystander, { modules: [{ name: 'w.js', source: `export default { fetch() { return new Response('still here'); } };` }], account: 'acct' });
  const response = await pool.fetch(flooder, { method: 'GET', url: 'https://x/', headers: [] });
  assert.equal(response.status, 200);
  const outcomes = (await read(response)).split('\n');
  assert.equal(outcomes.length, 10);
  for (const outcome of outcomes) {
    assert.ok(outcome === `ok ${big.byteLength}` || /^RangeError: Values waiting to cross between runtime processes .* already hold as much as may wait/.test(outcome), outcome);
  }
  assert.ok(outcomes.some((outcome) => outcome.startsWith('ok')));
  assert.ok(outcomes.some((outcome) => outcome.startsWith('RangeError')), 'some calls are refused');
  assert.deepEqual(ends, []);
  assert.equal(await read(await pool.fetch(bystander, { method: 'GET', url: 'https://x/', headers: [] })), 'still here');
});
