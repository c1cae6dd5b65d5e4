// Every case of the differential suite: which worker, which request, which API area, whether
// `npm test` runs it (fast), and whether it waits for an API being built (pending).

import { join } from 'node:path';
import { bundleWorker } from '../../src/bundle/bundle.ts';
import { probeWorker, type Case, type ConformanceWorker, type ProbeRequest } from './harness.ts';

const ROOT = join(import.meta.dirname, '..', '..');

const json = (area: string, worker: string, path: string, extra: Partial<Case> = {}): Case => ({
  id: `${worker}${path}`,
  area,
  worker,
  request: { path },
  kind: 'json',
  fast: true,
  ...extra,
});

const http = (area: string, worker: string, name: string, request: ProbeRequest, extra: Partial<Case> = {}): Case => ({
  id: `${worker}/${name}`,
  area,
  worker,
  request,
  kind: 'http',
  fast: true,
  ...extra,
});

export const PROBE_WORKERS = [
  'headers', 'url', 'request', 'response', 'encoding', 'events', 'clone', 'crypto', 'timers', 'globals', 'errors', 'http',
  'streams', 'subtle', 'fetch', 'formdata',
] as const;

/** The framework apps, bundled by isolet's bundler (what `isolet dev` runs) for both runtimes. */
export const FRAMEWORK_APPS = { hono: 'hono-app.js', itty: 'itty-app.js' } as const;

export async function conformanceWorkers(): Promise<ConformanceWorker[]> {
  const workers = PROBE_WORKERS.map(probeWorker);
  for (const [name, file] of Object.entries(FRAMEWORK_APPS)) {
    const { worker } = await bundleWorker(`test/conformance/workers/frameworks/${file}`, { cwd: ROOT });
    if (!('modules' in worker)) throw new Error(`${file} bundled as a service-worker script`);
    workers.push({ name, modules: worker.modules });
  }
  return workers;
}

const ECHO_PORT_HEADER = 'X-Echo-Port';

