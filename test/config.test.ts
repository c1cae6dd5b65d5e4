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
      kvNamespaces: [],
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

  test('unknown fields are ignored with one note naming them', async () => {
    const { config, notes } = await load(
      'wrangler.toml',
      'name = "x"\naccount_id = "abc"\nworkers_dev = true\n[limits]\ncpu_ms = 10\nsubrequests = 5\n[[kv_namespaces]]\nbinding = "KV"\nid = "1"\n',
    );
    assert.equal(config.name, 'x');
    assert.equal(notes.length, 1);
    assert.match(notes[0]!, /^note: wrangler\.toml: ignoring account_id, workers_dev, limits\.subrequests \(isolet does not use them\)$/);
  });

  test('kv_namespaces: each binding and id; preview_id is not used; a bad entry names the field', async () => {
    const { config } = await load('wrangler.toml', 'kv_namespaces = [\n  { binding = "CACHE", id = "abc", preview_id = "def" },\n  { binding = "USERS", id = "0123" },\n]\n');
    assert.deepEqual(config.kvNamespaces, [{ binding: 'CACHE', id: 'abc' }, { binding: 'USERS', id: '0123' }]);
    for (const [text, message] of [
      ['kv_namespaces = { binding = "A", id = "1" }\n', /kv_namespaces: must be a list/],
      ['kv_namespaces = [{ id = "1" }]\n', /kv_namespaces\[0\]\.binding: must be the name the worker reads as env\.NAME/],
      ['kv_namespaces = [{ binding = "1A", id = "1" }]\n', /kv_namespaces\[0\]\.binding/],
      ['kv_namespaces = [{ binding = "A" }]\n', /kv_namespaces\[0\]\.id: must be the namespace's id \(isolet kv namespace create <title> prints it\)/],
      ['kv_namespaces = [{ binding = "A", id = "1" }, { binding = "A", id = "2" }]\n', /kv_namespaces\[1\]\.binding: 'A' is bound twice/],
    ] as const) {
      await assert.rejects(load('wrangler.toml', text), (error: unknown) => error instanceof ConfigError && message.test(error.message), text);
    }
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
    assert.deepEqual(notes, ['note: wrangler.jsonc: ignoring observability (isolet does not use it)']);
    assert.deepEqual(config, {
      file: join(dir, 'wrangler.jsonc'),
      name: 'hello',
      main: join(dir, 'src', 'index.ts'),
      compatibilityDate: '2024-09-01',
      vars: { GREETING: 'Howdy', CONFIG: { debug: true, list: [1, 2] } },
      routes: ['example.com/*', 'api.example.com/v1/*'],
      limits: { cpuMs: 25 },
      kvNamespaces: [],
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
    assert.deepEqual(loadConfig({ cwd: dir }), { config: { vars: {}, routes: [], limits: {}, kvNamespaces: [] }, notes: [] });
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
    assert.deepEqual(readDevVars(dir), { file: join(dir, '.dev.vars'), vars: { SECRET: 's3cret' } });
    assert.equal(readDevVars(await project({})), undefined);
  });
});

test('--var flags: KEY:VALUE, VALUE may hold colons', () => {
  assert.deepEqual(parseVarFlags(['A:1', 'URL:http://x:8']), { vars: { A: '1', URL: 'http://x:8' } });
  assert.deepEqual(parseVarFlags(['A:1', 'NOPE']), { bad: 'NOPE' });
  assert.deepEqual(parseVarFlags([':x']), { bad: ':x' });
});
