// The HTTP front against a fake runtime (same shape as Runtime.fetch), then end to end with the
// real Runtime. Every wait is on an event, never on a timer.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, Agent, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createHttpFront, type FrontLogEntry, type RuntimeFetcher } from '../src/http/front.ts';
import type { RuntimeRequest, RuntimeResponse } from '../src/runtime/types.ts';
import { reasonPhrase } from '../src/api/response/reason-phrases.ts';

type Handler = (name: string, request: RuntimeRequest) => Promise<RuntimeResponse>;

/** Records calls and answers with whatever the current test sets as `handler`. */
class FakeRuntime implements RuntimeFetcher {
  calls: { name: string; request: RuntimeRequest }[] = [];
  handler: Handler = async () => text(200, 'ok');
  fetch(name: string, request: RuntimeRequest): Promise<RuntimeResponse> {
    this.calls.push({ name, request });
    return this.handler(name, request);
  }
}

// As the runtime answers: with workerd's reason phrase when the worker gave no statusText.
function text(status: number, body: string, headers: [string, string][] = []): RuntimeResponse {
  return { status, statusText: reasonPhrase(status), headers: [['content-type', 'text/plain'], ...headers], body: new TextEncoder().encode(body) };
}

async function readAll(body: RuntimeRequest['body']): Promise<string> {
  if (body == null) return '';
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return Buffer.from(body).toString();
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks).toString();
}

/** Sends raw bytes, returns everything the server sent before closing. */
async function raw(port: number, bytes: string | Buffer): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  socket.write(bytes);
  socket.setEncoding('latin1');
  let data = '';
  socket.on('data', (chunk: string) => (data += chunk));
  await once(socket, 'close');
  return data;
}

interface Result {
  status: number;
  statusMessage: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  body: string;
  reused: boolean;
}

function get(port: number, path: string, init: { method?: string; headers?: Record<string, string>; body?: string; agent?: Agent } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: init.method ?? 'GET', headers: init.headers, agent: init.agent },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            statusMessage: res.statusMessage!,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body,
            reused: req.reusedSocket,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

