// `isolet dev` with a wrangler config: main as the entry, name, vars, limits, triggers.crons (run
// with --test-scheduled), and .dev.vars merged over vars (then --var over both), as wrangler
// does. Waits are for output or exits.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CliProcess, writeProject } from './support/cli-process.ts';
import { mkdtemp, rm, realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';


type Dev = CliProcess;

function devIn(args: string[], cwd: string): Dev {
  return new CliProcess(['dev', ...args], { cwd });
}

describe('isolet dev with wrangler.toml and .dev.vars', { timeout: 120_000 }, () => {
  let dir = '';
  const running: Dev[] = [];

  before(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'isolet-dev-config-')));
  });
  after(async () => {
    for (const dev of running) dev.kill();
    await Promise.all(running.map((dev) => dev.exited));
    await rm(dir, { recursive: true, force: true });
  });

  async function project(name: string, files: Record<string, string>): Promise<string> {
    const cwd = join(dir, name);
    await writeProject(cwd, files);
    return cwd;
  }

  function start(args: string[], cwd: string): Dev {
    const dev = devIn(args, cwd);
    running.push(dev);
    return dev;
  }

  test('main is the entry; vars, then .dev.vars, then --var; the config name labels the logs', async () => {
    const cwd = await project('vars', {
      'wrangler.toml': [
        'name = "greeter"',
        'main = "src/index.ts"',
        'account_id = "x"',
        'workers_dev = false',
        '[vars]',
        'GREETING = "Hello"',
        'OVERRIDDEN = "from wrangler.toml"',
        'CONFIG = { debug = true }',
        '',
      ].join('\n'),
      '.dev.vars': '# local only\nOVERRIDDEN="from .dev.vars"\nAPI_KEY=local-secret\nFLAG=from .dev.vars\n',
      'src/index.ts': [
        'export default {',
        '  fetch(request: Request, env: Record<string, unknown>): Response {',
        "    console.log('env read');",
        '    return Response.json(env);',
        '  },',
        '};',
        '',
      ].join('\n'),
    });
    const dev = start(['--port', '0', '--var', 'FLAG:from --var'], cwd);
    const base = await dev.listening();
    assert.match(dev.stderr, /^note: wrangler\.toml: workers_dev has no effect/m);
    assert.match(dev.stderr, /^using vars from .*\.dev\.vars$/m);
    const response = await fetch(base);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {
      GREETING: 'Hello',
      OVERRIDDEN: 'from .dev.vars',
      CONFIG: { debug: true },
      API_KEY: 'local-secret',
      FLAG: 'from --var',
    });
    await dev.waitFor('stderr', /^\[greeter\] env read$/m);
    dev.child.kill('SIGTERM');
    assert.equal((await dev.exited).code, 0);
  });

  test('limits.cpu_ms from the config holds', async () => {
    const cwd = await project('limits', {
      'wrangler.jsonc': '{\n  // a tight budget\n  "main": "w.js",\n  "limits": { "cpu_ms": 1, },\n}\n',
      'w.js': [
        'export default {',
        '  fetch() {',
        '    let x = 0;',
        '    for (let i = 0; i < 5e7; i++) x = (x + i) % 7919;',
        '    return new Response(String(x));',
        '  },',
        '};',
        '',
      ].join('\n'),
    });
    const dev = start(['--port', '0'], cwd);
    const base = await dev.listening();
    const response = await fetch(base);
    await response.arrayBuffer();
    assert.equal(response.status, 503);
    dev.child.kill('SIGTERM');
    assert.equal((await dev.exited).code, 0);
  });

  test('--test-scheduled: GET /__scheduled?cron=... runs the scheduled handler, as wrangler dev does; without it the path is the worker\'s', async () => {
    const cwd = await project('scheduled', {
      'wrangler.toml': 'name = "cron-dev"\nmain = "w.ts"\n[triggers]\ncrons = ["*/5 * * * *"]\n',
      'w.ts': [
        'let last = "none";',
        'export default {',
        '  fetch(request: Request): Response { return new Response(new URL(request.url).pathname + " " + last); },',
        '  scheduled(controller: { cron: string; scheduledTime: number; noRetry(): void }): void {',
        '    if (controller.cron === "fail") throw new Error("scheduled failed on purpose");',
        '    last = controller.cron + " @" + controller.scheduledTime;',
        '  },',
        '};',
        '',
      ].join('\n'),
    });
    const dev = start(['--port', '0', '--test-scheduled'], cwd);
    const base = await dev.listening();
    const ran = await fetch(`${base}/__scheduled?cron=*/5+*+*+*+*&time=1234`);
    assert.equal(ran.status, 200);
    assert.equal(await ran.text(), 'Ran scheduled event');
    assert.equal(await (await fetch(base + '/')).text(), '/ */5 * * * * @1234');
    await dev.waitFor('stderr', /^\[cron-dev\] scheduled "\*\/5 \* \* \* \*" ok$/m);
    // The cron is taken as given, as wrangler does.
    assert.equal((await fetch(`${base}/__scheduled?cron=whatever`)).status, 200);
    const failed = await fetch(`${base}/__scheduled?cron=fail`);
    assert.equal(failed.status, 500);
    const body = await failed.text();
    assert.match(body, /^Scheduled event failed: exception\nError: scheduled failed on purpose/);
    // Its stack names the source file and line, as stderr does, not the bundle.
    assert.match(body, /^\s+at .*w\.ts:5:\d+\)?$/m);
    assert.doesNotMatch(body, /worker\.js:\d+:\d+/);
    assert.doesNotMatch(body, /isolet:runtime\.js/);
    dev.child.kill('SIGTERM');
    assert.equal((await dev.exited).code, 0);

    // Without the flag the crons do not fire here, /__scheduled is an ordinary path, and a note says how to test them.
    const plain = start(['--port', '0'], cwd);
    const plainBase = await plain.listening();
    assert.match(plain.stderr, /^note: cron triggers do not fire on their schedule in isolet dev; start it with --test-scheduled/m);
    assert.equal(await (await fetch(`${plainBase}/__scheduled?cron=x`)).text(), '/__scheduled none');
    plain.child.kill('SIGTERM');
    assert.equal((await plain.exited).code, 0);
  });

  test('crons without a scheduled handler: the worker does not load, and the message says what to add', async () => {
    const cwd = await project('no-scheduled', {
      'wrangler.toml': 'main = "w.js"\n[triggers]\ncrons = ["0 * * * *"]\n',
      'w.js': 'export default { fetch() { return new Response("x"); } };\n',
    });
    const dev = start(['--port', '0'], cwd);
    const base = await dev.listening();
    const response = await fetch(base);
    assert.equal(response.status, 503);
    assert.match(await response.text(), /cron triggers but no scheduled handler/);
    dev.child.kill('SIGTERM');
    assert.equal((await dev.exited).code, 0);
  });

  test('an invalid config: names the file and field, exit 2', async () => {
    const cwd = await project('invalid', { 'wrangler.toml': 'main = "w.js"\n[vars]\nX = nan\n', 'w.js': '' });
    const dev = start(['--port', '0'], cwd);
    assert.equal((await dev.exited).code, 2);
    assert.match(dev.stderr, /^isolet dev: wrangler\.toml: vars\.X: /m);
  });

  test('main that does not exist: exit 1, says which file and where it came from', async () => {
    const cwd = await project('missing', { 'wrangler.toml': 'main = "src/nope.ts"\n' });
    const dev = start(['--port', '0'], cwd);
    assert.equal((await dev.exited).code, 1);
    assert.match(dev.stderr, /no such file: .*src\/nope\.ts \(main in wrangler\.toml\)/);
  });

  test('a bad .dev.vars line: names the file and line, exit 2', async () => {
    const cwd = await project('devvars', { 'wrangler.toml': 'main = "w.js"\n', 'w.js': '', '.dev.vars': 'OK=1\nthis is not a var\n' });
    const dev = start(['--port', '0'], cwd);
    assert.equal((await dev.exited).code, 2);
    assert.match(dev.stderr, /\.dev\.vars:2: expected KEY=VALUE/);
  });
});
