// The wrangler config reader: wrangler.toml / wrangler.json / wrangler.jsonc as wrangler reads
// them, and .dev.vars. Errors must name the file, the field and the fix.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile, realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, findConfigFile, loadConfig, parseDevVars, readConfig, readDevVars, parseVarFlags } from '../src/cli/config.ts';

let root = '';
let count = 0;

before(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'isolet-config-')));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fresh directory holding `files`. */
async function project(files: Record<string, string>): Promise<string> {
  const dir = join(root, String(++count));
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

async function load(name: string, text: string) {
  const dir = await project({ [name]: text });
  return { dir, ...readConfig(join(dir, name)) };
}

function throwsConfig(fn: () => unknown, file: string, field: string | undefined, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.file, file);
    assert.equal(error.field, field);
    assert.match(error.message, message);
    return true;
  });
}

describe('wrangler.toml', () => {
  test('name, main, compatibility_date, vars with text and JSON values, routes, limits', async () => {
    const { dir, config, notes } = await load(
      'wrangler.toml',
      [
        '# a comment',
        'name = "hello"',
        'main = "src/index.ts"',
        'compatibility_date = "2024-09-01"',
        'routes = ["api.example.com/v1/*", { pattern = "shop.example.com", custom_domain = true }, { pattern = "example.com/*", zone_name = "example.com" }]',
        '',
        '[vars]',
        'GREETING = "Howdy"',
        'COUNT = 3',
        'ENABLED = true',
        'LIST = ["a", 1]',
        'NESTED = { debug = true, level = { n = 2 } }',
        '',
        '[limits]',
        'cpu_ms = 100',
      ].join('\n'),
    );
    assert.deepEqual(notes, []);
    assert.deepEqual(config, {
      file: join(dir, 'wrangler.toml'),
      name: 'hello',
      main: join(dir, 'src', 'index.ts'),
      compatibilityDate: '2024-09-01',
      vars: { GREETING: 'Howdy', COUNT: 3, ENABLED: true, LIST: ['a', 1], NESTED: { debug: true, level: { n: 2 } } },
      routes: ['api.example.com/v1/*', 'shop.example.com', 'example.com/*'],
      limits: { cpuMs: 100 },
    });
  });

  test('an unquoted TOML date is accepted as compatibility_date', async () => {
    const { config } = await load('wrangler.toml', 'compatibility_date = 2024-09-01\n');
    assert.equal(config.compatibilityDate, '2024-09-01');
  });

  test('route (one) becomes routes', async () => {
    assert.deepEqual((await load('wrangler.toml', 'route = "example.com/*"\n')).config.routes, ['example.com/*']);
    assert.deepEqual((await load('wrangler.toml', 'route = { pattern = "a.example.com", custom_domain = true }\n')).config.routes, ['a.example.com']);
  });

  test("keys about Cloudflare's own platform are accepted; workers_dev = false gets a note", async () => {
    const { config, notes } = await load(
      'wrangler.toml',
      'name = "x"\naccount_id = "abc"\nworkers_dev = false\nsend_metrics = false\n[observability]\nenabled = true\n[placement]\nmode = "smart"\n',
    );
    assert.equal(config.name, 'x');
    assert.deepEqual(notes, ['note: wrangler.toml: workers_dev has no effect: isolet always serves the worker at <name>.<domain> as well as its routes']);
  });

  test('keys isolet does not support are refused in one message naming each', async () => {
    const dir = await project({
      'wrangler.toml': 'name = "x"\n[[durable_objects.bindings]]\nname = "D"\nclass_name = "C"\n[[r2_buckets]]\nbinding = "B"\nbucket_name = "b"\n[[d1_databases]]\nbinding = "DB"\n',
    });
    throwsConfig(
      () => readConfig(join(dir, 'wrangler.toml')),
      'wrangler.toml',
      undefined,
      /^wrangler\.toml: isolet does not support durable_objects \(Durable Objects\), r2_buckets \(R2 buckets\), d1_databases \(D1 databases\)\. Fix: remove them from wrangler\.toml$/,
    );
  });

  for (const [text, field, hint] of [
    ['compatibilty_date = "2024-09-01"', 'compatibilty_date', /did you mean compatibility_date\?/],
    ['mian = "src/index.ts"', 'mian', /did you mean main\?/],
    ['[var]\nA = "1"', 'var', /did you mean vars\?/],
    ['kv_namespace = []', 'kv_namespace', /did you mean kv_namespaces\?/],
    ['[enviroments.staging]\nname = "y"', 'enviroments', /Fix: remove it$/],
    ['[limits]\ncpu = 5', 'limits.cpu', /did you mean cpu_ms\?/],
    ['[env.staging]\ncompatibilty_flags = []', 'env.staging.compatibilty_flags', /did you mean compatibility_flags\?/],
    ['[env.staging]\nkeep_vars = true', 'env.staging.keep_vars', /only be set at the top level/],
  ] as const) {
    test(`an unknown key is an error: ${field}`, async () => {
      const dir = await project({ 'wrangler.toml': text + '\n' });
      throwsConfig(() => readConfig(join(dir, 'wrangler.toml')), 'wrangler.toml', field, hint);
    });
  }

  test('compatibility flags: a typo gets a did-you-mean, a refused flag says why, nodejs_compat a note', async () => {
    const dir = await project({ 'wrangler.toml': 'compatibility_flags = ["nodejs_compt"]\n' });
    throwsConfig(() => readConfig(join(dir, 'wrangler.toml')), 'wrangler.toml', 'compatibility_flags', /does not know the compatibility flag 'nodejs_compt'\. Fix: did you mean nodejs_compat\?/);
    const old = await project({ 'wrangler.toml': 'compatibility_flags = ["url_original"]\n' });
    throwsConfig(() => readConfig(join(old, 'wrangler.toml')), 'wrangler.toml', 'compatibility_flags', /url_original is not supported: isolet has only the standard behaviour/);
    const { notes } = await load('wrangler.toml', 'compatibility_flags = ["nodejs_compat"]\n');
    assert.match(notes[0]!, /^note: wrangler\.toml: nodejs_compat: isolet has no Node\.js APIs yet/);
  });

  test('a compatibility date in the future is refused', async () => {
    const dir = await project({ 'wrangler.toml': 'compatibility_date = "2999-01-01"\n' });
    throwsConfig(() => readConfig(join(dir, 'wrangler.toml')), 'wrangler.toml', 'compatibility_date', /2999-01-01 is in the future.*Fix: set it to a date no later than today/);
  });

  test('limits.subrequests, compatibility_flags, build settings and [dev]', async () => {
    const { dir, config, notes } = await load(
      'wrangler.toml',
      [
        'compatibility_flags = ["url_standard"]',
        'minify = true',
        'keep_names = false',
        'tsconfig = "tsconfig.worker.json"',
        'jsx_factory = "h"',
        'jsx_fragment = "Fragment"',
        '[limits]',
        'subrequests = 20',
        '[define]',
        'DEBUG = "false"',
        '[alias]',
        '"lodash" = "lodash-es"',
        '"fs" = "./stubs/fs.js"',
        '[dev]',
        'port = 9000',
        'ip = "0.0.0.0"',
        'local_protocol = "http"',
      ].join('\n'),
    );
    assert.deepEqual(config.limits, { subrequests: 20 });
    assert.deepEqual(config.compatibilityFlags, ['url_standard']);
    assert.deepEqual(config.build, {
      minify: true,
      keepNames: false,
      tsconfig: join(dir, 'tsconfig.worker.json'),
      jsxFactory: 'h',
      jsxFragment: 'Fragment',
      define: { DEBUG: 'false' },
      alias: { lodash: 'lodash-es', fs: join(dir, 'stubs', 'fs.js') },
    });
    assert.deepEqual(config.dev, { port: 9000, ip: '0.0.0.0' });
    assert.deepEqual(notes, ['note: wrangler.toml: dev.local_protocol has no effect on isolet dev']);
  });

  test('[triggers] crons: the cron triggers, checked as Cloudflare checks them, and inherited by environments', async () => {
    const { config, notes } = await load('wrangler.toml', '[triggers]\ncrons = ["*/3 * * * *", "0 15 1 * *", "59 23 LW * *"]\n');
    assert.deepEqual(config.crons, ['*/3 * * * *', '0 15 1 * *', '59 23 LW * *']);
    assert.deepEqual(notes, []);
    assert.equal((await load('wrangler.toml', 'name = "x"\n')).config.crons, undefined, 'no triggers: undefined');
    assert.deepEqual((await load('wrangler.toml', '[triggers]\ncrons = []\n')).config.crons, []);
    const envs = await project({ 'wrangler.toml': 'name = "x"\n[triggers]\ncrons = ["0 * * * *"]\n[env.staging]\n[env.quiet.triggers]\ncrons = []\n' });
    assert.deepEqual(loadConfig({ cwd: envs, env: 'staging' }).config.crons, ['0 * * * *']);
    assert.deepEqual(loadConfig({ cwd: envs, env: 'quiet' }).config.crons, []);
  });

  test('a TOML syntax error names file:line:col', async () => {
    const dir = await project({ 'wrangler.toml': 'name = "x"\nmain = \n' });
    throwsConfig(() => readConfig(join(dir, 'wrangler.toml')), 'wrangler.toml:2:8', undefined, /^wrangler\.toml:2:8: .*not valid TOML/);
  });

  for (const [what, text, field, message] of [
    ['name that is not a string', 'name = 3', 'name', /must be a non-empty string/],
    ['main that is not a string', 'main = true', 'main', /main = "src\/index\.ts"/],
    ['compatibility_date in another form', 'compatibility_date = "Sept 1"', 'compatibility_date', /YYYY-MM-DD/],
    ['vars that is not a table', 'vars = "x"', 'vars', /must be a table/],
    ['routes that is not a list', 'routes = "example.com/*"', 'routes', /must be a list/],
    ['a route object without pattern', 'routes = [{ zone_name = "example.com" }]', 'routes[0].pattern', /route pattern/],
    ['a route of another type', 'routes = [3]', 'routes[0]', /pattern string/],
    ['custom_domain that is not a boolean', 'route = { pattern = "a.example.com", custom_domain = "yes" }', 'route.custom_domain', /true or false/],
    ['route and routes together', 'route = "a.example.com"\nroutes = ["b.example.com"]', 'route', /keep one of them/],
    ['limits that is not a table', 'limits = 50', 'limits', /must be a table/],
    ['limits.cpu_ms of zero', '[limits]\ncpu_ms = 0', 'limits.cpu_ms', /positive number of milliseconds/],
    ['limits.cpu_ms as text', '[limits]\ncpu_ms = "50"', 'limits.cpu_ms', /positive number/],
    ['a var that is NaN', '[vars]\nX = nan', 'vars.X', /finite number/],
    ['triggers that is not a table', 'triggers = "* * * * *"', 'triggers', /must be a table/],
    ['crons that is not a list', '[triggers]\ncrons = "* * * * *"', 'triggers.crons', /must be a list of cron expressions/],
    ['a cron with a Unix weekday', '[triggers]\ncrons = ["0 0 * * 0"]', 'triggers.crons', /Invalid cron "0 0 \* \* 0": .*1 \(Sunday\) to 7/],
    ['a cron with six fields', '[triggers]\ncrons = ["0 * * * * *"]', 'triggers.crons', /6 fields/],
    ['a trigger wrangler does not know', '[triggers]\ncron = ["0 * * * *"]', 'triggers.cron', /did you mean crons\?/],
    ['a trigger isolet does not have', '[triggers]\nevents = []', 'triggers.events', /isolet does not support Artifacts event triggers\. Fix: remove it/],
    // A typo inside a table is an error with the nearest key, as at the top level.
    ['a [dev] key wrangler does not know', '[dev]\nprot = 9999', 'dev.prot', /is not a \[dev\] key wrangler knows\. Fix: did you mean port\?/],
    ['a [dev] key far from any', '[dev]\nverbose = true', 'dev.verbose', /Fix: use ip, port, inspector_port/],
    ['a kv_namespaces key wrangler does not know', 'kv_namespaces = [{ binding = "K", id = "1", previw_id = "2" }]', 'kv_namespaces[0].previw_id', /is not a key of a kv_namespaces entry wrangler knows\. Fix: did you mean preview_id\?/],
    ['a route key wrangler does not know', 'routes = [{ pattern = "a.com/*", zone_nmae = "a.com" }]', 'routes[0].zone_nmae', /is not a key of a route wrangler knows\. Fix: did you mean zone_name\?/],
    ['a route key in route', 'route = { pattern = "a.com/*", custom_domian = true }', 'route.custom_domian', /did you mean custom_domain\?/],
    ['an [assets] key wrangler does not know', '[assets]\ndirectory = "."\nbindng = "A"', 'assets.bindng', /is not an \[assets\] key wrangler knows\. Fix: did you mean binding\?/],
    ['a limit wrangler does not know', '[limits]\ncpu = 10', 'limits.cpu', /is not a limit wrangler knows\. Fix: did you mean cpu_ms\?/],
    ['node_compat, which wrangler v4 removed', 'node_compat = true', 'node_compat', /wrangler v4 removed .*Fix: remove it; wrangler now takes compatibility_flags = \["nodejs_compat"\] instead, which isolet accepts .*no Node\.js APIs/],
    ['props of a service binding', 'services = [{ binding = "A", service = "b", props = { x = 1 } }]', 'services[0].props', /does not support props for the called worker/],
  ] as const) {
    test(`${what}: an error naming the file and the field`, async () => {
      const dir = await project({ 'wrangler.toml': text + '\n' });
      throwsConfig(() => readConfig(join(dir, 'wrangler.toml')), 'wrangler.toml', field, message);
      assert.throws(() => readConfig(join(dir, 'wrangler.toml')), { message: new RegExp(`^wrangler\\.toml: ${field.replace(/[.[\]]/g, '\\$&')}: `) });
    });
  }
});

