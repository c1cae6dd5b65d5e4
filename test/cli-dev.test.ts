// The CLI as a user runs it: `node bin/isolet.js ...` in a child process. Every wait is for a
// line of output or an exit, never for a length of time.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CliProcess, ROOT } from './support/cli-process.ts';
import { mkdtemp, writeFile, rename, rm, realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';


type Cli = CliProcess;

function cliIn(args: string[], cwd = ROOT): Cli {
  return new CliProcess(args, { cwd });
}

async function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = cliIn(args);
  const { code } = await cli.exited;
  return { code, stdout: cli.stdout, stderr: cli.stderr };
}

/** Replaces a file the way careful editors do (write aside, rename over), so a watcher never sees it half written. */
async function save(path: string, text: string): Promise<void> {
  await writeFile(path + '.tmp', text);
  await rename(path + '.tmp', path);
}

async function get(base: string, path = '/'): Promise<{ status: number; text: string }> {
  const response = await fetch(base + path);
  return { status: response.status, text: await response.text() };
}

describe('isolet CLI: commands and usage', () => {
  test('version prints isolet, Node, V8 and isolated-vm versions', async () => {
    const { code, stdout } = await run(['version']);
    assert.equal(code, 0);
    assert.match(stdout, /^isolet \d+\.\d+\.\d+\n/);
    assert.match(stdout, new RegExp(`^node ${process.versions.node.replaceAll('.', '\\.')}$`, 'm'));
    assert.match(stdout, new RegExp(`^v8 ${process.versions.v8.replaceAll('.', '\\.')}$`, 'm'));
    // The install builds isolet's isolated-vm (test/isolated-vm-build.test.ts checks the build).
    assert.match(stdout, /^isolated-vm \d+\.\d+\.\d+ \(isolet build, patches [0-9a-f]{16}\)$/m);
  });

  test('help and --help list the commands, exit 0', async () => {
    for (const args of [['help'], ['--help']]) {
      const { code, stdout } = await run(args);
      assert.equal(code, 0);
      assert.match(stdout, /^Usage: isolet <command>/);
      assert.match(stdout, /^ {2}dev /m);
      assert.match(stdout, /^ {2}version /m);
    }
  });

  test('help for one command, and <command> --help', async () => {
    for (const args of [['help', 'dev'], ['dev', '--help'], ['dev', '-h']]) {
      const { code, stdout } = await run(args);
      assert.equal(code, 0);
      assert.match(stdout, /^Usage: isolet dev <entry> \[--port 8787\] \[--ip 127\.0\.0\.1\] \[--var KEY:VALUE\]\.\.\./);
    }
  });

  test('an unknown command is a usage error: stderr, exit 2', async () => {
    const { code, stdout, stderr } = await run(['frobnicate']);
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.match(stderr, /unknown command 'frobnicate'/);
    assert.match(stderr, /Usage: isolet <command>/);
  });

  test('no command at all is a usage error', async () => {
    const { code, stderr } = await run([]);
    assert.equal(code, 2);
    assert.match(stderr, /Usage: isolet <command>/);
  });

  for (const [what, args, message] of [
    ['an unknown flag', ['dev', 'x.ts', '--nope'], /Unknown option '--nope'/],
    ['a missing entry argument', ['dev'], /missing <entry>/],
    ['two entries', ['dev', 'a.ts', 'b.ts'], /unexpected argument 'b\.ts'/],
    ['a bad port', ['dev', 'a.ts', '--port', 'eighty'], /--port must be a number/],
    ['a --var without a colon', ['dev', 'a.ts', '--var', 'NOCOLON'], /--var takes KEY:VALUE/],
  ] as const) {
    test(`dev with ${what}: usage error, exit 2`, async () => {
      const { code, stderr } = await run([...args]);
      assert.equal(code, 2);
      assert.match(stderr, message);
      assert.match(stderr, /Usage: isolet dev/);
    });
  }

  test('dev with an entry that does not exist: exit 1, says so', async () => {
    const { code, stderr } = await run(['dev', 'no/such/worker.ts', '--port', '0']);
    assert.equal(code, 1);
    assert.match(stderr, /no such file: no\/such\/worker\.ts/);
  });
});

