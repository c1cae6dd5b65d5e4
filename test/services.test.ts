// Service bindings in the library Runtime: env.OTHER.fetch() and RPC to the default export or a
// named WorkerEntrypoint, `cloudflare:workers`, errors crossing, the depth and cycle rules, the
// account rule, and each side's CPU charged to itself.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../src/runtime/runtime.ts';
import type { RuntimeResponse, WorkerDefinition, WorkerLogEntry } from '../src/runtime/types.ts';
import { WorkerLoadError } from '../src/runtime/types.ts';

const logs: WorkerLogEntry[] = [];
const runtime = new Runtime({ log: (entry) => logs.push(entry) });
after(() => runtime.close());

function mod(source: string, extra: Partial<WorkerDefinition> = {}): WorkerDefinition {
  return { modules: [{ name: 'index.js', source }], ...extra };
}

async function text(response: RuntimeResponse): Promise<string> {
  const body = response.body;
  if (body === null) return '';
  if (body instanceof Uint8Array) return Buffer.from(body).toString();
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks).toString();
}

async function get(name: string, path = '/'): Promise<{ status: number; body: string }> {
  const response = await runtime.fetch(name, { method: 'GET', url: `https://${name}.example${path}`, headers: [] });
  return { status: response.status, body: await text(response) };
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
