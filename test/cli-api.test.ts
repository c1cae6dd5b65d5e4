// The tenant CLI (deploy, list, versions, rollback, delete, secret, tail) as a user runs it,
// against a small fake admin API that speaks docs/ADMIN_API.md. These tests pin the contract
// from the client's side: the requests the CLI sends, how it shows the answers, and the exit
// codes scripts rely on (0 ok, 1 refused, 2 usage/config, 3 unreachable).

import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { CliProcess as Cli } from './support/cli-process.ts';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, mkdir, rm, writeFile, realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { freePort } from './support/free-port.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TOKEN = 'isl_test_token';


interface Recorded {
  method: string;
  path: string;
  authorization: string | undefined;
  body: unknown;
}

interface FakeVersion {
  id: string;
  number: number;
  hash: string;
  createdAt: string;
  author: string;
  message: string;
  active: boolean;
}

/** Just enough of the admin API: workers, versions, rollback, secrets, tail; errors in the contract's shape. */
class FakeAdminApi {
  readonly server: Server;
  readonly requests: Recorded[] = [];
  workers = new Map<string, { versions: FakeVersion[]; routes: string[]; secrets: Map<string, string> }>();
  /** When set, PUT /v1/workers/:name answers 400 at the line and column where this text is in the upload. */
  rejectAt: string | undefined;
  tailEntries: unknown[] = [];
  url = '';

