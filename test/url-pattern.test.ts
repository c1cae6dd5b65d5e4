// URLPattern in a worker, through real HTTP: urlpattern-polyfill loaded as a sandbox module on
// first use, routing requests the way Workers code does with it. The module runs the polyfill
// rewritten onto captured built-ins (src/runtime/bound-libraries.ts): the last test holds it to
// the unmodified polyfill, run in Node, on patterns that exercise each rewritten part.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { URLPattern as PolyfillURLPattern } from 'urlpattern-polyfill/urlpattern';
import { serve, moduleWorker, type Served } from './support/serve.ts';

const WORKER = `
const name = (e) => e && e.constructor ? e.constructor.name : String(e);
const routes = [
  [new URLPattern({ pathname: '/books/:id(\\\\d+)' }), (m) => ({ book: m.pathname.groups.id })],
  [new URLPattern({ pathname: '/files/*' }), (m) => ({ file: m.pathname.groups[0] })],
  [new URLPattern({ pathname: '/users/:user/repos/:repo?' }), (m) => m.pathname.groups],
  [new URLPattern({ hostname: '{:sub.}?pattern.test', pathname: '/host' }), (m) => ({ sub: m.hostname.groups.sub ?? null })],
];
export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/api') {
      const p = new URLPattern('https://*.example.com/a/:x?', undefined);
      const q = new URLPattern({ pathname: '/A' }, { ignoreCase: true });
      let bad;
      try { new URLPattern({ pathname: '/(' }); } catch (e) { bad = name(e); }
      return Response.json([
        p.protocol, p.hostname, p.pathname, p.test('https://www.example.com/a/1'), p.test('http://www.example.com/a/1'),
        q.test({ pathname: '/a' }), bad, Object.prototype.toString.call(p), URLPattern.name,
        new URLPattern({ pathname: '/(\\\\d+)' }).hasRegExpGroups,
        new URLPattern({ pathname: '/p/:n' }).exec({ pathname: '/p/7' }).inputs,
        new URLPattern('/x/*', 'https://h.test').exec('https://h.test/x/y/z').pathname.groups,
      ]);
    }
    for (const [pattern, handle] of routes) {
      const match = pattern.exec(request.url);
      if (match) return Response.json(handle(match));
    }
    return new Response('no route', { status: 404 });
  },
};
`;

// [pattern init or string, base or options, inputs to test and exec]: escaping, names, regular
// expression groups, modifiers, wildcards, hostnames (IPv6 too), ports, base URLs, ignoreCase,
// opaque paths, and patterns the constructor refuses.
const CASES: [unknown, unknown, unknown[]][] = [
  [{ pathname: '/books/:id(\\d+)' }, undefined, ['https://x/books/12', 'https://x/books/a', { pathname: '/books/7' }]],
  [{ pathname: '/a.b\\+c\\*d/:rest*' }, undefined, ['https://x/a.b+c*d/x/y', 'https://x/a.bc*d/x']],
  [{ pathname: '/(.*)/{:name}?/\\(x\\)' }, undefined, ['https://x/q/w/(x)', 'https://x/q/(x)']],
  [{ pathname: '/$^|[]{}' }, undefined, ['https://x/$^|[]{}', 'https://x/%24%5E%7C%5B%5D%7B%7D']],
  [{ pathname: '/:a-:b.:c+' }, undefined, ['https://x/1-2.3', 'https://x/1-2.3/4']],
  [{ pathname: '/*.:ext' }, { ignoreCase: true }, ['https://x/A/B.TXT', 'https://x/none']],
  [{ hostname: '{*.}?example.com', port: '(80|8080)?' }, undefined, ['http://example.com/', 'http://a.b.example.com:8080/', 'http://example.com:81/']],
  [{ hostname: '[\\:\\:1]' }, undefined, ['http://[::1]/', 'http://[::2]/']],
  [{ protocol: 'http{s}?', username: ':user', password: '*', search: 'q=:q', hash: '*' }, undefined, ['https://ann:pw@h/?q=1#f', 'http://h/?q=2']],
  ['https://:sub.example.com/:path*', undefined, ['https://www.example.com/a/b', 'http://www.example.com/a']],
  ['/api/:version/*?', 'https://example.com', ['https://example.com/api/v1/x?y', 'https://example.com/api']],
  ['../up/:x', 'https://example.com/a/b/c', ['https://example.com/a/up/1']],
  ['data\\:text/:type', undefined, ['data:text/plain', 'data:text/html']],
  [{ pathname: '/(' }, undefined, []],
  [{ pathname: '/:a/:a' }, undefined, []],
  [{ pathname: '/((a))' }, undefined, []],
  [{ hostname: 'a b' }, undefined, []],
  [{ protocol: 'ht tp' }, undefined, []],
];