describe('HTTP front (fake runtime)', () => {
  const runtime = new FakeRuntime();
  const logs: FrontLogEntry[] = [];
  let route: string | undefined = 'tenant';
  const server = createHttpFront(runtime, { worker: () => route, log: (entry) => logs.push(entry) });
  let port = 0;

  before(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });

  function reset(): void {
    runtime.calls = [];
    runtime.handler = async () => text(200, 'ok');
    logs.length = 0;
    route = 'tenant';
  }

  test('maps the request head: method, absolute URL from Host, header pairs in arrival order', async () => {
    reset();
    const res = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.end(
        'GET /a/b?c=1&d HTTP/1.1\r\nHost: example.com:8080\r\nX-Two: 1\r\nAccept: */*\r\nx-two: 2\r\nConnection: close\r\n\r\n',
      );
      let data = '';
      socket.on('data', (chunk) => (data += chunk));
      socket.on('close', () => resolve(data));
    });
    assert.match(res, /^HTTP\/1\.1 200 OK\r\n/);
    assert.equal(runtime.calls.length, 1);
    const { name, request } = runtime.calls[0]!;
    assert.equal(name, 'tenant');
    assert.equal(request.method, 'GET');
    assert.equal(request.url, 'http://example.com:8080/a/b?c=1&d');
    assert.deepEqual([...request.headers], [
      ['Host', 'example.com:8080'],
      ['X-Two', '1'],
      ['Accept', '*/*'],
      ['x-two', '2'],
      ['Connection', 'close'],
    ]);
    assert.equal(request.body, null);
    assert.ok(request.signal instanceof AbortSignal);
  });

  test('streams a POST body to the runtime, which pulls it', async () => {
    reset();
    runtime.handler = async (_name, request) => text(200, `got ${await readAll(request.body)}`);
    const res = await get(port, '/upload', { method: 'POST', body: 'hello body' });
    assert.equal(res.status, 200);
    assert.equal(res.body, 'got hello body');
    const body = runtime.calls[0]!.request.body;
    assert.ok(body !== null && typeof body === 'object' && Symbol.asyncIterator in body, 'body is the request stream');
  });

  test('a POST with Content-Length: 0 has an empty body, one without any length none', async () => {
    // As in workerd: a declared length, 0 included, makes a body (empty); no length, no body.
    reset();
    runtime.handler = async (_name, request) => text(200, request.body === null ? 'null' : `body:${await readAll(request.body)}`);
    const res = await get(port, '/', { method: 'POST', headers: { 'content-length': '0' } });
    assert.equal(res.body, 'body:');
    const none = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      socket.end('POST / HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n');
      let data = '';
      socket.on('data', (chunk) => (data += chunk));
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
    });
    assert.match(none, /\r\n\r\nnull$/);
  });

  test('writes status, statusText, repeated set-cookie and a whole body with its length', async () => {
    reset();
    runtime.handler = async () => ({
      status: 201,
      statusText: 'Made It',
      headers: [
        ['set-cookie', 'a=1'],
        ['x-custom', 'yes'],
        ['set-cookie', 'b=2'],
        ['content-length', '999'], // wrong on purpose: the front frames whole bodies itself
        ['transfer-encoding', 'chunked'],
        ['connection', 'upgrade'],
      ],
      body: new TextEncoder().encode('created'),
    });
    const res = await get(port, '/');
    assert.equal(res.status, 201);
    assert.equal(res.statusMessage, 'Made It');
    assert.deepEqual(res.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(res.headers['x-custom'], 'yes');
    assert.equal(res.headers['content-length'], '7');
    assert.equal(res.headers['transfer-encoding'], undefined);
    assert.equal(res.body, 'created');
  });

  test('the statusText goes on the wire as the runtime gives it, an empty one empty', async () => {
    // The sandbox fills in workerd's reason phrase when a worker gives no statusText; one given
    // as '' stays empty, as in workerd (the front adds nothing).
    reset();
    runtime.handler = async () => ({ ...text(418, 'teapot'), statusText: '' });
    const res = await get(port, '/');
    assert.equal(res.status, 418);
    assert.equal(res.statusMessage, '');
    runtime.handler = async () => text(418, 'teapot');
    assert.equal((await get(port, '/')).statusMessage, "I'm a teapot");
  });

  test('a null body ends the response with content-length 0', async () => {
    reset();
    runtime.handler = async () => ({ status: 200, statusText: '', headers: [], body: null });
    const res = await get(port, '/');
    assert.equal(res.headers['content-length'], '0');
    assert.equal(res.body, '');
  });

  test('streams an AsyncIterable body in order, many megabytes, through backpressure', async () => {
    reset();
    const chunk = new Uint8Array(64 * 1024);
    const chunks = 128; // 8 MB: far past any socket buffer, so 'drain' must be awaited
    runtime.handler = async () => ({
      status: 200,
      statusText: '',
      headers: [['content-type', 'application/octet-stream']],
      body: (async function* () {
        for (let i = 0; i < chunks; i++) {
          chunk.fill(i & 0xff);
          yield chunk.slice();
        }
      })(),
    });
    const received = await new Promise<Buffer>((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port, path: '/big' }, (res) => {
        assert.equal(res.headers['transfer-encoding'], 'chunked');
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => resolve(Buffer.concat(parts)));
        res.on('error', reject);
      })
        .on('error', reject)
        .end();
    });
    assert.equal(received.length, chunk.length * chunks);
    for (let i = 0; i < chunks; i++) assert.equal(received[i * chunk.length], i & 0xff);
  });

  test('a streamed body keeps the worker declared content-length', async () => {
    reset();
    runtime.handler = async () => ({
      status: 200,
      statusText: '',
      headers: [['content-length', '6']],
      body: (async function* () {
        yield new TextEncoder().encode('abc');
        yield new TextEncoder().encode('def');
      })(),
    });
    const res = await get(port, '/');
    assert.equal(res.headers['content-length'], '6');
    assert.equal(res.body, 'abcdef');
  });

  test('HEAD gets the head only', async () => {
    reset();
    runtime.handler = async () => text(200, 'hello');
    const res = await get(port, '/', { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], '5');
    assert.equal(res.body, '');
  });

  test('keep-alive: a second request reuses the connection', async () => {
    reset();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await get(port, '/one', { agent });
      const second = await get(port, '/two', { agent });
      assert.equal(first.body, 'ok');
      assert.equal(second.body, 'ok');
      assert.equal(second.reused, true);
    } finally {
      agent.destroy();
    }
  });

  test('no route: 404 that says so, runtime not called', async () => {
    reset();
    route = undefined;
    const res = await get(port, '/');
    assert.equal(res.status, 404);
    assert.match(res.body, /no worker/);
    assert.equal(runtime.calls.length, 0);
  });

  test('runtime rejection: 500, logged as structured JSON', async () => {
    reset();
    runtime.handler = async () => {
      throw new Error('runtime bug');
    };
    const res = await get(port, '/boom');
    assert.equal(res.status, 500);
    assert.equal(logs.length, 1);
    const entry = logs[0]!;
    assert.equal(entry.level, 'error');
    assert.equal(entry.type, 'http');
    assert.equal(entry.worker, 'tenant');
    assert.equal(entry.method, 'GET');
    assert.match(entry.url!, /\/boom$/);
    assert.match(entry.error!, /runtime bug/);
    assert.doesNotThrow(() => JSON.parse(JSON.stringify(entry)));
  });

  test('a worker gone between routing and fetch (ERR_UNKNOWN_WORKER) is a 404', async () => {
    reset();
    runtime.handler = async () => {
      throw Object.assign(new Error('no worker named tenant'), { code: 'ERR_UNKNOWN_WORKER' });
    };
    const res = await get(port, '/');
    assert.equal(res.status, 404);
    assert.equal(logs.length, 0);
  });

  test('an invalid response head from the runtime is a 500, not a crash', async () => {
    reset();
    runtime.handler = async () => ({ status: 200, statusText: '', headers: [['x-bad', 'a\r\nb']], body: null });
    const res = await get(port, '/');
    assert.equal(res.status, 500);
    assert.equal(logs.length, 1);
  });

  test('an error in the middle of a streamed body cuts the connection', async () => {
    reset();
    runtime.handler = async () => ({
      status: 200,
      statusText: '',
      headers: [],
      body: (async function* () {
        yield new TextEncoder().encode('partial');
        throw new Error('stream broke');
      })(),
    });
    const outcome = await new Promise<string>((resolve) => {
      httpRequest({ host: '127.0.0.1', port, path: '/' }, (res) => {
        res.resume();
        res.on('end', () => resolve('clean end'));
        res.on('error', () => resolve('error'));
        res.on('aborted', () => resolve('error'));
      })
        .on('error', () => resolve('error'))
        .end();
    });
    assert.equal(outcome, 'error');
    assert.equal(logs.length, 1);
  });

  test('client disconnect before the response aborts request.signal', async () => {
    reset();
    let called!: () => void;
    const calledPromise = new Promise<void>((resolve) => (called = resolve));
    let aborted!: () => void;
    const abortedPromise = new Promise<void>((resolve) => (aborted = resolve));
    runtime.handler = (_name, request) => {
      request.signal!.addEventListener('abort', () => aborted());
      called();
      return new Promise(() => {}); // a worker that never answers
    };
    const socket = connect(port, '127.0.0.1');
    socket.write('GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await calledPromise;
    assert.equal(runtime.calls[0]!.request.signal!.aborted, false);
    socket.destroy();
    await abortedPromise;
    assert.equal(runtime.calls[0]!.request.signal!.aborted, true);
  });

  test('a finished response does not abort the signal', async () => {
    reset();
    await get(port, '/');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(runtime.calls[0]!.request.signal!.aborted, false);
  });

  for (const [what, bytes, status] of [
    ['a bad request line', 'NOT AN HTTP REQUEST\r\n\r\n', 400],
    ['an invalid header name', 'GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n', 400],
    ['a control character in a header value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n', 400],
    ['a space in the URL', 'GET /a b HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['non-ASCII bytes in the URL', Buffer.from('GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1'), 400],
    ['no Host in HTTP/1.1', 'GET / HTTP/1.1\r\n\r\n', 400],
    ['a bad Host', 'GET / HTTP/1.1\r\nHost: a b/c\r\nConnection: close\r\n\r\n', 400],
    ['an empty Host', 'GET / HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n', 400],
    ['two Hosts', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n', 400],
    ['an asterisk target', 'OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 400],
    ['an absurdly long URL', `GET /${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431],
    ['headers past the limit', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`, 431],
  ] as const) {
    test(`malformed request: ${what} -> ${status}, runtime never called`, async () => {
      reset();
      const response = await raw(port, bytes);
      assert.match(response, new RegExp(`^HTTP/1\\.1 ${status} `));
      assert.match(response, /content-type: text\/plain/i);
      assert.equal(runtime.calls.length, 0);
    });
  }

  test('HTTP/1.0 without Host gets the address it connected to', async () => {
    reset();
    const response = await raw(port, 'GET /old HTTP/1.0\r\n\r\n');
    assert.match(response, /^HTTP\/1\.1 200 /);
    assert.equal(runtime.calls[0]!.request.url, `http://127.0.0.1:${port}/old`);
  });

  test('absolute-form target: path from it, authority from Host', async () => {
    reset();
    const response = await raw(port, 'GET http://example.com/p?q=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n');
    assert.match(response, /^HTTP\/1\.1 200 /);
    assert.equal(runtime.calls[0]!.request.url, 'http://example.com/p?q=1');
  });

  test('the router gets the validated Host next to the request', async () => {
    reset();
    const hosts: string[] = [];
    const routed = createHttpFront(runtime, {
      worker: (_req, host) => {
        hosts.push(host);
        return 'tenant';
      },
    });
    routed.listen(0, '127.0.0.1');
    await once(routed, 'listening');
    try {
      await raw((routed.address() as AddressInfo).port, 'GET / HTTP/1.1\r\nHost: shop.example:81\r\nConnection: close\r\n\r\n');
      assert.deepEqual(hosts, ['shop.example:81']);
    } finally {
      routed.closeAllConnections();
      routed.close();
    }
  });

  test('a router that throws is a logged 500', async () => {
    reset();
    const throwing = createHttpFront(runtime, {
      worker: () => {
        throw new Error('router bug');
      },
      log: (entry) => logs.push(entry),
    });
    throwing.listen(0, '127.0.0.1');
    await once(throwing, 'listening');
    try {
      const res = await get((throwing.address() as AddressInfo).port, '/');
      assert.equal(res.status, 500);
      assert.match(logs[0]!.error!, /router bug/);
    } finally {
      throwing.closeAllConnections();
      throwing.close();
    }
  });
});

describe('HTTP front + Runtime (end to end)', () => {
  // Imported here, not at the top, so the fake-runtime tests above run even while the runtime
  // does not load.
  let runtime: import('../src/runtime/runtime.ts').Runtime;
  let server: ReturnType<typeof createHttpFront>;
  let base = '';

  const WORKER = `
    export default {
      async fetch(request) {
        const url = new URL(request.url);
        if (url.pathname === '/echo') {
          return new Response(request.body, { status: 201, statusText: 'Echoed' });
        }
        if (url.pathname === '/cookies') {
          const headers = new Headers();
          headers.append('set-cookie', 'a=1');
          headers.append('set-cookie', 'b=2');
          return new Response('cookies', { headers });
        }
        if (url.pathname === '/stream') {
          const encoder = new TextEncoder();
          let i = 0;
          return new Response(new ReadableStream({
            pull(controller) {
              if (i === 3) controller.close();
              else controller.enqueue(encoder.encode('chunk' + i++ + ';'));
            },
          }));
        }
        const seen = [];
        for (const [name, value] of request.headers) seen.push(name + '=' + value);
        return Response.json({ method: request.method, url: request.url, headers: seen });
      },
    };
  `;

  before(async () => {
    const { Runtime } = await import('../src/runtime/runtime.ts');
    runtime = new Runtime({ log: () => {} });
    await runtime.load('e2e', { modules: [{ name: 'worker.js', source: WORKER }], main: 'worker.js' });
    server = createHttpFront(runtime, { worker: () => 'e2e', log: () => {} });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server?.closeAllConnections();
    server?.close();
    await runtime?.close();
  });

  test('the worker sees the method, the absolute URL and the headers', async () => {
    const res = await get(Number(new URL(base).port), '/path?x=1', { headers: { 'X-Thing': 'yes' } });
    assert.equal(res.status, 200);
    const seen = JSON.parse(res.body) as { method: string; url: string; headers: string[] };
    assert.equal(seen.method, 'GET');
    assert.equal(seen.url, `${base}/path?x=1`);
    assert.ok(seen.headers.includes('x-thing=yes'));
  });

  test('a request body streams through the worker and back', async () => {
    const res = await get(Number(new URL(base).port), '/echo', { method: 'POST', body: 'round trip' });
    assert.equal(res.status, 201);
    assert.equal(res.statusMessage, 'Echoed');
    assert.equal(res.body, 'round trip');
  });

  test('several set-cookie headers arrive separately', async () => {
    const res = await get(Number(new URL(base).port), '/cookies');
    assert.deepEqual(res.headers['set-cookie'], ['a=1', 'b=2']);
  });

  test('a streamed response arrives whole', async () => {
    const res = await get(Number(new URL(base).port), '/stream');
    assert.equal(res.body, 'chunk0;chunk1;chunk2;');
  });

  test('an unknown worker name is a 404', async () => {
    const other = createHttpFront(runtime, { worker: () => 'not-loaded', log: () => {} });
    other.listen(0, '127.0.0.1');
    await once(other, 'listening');
    try {
      const res = await get((other.address() as AddressInfo).port, '/');
      assert.equal(res.status, 404);
    } finally {
      other.closeAllConnections();
      other.close();
    }
  });
});
