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

/** CPU the process's other threads (the isolates') used, in ms. */
function otherThreadsCpuMs(): number {
  const all = process.cpuUsage();
  const own = process.threadCpuUsage();
  return (all.user + all.system - own.user - own.system) / 1000;
}

test('a request the native watchdog stopped is charged what its limit line says, at least the limit', async () => {
  const before = served.logs.length;
  const start = otherThreadsCpuMs();
  const answer = served.runtime.fetch('cpu', { method: 'GET', url: 'http://cpu.localhost/cpu', headers: [] });
  const live = (served.runtime as unknown as { live: Map<{ name: string; isolate: { isDisposed: boolean } }, unknown> }).live;
  const deadline = Date.now() + 20_000;
  let isolate: { isDisposed: boolean } | undefined;
  while ((isolate === undefined || otherThreadsCpuMs() - start < 2) && Date.now() < deadline) {
    await new Promise((resolve) => setImmediate(resolve));
    isolate ??= [...live.keys()].find((candidate) => candidate.name === 'cpu' && !candidate.isolate.isDisposed)?.isolate;
  }
  assert.ok(isolate, 'the worker has an isolate');
  // The loop spins on the isolate's thread: hold this thread, and with it the event loop's
  // watchdog, until the native watchdog has disposed of the isolate. The event loop charged
  // the request a few ms at most; the native watchdog stopped it past its whole limit.
  while (!isolate.isDisposed && Date.now() < deadline) {}
  assert.ok(isolate.isDisposed, 'the native watchdog stops the isolate');
  assert.equal((await answer).status, 503);
  const request = await served.waitForLog((entry) => entry.type === 'request' && entry.worker === 'cpu' && served.logs.indexOf(entry) >= before);
  const limit = served.logs.slice(before).find((entry) => entry.type === 'limit')!;
  assert.equal(limit.limit, 'cpu');
  assert.ok((limit.usedMs as number) >= 50, `usedMs ${limit.usedMs}`);
  assert.ok((request.cpuMs as number) >= (limit.usedMs as number) - 0.001, `the request line says ${request.cpuMs} ms, the limit line ${limit.usedMs} ms`);
});