  constructor() {
    this.server = createServer((req, res) => void this.#handle(req, res));
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  reset(): void {
    this.requests.length = 0;
    this.workers.clear();
    this.rejectAt = undefined;
    this.tailEntries = [];
  }

  last(method: string, path: string): Recorded {
    const found = this.requests.findLast((r) => r.method === method && r.path === path);
    assert.ok(found, `no ${method} ${path} among ${this.requests.map((r) => `${r.method} ${r.path}`).join(', ')}`);
    return found;
  }

  addWorker(name: string, count: number, routes: string[] = []): void {
    const versions: FakeVersion[] = [];
    for (let n = count; n >= 1; n--) {
      versions.push({
        id: `v-${name}-${n}`,
        number: n,
        hash: `${n}`.repeat(8) + 'abcdef'.repeat(9) + '0123',
        createdAt: `2024-09-0${n}T10:00:00.000Z`,
        author: 'tok_1',
        message: n === count ? 'latest' : '',
        active: n === count,
      });
    }
    this.workers.set(name, { versions, routes, secrets: new Map([['EXISTING', 'x']]) });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url!, 'http://fake');
    const body = text === '' ? undefined : JSON.parse(text);
    this.requests.push({ method: req.method!, path: url.pathname + url.search, authorization: req.headers.authorization, body });

    const send = (status: number, value?: unknown) => {
      if (value === undefined) {
        res.writeHead(status).end();
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    };
    const fail = (status: number, code: string, message: string, location?: string) => send(status, { error: { code, message, ...(location ? { location } : {}) } });

    if (req.headers.authorization !== `Bearer ${TOKEN}`) return fail(401, 'unauthorized', 'This token is unknown or was revoked: ask the operator for a new one.');
    const [, v1, collection, name, sub, key] = url.pathname.split('/').map(decodeURIComponent);
    if (v1 !== 'v1' || collection !== 'workers') return fail(404, 'not_found', `No endpoint ${url.pathname}`);
    if (name === undefined) {
      if (req.method !== 'GET') return fail(404, 'not_found', 'no such method');
      return send(
        200,
        [...this.workers].map(([worker, w]) => ({
          name: worker,
          account: 'acct_1',
          activeVersion: w.versions.find((v) => v.active) ?? null,
          routes: w.routes,
          updatedAt: '2024-09-03T12:00:00.000Z',
        })),
      );
    }
    if (sub === undefined && req.method === 'PUT') {
      const deployment = body as { modules?: { source: string }[]; script?: string; routes?: string[]; message?: string };
      if (this.rejectAt !== undefined) {
        const source = deployment.modules?.[0]?.source ?? deployment.script ?? '';
        const before = source.slice(0, source.indexOf(this.rejectAt));
        const line = before.split('\n').length;
        const column = before.length - before.lastIndexOf('\n');
        return fail(400, 'invalid', 'Uncaught Error: boom at load', `worker.js:${line}:${column}`);
      }
      const existing = this.workers.get(name);
      const versions = existing?.versions ?? [];
      for (const version of versions) version.active = false;
      const version: FakeVersion = {
        id: `v-${name}-${versions.length + 1}`,
        number: versions.length + 1,
        hash: 'feedc0de'.repeat(8),
        createdAt: new Date().toISOString(),
        author: 'tok_1',
        message: deployment.message ?? '',
        active: true,
      };
      versions.unshift(version);
      this.workers.set(name, { versions, routes: deployment.routes ?? existing?.routes ?? [], secrets: existing?.secrets ?? new Map() });
      return send(201, { version });
    }
    const worker = this.workers.get(name);
    if (!worker) return fail(404, 'not_found', `No worker '${name}': deploy it with PUT /v1/workers/${name}.`);
    if (sub === undefined && req.method === 'DELETE') {
      this.workers.delete(name);
      return send(204);
    }
    if (sub === 'versions' && req.method === 'GET') return send(200, worker.versions);
    if (sub === 'rollback' && req.method === 'POST') {
      const ref = (body as { version?: number | string } | undefined)?.version;
      const active = worker.versions.find((v) => v.active)!;
      const target =
        ref === undefined ? worker.versions.find((v) => v.number < active.number) : worker.versions.find((v) => v.number === ref || v.id === ref);
      if (!target) return fail(404, 'not_found', `The worker '${name}' has no version ${JSON.stringify(ref)}.`);
      for (const version of worker.versions) version.active = version === target;
      return send(200, { activeVersion: target });
    }
    if (sub === 'secrets') {
      if (key === undefined && req.method === 'GET') return send(200, [...worker.secrets.keys()].map((secret) => ({ name: secret, updatedAt: '2024-09-02T08:00:00.000Z' })));
      if (key !== undefined && req.method === 'PUT') {
        worker.secrets.set(key, (body as { value: string }).value);
        return send(204);
      }
      if (key !== undefined && req.method === 'DELETE') {
        if (!worker.secrets.delete(key)) return fail(404, 'not_found', `The worker '${name}' has no secret '${key}'.`);
        return send(204);
      }
    }
    if (sub === 'tail' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.flushHeaders();
      // Entries arrive over time, as in a live tail; the stream stays open until the client goes.
      for (const entry of this.tailEntries) res.write(JSON.stringify(entry) + '\n');
      return;
    }
    return fail(404, 'not_found', `No endpoint ${req.method} ${url.pathname}`);
  }
}

const api = new FakeAdminApi();
let dir = '';
let count = 0;

before(async () => {
  await api.listen();
  dir = await realpath(await mkdtemp(join(tmpdir(), 'isolet-cli-api-')));
});
after(async () => {
  await api.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => api.reset());

/** A fresh project directory with `files`. */
async function project(files: Record<string, string>): Promise<string> {
  const cwd = join(dir, String(++count));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(join(cwd, name, '..'), { recursive: true });
    await writeFile(join(cwd, name), text);
  }
  await mkdir(cwd, { recursive: true });
  return cwd;
}

/** Runs isolet with the fake API in ISOLET_API and the token in ISOLET_API_TOKEN (unless overridden). */
async function isolet(
  args: string[],
  options: { cwd?: string; env?: Record<string, string | undefined>; stdin?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = new Cli(args, { cwd: options.cwd ?? dir, env: { ISOLET_API: api.url, ISOLET_API_TOKEN: TOKEN, ...options.env }, stdin: options.stdin });
  const { code } = await cli.exited;
  return { code, stdout: cli.stdout, stderr: cli.stderr };
}

const WORKER = [
  'export default {',
  '  async fetch(request: Request, env: { GREETING: string }): Promise<Response> {',
  '    return new Response(env.GREETING);',
  '  },',
  '};',
  '',
].join('\n');

const WRANGLER_TOML = [
  'name = "hello"',
  'main = "src/index.ts"',
  'compatibility_date = "2024-09-01"',
  'account_id = "ignored"',
  'workers_dev = false',
  'routes = ["api.example.com/v1/*", { pattern = "shop.example.com", custom_domain = true }]',
  '',
  '[vars]',
  'GREETING = "Howdy"',
  'CONFIG = { debug = true }',
  '',
  '[limits]',
  'cpu_ms = 100',
  '',
].join('\n');

describe('isolet deploy', () => {
  test('reads wrangler.toml, bundles, uploads, prints the version and where it answers', async () => {
    const cwd = await project({ 'wrangler.toml': WRANGLER_TOML, 'src/index.ts': WORKER, '.dev.vars': 'SECRET=local-only\n' });
    const { code, stdout, stderr } = await isolet(['deploy', '--message', 'first', '--var', 'EXTRA:a:b'], { cwd });
    assert.equal(code, 0, stderr);
    assert.match(stderr, /^note: wrangler\.toml: workers_dev has no effect: isolet always serves the worker at <name>\.<domain> as well as its routes$/m);
    assert.match(stdout, /^Uploaded hello \(\d+ B\)$/m);
    assert.match(stdout, /^Deployed hello version 1 \(feedc0de\)$/m);
    assert.match(stdout, /^ {2}api\.example\.com\/v1\/\*$/m);

    const put = api.last('PUT', '/v1/workers/hello');
    assert.equal(put.authorization, `Bearer ${TOKEN}`);
    const body = put.body as Record<string, unknown> & { modules: { name: string; source: string }[] };
    assert.deepEqual(Object.keys(body).sort(), ['compatibilityDate', 'limits', 'main', 'message', 'modules', 'routes', 'vars']);
    assert.equal(body.main, 'worker.js');
    assert.equal(body.modules.length, 1);
    assert.equal(body.modules[0]!.name, 'worker.js');
    assert.match(body.modules[0]!.source, /new Response\(env\.GREETING\)/);
    assert.doesNotMatch(body.modules[0]!.source, /sourceMappingURL/, 'the source map stays local');
    // vars from the file, --var over them; .dev.vars is never uploaded.
    assert.deepEqual(body.vars, { GREETING: 'Howdy', CONFIG: { debug: true }, EXTRA: 'a:b' });
    assert.deepEqual(body.limits, { cpuMs: 100 });
    assert.deepEqual(body.routes, ['api.example.com/v1/*', 'shop.example.com']);
    assert.equal(body.compatibilityDate, '2024-09-01');
    assert.equal(body.message, 'first');
    assert.doesNotMatch(JSON.stringify(body), /local-only/);
  });

  test('wrangler.jsonc, entry and --name from flags, --json output', async () => {
    const cwd = await project({
      'wrangler.jsonc': '{\n  // comment\n  "name": "from-config",\n  "vars": { "A": 1, },\n}\n',
      'other.ts': WORKER,
    });
    const { code, stdout, stderr } = await isolet(['deploy', 'other.ts', '--name', 'flag-name', '--json'], { cwd });
    assert.equal(code, 0, stderr);
    const answer = JSON.parse(stdout) as { name: string; version: { number: number; hash: string }; routes: string[]; urls: string[] };
    assert.equal(answer.name, 'flag-name');
    assert.equal(answer.version.number, 1);
    assert.deepEqual(answer.routes, []);
    assert.deepEqual((api.last('PUT', '/v1/workers/flag-name').body as { vars: unknown }).vars, { A: 1 });
  });

  test('a service-worker script uploads as `script`', async () => {
    const cwd = await project({ 'sw.js': "addEventListener('fetch', (event) => event.respondWith(new Response('sw')));\n" });
    const { code, stderr } = await isolet(['deploy', 'sw.js', '--name', 'sw'], { cwd });
    assert.equal(code, 0, stderr);
    const body = api.last('PUT', '/v1/workers/sw').body as { script: string; modules?: unknown; main?: unknown };
    assert.equal(body.modules, undefined);
    assert.equal(body.main, undefined);
    assert.match(body.script, /addEventListener\("fetch"/);
    assert.doesNotMatch(body.script, /sourceMappingURL/);
  });

  test('a flag --api and --token win over ISOLET_API and ISOLET_API_TOKEN', async () => {
    const cwd = await project({ 'w.ts': WORKER });
    const { code, stderr } = await isolet(['deploy', 'w.ts', '--name', 'w', '--api', api.url, '--token', TOKEN], {
      cwd,
      env: { ISOLET_API: 'http://127.0.0.1:1', ISOLET_API_TOKEN: 'wrong' },
    });
    assert.equal(code, 0, stderr);
    assert.equal(api.last('PUT', '/v1/workers/w').authorization, `Bearer ${TOKEN}`);
  });

  test('a rejected upload: file:line:col in the tenant source, exit 1', async () => {
    const cwd = await project({
      'wrangler.toml': 'name = "boom"\nmain = "src/index.ts"\n',
      'src/helper.ts': "export const x = 1;\nthrow new Error('boom at load');\n",
      'src/index.ts': "import { x } from './helper.ts';\nexport default { fetch() { return new Response(String(x)); } };\n",
    });
    api.rejectAt = 'new Error(';
    const { code, stderr } = await isolet(['deploy'], { cwd });
    assert.equal(code, 1);
    // The server's location is in the bundle; the CLI maps it back through the source map.
    assert.match(stderr, /^src\/helper\.ts:2:7: Uncaught Error: boom at load$/m);
    assert.match(stderr, /boom was not deployed \(nothing was stored\)/);
  });

  test('keys isolet does not support are refused by name and a typo gets a did-you-mean, before anything is uploaded, exit 2', async () => {
    const cwd = await project({
      'wrangler.toml': 'name = "refused"\nmain = "w.ts"\n[[durable_objects.bindings]]\nname = "D"\nclass_name = "C"\n[[queues.producers]]\nbinding = "Q"\nqueue = "q"\n',
      'w.ts': WORKER,
    });
    const refused = await isolet(['deploy'], { cwd });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /^isolet deploy: wrangler\.toml: isolet does not support durable_objects \(Durable Objects\), queues \(Queues\)\. Fix: remove them from wrangler\.toml$/m);
    await writeFile(join(cwd, 'wrangler.toml'), 'name = "typo"\nmain = "w.ts"\ncompatibilty_date = "2024-09-01"\n');
    const typo = await isolet(['deploy'], { cwd });
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /^isolet deploy: wrangler\.toml: compatibilty_date: is not a wrangler configuration key\. Fix: did you mean compatibility_date\?$/m);
    assert.equal(api.requests.length, 0);
  });

  test('--env deploys <name>-<env> with that section; --minify; .wasm imports upload as base64 modules', async () => {
    const cwd = await project({
      'wrangler.toml': 'name = "shop"\nmain = "src/index.ts"\ncompatibility_flags = ["url_standard"]\n[vars]\nMODE = "top"\n[env.staging.vars]\nMODE = "staging"\n',
      'src/index.ts': "import add from './add.wasm';\nexport default { fetch(request: Request, env: { MODE: string }) { const longVariableName = env.MODE; return new Response(longVariableName + String(add)); } };\n",
      'src/add.wasm': '',
    });
    await writeFile(join(cwd, 'src', 'add.wasm'), new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
    const { code, stderr } = await isolet(['deploy', '--env', 'staging', '--minify'], { cwd });
    assert.equal(code, 0, stderr);
    const body = api.last('PUT', '/v1/workers/shop-staging').body as { vars: unknown; compatibilityFlags: unknown; modules: { name: string; source: string; type?: string }[] };
    assert.deepEqual(body.vars, { MODE: 'staging' });
    assert.deepEqual(body.compatibilityFlags, ['url_standard']);
    assert.doesNotMatch(body.modules[0]!.source, /longVariableName/, 'minified');
    assert.equal(body.modules[1]!.type, 'wasm');
    assert.equal(body.modules[1]!.source, 'AGFzbQEAAAA=');
    assert.match(body.modules[0]!.source, new RegExp(`"\\./${body.modules[1]!.name.replace('.', '\\.')}"`));
  });

  test('a worker that does not build: file:line:col, nothing uploaded, exit 1', async () => {
    const cwd = await project({ 'bad.ts': 'export default { fetch() { return new Response("x") }\n' });
    const { code, stderr } = await isolet(['deploy', 'bad.ts', '--name', 'bad'], { cwd });
    assert.equal(code, 1);
    assert.match(stderr, /^bad\.ts:\d+:\d+: /m);
    assert.equal(api.requests.length, 0);
  });

  test('an invalid config: names the file and the field, exit 2, nothing uploaded', async () => {
    const cwd = await project({ 'wrangler.toml': 'name = "x"\nmain = "w.ts"\n[limits]\ncpu_ms = "fast"\n', 'w.ts': WORKER });
    const { code, stderr } = await isolet(['deploy'], { cwd });
    assert.equal(code, 2);
    assert.match(stderr, /wrangler\.toml: limits\.cpu_ms: must be a positive number of milliseconds/);
    assert.equal(api.requests.length, 0);
  });

  test('no name, no entry, a bad name, a missing entry: exit 2', async () => {
    const cwd = await project({ 'w.ts': WORKER });
    let result = await isolet(['deploy', 'w.ts'], { cwd });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /no worker name: set name = "my-worker" in wrangler\.toml, or pass --name my-worker/);
    result = await isolet(['deploy', '--name', 'w'], { cwd });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /no entry: set main = "src\/index\.ts"/);
    result = await isolet(['deploy', 'w.ts', '--name', 'Not_Valid'], { cwd });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /'Not_Valid' is not a valid worker name/);
    result = await isolet(['deploy', 'nope.ts', '--name', 'w'], { cwd });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /no such file: nope\.ts/);
    assert.equal(api.requests.length, 0);
  });