const RUN_CASES = `(URLPattern, cases) => {
  const outcome = (f) => { try { return f(); } catch (e) { return 'throws ' + e.constructor.name + ': ' + e.message; } };
  return cases.map(([init, second, inputs]) => outcome(() => {
    const p = second == null ? new URLPattern(init) : new URLPattern(init, second);
    const components = ['protocol', 'username', 'password', 'hostname', 'port', 'pathname', 'search', 'hash'].map((k) => p[k]);
    return [components, p.hasRegExpGroups, inputs.map((input) => [p.test(input), p.exec(input)])];
  }));
}`;

let served: Served;
before(async () => {
  served = await serve({
    pattern: moduleWorker(WORKER),
    compared: moduleWorker(`const run = ${RUN_CASES};
export default { async fetch(request) { return Response.json(run(URLPattern, await request.json())); } };`, { limits: { cpuMs: 2_000 } }),
    // URLPattern parses with the platform's URL: what tenant code does to URL changes nothing.
    'url-replaced': moduleWorker(`const run = ${RUN_CASES};
const { defineProperty, getOwnPropertyNames } = Object;
const refuse = () => { throw new Error('the tenant replaced URL'); };
for (const name of getOwnPropertyNames(URL.prototype)) {
  if (name !== 'constructor') defineProperty(URL.prototype, name, { get: refuse, set: refuse, configurable: true });
}
globalThis.URL = refuse;
export default { async fetch(request) { return Response.json(run(URLPattern, await request.json())); } };`, { limits: { cpuMs: 2_000 } }),
  });
});
after(() => served.close());

test('URLPattern routes requests', async () => {
  assert.deepEqual(await (await served.fetch('pattern', '/books/42')).json(), { book: '42' });
  assert.equal((await served.fetch('pattern', '/books/abc')).status, 404);
  assert.deepEqual(await (await served.fetch('pattern', '/files/a/b.txt')).json(), { file: 'a/b.txt' });
  assert.deepEqual(await (await served.fetch('pattern', '/users/ann/repos/isolet')).json(), { user: 'ann', repo: 'isolet' });
  assert.deepEqual(await (await served.fetch('pattern', '/users/ann/repos')).json(), { user: 'ann' });
});

test('URLPattern API: components, test(), ignoreCase, errors, inputs, base URLs', async () => {
  assert.deepEqual(await (await served.fetch('pattern', '/api')).json(), [
    'https', '*.example.com', '/a/:x?', true, false,
    true, 'TypeError', '[object URLPattern]', 'URLPattern',
    true,
    [{ pathname: '/p/7' }],
    { 0: 'y/z' },
  ]);
});

test('URLPattern on captured built-ins answers as the unmodified polyfill does', async () => {
  const run = new Function(`return ${RUN_CASES}`)() as (C: unknown, cases: unknown) => unknown;
  const expected = JSON.parse(JSON.stringify(run(PolyfillURLPattern, CASES)));
  for (const worker of ['compared', 'url-replaced']) {
    const response = await served.fetch(worker, '/', { method: 'POST', body: JSON.stringify(CASES) });
    assert.deepEqual(await response.json(), expected, worker);
  }
  assert.equal((expected as unknown[]).filter((c) => typeof c === 'string').length, 5, 'the refused patterns are refused');
});
