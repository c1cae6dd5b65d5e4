// Streaming keeps memory flat: 256 MB goes up to a worker, through a TransformStream in its
// isolate, and back down, while the test samples this process's RSS. Neither the host (the
// HTTP front and the runtime) nor the isolate may hold more than a few chunks at a time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { serve, moduleWorker, type Served } from './support/serve.ts';

const MB = 1024 * 1024;
const TOTAL = 256 * MB;
const CHUNK = 64 * 1024;

let served: Served;
before(async () => {
  served = await serve({
    // The pipeline's CPU is the tenant's: 256 MB of chunks through JavaScript takes more than the
    // default 50 ms, so this worker gets a larger CPU limit; memory stays at the default 128 MB.
    pipe: moduleWorker(`
export default {
  async fetch(request) {
    const { pathname } = new URL(request.url);
    if (pathname === '/direct') return new Response(request.body);
    let n = 0;
    const count = new TransformStream({ transform(chunk, c) { n += chunk.byteLength; c.enqueue(chunk); }, flush() { console.log('transformed ' + n); } });
    return new Response(request.body.pipeThrough(count));
  },
};`, { limits: { cpuMs: 60_000 } }),
  });
});
after(() => served.close());

/** Uploads TOTAL bytes (written only as the socket drains) and counts the echoed bytes. */
function streamThrough(path: string, onSample: () => void, total = TOTAL): Promise<{ status: number; received: number; mismatches: number }> {
  const url = new URL(served.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: url.hostname, port: url.port, path, method: 'POST', agent: false,
      headers: { host: `pipe.localhost:${url.port}`, 'content-type': 'application/octet-stream' },
    }, (res) => {
      let received = 0;
      let mismatches = 0;
      res.on('data', (chunk: Buffer) => {
        // The echo is the upload, in order: byte o is (o mod CHUNK) mod 251. Check a sample.
        for (let i = 0; i < chunk.length; i += 4099) if (chunk[i] !== ((received + i) % CHUNK) % 251) mismatches++;
        received += chunk.length;
        onSample();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, received, mismatches }));
      res.on('error', reject);
    });
    req.on('error', reject);
    const pattern = Buffer.alloc(CHUNK);
    for (let i = 0; i < CHUNK; i++) pattern[i] = i % 251;
    let sent = 0;
    const write = () => {
      while (sent < total) {
        const chunk = pattern;
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', write);
      }
      req.end();
    };
    write();
  });
}

// Bounds: the payload is 256 MB; plain node:http piping the same upload back (req.pipe(res))
// grows RSS by ~80 MB on its own (garbage chunks waiting for a GC), so the bounds leave that
// room. Through a TransformStream every chunk is copied into the isolate and out again.
const CASES = [
  ['/transform', 'through a TransformStream in the isolate', 96],
  ['/direct', 'as new Response(request.body), sent on by the host', 64],
] as const;

for (const [path, what, boundMb] of CASES) {
  test(`256 MB streams ${what} with RSS far below the payload`, async () => {
    // Warm up: the first megabytes grow the heaps and malloc arenas to their working size.
    await streamThrough(path, () => {}, 64 * MB);
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    let samples = 0;
    const sample = () => {
      if (++samples % 16 === 0) peak = Math.max(peak, process.memoryUsage().rss);
    };
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const started = performance.now();
    const result = await streamThrough(path, sample).finally(() => clearInterval(timer));
    const seconds = (performance.now() - started) / 1000;
    assert.equal(result.status, 200);
    assert.equal(result.received, TOTAL);
    assert.equal(result.mismatches, 0);
    const growth = (peak - baseline) / MB;
    console.log(`${path}: ${TOTAL / MB} MB in ${seconds.toFixed(1)} s, peak RSS growth ${growth.toFixed(1)} MB`);
    assert.ok(growth < boundMb, `peak RSS grew by ${growth.toFixed(1)} MB while streaming ${TOTAL / MB} MB`);
    // The isolate stayed within its limits (128 MB of memory by default) and was not replaced.
    assert.deepEqual(served.logs.filter((e) => e.type === 'limit' || e.type === 'exception'), []);
    if (path === '/transform') await served.waitForLog((e) => e.type === 'console' && e.message === 'transformed ' + TOTAL);
  });
}