// The timeout only turns a hang (a reload that never comes) into a failure; nothing is timed.
describe('isolet dev', { timeout: 120_000 }, () => {
  let dir = '';
  const running: Cli[] = [];

  before(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'isolet-dev-')));
  });
  after(async () => {
    for (const cli of running) cli.kill();
    await Promise.all(running.map((cli) => cli.exited));
    await rm(dir, { recursive: true, force: true });
  });

  function start(args: string[], cwd = dir): Cli {
    const cli = cliIn(['dev', ...args], cwd);
    running.push(cli);
    return cli;
  }

  async function listening(cli: Cli): Promise<string> {
    const match = await cli.waitFor('stdout', /^listening on (http:\/\/127\.0\.0\.1:(\d+))$/m);
    assert.notEqual(match[2], '0', 'prints the real port, not 0');
    return match[1]!;
  }

  test('serves, reloads on change, survives a syntax error, exits 0 on SIGTERM', async () => {
    await save(
      join(dir, 'worker.ts'),
      [
        "import { version } from './version.ts';",
        'export default {',
        '  async fetch(request: Request, env: { NAME: string }): Promise<Response> {',
        "    console.log('serving', new URL(request.url).pathname);",
        "    return new Response(`${version} ${env.NAME}`);",
        '  },',
        '};',
      ].join('\n'),
    );
    await save(join(dir, 'version.ts'), "export const version: string = 'v1';\n");

    const cli = start(['worker.ts', '--port', '0', '--var', 'NAME:a:b']);
    const base = await listening(cli);
    assert.deepEqual(await get(base, '/first'), { status: 200, text: 'v1 a:b' });
    await cli.waitFor('stderr', /\[worker\] serving \/first/);

    // An imported file changes: rebuilt and reloaded.
    let mark = cli.mark();
    await save(join(dir, 'version.ts'), "export const version: string = 'v2';\n");
    await cli.waitFor('stdout', /^reloaded in \d+ ms$/m, mark);
    assert.deepEqual(await get(base), { status: 200, text: 'v2 a:b' });

    // A syntax error: reported as file:line:col, and the last good version keeps serving.
    mark = cli.mark();
    await save(join(dir, 'version.ts'), "export const version: string = 'v3\n");
    await cli.waitFor('stderr', /^version\.ts:1:\d+: .+$/m, mark);
    assert.deepEqual(await get(base), { status: 200, text: 'v2 a:b' });

    // Fixed: reloaded.
    mark = cli.mark();
    await save(join(dir, 'version.ts'), "export const version: string = 'v3';\n");
    await cli.waitFor('stdout', /^reloaded in \d+ ms$/m, mark);
    assert.deepEqual(await get(base), { status: 200, text: 'v3 a:b' });

    cli.child.kill('SIGTERM');
    const { code, signal } = await cli.exited;
    assert.equal(signal, null);
    assert.equal(code, 0);
  });

  test('a worker that never built answers 503 until it is fixed', async () => {
    const entry = join(dir, 'broken.ts');
    await save(entry, 'export default { fetch() { return new Response("fixed") }\n');
    const cli = start(['broken.ts', '--port', '0']);
    const base = await listening(cli);
    assert.match(cli.stderr, /^broken\.ts:\d+:\d+: /m);
    const before = await get(base);
    assert.equal(before.status, 503);
    assert.match(before.text, /^worker has a syntax error, fix it and save/);

    const mark = cli.mark();
    await save(entry, 'export default { fetch() { return new Response("fixed") } };\n');
    await cli.waitFor('stdout', /^reloaded in \d+ ms$/m, mark);
    assert.deepEqual(await get(base), { status: 200, text: 'fixed' });

    cli.child.kill('SIGINT');
    assert.equal((await cli.exited).code, 0);
  });

  test("a worker's fetch() reaches a backend on localhost in dev", async () => {
    const { createServer } = await import('node:http');
    const backend = createServer((_req, res) => res.end('from the backend'));
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const port = (backend.address() as import('node:net').AddressInfo).port;
    try {
      await save(join(dir, 'proxy.ts'), `export default { async fetch() { const r = await fetch('http://127.0.0.1:${port}/'); return new Response('got: ' + await r.text()); } };\n`);
      const cli = start(['proxy.ts', '--port', '0']);
      const base = await listening(cli);
      assert.deepEqual(await get(base), { status: 200, text: 'got: from the backend' });
      cli.child.kill('SIGTERM');
      assert.equal((await cli.exited).code, 0);
    } finally {
      backend.close();
    }
  });

  test('the quick-start example answers', async () => {
    const cli = start(['examples/hello/worker.ts', '--port', '0', '--var', 'GREETING:Howdy'], ROOT);
    const base = await listening(cli);
    assert.deepEqual(await get(base), { status: 200, text: 'Hello from isolet!\n' });
    const greeting = await fetch(base + '/hello/you');
    assert.equal(greeting.status, 200);
    assert.equal(((await greeting.json()) as { greeting: string }).greeting, 'Howdy, you!');
    const echo = await fetch(base + '/echo', { method: 'POST', body: 'echo me' });
    assert.equal(await echo.text(), 'echo me');
    assert.equal((await get(base, '/nope')).status, 404);
    cli.child.kill('SIGTERM');
    assert.equal((await cli.exited).code, 0);
  });
});
