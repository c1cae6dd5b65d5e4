// `isolet dev` with [assets]: the directory is served from disk by the rules a server applies
// (the same module decides what matches), a changed file at once, and what matches no file goes
// to the worker. Waits are for output or answers.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile, realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliProcess, writeProject } from './support/cli-process.ts';
import { hostFetch } from './support/serve.ts';
import { NAVIGATE, NAVIGATION_CASES, navigationProject } from './support/navigation.ts';

describe('isolet dev serves [assets] from disk', { timeout: 120_000 }, () => {
  let dir = '';
  const running: CliProcess[] = [];

  before(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'isolet-dev-assets-')));
  });
  after(async () => {
    for (const dev of running) dev.kill();
    await Promise.all(running.map((dev) => dev.exited));
    await rm(dir, { recursive: true, force: true });
  });

  async function start(name: string, files: Record<string, string>): Promise<{ cwd: string; base: string }> {
    const cwd = join(dir, name);
    await writeProject(cwd, files);
    const dev = new CliProcess(['dev', '--port', '0'], { cwd });
    running.push(dev);
    const base = await dev.listening();
    return { cwd, base };
  }

  test('files by the server rules, a change served at once, the rest to the worker', async () => {
    const { cwd, base } = await start('site', {
      'wrangler.toml': 'name = "site"\nmain = "src/index.ts"\n[assets]\ndirectory = "public"\n',
      'src/index.ts': 'export default { fetch(request: Request) { return new Response(`worker ${new URL(request.url).pathname}`); } };\n',
      'public/index.html': 'home',
      'public/about.html': 'about',
      'public/style.css': 'a{}',
      'public/draft.md': 'wip',
      'public/.assetsignore': '*.md\n',
    });
    const css = await fetch(`${base}/style.css`);
    assert.equal(css.status, 200);
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
    const etag = `"${createHash('sha256').update('a{}').digest('hex')}"`;
    assert.equal(css.headers.get('etag'), etag);
    assert.equal(await css.text(), 'a{}');
    assert.equal((await fetch(`${base}/style.css`, { headers: { 'if-none-match': etag } })).status, 304);

    await writeFile(join(cwd, 'public/style.css'), 'b{}');
    assert.equal(await (await fetch(`${base}/style.css`)).text(), 'b{}');

    assert.equal(await (await fetch(`${base}/`)).text(), 'home');
    assert.equal(await (await fetch(`${base}/about`)).text(), 'about');
    const redirect = await fetch(`${base}/about.html`, { redirect: 'manual' });
    assert.equal(redirect.status, 307);
    assert.equal(redirect.headers.get('location'), '/about');
    assert.equal(await (await fetch(`${base}/api`)).text(), 'worker /api');
    assert.equal(await (await fetch(`${base}/draft.md`)).text(), 'worker /draft.md');
    // Encoded dot segments stay inside the directory.
    for (const path of ['/%2e%2e/wrangler.toml', '/..%2fwrangler.toml', '/%2e%2e%2fwrangler.toml']) {
      assert.match(await (await fetch(`${base}${path}`)).text(), /^worker \//, path);
    }
  });

  test('env.ASSETS.fetch() from the worker answers from the directory, with not_found_handling', async () => {
    const { base } = await start('bound', {
      'wrangler.toml': 'name = "bound"\nmain = "src/index.ts"\n[assets]\ndirectory = "public"\nbinding = "ASSETS"\nnot_found_handling = "404-page"\nrun_worker_first = true\n',
      'src/index.ts': [
        'export default {',
        '  async fetch(request: Request, env: { ASSETS: { fetch(r: Request | string): Promise<Response> } }) {',
        '    const asset = await env.ASSETS.fetch(request);',
        "    const head = await env.ASSETS.fetch(new Request(new URL('/data.json', request.url), { method: 'HEAD' }));",
        '    return Response.json({ status: asset.status, type: asset.headers.get("content-type"), body: await asset.text(), head: head.status, length: head.headers.get("content-length") });',
        '  },',
        '};',
        '',
      ].join('\n'),
      'public/data.json': '{"ok":true}',
      'public/404.html': 'gone',
    });
    // run_worker_first: the worker runs for every path, and reaches the files through the binding.
    assert.deepEqual(await (await fetch(`${base}/data.json`)).json(), { status: 200, type: 'application/json', body: '{"ok":true}', head: 200, length: '11' });
    assert.deepEqual(await (await fetch(`${base}/missing`)).json(), { status: 404, type: 'text/html; charset=utf-8', body: 'gone', head: 200, length: '11' });
  });

  test('navigations that match no file: not_found_handling by the compatibility date and the assets_navigation_* flags', async () => {
    for (const [date, flags, prefers] of NAVIGATION_CASES) {
      const { base } = await start(`nav-${date}-${flags.join('')}`, navigationProject(date, flags, '404-page', { 'dist/404.html': 'not here' }));
      const port = Number(new URL(base).port);
      const page = await hostFetch(port, `127.0.0.1:${port}`, '/missing', NAVIGATE);
      assert.equal(page.status, prefers ? 404 : 200, `${date} ${flags}`);
      assert.equal(await page.text(), prefers ? 'not here' : 'worker /missing', `${date} ${flags}`);
      assert.equal(await (await fetch(`${base}/missing`)).text(), 'worker /missing');
    }
  });

  test('assets alone, as a single-page application', async () => {
    const { base } = await start('spa', {
      'wrangler.toml': 'name = "spa"\n[assets]\ndirectory = "dist"\nnot_found_handling = "single-page-application"\n',
      'dist/index.html': 'app',
    });
    const deep = await fetch(`${base}/users/7`);
    assert.equal(deep.status, 200);
    assert.equal(await deep.text(), 'app');
    assert.equal((await fetch(`${base}/users/7`, { method: 'POST', body: 'x' })).status, 405);
  });
});
