// Static assets end to end on a real `isolet serve` (runtime processes, SQLite): projects with
// [assets] deployed with `isolet deploy`, then served over HTTP by Host: content types, ETag and
// 304, HEAD, a byte range, html_handling, not_found_handling, the worker for what matches no
// file, uploads that send only what changed, and blobs one account cannot reach from another.
// Waits are for output, answers or exits, never for time.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile, realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliProcess, writeProject } from './support/cli-process.ts';
import { hostFetch } from './support/serve.ts';
import { callApi, ServeProcess, ADMIN_TOKEN } from './server-support.ts';
import { NAVIGATE, NAVIGATION_CASES, navigationProject } from './support/navigation.ts';

const sha256 = (bytes: string | Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const PNG = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 1, 2, 3, 4]);
/** Over the size from which deploy shows its progress. */
const BIG = new Uint8Array(5 * 1024 * 1024).map((_, i) => i % 251);

describe('static assets on isolet serve', { timeout: 300_000 }, () => {
  let dir = '';
  let serve: ServeProcess;
  let port = 0;
  let admin = '';
  const tokens: Record<string, string> = {};

  before(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'isolet-assets-')));
    serve = new ServeProcess(join(dir, 'data'), {}, ['--processes', '1']);
    ({ port, admin } = await serve.ready());
    for (const name of ['acme', 'other']) {
      assert.equal((await callApi(admin, 'POST', '/v1/accounts', { body: { name } })).status, 201);
      tokens[name] = (await callApi(admin, 'POST', `/v1/accounts/${name}/tokens`, { body: {} })).body.token;
    }
  });
  after(async () => {
    serve?.kill();
    await serve?.exited;
    await rm(dir, { recursive: true, force: true });
  });

  async function project(name: string, files: Record<string, string | Uint8Array>): Promise<string> {
    const cwd = join(dir, name);
    await writeProject(cwd, files);
    return cwd;
  }

  async function deploy(cwd: string, account = 'acme'): Promise<CliProcess> {
    const cli = new CliProcess(['deploy', '--api', admin, '--token', tokens[account]!], { cwd });
    const exit = await cli.exited;
    assert.equal(exit.code, 0, `deploy failed:\n${cli.stdout}\n${cli.stderr}`);
    return cli;
  }

  const get = (worker: string, path: string, init: RequestInit = {}) => hostFetch(port, `${worker}.localhost:${port}`, path, init);

  const site = {
    'wrangler.toml': 'name = "site"\nmain = "src/index.ts"\ncompatibility_date = "2024-09-01"\n[assets]\ndirectory = "./public"\n',
    'src/index.ts': 'export default { fetch(request: Request) { return new Response(`worker ${request.method} ${new URL(request.url).pathname}`); } };\n',
    'public/index.html': '<h1>home</h1>',
    'public/about.html': '<h1>about</h1>',
    'public/docs/index.html': '<h1>docs</h1>',
    'public/style.css': 'body { color: red }',
    'public/app.js': 'console.log(1)',
    'public/data.json': '{"a":1}',
    'public/logo.png': PNG,
    'public/big.bin': BIG,
    'public/secret.txt': 'not for the public',
    'public/.assetsignore': 'secret.txt\n',
  };

  test('deploy uploads the files, with progress for a large upload; the server answers with their types and bytes', async () => {
    const cwd = await project('site', site);
    const cli = await deploy(cwd);
    assert.match(cli.stdout, /^Assets: 8 assets \(5\.0 MiB\), 8 uploaded/m);
    assert.match(cli.stderr, /uploading assets: 8\/8 files, 5\.0\/5\.0 MiB/);

    const expected: [string, string, string | Uint8Array][] = [
      ['/style.css', 'text/css; charset=utf-8', site['public/style.css']],
      ['/app.js', 'text/javascript; charset=utf-8', site['public/app.js']],
      ['/data.json', 'application/json', site['public/data.json']],
      ['/logo.png', 'image/png', PNG],
      ['/', 'text/html; charset=utf-8', site['public/index.html']],
    ];
    for (const [path, type, body] of expected) {
      const response = await get('site', path);
      assert.equal(response.status, 200, path);
      assert.equal(response.headers.get('content-type'), type, path);
      assert.deepEqual(new Uint8Array(await response.arrayBuffer()), typeof body === 'string' ? new TextEncoder().encode(body) : body, path);
    }
    const big = await get('site', '/big.bin');
    assert.equal(big.headers.get('content-type'), 'application/octet-stream');
    assert.equal(sha256(new Uint8Array(await big.arrayBuffer())), sha256(BIG));
  });

  test('ETag is the content hash; If-None-Match gives 304; HEAD has the headers and no body; one byte range gives 206', async () => {
    const etag = `"${sha256(site['public/style.css'])}"`;
    const first = await get('site', '/style.css');
    assert.equal(first.headers.get('etag'), etag);
    assert.equal(first.headers.get('cache-control'), 'public, max-age=0, must-revalidate');
    await first.arrayBuffer();

    for (const tag of [etag, `W/${etag}`, `"other", ${etag}`]) {
      const again = await get('site', '/style.css', { headers: { 'if-none-match': tag } });
      assert.equal(again.status, 304, tag);
      assert.equal(again.headers.get('etag'), etag);
      assert.equal(await again.text(), '');
    }
    const changed = await get('site', '/style.css', { headers: { 'if-none-match': '"stale"' } });
    assert.equal(changed.status, 200);
    await changed.arrayBuffer();

    const head = await get('site', '/style.css', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(site['public/style.css'].length));
    assert.equal(head.headers.get('etag'), etag);
    assert.equal(await head.text(), '');

    const range = await get('site', '/style.css', { headers: { range: 'bytes=0-3' } });
    assert.equal(range.status, 206);
    assert.equal(range.headers.get('content-range'), `bytes 0-3/${site['public/style.css'].length}`);
    assert.equal(range.headers.get('cache-control'), null);
    assert.equal(await range.text(), 'body');
    const beyond = await get('site', '/style.css', { headers: { range: 'bytes=999-' } });
    assert.equal(beyond.status, 416);
    await beyond.arrayBuffer();
  });

  test('html_handling (auto-trailing-slash) redirects to canonical paths, keeping the query', async () => {
    const cases: [string, number, string][] = [
      ['/about', 200, '<h1>about</h1>'],
      ['/about.html?x=1', 307, '/about?x=1'],
      ['/docs', 307, '/docs/'],
      ['/docs/', 200, '<h1>docs</h1>'],
      ['/docs/index.html', 307, '/docs/'],
      ['/index.html', 307, '/'],
    ];
    for (const [path, status, expected] of cases) {
      const response = await get('site', path, { redirect: 'manual' });
      assert.equal(response.status, status, path);
      if (status === 307) assert.equal(response.headers.get('location'), expected, path);
      else assert.equal(await response.text(), expected, path);
    }
  });

  test('what matches no file goes to the worker; ignored files are not served; other methods on a file are 405', async () => {
    assert.equal(await (await get('site', '/api/users')).text(), 'worker GET /api/users');
    assert.equal(await (await get('site', '/secret.txt')).text(), 'worker GET /secret.txt');
    assert.equal(await (await get('site', '/.assetsignore')).text(), 'worker GET /.assetsignore');
    assert.equal(await (await get('site', '/api/users', { method: 'POST', body: 'x' })).text(), 'worker POST /api/users');
    const post = await get('site', '/style.css', { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
  });

  test('a deploy sends only the files the account does not hold yet', async () => {
    const cwd = join(dir, 'site');
    const unchanged = await deploy(cwd);
    assert.match(unchanged.stdout, /^Assets: 8 assets \(5\.0 MiB\), 0 uploaded \(0 B\), 8 unchanged$/m);
    assert.doesNotMatch(unchanged.stderr, /uploading assets/);

    await writeFile(join(cwd, 'public/style.css'), 'body { color: blue }');
    const one = await deploy(cwd);
    assert.match(one.stdout, /^Assets: 8 assets \(5\.0 MiB\), 1 uploaded \(20 B\), 7 unchanged$/m);
    const served = await get('site', '/style.css');
    assert.equal(await served.text(), 'body { color: blue }');
    assert.equal(served.headers.get('etag'), `"${sha256('body { color: blue }')}"`);
  });

  test("one account cannot reach another's blobs by naming their hashes", async () => {
    const hash = sha256(BIG);
    // acme holds it; for other it does not exist.
    const mine = await callApi(admin, 'POST', '/v1/assets/missing', { token: tokens.acme, body: { hashes: [hash] } });
    assert.deepEqual(mine.body, { missing: [] });
    const theirs = await callApi(admin, 'POST', '/v1/assets/missing', { token: tokens.other, body: { hashes: [hash] } });
    assert.deepEqual(theirs.body, { missing: [hash] });

    // A manifest naming acme's hash does not deploy for other.
    const stolen = await callApi(admin, 'PUT', '/v1/workers/thief', {
      token: tokens.other,
      body: { assets: { manifest: { '/loot.bin': { hash, size: BIG.byteLength, contentType: 'application/octet-stream' } } } },
    });
    assert.equal(stolen.status, 400);
    assert.match(stolen.body.error.message, /1 asset of the manifest is not uploaded to this account \(\/loot\.bin\)/);

    // Nor can other store something under acme's hash: the server hashes the bytes.
    const forged = await callApi(admin, 'POST', '/v1/assets/upload', {
      token: tokens.other,
      body: { files: [{ hash, base64: Buffer.from('something else').toString('base64') }] },
    });
    assert.equal(forged.status, 400);
    assert.match(forged.body.error.message, /hash to [0-9a-f]{64}, not /);

    // The admin token must say which account it uploads for.
    const anonymous = await callApi(admin, 'POST', '/v1/assets/missing', { token: ADMIN_TOKEN, body: { hashes: [hash] } });
    assert.equal(anonymous.status, 400);
  });

  test('hostile manifests are refused before anything is stored', async () => {
    const hash = sha256('x');
    const bad: unknown[] = [
      { manifest: { 'no-slash': { hash, size: 1, contentType: 'text/plain' } } },
      { manifest: { '/a/../b': { hash, size: 1, contentType: 'text/plain' } } },
      { manifest: { '/a': { hash, size: 1, contentType: 'text/plain\r\nset-cookie: x=1' } } },
      { manifest: { '/a': { hash: 'nothex', size: 1, contentType: 'text/plain' } } },
      { manifest: { '/a': { hash, size: 26 * 1024 * 1024, contentType: 'text/plain' } } },
      { manifest: {}, htmlHandling: 'sometimes' },
    ];
    for (const assets of bad) {
      const answer = await callApi(admin, 'PUT', '/v1/workers/hostile', { token: tokens.other, body: { assets } });
      assert.equal(answer.status, 400, JSON.stringify(assets));
    }
    assert.equal((await callApi(admin, 'GET', '/v1/workers/hostile', { token: tokens.other })).status, 404);
  });

  test('env.ASSETS.fetch() from a worker in a runtime process answers from its own assets', async () => {
    const bound = await project('bound', {
      'wrangler.toml': 'name = "bound"\nmain = "src/index.ts"\n[assets]\ndirectory = "public"\nbinding = "ASSETS"\nnot_found_handling = "404-page"\nrun_worker_first = true\n',
      'src/index.ts': [
        'export default {',
        '  async fetch(request: Request, env: { ASSETS: { fetch(r: Request): Promise<Response> } }) {',
        '    const asset = await env.ASSETS.fetch(request);',
        '    const etag = asset.headers.get("etag");',
        "    const again = etag === null ? null : await env.ASSETS.fetch(new Request(request.url, { headers: { 'if-none-match': etag } }));",
        '    return Response.json({ status: asset.status, type: asset.headers.get("content-type"), body: await asset.text(), revalidated: again?.status ?? null });',
        '  },',
        '};',
        '',
      ].join('\n'),
      'public/hello.txt': 'hi there',
      'public/404.html': 'gone',
    });
    await deploy(bound);
    // run_worker_first: the worker runs for a path that is a file too, and reaches it through the binding.
    assert.deepEqual(await (await get('bound', '/hello.txt')).json(), { status: 200, type: 'text/plain; charset=utf-8', body: 'hi there', revalidated: 304 });
    assert.deepEqual(await (await get('bound', '/nope')).json(), { status: 404, type: 'text/html; charset=utf-8', body: 'gone', revalidated: 304 });

    // An assets binding needs assets.
    const bare = await callApi(admin, 'PUT', '/v1/workers/unbound', {
      token: tokens.acme,
      body: { modules: [{ name: 'w.js', source: 'export default { fetch() { return new Response(1) } }' }], bindings: { ASSETS: { type: 'assets' } } },
    });
    assert.equal(bare.status, 400);
    assert.match(bare.body.error.message, /binding ASSETS is of type assets, but the deployment has no `assets`/);
  });

  test('a browser navigation that matches no file gets not_found_handling before the worker from 2025-04-01, or with assets_navigation_prefers_asset_serving; assets_navigation_has_no_effect sends it to the worker', async () => {
    for (const [date, flags, prefers] of NAVIGATION_CASES) {
      await deploy(await project(`nav-${date}-${flags.join('')}`, navigationProject(date, flags, 'single-page-application', { 'dist/index.html': '<div id=app></div>' })));
      const page = await get('nav', '/users/7', NAVIGATE);
      assert.equal(page.status, 200);
      assert.equal(await page.text(), prefers ? '<div id=app></div>' : 'worker /users/7', `${date} ${flags}`);
      // Anything but a navigation goes to the worker either way.
      assert.equal(await (await get('nav', '/users/7')).text(), 'worker /users/7');
      assert.equal(await (await get('nav', '/users/7', { headers: { 'sec-fetch-mode': 'cors' } })).text(), 'worker /users/7');
    }
  });

  test('assets alone: 404-page, single-page-application and force-trailing-slash, with 404 and 405 where nothing matches', async () => {
    const pages = await project('pages', {
      'wrangler.toml': 'name = "pages"\n[assets]\ndirectory = "dist"\nnot_found_handling = "404-page"\nhtml_handling = "force-trailing-slash"\n',
      'dist/index.html': 'home',
      'dist/guide.html': 'guide',
      'dist/404.html': 'not here',
      'dist/blog/404.html': 'no such post',
    });
    const deployed = await deploy(pages);
    assert.doesNotMatch(deployed.stdout, /Uploaded pages/); // no code to upload
    assert.equal(await (await get('pages', '/guide/')).text(), 'guide');
    const redirect = await get('pages', '/guide', { redirect: 'manual' });
    assert.equal(redirect.status, 307);
    assert.equal(redirect.headers.get('location'), '/guide/');
    const missing = await get('pages', '/blog/nope');
    assert.equal(missing.status, 404);
    assert.equal(await missing.text(), 'no such post');
    const top = await get('pages', '/nope');
    assert.equal(top.status, 404);
    assert.equal(await top.text(), 'not here');

    const spa = await project('spa', {
      'wrangler.toml': 'name = "spa"\n[assets]\ndirectory = "dist"\nnot_found_handling = "single-page-application"\n',
      'dist/index.html': '<div id=app></div>',
      'dist/main.js': 'render()',
    });
    await deploy(spa);
    for (const path of ['/', '/users/7', '/settings/profile']) {
      const response = await get('spa', path);
      assert.equal(response.status, 200, path);
      assert.equal(await response.text(), '<div id=app></div>', path);
    }
    assert.equal(await (await get('spa', '/main.js')).text(), 'render()');

    const bare = await project('bare', { 'wrangler.toml': 'name = "bare"\n[assets]\ndirectory = "dist"\n', 'dist/a.txt': 'a' });
    await deploy(bare);
    const none = await get('bare', '/b.txt');
    assert.equal(none.status, 404);
    assert.equal(await none.text(), '');
    assert.equal((await get('bare', '/a.txt', { method: 'PUT', body: 'x' })).status, 405);
  });
});