  test('no token: says how to set one, exit 2', async () => {
    const cwd = await project({ 'w.ts': WORKER });
    const { code, stderr } = await isolet(['deploy', 'w.ts', '--name', 'w'], { cwd, env: { ISOLET_API_TOKEN: undefined } });
    assert.equal(code, 2);
    assert.match(stderr, /no API token\. Fix: pass --token <token> or set ISOLET_API_TOKEN/);
  });
});

describe('exit codes shared by every API command', () => {
  let closedApi = '';
  before(async () => {
    // An address where nothing listens: a port that was free a moment ago.
    closedApi = `http://127.0.0.1:${await freePort()}`;
  });

  for (const args of [['list'], ['versions', 'w'], ['rollback', 'w'], ['delete', 'w', '--yes'], ['secret', 'list', 'w'], ['tail', 'w']]) {
    test(`${args[0]}: API not reachable -> exit 3, names the address and how to start the server`, async () => {
      const { code, stderr } = await isolet(args, { env: { ISOLET_API: closedApi } });
      assert.equal(code, 3);
      assert.match(stderr, new RegExp(`cannot reach the isolet admin API at ${closedApi.replaceAll('.', '\\.')} \\(connection refused\\)`));
      assert.match(stderr, /isolet serve/);
    });
  }

  test('a wrong token: the server says no, exit 1 with a hint', async () => {
    const { code, stderr } = await isolet(['list'], { env: { ISOLET_API_TOKEN: 'wrong' } });
    assert.equal(code, 1);
    assert.match(stderr, /token is unknown or was revoked.*\(check --token or ISOLET_API_TOKEN\)/);
  });

  test('no token: exit 2 for every command', async () => {
    for (const args of [['list'], ['versions', 'w'], ['secret', 'list', 'w']]) {
      const { code, stderr } = await isolet(args, { env: { ISOLET_API_TOKEN: undefined } });
      assert.equal(code, 2, args.join(' '));
      assert.match(stderr, /ISOLET_API_TOKEN/);
    }
  });

  test('an --api that is not a URL: exit 2', async () => {
    const { code, stderr } = await isolet(['list', '--api', 'not a url']);
    assert.equal(code, 2);
    assert.match(stderr, /'not a url' is not a URL/);
  });

  test('every command documents its exit codes in --help', async () => {
    for (const name of ['deploy', 'list', 'versions', 'rollback', 'delete', 'secret', 'tail']) {
      const { code, stdout } = await isolet([name, '--help']);
      assert.equal(code, 0);
      assert.match(stdout, new RegExp(`^Usage: isolet ${name}`));
      assert.match(stdout, /^Exit codes:\n {2}0 .*\n {2}1 .*\n {2}2 .*\n {2}3 +could not reach the admin API/m);
      assert.match(stdout, /--json/);
    }
  });

  test('usage errors: exit 2 with the usage', async () => {
    for (const [args, message] of [
      [['versions'], /missing <name>/],
      [['rollback'], /missing <name>/],
      [['secret'], /missing what to do/],
      [['secret', 'get', 'w'], /unknown action 'get'/],
      [['secret', 'put', 'w'], /missing <KEY>/],
      [['secret', 'put', 'w', 'K', 'value'], /unexpected argument 'value' \(the value is read from stdin\)/],
      [['list', '--nope'], /Unknown option '--nope'/],
    ] as const) {
      const { code, stderr } = await isolet([...args]);
      assert.equal(code, 2, args.join(' '));
      assert.match(stderr, message);
      assert.match(stderr, /Usage: isolet /);
    }
  });
});

