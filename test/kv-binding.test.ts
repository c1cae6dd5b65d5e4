// The KV binding inside a worker (a Runtime behind the real HTTP front, its BindingHost answering
// from a SQLite store as isolet serve's control process does): every method and response type,
// values of every kind, expiration and metadata, list paging, and Cloudflare's argument errors
// as the worker sees them. Through isolet serve and isolet dev: test/kv-e2e.test.ts.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SqliteStore } from '../src/store/sqlite-store.ts';
import { answerKvCall } from '../src/bindings/kv/kv-calls.ts';
import { BindingError, type BindingHost } from '../src/runtime/types.ts';
import { moduleWorker, serve, type Served } from './support/serve.ts';

const WORKER = `
const json = (value) => Response.json(value);
async function attempt(fn) {
  try { return { ok: await fn() }; } catch (error) { return { name: error.name, message: error.message }; }
}
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const kv = env.KV;
    switch (url.pathname) {
      case '/shape': return json({
        tag: Object.prototype.toString.call(kv), name: kv.constructor.name,
        methods: Object.getOwnPropertyNames(Object.getPrototypeOf(kv)).sort(),
        construct: await attempt(() => new kv.constructor()),
        clone: await attempt(() => structuredClone(kv)),
      });
      case '/text': {
        await kv.put('greeting', 'héllo');
        const stream = await kv.get('greeting', 'stream');
        return json({
          text: await kv.get('greeting'), typed: await kv.get('greeting', { type: 'text', cacheTtl: 60 }),
          bytes: [...new Uint8Array(await kv.get('greeting', 'arrayBuffer'))],
          stream: await new Response(stream).text(), isStream: stream instanceof ReadableStream,
          missing: await kv.get('nothing-here'), missingMeta: await kv.getWithMetadata('nothing-here'),
        });
      }
      case '/json': {
        await kv.put('config', JSON.stringify({ a: [1, 2], b: 'x' }), { metadata: { owner: 'me', n: 1 } });
        return json({ value: await kv.get('config', 'json'), withMeta: await kv.getWithMetadata('config', 'json'), badJson: await attempt(async () => { await kv.put('nj', '{'); return kv.get('nj', 'json'); }) });
      }
      case '/values': {
        const out = {};
        await kv.put('ab', new Uint8Array([0, 1, 2, 255]).buffer);
        out.arrayBuffer = [...new Uint8Array(await kv.get('ab', 'arrayBuffer'))];
        await kv.put('view', new Uint16Array([1, 2, 3]).subarray(1));
        out.view = [...new Uint8Array(await kv.get('view', 'arrayBuffer'))];
        await kv.put('stream', new Blob(['from a ', 'stream']).stream());
        out.stream = await kv.get('stream');
        await kv.put('body', new Response('a response body').body);
        out.body = await kv.get('body');
        await kv.put('number', 42);
        out.number = await kv.get('number');
        await kv.put('empty', '');
        out.empty = await kv.get('empty');
        out.object = await attempt(() => kv.put('obj', { not: 'a value' }));
        const locked = new Response('x').body; locked.getReader();
        out.locked = await attempt(() => kv.put('locked', locked));
        const big = new Uint8Array(25 * 1024 * 1024 + 1);
        out.tooBig = await attempt(() => kv.put('big', big));
        out.tooBigStream = await attempt(() => kv.put('big', new Blob([big]).stream()));
        await kv.put('limit', new Uint8Array(25 * 1024 * 1024));
        out.atLimit = (await kv.get('limit', 'arrayBuffer')).byteLength;
        await kv.delete('limit');
        return json(out);
      }
      case '/expiry': {
        const now = Math.floor(Date.now() / 1000);
        await kv.put('ttl', 'x', { expirationTtl: 300, metadata: { m: 1 } });
        await kv.put('at', 'y', { expiration: now + 3600 });
        const listed = await kv.list({ prefix: 'ttl' });
        return json({ now, listed, at: (await kv.list({ prefix: 'at' })).keys[0] });
      }
      case '/delete': {
        await kv.put('gone', 'soon');
        await kv.delete('gone');
        await kv.delete('never-was');
        return json({ after: await kv.get('gone') });
      }
      case '/list': {
        for (const key of ['p:3', 'p:1', 'p:2', 'q', 'p:10']) await kv.put(key, key);
        const first = await kv.list({ prefix: 'p:', limit: 2 });
        const second = await kv.list({ prefix: 'p:', limit: 2, cursor: first.cursor });
        const all = await kv.list();
        return json({ first, second, allNames: all.keys.map((k) => k.name), complete: all.list_complete });
      }
      case '/bulk': {
        await kv.put('b:text', 'héllo', { metadata: { n: 1 } });
        await kv.put('b:json', JSON.stringify({ a: [1, 2] }));
        const entries = (map) => map instanceof Map ? [...map] : { notAMap: String(map) };
        const keys = Array.from({ length: 101 }, (_, i) => 'k' + i);
        return json({
          text: entries(await kv.get(['b:text', 'b:missing', 'b:json'])),
          typed: entries(await kv.get(['b:json'], 'json')),
          options: entries(await kv.get(['b:json', 'b:json'], { type: 'json', cacheTtl: 60 })),
          meta: entries(await kv.getWithMetadata(['b:text', 'b:missing', 'b:json'])),
          hundred: (await kv.get(keys.slice(0, 100))).size,
          tooMany: await attempt(() => kv.get(keys)),
          none: await attempt(() => kv.get([])),
          emptyKey: await attempt(() => kv.get(['ok', ''])),
          longKey: await attempt(() => kv.get(['k'.repeat(513)])),
          notJson: await attempt(() => kv.get(['b:text', 'b:json'], 'json')),
          stream: await attempt(() => kv.get(['b:text'], 'stream')),
          cacheTtl: await attempt(() => kv.get(['b:text'], { cacheTtl: 10 })),
        });
      }
      case '/integers': {
        await kv.put('i:1', 'v');
        return json({
          limitText: await attempt(async () => (await kv.list({ prefix: 'i:', limit: 'x' })).keys.length),
          limitFraction: await attempt(async () => (await kv.list({ prefix: 'i:', limit: 1.9 })).keys.length),
          limitHuge: await attempt(() => kv.list({ limit: 2 ** 40 })),
          ttlText: await attempt(() => kv.put('k', 'v', { expirationTtl: 'nan' })),
          cacheTtlText: await attempt(() => kv.get('k', { cacheTtl: 'not a number' })),
        });
      }
      case '/errors': return json({
        empty: await attempt(() => kv.get('')),
        dot: await attempt(() => kv.put('.', 'v')),
        dotdot: await attempt(() => kv.delete('..')),
        longKey: await attempt(() => kv.get('k'.repeat(513))),
        longPut: await attempt(() => kv.put('é'.repeat(300), 'v')),
        ttl: await attempt(() => kv.put('k', 'v', { expirationTtl: 30 })),
        ttlZero: await attempt(() => kv.put('k', 'v', { expirationTtl: -1 })),
        expiration: await attempt(() => kv.put('k', 'v', { expiration: Math.floor(Date.now() / 1000) + 5 })),
        past: await attempt(() => kv.put('k', 'v', { expiration: 1000 })),
        metadata: await attempt(() => kv.put('k', 'v', { metadata: 'm'.repeat(1100) })),
        cycle: await attempt(() => { const o = {}; o.o = o; return kv.put('k', 'v', { metadata: o }); }),
        type: await attempt(() => kv.get('k', 'blob')),
        cacheTtl: await attempt(() => kv.get('k', { cacheTtl: 5 })),
        limit: await attempt(() => kv.list({ limit: 1001 })),
        cursor: await attempt(() => kv.list({ cursor: '%%%' })),
        prefix: await attempt(() => kv.list({ prefix: 'p'.repeat(513) })),
      });
    }
    return new Response('no such case', { status: 404 });
  },
};
`;

