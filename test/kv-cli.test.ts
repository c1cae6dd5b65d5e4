// `isolet kv namespace ...` and `isolet kv key ...` as a user runs them (child processes) against
// a real isolet serve in this process: what they print, the exit codes (0 ok, 1 refused, 2 usage
// or configuration), values as bytes, --binding from wrangler.toml (and its [env.NAME] with
// --env), another account's namespace refused, and --local on isolet dev's own keys.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CliProcess } from './support/cli-process.ts';
import { startTestServer, type TestAccount, type TestServer } from './server-support.ts';

describe('isolet kv', { timeout: 180_000 }, () => {
  let t: TestServer;
  let acme: TestAccount;
  let rival: TestAccount;
  let dir: string;

  before(async () => {
    t = await startTestServer();
    acme = await t.account('acme');
    rival = await t.account('rival');
    dir = await mkdtemp(join(tmpdir(), 'isolet-kv-cli-'));
  });
  after(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function kv(args: string[], options: { token?: string; stdin?: string; cwd?: string } = {}) {
    const cli = new CliProcess(['kv', ...args], {
      cwd: options.cwd ?? dir,
      stdin: options.stdin,
      env: { ISOLET_API: t.server.adminUrl, ISOLET_API_TOKEN: options.token ?? acme.token },
    });
    const { code } = await cli.exited;
    return { code, stdout: cli.stdout, stderr: cli.stderr };
  }

  test('namespaces: create prints the id and the wrangler.toml line; list; delete asks for --yes', async () => {
    const created = await kv(['namespace', 'create', 'user sessions']);
    assert.equal(created.code, 0, created.stderr);
    const id = /with id ([0-9a-f]{32})/.exec(created.stdout)![1]!;
    assert.match(created.stdout, new RegExp(`kv_namespaces = \\[\\{ binding = "USER_SESSIONS", id = "${id}" \\}\\]`));
    const listed = await kv(['namespace', 'list']);
    assert.match(listed.stdout, /^ID +TITLE +ACCOUNT +CREATED/);
    assert.match(listed.stdout, new RegExp(`${id} +user sessions +acme`));
    const json = JSON.parse((await kv(['namespace', 'list', '--json'])).stdout);
    assert.ok(json.some((n: { id: string }) => n.id === id));
    assert.equal((await kv(['namespace', 'list'], { token: rival.token })).stdout.includes(id), false);

    const again = await kv(['namespace', 'create', 'user sessions']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /titled 'user sessions' already/);

    const unconfirmed = await kv(['namespace', 'delete', id]);
    assert.equal(unconfirmed.code, 2);
    assert.match(unconfirmed.stderr, /without confirmation.*--yes/);
    const theirs = await kv(['namespace', 'delete', id, '--yes'], { token: rival.token });
    assert.equal(theirs.code, 1);
    assert.match(theirs.stderr, /No KV namespace/);
    const deleted = await kv(['namespace', 'delete', id, '--yes']);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.match(deleted.stdout, /Deleted KV namespace/);
  });

  test('keys: put from an argument, a file and stdin; get writes the value; list and delete', async () => {
    const id = JSON.parse((await kv(['namespace', 'create', 'data', '--json'])).stdout).id as string;
    const ns = ['--namespace-id', id];
    assert.equal((await kv(['key', 'put', 'greeting', 'héllo wörld', ...ns])).code, 0);
    assert.equal((await kv(['key', 'get', 'greeting', ...ns])).stdout, 'héllo wörld');

    const binary = randomBytes(4096);
    await writeFile(join(dir, 'blob.bin'), binary);
    const put = await kv(['key', 'put', 'blob', ...ns, '--path', 'blob.bin', '--ttl', '3600', '--metadata', '{"kind":"blob"}']);
    assert.equal(put.code, 0, put.stderr);
    const got = JSON.parse((await kv(['key', 'get', 'blob', ...ns, '--json'])).stdout);
    assert.ok(Buffer.from(got.valueBase64, 'base64').equals(binary), 'bytes unchanged');
    assert.deepEqual(got.metadata, { kind: 'blob' });
    assert.ok(got.expiration > Date.now() / 1000 + 3500);

    assert.equal((await kv(['key', 'put', 'piped', ...ns], { stdin: 'from stdin\n' })).code, 0);
    assert.equal((await kv(['key', 'get', 'piped', ...ns])).stdout, 'from stdin\n', 'stdin is stored as it is');

    const listed = await kv(['key', 'list', ...ns]);
    assert.match(listed.stdout, /^KEY +EXPIRES +METADATA\n/);
    assert.match(listed.stdout, /blob +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ +\{"kind":"blob"\}/);
    assert.deepEqual(JSON.parse((await kv(['key', 'list', ...ns, '--json', '--prefix', 'g'])).stdout), [{ name: 'greeting' }]);
    const page = await kv(['key', 'list', ...ns, '--limit', '1']);
    assert.match(page.stderr, /More keys follow: --cursor (\S+)/);
    const cursor = /--cursor (\S+)/.exec(page.stderr)![1]!;
    const next = JSON.parse((await kv(['key', 'list', ...ns, '--limit', '2', '--cursor', cursor, '--json'])).stdout);
    assert.deepEqual(next.keys.map((k: { name: string }) => k.name), ['greeting', 'piped']);
    assert.equal(next.list_complete, true);

    assert.equal((await kv(['key', 'delete', 'greeting', ...ns])).code, 0);
    const gone = await kv(['key', 'get', 'greeting', ...ns]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /has no key 'greeting'/);
  });

  test('--binding takes the id from wrangler.toml', async () => {
    const id = JSON.parse((await kv(['namespace', 'create', 'bound', '--json'])).stdout).id as string;
    const project = join(dir, 'project');
    await rm(project, { recursive: true, force: true });
    await mkdir(project);
    await writeFile(join(project, 'wrangler.toml'), `name = "app"\nmain = "index.js"\nkv_namespaces = [{ binding = "CACHE", id = "${id}" }]\n`);
    assert.equal((await kv(['key', 'put', 'k', 'via binding', '--binding', 'CACHE'], { cwd: project })).code, 0);
    assert.equal((await kv(['key', 'get', 'k', '--namespace-id', id])).stdout, 'via binding');
    const unknown = await kv(['key', 'get', 'k', '--binding', 'OTHER'], { cwd: project });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no KV binding 'OTHER' in .*wrangler\.toml: it has CACHE/);
  });

  test("--binding with --env takes the id of that environment's kv_namespaces (not inherited, as in wrangler)", async () => {
    const top = JSON.parse((await kv(['namespace', 'create', 'env top', '--json'])).stdout).id as string;
    const staging = JSON.parse((await kv(['namespace', 'create', 'env staging', '--json'])).stdout).id as string;
    const project = join(dir, 'envs');
    await mkdir(project, { recursive: true });
    await writeFile(join(project, 'wrangler.toml'), [
      'name = "app"', 'main = "index.js"', `kv_namespaces = [{ binding = "CACHE", id = "${top}" }]`,
      '[env.staging]', `kv_namespaces = [{ binding = "CACHE", id = "${staging}" }]`, '[env.bare]', 'name = "bare"', '',
    ].join('\n'));
    const put = await kv(['key', 'put', 'k', 'staged', '--binding', 'CACHE', '--env', 'staging'], { cwd: project });
    assert.equal(put.code, 0, put.stderr);
    assert.equal((await kv(['key', 'get', 'k', '--namespace-id', staging])).stdout, 'staged');
    assert.equal((await kv(['key', 'get', 'k', '--namespace-id', top])).code, 1, 'not the top-level namespace');
    const bare = await kv(['key', 'get', 'k', '--binding', 'CACHE', '-e', 'bare'], { cwd: project });
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /no KV binding 'CACHE' in .*wrangler\.toml \[env\.bare\]/);
  });

  test("--local reads and writes the keys isolet dev keeps for the project, with no server and the same checks", async () => {
    const project = join(dir, 'local');
    await mkdir(project, { recursive: true });
    await writeFile(join(project, 'wrangler.toml'), 'name = "app"\nmain = "index.js"\nkv_namespaces = [{ binding = "CACHE", id = "dev-cache" }]\n');
    // No ISOLET_API at all: nothing reaches a server.
    const local = async (args: string[]) => {
      const cli = new CliProcess(['kv', 'key', ...args, '--local'], { cwd: project });
      const { code } = await cli.exited;
      return { code, stdout: cli.stdout, stderr: cli.stderr };
    };
    const put = await local(['put', 'seed', 'seeded', '--binding', 'CACHE', '--metadata', '{"by":"cli"}']);
    assert.equal(put.code, 0, put.stderr);
    assert.equal((await local(['get', 'seed', '--binding', 'CACHE'])).stdout, 'seeded');
    assert.equal((await local(['get', 'seed', '--namespace-id', 'dev-cache'])).stdout, 'seeded');
    assert.deepEqual(JSON.parse((await local(['list', '--binding', 'CACHE', '--json'])).stdout), [{ name: 'seed', metadata: { by: 'cli' } }]);
    const ttl = await local(['put', 'k', 'v', '--binding', 'CACHE', '--ttl', '30']);
    assert.equal(ttl.code, 1);
    assert.match(ttl.stderr, /Invalid expiration_ttl of 30\. Expiration TTL must be at least 60\./);
    assert.equal((await local(['delete', 'seed', '--binding', 'CACHE'])).code, 0);
    const gone = await local(['get', 'seed', '--binding', 'CACHE']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /The local KV namespace 'dev-cache' \(.*\.isolet\/kv\/isolet\.db\) has no key 'seed'/);
    const namespace = await kv(['namespace', 'list', '--local']);
    assert.equal(namespace.code, 2);
    assert.match(namespace.stderr, /--local is for 'kv key'/);

    // What isolet dev then serves: the worker reads the seeded key from the same file.
    await writeFile(join(project, 'index.js'), 'export default { async fetch(request, env) { return new Response(await env.CACHE.get("again")); } };\n');
    assert.equal((await local(['put', 'again', 'from the CLI', '--binding', 'CACHE'])).code, 0);
    const dev = new CliProcess(['dev', '--port', '0'], { cwd: project });
    try {
      const base = await dev.listening();
      assert.equal(await (await fetch(base, { signal: AbortSignal.timeout(30_000) })).text(), 'from the CLI');
    } finally {
      dev.child.kill('SIGTERM');
      await dev.exited;
    }
  });

  test("limits and errors in Cloudflare's words; another account's namespace is refused; usage errors are exit 2", async () => {
    const id = JSON.parse((await kv(['namespace', 'create', 'limits', '--json'])).stdout).id as string;
    const ns = ['--namespace-id', id];
    const ttl = await kv(['key', 'put', 'k', 'v', ...ns, '--ttl', '30']);
    assert.equal(ttl.code, 1);
    assert.match(ttl.stderr, /Invalid expiration_ttl of 30\. Expiration TTL must be at least 60\./);
    const long = await kv(['key', 'put', 'k'.repeat(513), 'v', ...ns]);
    assert.equal(long.code, 1);
    assert.match(long.stderr, /exceeds key length limit of 512/);
    const theirs = await kv(['key', 'put', 'k', 'v', ...ns], { token: rival.token });
    assert.equal(theirs.code, 1);
    assert.match(theirs.stderr, /No KV namespace/);
    const readTheirs = await kv(['key', 'list', ...ns], { token: rival.token });
    assert.equal(readTheirs.code, 1);

    for (const args of [['key', 'get', 'k'], ['key', 'put', 'k', 'v', ...ns, '--metadata', '{'], ['bucket', 'list'], ['key', 'put', 'k', 'v', ...ns, '--ttl', 'soon'], ['namespace']]) {
      const usage = await kv(args);
      assert.equal(usage.code, 2, args.join(' '));
      assert.match(usage.stderr, /^isolet kv: /);
    }
    const help = await kv(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: isolet kv namespace create/);
  });
});
