// URLPattern in a worker, through real HTTP: urlpattern-polyfill loaded as a sandbox module on
// first use, routing requests the way Workers code does with it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
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

let served: Served;
before(async () => { served = await serve({ pattern: moduleWorker(WORKER) }); });
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
