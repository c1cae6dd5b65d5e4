// What the worker's log says about a request stopped by a limit: the status the client got,
// and the usage that tripped the limit (never a made-up 0).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serve, moduleWorker, type Served } from './support/serve.ts';

let served: Served;

before(async () => {
  const source = `export default { async fetch(request) {
      const { pathname } = new URL(request.url);
      if (pathname === '/cpu') { while (true) {} }
      if (pathname === '/heap') { const keep = []; while (true) keep.push(new Array(100000).fill(1)); }
      if (pathname === '/buffer') { return new Response(String(new ArrayBuffer(1024 * 1024 * 1024).byteLength)); }
      return new Response('ok');
    } };`;
  served = await serve({
    cpu: moduleWorker(source),
    // Room in CPU for the memory to run out first (fresh memory costs CPU to touch).
    mem: moduleWorker(source, { limits: { memoryMb: 32, cpuMs: 5000 } }),
  }, { reduceIdleMemoryAfterMs: 0 });
});

after(async () => {
  await served.close();
});

async function stopped(worker: string, path: string): Promise<{ limit: Record<string, unknown>; request: Record<string, unknown> }> {
  const before = served.logs.length;
  const response = await served.fetch(worker, path);
  assert.equal(response.status, 503);
  await response.text();
  const request = await served.waitForLog((entry) => entry.type === 'request' && String(entry.url).endsWith(path) && served.logs.indexOf(entry) >= before);
  const limit = served.logs.slice(before).find((entry) => entry.type === 'limit');
  assert.ok(limit, 'a limit line');
  return { limit, request };
}

test('a request stopped for CPU is logged with the 503 its client got, and the CPU it used', async () => {
  const { limit, request } = await stopped('cpu', '/cpu');
  assert.equal(request.status, 503);
  assert.equal(limit.limit, 'cpu');
  assert.ok((limit.usedMs as number) >= 50, `usedMs ${limit.usedMs}`);
});

test('a request stopped for memory is logged with its 503, and no made-up usage', async () => {
  for (const path of ['/heap', '/buffer']) {
    const { limit, request } = await stopped('mem', path);
    assert.equal(request.status, 503, path);
    assert.equal(limit.limit, 'memory');
    assert.notEqual(limit.usedMb, 0, `${path}: usedMb is 0`);
    if (limit.usedMb !== undefined) assert.ok((limit.usedMb as number) > 32);
    assert.match(String(limit.message), /memory limit.*32 MB/);
  }
});
