// The dashboard's files on the admin listener: served without a token (they hold no data), under
// a policy that lets no inline or foreign script run, and built from client code that never
// turns a string into HTML. What it does in a browser is test/dashboard-browser.test.ts.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CONTENT_SECURITY_POLICY } from '../src/dashboard/assets.ts';
import { startTestServer, type TestServer } from './server-support.ts';

const CLIENT = new URL('../src/dashboard/client/', import.meta.url);

describe('dashboard files', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  const get = (path: string, init: RequestInit = {}) => fetch(t.server.adminUrl + path, { redirect: 'manual', ...init, signal: AbortSignal.timeout(60_000) });

  test('the page, its script, style sheet and icon are served without a token, each with its type', async () => {
    const page = await get('/dashboard/');
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    const html = await page.text();
    assert.match(html, /<script type="module" src="app.js"><\/script>/);
    for (const [path, type, sample] of [
      ['/dashboard/app.js', 'text/javascript; charset=utf-8', 'sessionStorage'],
      ['/dashboard/app.css', 'text/css; charset=utf-8', '.tail'],
      ['/dashboard/icon.svg', 'image/svg+xml', '<svg'],
    ] as const) {
      const answer = await get(path);
      assert.equal(answer.status, 200, path);
      assert.equal(answer.headers.get('content-type'), type, path);
      assert.ok((await answer.text()).includes(sample), path);
    }
    // The API itself still wants a token.
    assert.equal((await get('/v1/workers')).status, 401);
  });

  test('every answer carries the policy: scripts and styles from this origin only, no framing, no HTML from strings', async () => {
    for (const path of ['/dashboard/', '/dashboard/app.js', '/dashboard/missing', '/dashboard']) {
      const answer = await get(path);
      await answer.arrayBuffer();
      assert.equal(answer.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY, path);
      assert.equal(answer.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(answer.headers.get('x-frame-options'), 'DENY', path);
      assert.equal(answer.headers.get('referrer-policy'), 'no-referrer', path);
    }
    const policy = Object.fromEntries(CONTENT_SECURITY_POLICY.split('; ').map((d) => [d.split(' ')[0], d.split(' ').slice(1).join(' ')]));
    assert.equal(policy['default-src'], "'none'");
    assert.equal(policy['script-src'], "'self'");
    assert.equal(policy['style-src'], "'self'");
    assert.equal(policy['connect-src'], "'self'");
    assert.equal(policy['frame-ancestors'], "'none'");
    assert.equal(policy['require-trusted-types-for'], "'script'");
    assert.equal(policy['trusted-types'], "'none'");
  });

  test('/dashboard redirects to /dashboard/; other paths are 404, other methods 405, and an unchanged file 304', async () => {
    const bare = await get('/dashboard');
    assert.equal(bare.status, 308);
    assert.equal(bare.headers.get('location'), '/dashboard/');
    assert.equal((await get('/dashboard/../v1/workers')).status, 401, 'a path that leaves /dashboard/ is the API');
    assert.equal((await get('/dashboard/nope.js')).status, 404);
    assert.equal((await get('/dashboard/client/main.ts')).status, 404, 'sources are not served');
    const post = await get('/dashboard/', { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    const first = await get('/dashboard/app.js');
    await first.arrayBuffer();
    const etag = first.headers.get('etag')!;
    assert.ok(etag);
    const again = await get('/dashboard/app.js', { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    const head = await get('/dashboard/', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
  });
});

test('the client code makes DOM only from text: no HTML sinks, no eval, no inline handlers', async () => {
  const sources: [string, string][] = [];
  const walk = async (dir: URL, prefix: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) await walk(new URL(`${entry.name}/`, dir), join(prefix, entry.name));
      else if (entry.name.endsWith('.ts') || entry.name.endsWith('.html')) sources.push([join(prefix, entry.name), await readFile(new URL(entry.name, dir), 'utf8')]);
    }
  };
  await walk(CLIENT, '');
  assert.ok(sources.length > 5);
  const forbidden = /\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval|new Function|createContextualFragment|DOMParser)\b|\son[a-z]+=|style=/;
  for (const [name, source] of sources) {
    const code = source.split('\n').filter((line) => !/^\s*(\/\/|\*|\/\*)/.test(line)).join('\n');
    assert.doesNotMatch(code, forbidden, name);
  }
});