describe('list, versions, rollback, delete', () => {
  test('list: an aligned table, or JSON', async () => {
    api.addWorker('alpha', 3, ['alpha.example.com/*']);
    api.addWorker('b', 1);
    const { code, stdout } = await isolet(['list']);
    assert.equal(code, 0);
    assert.equal(
      stdout,
      [
        'NAME   VERSION  ROUTES               UPDATED',
        'alpha  3        alpha.example.com/*  2024-09-03 12:00:00Z',
        'b      1        -                    2024-09-03 12:00:00Z',
        '',
      ].join('\n'),
    );
    const json = await isolet(['list', '--json']);
    assert.equal(json.code, 0);
    const workers = JSON.parse(json.stdout) as { name: string; activeVersion: { number: number } }[];
    assert.deepEqual(workers.map((w) => [w.name, w.activeVersion.number]), [['alpha', 3], ['b', 1]]);
  });

  test('list with no workers says how to deploy one', async () => {
    const { code, stdout } = await isolet(['list']);
    assert.equal(code, 0);
    assert.match(stdout, /No workers yet\. Deploy one with 'isolet deploy'/);
  });

  test('list --account asks for that account', async () => {
    const { code } = await isolet(['list', '--account', 'acme']);
    assert.equal(code, 0);
    api.last('GET', '/v1/workers?account=acme');
  });

  test('versions: newest first, the active one marked, hash prefix; JSON as the server sent it', async () => {
    api.addWorker('alpha', 2);
    const { code, stdout } = await isolet(['versions', 'alpha']);
    assert.equal(code, 0);
    const lines = stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^ {3}VERSION {2}HASH {10}CREATED {15}AUTHOR {2}MESSAGE$/);
    assert.match(lines[1]!, /^\* {2}2 {8}22222222abcd {2}2024-09-02 10:00:00Z {2}tok_1 {3}latest$/);
    assert.match(lines[2]!, /^ {3}1 {8}11111111abcd {2}2024-09-01 10:00:00Z {2}tok_1$/);
    const json = await isolet(['versions', 'alpha', '--json']);
    assert.equal((JSON.parse(json.stdout) as unknown[]).length, 2);
  });

  test('versions of a worker that does not exist: the server message, exit 1', async () => {
    const { code, stderr } = await isolet(['versions', 'ghost']);
    assert.equal(code, 1);
    assert.match(stderr, /^isolet versions: No worker 'ghost'/m);
  });

  test('rollback: to the previous version by default, or to a number or id', async () => {
    api.addWorker('alpha', 3);
    let result = await isolet(['rollback', 'alpha']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(api.last('POST', '/v1/workers/alpha/rollback').body, {});
    assert.equal(result.stdout, 'alpha now serves version 2 (22222222)\n');

    result = await isolet(['rollback', 'alpha', '3', '--json']);
    assert.equal(result.code, 0);
    assert.deepEqual(api.last('POST', '/v1/workers/alpha/rollback').body, { version: 3 });
    assert.equal((JSON.parse(result.stdout) as { activeVersion: { number: number } }).activeVersion.number, 3);

    result = await isolet(['rollback', 'alpha', 'v-alpha-1']);
    assert.equal(result.code, 0);
    assert.deepEqual(api.last('POST', '/v1/workers/alpha/rollback').body, { version: 'v-alpha-1' });

    result = await isolet(['rollback', 'alpha', '9']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /has no version 9/);
  });

  test('delete: without a terminal it needs --yes (exit 2), then deletes', async () => {
    api.addWorker('alpha', 1);
    let result = await isolet(['delete', 'alpha']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /refusing to delete alpha without confirmation: no terminal to ask on\. Fix: add --yes/);
    assert.equal(api.requests.length, 0);

    result = await isolet(['delete', 'alpha', '--yes']);
    assert.equal(result.code, 0);
    assert.equal(result.stdout, 'Deleted alpha\n');
    api.last('DELETE', '/v1/workers/alpha');

    result = await isolet(['delete', 'alpha', '-y', '--json']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /No worker 'alpha'/);
  });
});