describe('the KV binding in a worker', { timeout: 120_000 }, () => {
  let dir: string;
  let store: SqliteStore;
  let served: Served;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'isolet-kv-binding-'));
    store = new SqliteStore({ dataDir: dir, secretsKey: randomBytes(32) });
    const account = await store.createAccount('acme');
    const ns = await store.kv.createNamespace(account.id, 'test');
    const bindingHost: BindingHost = {
      call: (call) =>
        answerKvCall(store.kv, {
          name: call.name,
          namespaceId: (call.binding as { namespaceId: string }).namespaceId,
          owner: account.id,
          method: call.method,
          args: call.args,
          bytes: call.bytes,
        }),
    };
    served = await serve(
      { kvw: moduleWorker(WORKER, { account: account.id, bindings: { KV: { type: 'kv', namespaceId: ns.id } }, limits: { cpuMs: 5000, memoryMb: 256 } }) },
      { bindingHost },
    );
  });

  after(async () => {
    await served?.close();
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const run = async (path: string) => {
    const response = await served.fetch('kvw', path);
    const text = await response.text();
    assert.equal(response.status, 200, text);
    return JSON.parse(text);
  };

  test("env.KV is workerd's KvNamespace: its methods, no constructor, not cloneable", async () => {
    const shape = await run('/shape');
    assert.equal(shape.tag, '[object KvNamespace]');
    assert.equal(shape.name, 'KvNamespace');
    assert.deepEqual(shape.methods, ['constructor', 'delete', 'get', 'getWithMetadata', 'list', 'put']);
    assert.deepEqual(shape.construct, { name: 'TypeError', message: 'Illegal constructor' });
    assert.equal(shape.clone.name, 'DataCloneError');
  });

  test('get as text, typed options, arrayBuffer and stream; a missing key is null', async () => {
    const out = await run('/text');
    assert.equal(out.text, 'héllo');
    assert.equal(out.typed, 'héllo');
    assert.deepEqual(out.bytes, [...Buffer.from('héllo')]);
    assert.equal(out.stream, 'héllo');
    assert.equal(out.isStream, true);
    assert.equal(out.missing, null);
    assert.deepEqual(out.missingMeta, { value: null, metadata: null, cacheStatus: null });
  });

  test('json and metadata; getWithMetadata; invalid JSON is a SyntaxError', async () => {
    const out = await run('/json');
    assert.deepEqual(out.value, { a: [1, 2], b: 'x' });
    assert.deepEqual(out.withMeta, { value: { a: [1, 2], b: 'x' }, metadata: { owner: 'me', n: 1 }, cacheStatus: null });
    assert.equal(out.badJson.name, 'SyntaxError');
  });

  test('values: ArrayBuffer, views, streams, bodies, primitives; objects, locked streams and 25 MiB + 1 refused', async () => {
    const out = await run('/values');
    assert.deepEqual(out.arrayBuffer, [0, 1, 2, 255]);
    assert.deepEqual(out.view, [...new Uint8Array(new Uint16Array([2, 3]).buffer)]);
    assert.equal(out.stream, 'from a stream');
    assert.equal(out.body, 'a response body');
    assert.equal(out.number, '42');
    assert.equal(out.empty, '');
    assert.deepEqual(out.object, { name: 'TypeError', message: 'KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and ReadableStreams as values.' });
    assert.equal(out.locked.name, 'TypeError');
    assert.deepEqual(out.tooBig, { name: 'Error', message: 'KV PUT failed: 413 Value length of 26214401 exceeds limit of 26214400.' });
    assert.deepEqual(out.tooBigStream, out.tooBig);
    assert.equal(out.atLimit, 25 * 1024 * 1024);
  });

  test('expiration and expirationTtl show in list(), with metadata', async () => {
    const out = await run('/expiry');
    const [ttl] = out.listed.keys;
    assert.equal(ttl.name, 'ttl');
    assert.ok(ttl.expiration >= out.now + 300 && ttl.expiration <= out.now + 302, JSON.stringify(ttl));
    assert.deepEqual(ttl.metadata, { m: 1 });
    assert.equal(out.listed.list_complete, true);
    assert.equal(out.listed.cacheStatus, null);
    assert.equal(out.at.expiration, out.now + 3600);
  });

  test('delete, and deleting what is not there', async () => {
    assert.deepEqual(await run('/delete'), { after: null });
  });

  test('list pages with prefix, limit and cursor, in byte order', async () => {
    const out = await run('/list');
    assert.deepEqual(out.first.keys.map((k: { name: string }) => k.name), ['p:1', 'p:10']);
    assert.equal(out.first.list_complete, false);
    assert.equal(typeof out.first.cursor, 'string');
    assert.deepEqual(out.second, { keys: [{ name: 'p:2' }, { name: 'p:3' }], list_complete: true, cacheStatus: null });
    assert.ok(out.allNames.includes('q') && out.complete);
  });

  test('the host checks what a hostile sandbox could send: types, methods, sizes, and only the namespace the spec names', async () => {
    const account = (await store.findAccount('acme'))!.id;
    const ns = (await store.kv.listNamespaces(account))[0]!.id;
    const theirs = await store.kv.createNamespace((await store.createAccount('rival')).id, 'theirs');
    await store.kv.put(theirs.id, 'secret', { value: new TextEncoder().encode('theirs') }, { now: Math.floor(Date.now() / 1000) });
    const call = (method: string, args: unknown[], bytes?: Uint8Array, namespaceId = ns) =>
      answerKvCall(store.kv, { name: 'KV', namespaceId, owner: account, method, args: args as never, bytes });
    const refused = async (promise: Promise<unknown>, name: string, message: RegExp) =>
      assert.rejects(promise, (error: unknown) => error instanceof BindingError && error.name === name && message.test(error.message));
    await refused(call('constructor', []), 'TypeError', /has no method 'constructor'/);
    await refused(call('__proto__', []), 'TypeError', /has no method/);
    await refused(call('get', [{ key: 'x' }]), 'TypeError', /key name must be a string/);
    await refused(call('get', [['x']]), 'TypeError', /key name must be a string/);
    await refused(call('getBulk', ['x']), 'TypeError', /bulk get takes an array of key names/);
    await refused(call('getBulk', [[1]]), 'TypeError', /bulk get takes an array of key names/);
    await refused(call('getBulk', [['x'], 'arrayBuffer']), 'Error', /^KV GET_BULK failed: 400 "arrayBuffer" is not a valid type/);
    await refused(call('put', ['k', ['not', 'options']], new Uint8Array(1)), 'TypeError', /options must be an object/);
    await refused(call('put', ['k', { metadata: { not: 'text' } }], new Uint8Array(1)), 'TypeError', /Metadata must be JSON text/);
    await refused(call('put', ['k', { expiration: 'soon' }], new Uint8Array(1)), 'Error', /^KV PUT failed: 400 Invalid expiration of soon/);
    await refused(call('put', ['k', {}], new Uint8Array(25 * 1024 * 1024 + 1)), 'Error', /^KV PUT failed: 413 Value length of 26214401/);
    await refused(call('list', ['options']), 'TypeError', /options must be an object/);
    await refused(call('list', [{ limit: 'all' }]), 'Error', /^KV GET failed: 400 Invalid key_count_limit of all/);
    // The spec's namespace is the control process's, but were it another account's, the store says it does not exist.
    await refused(call('get', ['secret'], undefined, theirs.id), 'Error', /^KV GET failed: 404 The KV namespace '[0-9a-f]{32}' bound as KV does not exist/);
    await refused(call('put', ['secret', {}], new Uint8Array(1), theirs.id), 'Error', /404/);
    assert.equal(new TextDecoder().decode((await store.kv.get(theirs.id, 'secret', { now: 0 }))!.value), 'theirs');
  });

  test('get() and getWithMetadata() of an array of keys: a Map, as bulk reads on Cloudflare, with its limits and words', async () => {
    const out = await run('/bulk');
    assert.deepEqual(out.text, [['b:text', 'héllo'], ['b:missing', null], ['b:json', '{"a":[1,2]}']]);
    assert.deepEqual(out.typed, [['b:json', { a: [1, 2] }]]);
    assert.deepEqual(out.options, [['b:json', { a: [1, 2] }]]);
    assert.deepEqual(out.meta, [['b:text', { value: 'héllo', metadata: { n: 1 } }], ['b:missing', null], ['b:json', { value: '{"a":[1,2]}', metadata: null }]]);
    assert.equal(out.hundred, 100);
    assert.deepEqual(out.tooMany, { name: 'Error', message: 'KV GET_BULK failed: 400 You can request a maximum of 100 keys' });
    assert.deepEqual(out.none, { name: 'Error', message: 'KV GET_BULK failed: 400 You must request a minimum of 1 key' });
    assert.deepEqual(out.emptyKey, { name: 'Error', message: 'KV GET_BULK failed: 400 Key name  is not legal' });
    assert.deepEqual(out.longKey, { name: 'Error', message: 'KV GET_BULK failed: 414 Encoded length of 513 is too long' });
    assert.deepEqual(out.notJson, { name: 'Error', message: 'KV GET_BULK failed: 400 At least one of the requested keys corresponds to a non-json value' });
    assert.deepEqual(out.stream, { name: 'Error', message: 'KV GET_BULK failed: 400 "stream" is not a valid type. Use "json" or "text"' });
    assert.deepEqual(out.cacheTtl, { name: 'Error', message: 'KV GET_BULK failed: 400 Invalid cache_ttl of 10. Cache TTL must be at least 30.' });
  });

  test("integer options as workerd converts them: what is not a number is 0, fractions are cut, past int32 a TypeError", async () => {
    const out = await run('/integers');
    // limit 0 is no limit (workerd sends none).
    assert.deepEqual(out.limitText, { ok: 1 });
    assert.deepEqual(out.limitFraction, { ok: 1 });
    assert.deepEqual(out.limitHuge, { name: 'TypeError', message: 'Value out of range. Must be between -2147483648 and 2147483647 (inclusive).' });
    assert.deepEqual(out.ttlText, { name: 'Error', message: 'KV PUT failed: 400 Invalid expiration_ttl of 0. Please specify integer greater than 0.' });
    assert.deepEqual(out.cacheTtlText, { name: 'Error', message: 'KV GET failed: 400 Invalid cache_ttl of 0. Cache TTL must be at least 30.' });
  });

  test("argument errors as workerd gives them: TypeErrors for keys, the service's words for limits", async () => {
    const out = await run('/errors');
    assert.deepEqual(out.empty, { name: 'TypeError', message: 'Key name cannot be empty.' });
    assert.deepEqual(out.dot, { name: 'TypeError', message: '"." is not allowed as a key name.' });
    assert.deepEqual(out.dotdot, { name: 'TypeError', message: '".." is not allowed as a key name.' });
    assert.deepEqual(out.longKey, { name: 'Error', message: 'KV GET failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512.' });
    assert.deepEqual(out.longPut, { name: 'Error', message: 'KV PUT failed: 414 UTF-8 encoded length of 600 exceeds key length limit of 512.' });
    assert.deepEqual(out.ttl, { name: 'Error', message: 'KV PUT failed: 400 Invalid expiration_ttl of 30. Expiration TTL must be at least 60.' });
    assert.deepEqual(out.ttlZero, { name: 'Error', message: 'KV PUT failed: 400 Invalid expiration_ttl of -1. Please specify integer greater than 0.' });
    assert.match(out.expiration.message, /^KV PUT failed: 400 Invalid expiration of \d+\. Expiration times must be at least 60 seconds in the future\.$/);
    assert.match(out.past.message, /^KV PUT failed: 400 Invalid expiration of 1000\. Please specify integer greater than the current number of seconds since the UNIX epoch\.$/);
    assert.deepEqual(out.metadata, { name: 'Error', message: 'KV PUT failed: 413 Metadata length of 1102 exceeds limit of 1024.' });
    assert.equal(out.cycle.name, 'TypeError');
    assert.deepEqual(out.type, { name: 'TypeError', message: 'Unknown response type. Possible types are "text", "arrayBuffer", "json", and "stream".' });
    assert.deepEqual(out.cacheTtl, { name: 'Error', message: 'KV GET failed: 400 Invalid cache_ttl of 5. Cache TTL must be at least 30.' });
    assert.deepEqual(out.limit, { name: 'Error', message: 'KV GET failed: 400 Invalid key_count_limit of 1001. Please specify an integer less than 1000.' });
    assert.match(out.cursor.message, /^KV GET failed: 400 Invalid cursor/);
    assert.match(out.prefix.message, /^KV GET failed: 414 UTF-8 encoded length of 513/);
  });
});
