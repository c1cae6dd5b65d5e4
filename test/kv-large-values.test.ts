// KV values at Cloudflare's limit (25 MiB) under the default limits (50 ms of CPU, 128 MB): a
// put of the request's own body, of an ArrayBuffer and of a view, then a get that gives the same
// bytes back, in the library Runtime and on `isolet serve` over HTTP with runtime processes. The
// bytes cross the isolate wall at the platform's cost: a request body the worker passes on unread
// is read by the host and never enters the isolate, and a buffer is copied out by an entry that
// runs no tenant code (src/sandbox/outgoing-payloads.ts). When either was the worker's CPU, such a
// put cost ~100-300 ms and ended in 503. Memory stays bounded: bodies are made and hashed a
// chunk at a time.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../src/runtime/runtime.ts';
import { DEFAULT_LIMITS, type RuntimeResponse, type WorkerLogEntry } from '../src/runtime/types.ts';
import { SqliteStore } from '../src/store/sqlite-store.ts';
import { answerKvCall } from '../src/bindings/kv/kv-calls.ts';
import { startTestServer, moduleDeployment, type TestServer, type TestAccount } from './server-support.ts';

const MIB = 1024 * 1024;
const LIMIT = 25 * MIB;

const WORKER = `export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const key = url.searchParams.get('k');
    const attempt = async (f) => { try { await f(); return new Response('stored'); } catch (e) { return new Response(e.name + ': ' + e.message, { status: 400 }); } };
    switch (url.pathname) {
      case '/body': return attempt(() => env.KV.put(key, request.body));
      case '/buffer': return attempt(async () => env.KV.put(key, await request.arrayBuffer()));
      case '/view': return attempt(async () => env.KV.put(key, new DataView(await request.arrayBuffer(), 3)));
      case '/chunks': return attempt(() => env.KV.put(key, request.body.pipeThrough(new TransformStream())));
      case '/text': return attempt(async () => env.KV.put(key, await request.text()));
      case '/detached': return attempt(async () => {
        const buffer = await request.arrayBuffer();
        const put = env.KV.put(key, buffer);
        structuredClone(buffer, { transfer: [buffer] });
        await put;
      });
      case '/get': {
        const value = await env.KV.get(key, 'stream');
        return value === null ? new Response('none', { status: 404 }) : new Response(value);
      }
    }
    return new Response('no such path', { status: 404 });
  },
};`;

/** `size` bytes made a 64 KiB chunk at a time (each numbered, so that no two are alike), and their SHA-256. */
function payload(size: number, ascii = false): { chunks: () => Generator<Uint8Array>; sha256: string; skip(n: number): string } {
  const block = ascii ? Buffer.alloc(64 * 1024, 'isolet kv ') : randomBytes(64 * 1024);
  function* chunks(): Generator<Uint8Array> {
    for (let at = 0, n = 0; at < size; at += block.length, n++) {
      const chunk = Buffer.from(block.subarray(0, Math.min(block.length, size - at)));
      chunk.write(String(n).padStart(8, '0'), 0, 'latin1');
      yield chunk;
    }
  }
  const sha256 = (skipBytes: number): string => {
    const hash = createHash('sha256');
    let skipped = 0;
    for (const chunk of chunks()) {
      const drop = Math.min(chunk.byteLength, skipBytes - skipped);
      skipped += drop;
      hash.update(chunk.subarray(drop));
    }
    return hash.digest('hex');
  };
  return { chunks, sha256: sha256(0), skip: sha256 };
}

async function hashOf(body: RuntimeResponse['body']): Promise<string> {
  const hash = createHash('sha256');
  if (body instanceof Uint8Array || typeof body === 'string') hash.update(body);
  else if (body !== null) for await (const chunk of body) hash.update(chunk);
  return hash.digest('hex');
}