describe('isolet secret', () => {
  test('put reads the value from stdin and drops one trailing newline', async () => {
    api.addWorker('alpha', 1);
    const { code, stdout } = await isolet(['secret', 'put', 'alpha', 'DB_URL'], { stdin: 'postgres://u:p@h/db\n' });
    assert.equal(code, 0);
    assert.equal(stdout, 'Stored secret DB_URL of alpha\n');
    assert.deepEqual(api.last('PUT', '/v1/workers/alpha/secrets/DB_URL').body, { value: 'postgres://u:p@h/db' });

    // Only one newline: a value that ends in a blank line keeps the rest.
    await isolet(['secret', 'put', 'alpha', 'MULTI'], { stdin: 'a\nb\n\n' });
    assert.deepEqual(api.last('PUT', '/v1/workers/alpha/secrets/MULTI').body, { value: 'a\nb\n' });
  });

  test('list shows names, never values; delete removes one', async () => {
    api.addWorker('alpha', 1);
    let result = await isolet(['secret', 'list', 'alpha']);
    assert.equal(result.code, 0);
    assert.equal(result.stdout, 'NAME      UPDATED\nEXISTING  2024-09-02 08:00:00Z\n');

    result = await isolet(['secret', 'delete', 'alpha', 'EXISTING', '--json']);
    assert.equal(result.code, 0);
    assert.deepEqual(JSON.parse(result.stdout), { worker: 'alpha', secret: 'EXISTING', deleted: true });
    api.last('DELETE', '/v1/workers/alpha/secrets/EXISTING');

    result = await isolet(['secret', 'list', 'alpha', '--json']);
    assert.deepEqual(JSON.parse(result.stdout), []);

    result = await isolet(['secret', 'delete', 'alpha', 'EXISTING']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /has no secret 'EXISTING'/);
  });
});