describe('wrangler.json and wrangler.jsonc', () => {
  test('JSON with comments and trailing commas', async () => {
    const { dir, config, notes } = await load(
      'wrangler.jsonc',
      `{
        "$schema": "node_modules/wrangler/config-schema.json",
        // the worker
        "name": "hello",
        "main": "./src/index.ts", /* relative to this file */
        "compatibility_date": "2024-09-01",
        "vars": { "GREETING": "Howdy", "CONFIG": { "debug": true, "list": [1, 2,], }, },
        "routes": [ { "pattern": "example.com/*", "zone_name": "example.com" }, "api.example.com/v1/*", ],
        "limits": { "cpu_ms": 25, },
        "observability": { "enabled": true },
      }`,
    );
    assert.deepEqual(notes, []);
    assert.deepEqual(config, {
      file: join(dir, 'wrangler.jsonc'),
      name: 'hello',
      main: join(dir, 'src', 'index.ts'),
      compatibilityDate: '2024-09-01',
      vars: { GREETING: 'Howdy', CONFIG: { debug: true, list: [1, 2] } },
      routes: ['example.com/*', 'api.example.com/v1/*'],
      limits: { cpuMs: 25 },
    });
  });

  test('wrangler.json reads the same way', async () => {
    const { config } = await load('wrangler.json', '{ "name": "j", "route": "example.com/*", "vars": { "N": null } }');
    assert.equal(config.name, 'j');
    assert.deepEqual(config.routes, ['example.com/*']);
    assert.deepEqual(config.vars, { N: null });
  });

  test('a JSON syntax error names file:line:col', async () => {
    const dir = await project({ 'wrangler.jsonc': '{\n  "name": "x"\n  "main": "y"\n}' });
    throwsConfig(() => readConfig(join(dir, 'wrangler.jsonc')), 'wrangler.jsonc:3:3', undefined, /comma expected \(not valid JSON\)/);
  });

  test('a JSON file that is not an object', async () => {
    const dir = await project({ 'wrangler.json': '["name"]' });
    throwsConfig(() => readConfig(join(dir, 'wrangler.json')), 'wrangler.json', undefined, /one JSON object/);
  });

  test('a field error in JSON names the field', async () => {
    const dir = await project({ 'wrangler.json': '{ "limits": { "cpu_ms": -1 } }' });
    throwsConfig(() => readConfig(join(dir, 'wrangler.json')), 'wrangler.json', 'limits.cpu_ms', /positive/);
  });
});