describe('25 MiB KV values in the library Runtime, under the default limits', { timeout: 240_000 }, () => {
  let dir: string;
  let store: SqliteStore;
  let runtime: Runtime;
  let namespaceId: string;
  let account: string;
  const logs: WorkerLogEntry[] = [];
  let workers = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'isolet-kv-large-'));
    store = new SqliteStore({ dataDir: dir, secretsKey: randomBytes(32) });
    account = (await store.createAccount('acme')).id;
    namespaceId = (await store.kv.createNamespace(account, 'big')).id;
    // No limits given: DEFAULT_LIMITS, 50 ms and 128 MB.
    runtime = new Runtime({
      log: (entry) => logs.push(entry),
      bindingHost: { call: (call) => answerKvCall(store.kv, { name: call.name, namespaceId, owner: account, method: call.method, args: call.args, bytes: call.bytes }) },
    });
    assert.equal(DEFAULT_LIMITS.cpuMs, 50);
    assert.equal(DEFAULT_LIMITS.memoryMb, 128);
  });

  after(async () => {
    await runtime?.close();
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A worker loaded for this case alone: its put is the first request of a new isolate. */
  async function fresh(): Promise<string> {
    const name = `big${workers++}`;
    await runtime.load(name, { modules: [{ name: 'w.js', source: WORKER }], account, bindings: { KV: { type: 'kv', namespaceId } } });
    return name;
  }

  async function put(name: string, path: string, data: ReturnType<typeof payload>, size: number, declare = true): Promise<{ status: number; text: string; cpuMs: number }> {
    const response = await runtime.fetch(name, {
      method: 'PUT',
      url: `https://kv.example${path}`,
      headers: declare ? [['content-length', String(size)]] : [],
      body: (async function* () { yield* data.chunks(); })(),
    });
    const text = Buffer.from(response.body as Uint8Array).toString();
    const line = logs.findLast((entry) => entry.worker === name && entry.type === 'request');
    return { status: response.status, text, cpuMs: (line as { cpuMs?: number } | undefined)?.cpuMs ?? NaN };
  }

  async function got(name: string, key: string): Promise<string> {
    const response = await runtime.fetch(name, { method: 'GET', url: `https://kv.example/get?k=${key}`, headers: [] });
    assert.equal(response.status, 200);
    try {
      return await hashOf(response.body);
    } catch (error) {
      // Which limit ended it, if one did, is in the worker's log.
      const lines = logs.filter((entry) => entry.worker === name).slice(-3).map((entry) => JSON.stringify(entry));
      throw new Error(`${(error as Error).message}; the worker's last log lines: ${lines.join(' | ')}`);
    }
  }

  test('request.body, an ArrayBuffer, a view and text of 25 MiB are stored and read back whole, each within 50 ms of CPU', async () => {
    const data = payload(LIMIT);
    for (const path of ['/body', '/buffer', '/view']) {
      const name = await fresh();
      const key = path.slice(1);
      const stored = await put(name, `${path}?k=${key}`, data, LIMIT);
      assert.equal(stored.status, 200, `${path}: ${stored.text}`);
      assert.ok(stored.cpuMs < DEFAULT_LIMITS.cpuMs, `${path} used ${stored.cpuMs} ms`);
      // The DataView starts 3 bytes in.
      assert.equal(await got(name, key), path === '/view' ? data.skip(3) : data.sha256, path);
    }
    const text = payload(LIMIT, true);
    const name = await fresh();
    assert.equal((await put(name, '/text?k=text', text, LIMIT)).status, 200);
    assert.equal(await got(name, 'text'), text.sha256);
  });

  test("a stream's chunks of 2 MiB in all, joined by the platform; past the limit, Cloudflare's error, before or after reading", async () => {
    const name = await fresh();
    const data = payload(2 * MIB + 5);
    assert.equal((await put(name, '/chunks?k=chunks', data, 2 * MIB + 5)).status, 200);
    assert.equal(await got(name, 'chunks'), data.sha256);
    const over = payload(LIMIT + 1);
    // Said by its Content-Length: refused before it is read.
    const declared = await put(name, '/body?k=over', over, LIMIT + 1);
    assert.equal(declared.text, `Error: KV PUT failed: 413 Value length of ${LIMIT + 1} exceeds limit of ${LIMIT}.`);
    // Sent without one: the host reads it and the service refuses it.
    const undeclared = await put(name, '/body?k=over', over, LIMIT + 1, false);
    assert.equal(undeclared.text, `Error: KV PUT failed: 413 Value length of ${LIMIT + 1} exceeds limit of ${LIMIT}.`);
  });

  test('a buffer taken away before the platform copied it is an error, not a shorter value', async () => {
    const name = await fresh();
    const stored = await put(name, '/detached?k=gone', payload(MIB), MIB);
    assert.equal(stored.status, 400);
    assert.match(stored.text, /^TypeError: env\.KV\.put\(\): its value was detached or resized before it was sent/);
    const missing = await runtime.fetch(name, { method: 'GET', url: 'https://kv.example/get?k=gone', headers: [] });
    assert.equal(missing.status, 404);
  });
});