describe('isolet tail', () => {
  const entries = [
    { time: '2024-09-01T10:00:00.000Z', worker: 'alpha', level: 'log', type: 'console', message: 'hello from the worker' },
    { time: '2024-09-01T10:00:00.100Z', worker: 'alpha', level: 'error', type: 'exception', message: 'Uncaught TypeError: x is not a function' },
    {
      time: '2024-09-01T10:00:00.200Z',
      worker: 'alpha',
      level: 'info',
      type: 'request',
      message: 'GET http://alpha.localhost/path?q=1 200',
      method: 'GET',
      url: 'http://alpha.localhost/path?q=1',
      status: 200,
      cpuMs: 0.3,
      wallMs: 1.2,
    },
  ];

  async function tail(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    api.addWorker('alpha', 1);
    api.tailEntries = entries;
    const cli = new Cli(['tail', 'alpha', ...args], { cwd: dir, env: { ISOLET_API: api.url, ISOLET_API_TOKEN: TOKEN } });
    await cli.waitFor('stdout', /cpu|"cpuMs"/);
    cli.child.kill('SIGINT');
    const { code } = await cli.exited;
    return { code, stdout: cli.stdout, stderr: cli.stderr };
  }

  test('prints entries readably: time, level, message; requests with status, CPU and wall time; Ctrl-C is exit 0', async () => {
    const { code, stdout, stderr } = await tail([]);
    assert.equal(code, 0, stderr);
    const lines = stdout.trimEnd().split('\n');
    assert.equal(lines.length, 3);
    const time = '(?:\\d{4}-\\d{2}-\\d{2} )?\\d{2}:\\d{2}:\\d{2}\\.\\d{3}';
    assert.match(lines[0]!, new RegExp(`^${time} {2}log {4}hello from the worker$`));
    assert.match(lines[1]!, new RegExp(`^${time} {2}error {2}exception: Uncaught TypeError: x is not a function$`));
    assert.match(lines[2]!, new RegExp(`^${time} {2}info {3}GET /path\\?q=1 200 cpu 0\\.3 ms wall 1\\.2 ms$`));
    assert.equal(api.last('GET', '/v1/workers/alpha/tail').authorization, `Bearer ${TOKEN}`);
  });

  test('--json prints the raw entries, one per line', async () => {
    const { code, stdout } = await tail(['--json']);
    assert.equal(code, 0);
    assert.deepEqual(stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as unknown), entries);
  });

  test('the filters go to the server as the query; wrong ones are usage errors before anything is sent', async () => {
    const { code } = await tail(['--status', '5xx,404', '--status', 'error', '--method', 'post', '--search', 'check out', '--sampling-rate', '0.5']);
    assert.equal(code, 0);
    api.last('GET', '/v1/workers/alpha/tail?status=5xx%2C404%2Cerror&method=post&search=check+out&sample=0.5');
    for (const [flags, message] of [
      [['--status', 'sometimes'], /Invalid status filter 'sometimes'/],
      [['--sampling-rate', '0'], /--sampling-rate must be a number above 0 and at most 1/],
      [['--sampling-rate', 'half'], /--sampling-rate must be a number above 0 and at most 1/],
      [['--method', 'GE T'], /Invalid method filter/],
    ] as const) {
      const refused = await isolet(['tail', 'alpha', ...flags]);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, message);
    }
  });

  test('tail of a worker that does not exist: exit 1', async () => {
    const { code, stderr } = await isolet(['tail', 'ghost']);
    assert.equal(code, 1);
    assert.match(stderr, /No worker 'ghost'/);
  });
});