describe('[env.NAME] sections', () => {
  const toml = [
    'name = "shop"',
    'main = "src/index.ts"',
    'compatibility_date = "2024-09-01"',
    'routes = ["shop.example.com/*"]',
    'minify = true',
    '[vars]',
    'MODE = "production"',
    '[define]',
    'DEBUG = "false"',
    '[limits]',
    'cpu_ms = 30',
    '[env.staging]',
    'route = "staging.example.com/*"',
    '[env.staging.vars]',
    'MODE = "staging"',
    '[env.dev]',
    'name = "shop-local"',
    'main = "src/dev.ts"',
    'minify = false',
  ].join('\n');

  test('inherited keys come from the top level, name becomes <name>-<env>, vars and define do not', async () => {
    const dir = await project({ 'wrangler.toml': toml });
    const { config, notes } = loadConfig({ cwd: dir, env: 'staging' });
    assert.equal(config.env, 'staging');
    assert.equal(config.name, 'shop-staging');
    assert.equal(config.main, join(dir, 'src', 'index.ts'));
    assert.equal(config.compatibilityDate, '2024-09-01');
    // route in the env replaces routes from the top level: the two are one setting.
    assert.deepEqual(config.routes, ['staging.example.com/*']);
    assert.deepEqual(config.vars, { MODE: 'staging' });
    assert.deepEqual(config.limits, { cpuMs: 30 });
    assert.deepEqual(config.build, { minify: true });
    assert.deepEqual(notes, [
      'note: wrangler.toml: define is not inherited by environments, so env.staging has none. Fix: repeat it under [env.staging] if the environment needs it',
    ]);
  });

  test("an env's own values win, name included", async () => {
    const dir = await project({ 'wrangler.toml': toml });
    const { config } = loadConfig({ cwd: dir, env: 'dev' });
    assert.equal(config.name, 'shop-local');
    assert.equal(config.main, join(dir, 'src', 'dev.ts'));
    assert.deepEqual(config.routes, ['shop.example.com/*']);
    assert.deepEqual(config.vars, {});
    assert.deepEqual(config.build, { minify: false });
  });

  test('without --env the top level is used and the sections are only checked', async () => {
    const dir = await project({ 'wrangler.toml': toml });
    const { config } = loadConfig({ cwd: dir });
    assert.equal(config.name, 'shop');
    assert.equal(config.env, undefined);
    assert.deepEqual(config.vars, { MODE: 'production' });
  });

  test('an unknown env is an error naming the known ones', async () => {
    const dir = await project({ 'wrangler.toml': toml });
    throwsConfig(() => loadConfig({ cwd: dir, env: 'prod' }), 'wrangler.toml', undefined, /there is no environment 'prod'\. Fix: use one of staging, dev with --env/);
    const bare = await project({ 'wrangler.toml': 'name = "x"' });
    throwsConfig(() => loadConfig({ cwd: bare, env: 'prod' }), 'wrangler.toml', undefined, /add an \[env\.prod\] section/);
    const none = await project({});
    throwsConfig(() => loadConfig({ cwd: none, env: 'prod' }), '--env', undefined, /no wrangler\.toml/);
  });

  test('a field error inside an env names env.NAME.field', async () => {
    const dir = await project({ 'wrangler.toml': 'name = "x"\n[env.staging.limits]\ncpu_ms = -1\n' });
    throwsConfig(() => loadConfig({ cwd: dir, env: 'staging' }), 'wrangler.toml', 'env.staging.limits.cpu_ms', /positive/);
  });

  test('kv_namespaces: each binding and id, per env and not inherited; preview_id is not used; a bad entry names the field', async () => {
    const { dir, config } = await load(
      'wrangler.toml',
      'name = "x"\nkv_namespaces = [\n  { binding = "CACHE", id = "abc", preview_id = "def" },\n  { binding = "USERS", id = "0123" },\n]\n[env.staging]\nkv_namespaces = [{ binding = "CACHE", id = "staging-cache" }]\n[env.bare]\n',
    );
    assert.deepEqual(config.kvNamespaces, [{ binding: 'CACHE', id: 'abc' }, { binding: 'USERS', id: '0123' }]);
    assert.deepEqual(loadConfig({ cwd: dir, env: 'staging' }).config.kvNamespaces, [{ binding: 'CACHE', id: 'staging-cache' }]);
    assert.equal(loadConfig({ cwd: dir, env: 'bare' }).config.kvNamespaces, undefined);
    for (const [text, field, message] of [
      ['kv_namespaces = { binding = "A", id = "1" }\n', 'kv_namespaces', /must be a list/],
      ['kv_namespaces = [{ id = "1" }]\n', 'kv_namespaces[0].binding', /must be the name the worker reads as env\.NAME/],
      ['kv_namespaces = [{ binding = "1A", id = "1" }]\n', 'kv_namespaces[0].binding', /env\.NAME/],
      ['kv_namespaces = [{ binding = "A" }]\n', 'kv_namespaces[0].id', /must be the namespace's id \(isolet kv namespace create <title> prints it\)/],
      ['kv_namespaces = [{ binding = "A", id = "1" }, { binding = "A", id = "2" }]\n', 'kv_namespaces[1].binding', /'A' is bound twice/],
    ] as const) {
      const bad = await project({ 'wrangler.toml': text });
      throwsConfig(() => readConfig(join(bad, 'wrangler.toml')), 'wrangler.toml', field, message);
    }
  });

  test('an unsupported key counts only in the env deployed: per-env keys are not inherited', async () => {
    const dir = await project({
      'wrangler.toml': 'name = "x"\n[[r2_buckets]]\nbinding = "B"\nbucket_name = "b"\n[env.lite]\n[env.full]\n[[env.full.queues.producers]]\nbinding = "Q"\nqueue = "q"\n',
    });
    throwsConfig(() => loadConfig({ cwd: dir }), 'wrangler.toml', undefined, /does not support r2_buckets \(R2 buckets\)\. Fix: remove it from wrangler\.toml, or keep it in an environment/);
    const lite = loadConfig({ cwd: dir, env: 'lite' });
    assert.equal(lite.config.name, 'x-lite');
    assert.match(lite.notes[0]!, /r2_buckets is not inherited by environments/);
    throwsConfig(() => loadConfig({ cwd: dir, env: 'full' }), 'wrangler.toml', undefined, /does not support env\.full\.queues \(Queues\)/);
  });

  test('env in JSON', async () => {
    const { dir } = await load('wrangler.jsonc', '{ "name": "j", "env": { "staging": { "vars": { "A": 1 } } } }');
    assert.deepEqual(loadConfig({ cwd: dir, env: 'staging' }).config, { file: join(dir, 'wrangler.jsonc'), env: 'staging', name: 'j-staging', vars: { A: 1 }, routes: [], limits: {} });
  });
});

describe('finding the config', () => {
  test("wrangler's order: wrangler.json, then wrangler.jsonc, then wrangler.toml", async () => {
    const dir = await project({ 'wrangler.toml': 'name = "t"', 'wrangler.jsonc': '{ "name": "c" }' });
    assert.equal(findConfigFile(dir), join(dir, 'wrangler.jsonc'));
    assert.equal(loadConfig({ cwd: dir }).config.name, 'c');
    await writeFile(join(dir, 'wrangler.json'), '{ "name": "j" }');
    assert.equal(loadConfig({ cwd: dir }).config.name, 'j');
  });

  test('no config file: an empty config', async () => {
    const dir = await project({});
    assert.deepEqual(loadConfig({ cwd: dir }), { config: { vars: {}, routes: [], limits: {} }, notes: [] });
  });

  test('--config names a file anywhere; main is relative to that file', async () => {
    const dir = await project({});
    await mkdir(join(dir, 'conf'));
    await writeFile(join(dir, 'conf', 'prod.toml'), 'main = "../src/w.ts"');
    assert.equal(loadConfig({ cwd: dir, configPath: 'conf/prod.toml' }).config.main, join(dir, 'src', 'w.ts'));
  });

  test('--config that does not exist is an error', async () => {
    const dir = await project({});
    throwsConfig(() => loadConfig({ cwd: dir, configPath: 'nope.toml' }), 'nope.toml', undefined, /no such file/);
  });
});

describe('.dev.vars', () => {
  test('dotenv style: comments, export, quotes, escapes, multi-line values', () => {
    const text = [
      '# secrets for local development',
      'API_KEY=abc123',
      'export TOKEN = "with spaces"  ',
      "SINGLE='literal \\n kept'",
      'DOUBLE="line\\nbreak \\"quoted\\""',
      'BARE=value # a comment',
      'EQUALS=a=b=c',
      'EMPTY=',
      'MULTI="first',
      'second"',
      '',
      'URL=https://example.com/#anchor',
    ].join('\n');
    assert.deepEqual(parseDevVars(text), {
      API_KEY: 'abc123',
      TOKEN: 'with spaces',
      SINGLE: 'literal \\n kept',
      DOUBLE: 'line\nbreak "quoted"',
      BARE: 'value',
      EQUALS: 'a=b=c',
      EMPTY: '',
      MULTI: 'first\nsecond',
      URL: 'https://example.com/#anchor',
    });
  });

  test('CRLF line ends', () => {
    assert.deepEqual(parseDevVars('A=1\r\nB="2"\r\n'), { A: '1', B: '2' });
  });

  test('a line that is not KEY=VALUE names .dev.vars and the line', () => {
    throwsConfig(() => parseDevVars('A=1\nnot a var\n'), '.dev.vars:2', undefined, /expected KEY=VALUE/);
    throwsConfig(() => parseDevVars('A="open\n'), '.dev.vars:1', 'A', /no closing "/);
  });

  test('readDevVars: the file in a directory, or undefined', async () => {
    const dir = await project({ '.dev.vars': 'SECRET=s3cret\n' });
    assert.deepEqual(readDevVars(dir), { files: [join(dir, '.dev.vars')], vars: { SECRET: 's3cret' } });
    assert.equal(readDevVars(await project({})), undefined);
  });

  test('readDevVars: without .dev.vars, the .env files as wrangler merges them (.env, .env.local, .env.<env>, .env.<env>.local), with ${NAME} expanded', async () => {
    const dir = await project({
      '.env': 'A=env\nB=env\nC=env\nD=env\nHOST=example.com\nURL=https://${HOST}/api\nBARE=$HOST\nDEFAULT=${MISSING:-fallback}\nEMPTY=\nKEPT=${EMPTY-unused}\nLITERAL=\\$HOST\n',
      '.env.local': 'B=local\nC=local\nD=local\n',
      '.env.staging': 'C=staging\nD=staging\n',
      '.env.staging.local': 'D=staging-local\n',
    });
    const base = { A: 'env', HOST: 'example.com', URL: 'https://example.com/api', BARE: 'example.com', DEFAULT: 'fallback', EMPTY: '', KEPT: '', LITERAL: '$HOST' };
    assert.deepEqual(readDevVars(dir), { files: [join(dir, '.env'), join(dir, '.env.local')], vars: { ...base, B: 'local', C: 'local', D: 'local' } });
    assert.deepEqual(readDevVars(dir, 'staging')?.vars, { ...base, B: 'local', C: 'staging', D: 'staging-local' });
    assert.equal(readDevVars(dir, 'staging')?.files.length, 4);
    // Any .dev.vars file, for the env or not, means the .env files are not read at all.
    const both = await project({ '.dev.vars': 'A=dev\n', '.env': 'A=env\nB=env\n', '.dev.vars.staging': 'A=dev-staging\n' });
    assert.deepEqual(readDevVars(both), { files: [join(both, '.dev.vars')], vars: { A: 'dev' } });
    assert.deepEqual(readDevVars(both, 'staging'), { files: [join(both, '.dev.vars.staging')], vars: { A: 'dev-staging' } });
    // wrangler's switch for the fallback.
    process.env.CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV = 'false';
    try {
      assert.equal(readDevVars(dir), undefined);
    } finally {
      delete process.env.CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV;
    }
  });
});

test('--var flags: KEY:VALUE, VALUE may hold colons', () => {
  assert.deepEqual(parseVarFlags(['A:1', 'URL:http://x:8']), { vars: { A: '1', URL: 'http://x:8' } });
  assert.deepEqual(parseVarFlags(['A:1', 'NOPE']), { bad: 'NOPE' });
  assert.deepEqual(parseVarFlags([':x']), { bad: ':x' });
});