/** Cases; `echoPort` is the port of the harness's echo server for fetch() probes. */
export function conformanceCases(echoPort: number): Case[] {
  const hono = (name: string, request: ProbeRequest) => http('Frameworks: Hono', 'hono', name, request);
  const itty = (name: string, request: ProbeRequest) => http('Frameworks: itty-router', 'itty', name, request);
  const origin: [string, string] = ['Origin', 'https://allowed.example'];
  return [
    json('Headers', 'headers', '/basics'),
    json('Headers', 'headers', '/validation'),
    json('Headers', 'headers', '/normalise'),
    json('Headers', 'headers', '/combine'),
    json('Headers', 'headers', '/shape'),
    json('Headers', 'headers', '/incoming', {
      request: { path: '/incoming', headers: [['X-Probe', 'p'], ['X-Rep', 'a'], ['x-rep', 'b'], ['Cookie', 'a=1'], ['Cookie', 'b=2']] },
    }),

    json('URL', 'url', '/parse'),
    json('URL', 'url', '/idna'),
    json('URL', 'url', '/setters'),
    json('URL', 'url', '/api'),
    json('URL', 'url', '/params'),

    json('Request', 'request', '/construct'),
    json('Request', 'request', '/methods'),
    json('Request', 'request', '/body'),
    json('Request', 'request', '/incoming', {
      request: { method: 'POST', path: '/incoming?q=1&q=2#frag', headers: [['Content-Type', 'text/plain'], ['X-A', '1'], ['x-a', '2']], body: 'héllo body' },
    }),
    json('Request', 'request', '/incoming', {
      id: 'request/incoming-get',
      request: { method: 'GET', path: '/incoming?x=%41&y=a%20b&z=%zz' },
    }),
    json('Request', 'request', '/incoming', {
      id: 'request/incoming-patch',
      request: { method: 'PATCH', path: '/incoming', headers: [['Content-Type', 'application/json']], body: '{"a":1}' },
    }),

    json('Response', 'response', '/construct'),
    json('Response', 'response', '/statuses'),
    json('Response', 'response', '/body'),
    json('Response', 'response', '/statics'),

    json('Encoding', 'encoding', '/encoder'),
    json('Encoding', 'encoding', '/decoder'),
    json('Encoding', 'encoding', '/base64'),

    json('Events & abort', 'events', '/event'),
    json('Events & abort', 'events', '/target'),
    json('Events & abort', 'events', '/abort'),
    json('DOMException', 'events', '/domexception'),

    json('structuredClone', 'clone', '/values'),
    json('structuredClone', 'clone', '/refused'),

    json('crypto (random)', 'crypto', '/random'),

    json('Timers & clock', 'timers', '/order'),
    json('Timers & clock', 'timers', '/clock'),
    json('console', 'timers', '/console'),

    json('Globals', 'globals', '/names'),
    json('Globals', 'globals', '/shape'),

    ...['/throw', '/reject', '/throw-string', '/return-undefined', '/return-string', '/return-object', '/response-error', '/used-body',
      '/never-settles-timer'].map((path) => http('Uncaught errors', 'errors', path.slice(1), { path })),

    ...[200, 201, 299, 404, 418, 451, 500, 503, 599].map((code) => http('HTTP wire', 'http', `status-${code}`, { path: `/status?code=${code}` })),
    http('HTTP wire', 'http', 'status-custom-text', { path: '/status?code=200&text=All%20Good' }),
    http('HTTP wire', 'http', 'status-empty-text', { path: '/status?code=299&text=' }),
    http('HTTP wire', 'http', 'null-204', { path: '/null-status?code=204' }),
    http('HTTP wire', 'http', 'null-304', { path: '/null-status?code=304' }),
    http('HTTP wire', 'http', 'null-205', { path: '/null-status?code=205' }),
    http('HTTP wire', 'http', 'cookies', { path: '/cookies' }),
    http('HTTP wire', 'http', 'header-case', { path: '/header-case' }),
    http('HTTP wire', 'http', 'empty', { path: '/empty' }),
    http('HTTP wire', 'http', 'null', { path: '/null' }),
    http('HTTP wire', 'http', 'bytes', { path: '/bytes' }),
    http('HTTP wire', 'http', 'json', { path: '/json' }),
    http('HTTP wire', 'http', 'redirect', { path: '/redirect' }),
    http('HTTP wire', 'http', 'declared-length', { path: '/declared-length' }),
    http('HTTP wire', 'http', 'hop-by-hop', { path: '/hop-by-hop' }),
    http('HTTP wire', 'http', 'head', { method: 'HEAD', path: '/head-body' }),
    http('HTTP wire', 'http', 'large', { path: '/large' }),
    http('HTTP wire', 'http', 'not-found', { path: '/nowhere' }),
    http('HTTP wire', 'http', 'echo-get', { path: '/echo?a=1', headers: [['Accept', '*/*'], ['X-Dup', '1'], ['X-Dup', '2'], ['User-Agent', 'probe/1']] }),
    http('HTTP wire', 'http', 'echo-post', { method: 'POST', path: '/echo', headers: [['Content-Type', 'text/plain;charset=UTF-8']], body: 'posted ✓' }),
    http('HTTP wire', 'http', 'echo-delete', { method: 'DELETE', path: '/echo' }),
    http('HTTP wire', 'http', 'echo-options', { method: 'OPTIONS', path: '/echo' }),
    http('HTTP wire', 'http', 'echo-empty-post', { method: 'POST', path: '/echo', body: '' }),
    http('HTTP wire', 'http', 'echo-custom-method', { method: 'PURGE', path: '/echo' }),
    http('HTTP wire', 'http', 'echo-path-escapes', { path: '/echo/%2e%2E/x/./y/%7e?q=a%20b&r=%zz' }),

    json('Streams', 'streams', '/readable'),
    json('Streams', 'streams', '/writable-transform'),
    json('Streams', 'streams', '/bodies'),
    http('Streams', 'streams', 'wire', { path: '/wire' }),

    json('crypto.subtle', 'subtle', '/digest'),
    json('crypto.subtle', 'subtle', '/hmac'),
    json('crypto.subtle', 'subtle', '/aes'),
    json('crypto.subtle', 'subtle', '/derive'),
    json('crypto.subtle', 'subtle', '/asymmetric'),

    json('fetch()', 'fetch', '/fetch', { request: { path: '/fetch', headers: [[ECHO_PORT_HEADER, String(echoPort)]] } }),

    json('FormData/Blob/File', 'formdata', '/blob'),
    json('FormData/Blob/File', 'formdata', '/formdata'),
    json('FormData/Blob/File', 'formdata', '/blob-more'),
    json('URLPattern', 'formdata', '/urlpattern'),

    hono('root', { path: '/' }),
    hono('params-query', { path: '/api/users/42?fields=name,email&tag=a&tag=b', headers: [origin] }),
    hono('regexp-param', { path: '/api/posts/7/comments/99' }),
    hono('regexp-param-miss', { path: '/api/posts/7/comments/abc' }),
    hono('json-in-out', { method: 'POST', path: '/api/echo', headers: [origin, ['Content-Type', 'application/json']], body: '{"name":"isolet","n":[1,2]}' }),
    hono('bad-json', { method: 'POST', path: '/api/echo', headers: [['Content-Type', 'application/json']], body: '{oops' }),
    hono('text-put', { method: 'PUT', path: '/api/text', body: 'payload' }),
    hono('cors-preflight', { method: 'OPTIONS', path: '/api/echo', headers: [origin, ['Access-Control-Request-Method', 'POST'], ['Access-Control-Request-Headers', 'X-Custom']] }),
    hono('cors-disallowed-origin', { path: '/api/users/1', headers: [['Origin', 'https://evil.example']] }),
    hono('html', { path: '/html' }),
    hono('redirect', { path: '/redirect' }),
    hono('on-error', { path: '/throw' }),
    hono('http-exception', { path: '/http-exception' }),
    hono('cookies-204', { path: '/cookie' }),
    hono('request-headers', { path: '/headers?x=1', headers: [['User-Agent', 'conformance/1'], ['Accept', 'application/json']] }),
    hono('not-found', { path: '/missing/route' }),
    hono('head', { method: 'HEAD', path: '/' }),
    hono('method-not-routed', { method: 'DELETE', path: '/' }),

    itty('root', { path: '/' }),
    itty('params-query', { path: '/items/abc?x=1&y=2&y=3', headers: [origin] }),
    itty('greedy-param', { path: '/files/a/b/c.txt' }),
    itty('optional-param-absent', { path: '/optional' }),
    itty('optional-param-present', { path: '/optional/bob' }),
    itty('json-post', { method: 'POST', path: '/items', headers: [origin, ['Content-Type', 'application/json']], body: '{"name":"widget"}' }),
    itty('bad-json', { method: 'POST', path: '/items', headers: [['Content-Type', 'application/json']], body: 'nope' }),
    itty('text', { path: '/text' }),
    itty('error-helper', { path: '/teapot' }),
    itty('status-error', { path: '/status-error' }),
    itty('throw', { path: '/throw' }),
    itty('raw', { path: '/raw' }),
    itty('cors-preflight', { method: 'OPTIONS', path: '/items', headers: [origin, ['Access-Control-Request-Method', 'POST']] }),
    itty('cors-other-origin', { path: '/items/1', headers: [['Origin', 'https://evil.example']] }),
    itty('not-found', { path: '/missing' }),
  ];
}
