// The tenant CLI end to end against a real `isolet serve` (a child process on 127.0.0.1, ports
// 0, a temporary data dir): deploy a project with wrangler.toml, reach it on the data plane by
// Host, list, versions, rollback, secrets seen in env, tail showing the request, delete.
// Every wait is for output, an answer or an exit, never for a length of time.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CliProcess as Proc } from './support/cli-process.ts';
import { request as httpRequest } from 'node:http';
import { mkdtemp, mkdir, rm, writeFile, realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ADMIN_TOKEN = 'isl_cli-e2e-admin-token-0123456789abcdef';

/** A running `isolet ...` with its output collected; waits are for output. */

/** A data-plane request with a Host header (fetch() will not send one of our choosing). */
function dataPlane(base: string, host: string, path = '/'): Promise<{ status: number; text: string }> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname: url.hostname, port: url.port, path: url.pathname + url.search, headers: { host } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const worker = (version: string) =>
  [
    'interface Env { GREETING: string; CONFIG: { debug: boolean }; API_KEY?: string; LOCAL_ONLY?: string }',
    'export default {',
    '  async fetch(request: Request, env: Env): Promise<Response> {',
    `    console.log('handling', new URL(request.url).pathname);`,
    '    return Response.json({',
    `      version: '${version}',`,
    '      greeting: env.GREETING,',
    '      debug: env.CONFIG.debug,',
    '      apiKey: env.API_KEY ?? null,',
    '      localOnly: env.LOCAL_ONLY ?? null,',
    '    });',
    '  },',
    '};',
    '',
  ].join('\n');

describe('tenant CLI against a real isolet serve', { timeout: 240_000 }, () => {
  let dir = '';
  let project = '';
  let serve: Proc;
  let dataUrl = '';
  let adminUrl = '';
  let accountToken = '';
  const running: Proc[] = [];

  before(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'isolet-cli-e2e-')));
    // The project asks for cpu_ms = 2000, over a shared host's default cap.
    const args = ['serve', '--data', join(dir, 'data'), '--port', '0', '--admin-port', '0', '--ip', '127.0.0.1', '--admin-ip', '127.0.0.1', '--max-cpu-ms', '5000'];
    serve = new Proc(args, {
      cwd: dir,
      env: { ISOLET_ADMIN_TOKEN: ADMIN_TOKEN },
    });
    running.push(serve);
    dataUrl = (await serve.waitFor('stdout', /"message":"listening on (http:\/\/127\.0\.0\.1:\d+)"/))[1]!;
    adminUrl = (await serve.waitFor('stdout', /"message":"admin API on (http:\/\/127\.0\.0\.1:\d+)"/))[1]!;

    // The operator makes an account and gives its token to the tenant.
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
    const account = await fetch(`${adminUrl}/v1/accounts`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'acme' }) });
    assert.equal(account.status, 201);
    const token = await fetch(`${adminUrl}/v1/accounts/acme/tokens`, { method: 'POST', headers: admin, body: JSON.stringify({ description: 'cli' }) });
    assert.equal(token.status, 201);
    accountToken = ((await token.json()) as { token: string }).token;
    // And the zone its route is in.
    const zone = await fetch(`${adminUrl}/v1/accounts/acme/zones`, { method: 'POST', headers: admin, body: JSON.stringify({ zone: 'example.com' }) });
    assert.equal(zone.status, 201);

    project = join(dir, 'hello');
    await mkdir(join(project, 'src'), { recursive: true });
    await writeFile(
      join(project, 'wrangler.toml'),
      [
        'name = "hello"',
        'main = "src/index.ts"',
        'compatibility_date = "2024-09-01"',
        'routes = [{ pattern = "hello.example.com", custom_domain = true }]',
        '',
        '[vars]',
        'GREETING = "Howdy"',
        'CONFIG = { debug = true }',
        '',
        '[limits]',
        // Generous: a worker's first request on a loaded test machine must not trip it; that it
        // reached the server is checked through GET /v1/workers/hello.
        'cpu_ms = 2000',
        '',
      ].join('\n'),
    );
    await writeFile(join(project, '.dev.vars'), 'LOCAL_ONLY=never-uploaded\n');
    await writeFile(join(project, 'src', 'index.ts'), worker('v1'));
  });

  after(async () => {
    for (const proc of running) if (proc !== serve) proc.kill();
    if (serve && serve.child.exitCode === null) {
      serve.child.kill('SIGTERM');
      await serve.exited;
    }
    for (const proc of running) proc.kill();
    await Promise.all(running.map((proc) => proc.exited));
    await rm(dir, { recursive: true, force: true });
  });

  function start(args: string[], options: { token?: string; stdin?: string; cwd?: string } = {}): Proc {
    const proc = new Proc(args, { cwd: options.cwd ?? project, env: { ISOLET_API: adminUrl, ISOLET_API_TOKEN: options.token ?? accountToken }, stdin: options.stdin });
    running.push(proc);
    return proc;
  }

  async function isolet(args: string[], options: { token?: string; stdin?: string; cwd?: string } = {}) {
    const proc = start(args, options);
    const { code } = await proc.exited;
    return { code, stdout: proc.stdout, stderr: proc.stderr };
  }

  async function body(host: string, path = '/'): Promise<Record<string, unknown>> {
    const answer = await dataPlane(dataUrl, host, path);
    assert.equal(answer.status, 200, answer.text);
    return JSON.parse(answer.text) as Record<string, unknown>;
  }

  test('deploy -> data plane -> versions -> rollback -> secret -> tail -> list -> delete', async () => {
    // deploy: wrangler.toml read, bundled, uploaded; .dev.vars stays local.
    let result = await isolet(['deploy', '--message', 'first']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^Deployed hello version 1 \([0-9a-f]{8}\)$/m);
    assert.deepEqual(await body('hello.localhost'), { version: 'v1', greeting: 'Howdy', debug: true, apiKey: null, localOnly: null });
    const details = await fetch(`${adminUrl}/v1/workers/hello`, { headers: { authorization: `Bearer ${accountToken}` } });
    const info = (await details.json()) as { limits: { cpuMs: number }; vars: unknown; compatibilityDate: string; routes: string[] };
    assert.equal(info.limits.cpuMs, 2000);
    assert.deepEqual(info.vars, { GREETING: 'Howdy', CONFIG: { debug: true } });
    assert.equal(info.compatibilityDate, '2024-09-01');
    assert.deepEqual(info.routes, ['hello.example.com/*']);
    // The custom domain route from wrangler.toml serves it too.
    assert.equal((await body('hello.example.com', '/any/path')).version, 'v1');

    // A second version.
    await writeFile(join(project, 'src', 'index.ts'), worker('v2'));
    result = await isolet(['deploy', '-m', 'second', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const deployed = JSON.parse(result.stdout) as { name: string; version: { number: number; hash: string; message: string; active: boolean } };
    assert.equal(deployed.name, 'hello');
    assert.equal(deployed.version.number, 2);
    assert.equal(deployed.version.message, 'second');
    assert.equal(deployed.version.active, true);
    assert.equal((await body('hello.localhost')).version, 'v2');

    // versions: newest first, the active one marked.
    result = await isolet(['versions', 'hello']);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /^ +VERSION +HASH +CREATED +AUTHOR +MESSAGE$/);
    assert.match(lines[1]!, /^\* +2 +[0-9a-f]{12} +\S+ \S+ +\S+ +second$/);
    assert.match(lines[2]!, /^ +1 +[0-9a-f]{12} +\S+ \S+ +\S+ +first$/);

    // rollback: the version before the active one serves again.
    result = await isolet(['rollback', 'hello']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^hello now serves version 1 \([0-9a-f]{8}\): first$/m);
    assert.equal((await body('hello.localhost')).version, 'v1');
    result = await isolet(['rollback', 'hello', '2']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await body('hello.localhost')).version, 'v2');

    // A secret from stdin: the worker sees it in env from its next request on; the API never shows the value.
    result = await isolet(['secret', 'put', 'hello', 'API_KEY'], { stdin: 's3cret\n' });
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await body('hello.localhost')).apiKey, 's3cret');
    result = await isolet(['secret', 'list', 'hello', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const secrets = JSON.parse(result.stdout) as { name: string }[];
    assert.deepEqual(secrets.map((secret) => secret.name), ['API_KEY']);
    assert.doesNotMatch(result.stdout, /s3cret/);

    // tail: connected, then a request shows as its console line and its request line.
    const tail = start(['tail', 'hello']);
    await tail.waitFor('stderr', /^Tailing hello: waiting for logs/m);
    assert.equal((await dataPlane(dataUrl, 'hello.localhost', '/from-tail?x=1')).status, 200);
    await tail.waitFor('stdout', /^\S+ {2}info {3}GET \/from-tail\?x=1 200 cpu [\d.]+ ms wall [\d.]+ ms$/m);
    assert.match(tail.stdout, /^\S+ {2}log {4}handling \/from-tail$/m);
    tail.child.kill('SIGINT');
    assert.equal((await tail.exited).code, 0);

    // tail --json: the raw entries.
    const jsonTail = start(['tail', 'hello', '--json']);
    await jsonTail.waitFor('stderr', /^Tailing hello/m);
    await dataPlane(dataUrl, 'hello.localhost', '/json');
    const line = (await jsonTail.waitFor('stdout', /^\{.*"type":"request".*\}$/m))[0];
    const entry = JSON.parse(line) as { worker: string; status: number; method: string; cpuMs: number };
    assert.equal(entry.worker, 'hello');
    assert.equal(entry.status, 200);
    assert.equal(entry.method, 'GET');
    jsonTail.child.kill('SIGINT');
    assert.equal((await jsonTail.exited).code, 0);

    // list: the worker, its active version and its route.
    result = await isolet(['list']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^NAME +VERSION +ROUTES +UPDATED$/m);
    assert.match(result.stdout, /^hello +2 +hello\.example\.com\/\* +\S+ \S+$/m);

    // delete: refused without a terminal unless --yes; then gone from the data plane and the API.
    result = await isolet(['delete', 'hello']);
    assert.equal(result.code, 2);
    result = await isolet(['delete', 'hello', '--yes']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await dataPlane(dataUrl, 'hello.localhost')).status, 404);
    result = await isolet(['versions', 'hello']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /No worker 'hello'/);
  });

  test('an upload the server rejects: file:line:col in the tenant source, nothing stored, exit 1', async () => {
    const cwd = join(dir, 'boom');
    await mkdir(join(cwd, 'src'), { recursive: true });
    await writeFile(join(cwd, 'wrangler.toml'), 'name = "boom"\nmain = "src/index.ts"\n');
    await writeFile(join(cwd, 'src', 'setup.ts'), "export const ready = true;\nif (ready) throw new Error('cannot start');\n");
    await writeFile(
      join(cwd, 'src', 'index.ts'),
      "import { ready } from './setup.ts';\nexport default { fetch() { return new Response(String(ready)); } };\n",
    );
    const result = await isolet(['deploy'], { cwd });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^src\/setup\.ts:2:\d+: The worker threw while loading: Error: cannot start/m);
    assert.match(result.stderr, /boom was not deployed \(nothing was stored\)/);
    assert.equal((await isolet(['versions', 'boom'], { cwd })).code, 1);
  });

  test("another account's worker: the server says no, exit 1; a bad token: exit 1", async () => {
    const cwd = join(dir, 'other');
    await mkdir(cwd, { recursive: true });
    await writeFile(join(cwd, 'w.js'), "export default { fetch() { return new Response('admin') } };\n");
    // The operator deploys for another account with --account.
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
    assert.equal((await fetch(`${adminUrl}/v1/accounts`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'other' }) })).status, 201);
    let result = await isolet(['deploy', 'w.js', '--name', 'theirs'], { cwd, token: ADMIN_TOKEN });
    assert.equal(result.code, 1, 'the admin token must name the account of a new worker');
    assert.match(result.stderr, /\?account=/);
    result = await isolet(['deploy', 'w.js', '--name', 'theirs', '--account', 'other'], { cwd, token: ADMIN_TOKEN });
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await dataPlane(dataUrl, 'theirs.localhost')).text, 'admin');

    result = await isolet(['versions', 'theirs'], { cwd });
    assert.equal(result.code, 1);
    // Another account's worker does not exist for this one.
    assert.match(result.stderr, /No worker 'theirs'/);
    result = await isolet(['list', '--json'], { cwd });
    assert.equal(result.code, 0);
    assert.ok(!(JSON.parse(result.stdout) as { name: string }[]).some((w) => w.name === 'theirs'), 'an account sees only its own workers');

    result = await isolet(['list'], { cwd, token: 'isl_not-a-real-token' });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /check --token or ISOLET_API_TOKEN/);
  });
});
