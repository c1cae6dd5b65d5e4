// Expensive WebCrypto work runs on isolet's own crypto threads (not libuv's pool, which DNS
// lookups share) and its CPU is charged to the request: a key generation over the request's CPU
// limit ends the request with the CPU-limit 503, while another worker keeps being served.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../src/runtime/runtime.ts';
import type { WorkerDefinition, WorkerLogEntry } from '../src/runtime/types.ts';
import { fetchText } from './support/fetch-text.ts';

function moduleWorker(source: string, cpuMs: number, account?: string): WorkerDefinition {
  return { modules: [{ name: 'main.js', source }], limits: { cpuMs }, ...(account ? { account } : {}) };
}

const cryptoWorker = `
export default {
  async fetch(request) {
    const { pathname, searchParams } = new URL(request.url);
    if (pathname === '/rsa') {
      const bits = Number(searchParams.get('bits'));
      const pair = await crypto.subtle.generateKey(
        { name: 'RSA-PSS', modulusLength: bits, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify']);
      const data = new Uint8Array([1, 2, 3]);
      const signature = await crypto.subtle.sign({ name: 'RSA-PSS', saltLength: 32 }, pair.privateKey, data);
      const ok = await crypto.subtle.verify({ name: 'RSA-PSS', saltLength: 32 }, pair.publicKey, signature, data);
      return Response.json({ ok, usages: [pair.publicKey.usages, pair.privateKey.usages], bits: pair.privateKey.algorithm.modulusLength });
    }
    if (pathname === '/too-big') {
      try {
        await crypto.subtle.generateKey({ name: 'RSA-PSS', modulusLength: 16384, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign']);
        return new Response('generated');
      } catch (error) { return new Response(error.name + ': ' + error.message); }
    }
    if (pathname === '/pbkdf2') {
      const key = await crypto.subtle.importKey('raw', new TextEncoder().encode('password'), 'PBKDF2', false, ['deriveBits']);
      const bits = await crypto.subtle.deriveBits({ name: 'PBKDF2', salt: new TextEncoder().encode('salt'), iterations: 1, hash: 'SHA-1' }, key, 160);
      return new Response([...new Uint8Array(bits)].map((b) => b.toString(16).padStart(2, '0')).join(''));
    }
    if (pathname === '/digest') {
      const digest = await crypto.subtle.digest('SHA-256', new Uint8Array(1024 * 1024));
      const md5 = await crypto.subtle.digest('MD5', new Uint8Array(1024 * 1024));
      const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
      return Response.json([hex(digest), hex(md5)]);
    }
    if (pathname === '/flood') {
      // More key generations than an account may queue.
      const jobs = [];
      for (let i = 0; i < 40; i++) {
        jobs.push(crypto.subtle.generateKey({ name: 'RSA-PSS', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign']).then(() => 'ok', (e) => e.name));
      }
      const results = await Promise.all(jobs);
      return Response.json({ ok: results.filter((r) => r === 'ok').length, refused: results.filter((r) => r === 'QuotaExceededError').length });
    }
    return new Response('still here');
  },
};`;

let runtime: Runtime;
const logs: WorkerLogEntry[] = [];

before(async () => {
  runtime = new Runtime({ log: (entry) => logs.push(entry), spareIsolates: 0 });
  // 5 ms of CPU: any 2048-bit RSA key generation (20 ms and more, measured) is over it.
  await runtime.load('stingy', moduleWorker(cryptoWorker, 5, 'attacker'));
  await runtime.load('generous', moduleWorker(cryptoWorker, 30_000, 'customer'));
  await runtime.load('flooder', moduleWorker(cryptoWorker, 30_000, 'flooder'));
});

after(async () => {
  await runtime.close();
});

const get = (worker: string, path: string) => fetchText(runtime, worker, path);

test('key generation CPU on the crypto threads is charged: over the CPU limit it is the CPU-limit 503', async () => {
  const { status, text } = await get('stingy', '/rsa?bits=2048');
  assert.equal(status, 503);
  assert.match(text, /exceeded CPU time limit/);
  const limit = logs.find((entry) => entry.worker === 'stingy' && entry.type === 'limit');
  assert.ok(limit, 'a limit log line');
  assert.ok((limit.usedMs as number) > 5);
  // Others are served meanwhile and after.
  assert.equal((await get('generous', '/')).text, 'still here');
});

test('the pooled operations give what WebCrypto gives', async () => {
  const rsa = await get('generous', '/rsa?bits=2048');
  assert.deepEqual(JSON.parse(rsa.text), { ok: true, usages: [['verify'], ['sign']], bits: 2048 });
  // RFC 6070's first PBKDF2-HMAC-SHA1 vector.
  assert.equal((await get('generous', '/pbkdf2')).text, '0c60c80f961f0e71f3a9b524af6012062fe037a6');
  const [sha256, md5] = JSON.parse((await get('generous', '/digest')).text);
  assert.equal(sha256, '30e14955ebf1352266dc2ff8067e68104607e750abb9d3b36582b8af909fcb58');
  assert.equal(md5, 'b6d81b360a5672d80c27430f39153e2c');
});

test('RSA moduli are bounded', async () => {
  assert.match((await get('generous', '/too-big')).text, /^OperationError: The modulus length must be at most 8192 bits/);
});

test('an account flooding the crypto threads does not hold up another account', async () => {
  const flood = get('flooder', '/flood');
  const neighbour = await get('generous', '/rsa?bits=1024');
  assert.equal(JSON.parse(neighbour.text).ok, true);
  // One isolate queues its own jobs (two at a time); the account's queue bound is for many isolates.
  const result = JSON.parse((await flood).text);
  assert.equal(result.ok + result.refused, 40);
});