describe('25 MiB KV values on isolet serve, over HTTP, in runtime processes, under the default limits', { timeout: 240_000 }, () => {
  let t: TestServer;
  let acme: TestAccount;

  before(async () => {
    t = await startTestServer({ processes: 2, limits: { ...DEFAULT_LIMITS }, quotas: {} });
    acme = await t.account('acme');
    const ns = await t.api('POST', '/v1/kv/namespaces', { token: acme.token, body: { title: 'big' } });
    assert.equal(ns.status, 201, ns.text);
    const deployed = await t.api('PUT', '/v1/workers/big', {
      token: acme.token,
      body: moduleDeployment(WORKER, { bindings: { KV: { type: 'kv', namespaceId: ns.body.id } } }),
    });
    assert.equal(deployed.status, 201, deployed.text);
  });

  after(() => t?.close());

  /** A request to the worker with `data` as its body, streamed; the answer's status and text. */
  function send(path: string, data: ReturnType<typeof payload>, size: number): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const request = httpRequest({
        host: '127.0.0.1', port: t.server.port, method: 'PUT', path,
        headers: { host: `big.localhost:${t.server.port}`, 'content-length': String(size) },
      }, (response) => {
        let text = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, text }));
        response.on('error', reject);
      });
      request.on('error', reject);
      const chunks = data.chunks();
      const write = (): void => {
        for (;;) {
          const next = chunks.next();
          if (next.done) return void request.end();
          if (!request.write(next.value)) return void request.once('drain', write);
        }
      };
      write();
    });
  }

  /** The hash of what a GET of `path` answers, read as it streams. */
  function hashed(path: string): Promise<{ status: number; sha256: string }> {
    return new Promise((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port: t.server.port, path, headers: { host: `big.localhost:${t.server.port}` } }, (response) => {
        const hash = createHash('sha256');
        response.on('data', (chunk: Buffer) => hash.update(chunk));
        response.on('end', () => resolve({ status: response.statusCode!, sha256: hash.digest('hex') }));
        response.on('error', reject);
      }).on('error', reject).end();
    });
  }

  test('request.body and an ArrayBuffer of 25 MiB are stored and read back whole', async () => {
    const data = payload(LIMIT);
    for (const path of ['/body', '/buffer']) {
      const key = path.slice(1);
      const stored = await send(`${path}?k=${key}`, data, LIMIT);
      assert.equal(stored.status, 200, `${path}: ${stored.text}`);
      const read = await hashed(`/get?k=${key}`);
      assert.equal(read.status, 200);
      assert.equal(read.sha256, data.sha256, path);
    }
    // Each request's log line, with the CPU it was charged, comes from its runtime process.
    const requests = () => t.logs.filter((line) => line.type === 'request' && line.worker === 'big');
    while (requests().length < 4) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const line of requests()) assert.ok((line.cpuMs as number) < DEFAULT_LIMITS.cpuMs, JSON.stringify(line));
  });
});
