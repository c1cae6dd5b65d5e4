// `services` in a wrangler config: read as service bindings (the deploy body's and isolet dev's),
// each field checked with a message that names it; Durable Objects stay refused by name.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, readConfig, serviceBindings } from '../src/cli/config.ts';

let root = '';
let count = 0;
before(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'isolet-services-config-')));
});
after(() => rm(root, { recursive: true, force: true }));

async function read(name: string, text: string, env?: string) {
  const path = join(root, `${++count}-${name}`);
  await writeFile(path, text);
  return readConfig(path, env);
}

test('services are read from TOML and JSON, with an optional entrypoint, per environment', async () => {
  const { config } = await read('wrangler.toml', 'name = "app"\nservices = [\n  { binding = "AUTH", service = "auth-worker" },\n  { binding = "API", service = "api", entrypoint = "Api" },\n]\n[env.staging]\nservices = [{ binding = "AUTH", service = "auth-worker-staging" }]\n');
  assert.deepEqual(config.services, [{ binding: 'AUTH', service: 'auth-worker' }, { binding: 'API', service: 'api', entrypoint: 'Api' }]);
  assert.deepEqual(serviceBindings(config.services!), {
    AUTH: { type: 'service', service: 'auth-worker' },
    API: { type: 'service', service: 'api', entrypoint: 'Api' },
  });
  const staging = (await read('wrangler.toml', 'name = "app"\nservices = [{ binding = "AUTH", service = "auth-worker" }]\n[env.staging]\nservices = [{ binding = "AUTH", service = "auth-worker-staging" }]\n', 'staging')).config;
  assert.deepEqual(staging.services, [{ binding: 'AUTH', service: 'auth-worker-staging' }]);
  const json = (await read('wrangler.jsonc', '{ "name": "app", // a comment\n "services": [{ "binding": "OTHER", "service": "other-worker" }] }')).config;
  assert.deepEqual(json.services, [{ binding: 'OTHER', service: 'other-worker' }]);
});

test('a malformed service binding names the field and the fix', async () => {
  for (const [text, field, message] of [
    ['services = { binding = "A", service = "b" }', 'services', /must be a list, e\.g\. services = \[\{ binding = "OTHER", service = "other-worker" \}\]/],
    ['services = [{ binding = "not ok", service = "b" }]', 'services[0].binding', /must be the name the worker reads as env\.NAME/],
    ['services = [{ binding = "A", service = "B_Upper" }]', 'services[0].service', /must be the name of a worker of your account/],
    ['services = [{ binding = "A", service = "b", entrypoint = "not-a-class" }]', 'services[0].entrypoint', /must be the name of a class the worker exports/],
    ['services = [{ binding = "A", service = "b" }, { binding = "A", service = "c" }]', 'services[1].binding', /'A' is bound twice/],
    ['services = [{ binding = "A", service = "b", enviroment = "x" }]', 'services[0].enviroment', /is not a key of a service binding wrangler knows\. Fix: did you mean environment\?/],
    ['services = [{ binding = "A", service = "b", environment = "production" }]', 'services[0].environment', /set service = "b-production" and remove environment/],
  ] as const) {
    await assert.rejects(read('wrangler.toml', `name = "app"\n${text}\n`), (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.equal(error.field, field, text);
      assert.match(error.message, message);
      return true;
    });
  }
});

test('durable_objects is refused by name', async () => {
  await assert.rejects(read('wrangler.toml', 'name = "app"\n[[durable_objects.bindings]]\nname = "COUNTER"\nclass_name = "Counter"\n'), /isolet does not support durable_objects \(Durable Objects\)/);
});
