// Isolates start from a V8 snapshot of the runtime (isolated-vm warns that snapshots have
// crashed in some cases). This proves the snapshot path stable at the scale the server runs
// at: thousands of isolates created, used, evicted and disposed in one process, every answer right.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../src/runtime/runtime.ts';
import { runtimeImage } from '../src/runtime/runtime-image.ts';

const TENANTS = 2000;

function source(i: number): string {
  return `const me = ${i};
let hits = 0;
export default {
  async fetch(request, env) {
    hits++;
    const body = await request.text();
    return new Response(JSON.stringify({ me, hits, env: env.TENANT, body }), { headers: { 'x-tenant': String(me) } });
  },
};`;
}

test(`${TENANTS} tenants' isolates from the snapshot: created, used, evicted, all correct`, async () => {
  const image = await runtimeImage();
  assert.ok(image.snapshot.copy().byteLength > 0, 'a snapshot exists');
  // This test is about the snapshot, not the limits: a generous CPU limit keeps a first request
  // on a machine busy with the rest of the suite from counting as a runaway. Limit lines are
  // kept so that a failure says what happened.
  const limitLines: string[] = [];
  const runtime = new Runtime({
    maxIsolates: 300,
    limits: { cpuMs: 1000 },
    log: (entry) => {
      if (entry.type === 'limit' || entry.type === 'exception') limitLines.push(`${entry.worker}: ${entry.message}`);
    },
  });
  try {
    for (let i = 0; i < TENANTS; i++) {
      await runtime.load(`t${i}`, { modules: [{ name: 'main.js', source: source(i) }], vars: { TENANT: `tenant-${i}` } }, { validate: false });
    }
    // Two rounds: the second meets evicted isolates and starts them again.
    for (let round = 1; round <= 2; round++) {
      for (let i = 0; i < TENANTS; i += 8) {
        const batch = [];
        for (let j = i; j < Math.min(i + 8, TENANTS); j++) {
          batch.push(
            runtime.fetch(`t${j}`, { method: 'POST', url: `http://t${j}.localhost/`, headers: [['host', `t${j}.localhost`]], body: `r${round}` }).then(async (response) => {
              assert.equal(response.status, 200, `tenant ${j} round ${round}: ${response.body ? Buffer.from(response.body as Uint8Array).toString() : ''} ${limitLines.join('; ')}`);
              const body = JSON.parse(Buffer.from(response.body as Uint8Array).toString());
              assert.deepEqual(body, { me: j, hits: 1, env: `tenant-${j}`, body: `r${round}` });
              assert.deepEqual(response.headers.find(([name]) => name === 'x-tenant'), ['x-tenant', String(j)]);
            }),
          );
        }
        await Promise.all(batch);
      }
      assert.ok(runtime.liveIsolates <= 300, `live isolates stay under the bound (${runtime.liveIsolates})`);
    }
  } finally {
    await runtime.close();
  }
});
