// A deployment's upload is validated (run once in an isolate apart) unless an identical one of
// the same account loaded before: the same code, vars, secrets, limits and compatibility date.
// Anything that could change how it loads is validated again, and a rejected upload is run and
// reported for every worker it is deployed to.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { recordValidations, startTestServer, moduleDeployment, textWorker, type TestServer } from './server-support.ts';

let t: TestServer;
/** The worker names the host was asked to validate, in order. */
let validated: string[] = [];

before(async () => {
  t = await startTestServer();
  validated = recordValidations(t);
  await t.account('acme');
  await t.account('globex');
});
after(() => t.close());

async function deploy(name: string, body: Record<string, unknown>, account = 'acme'): Promise<{ status: number; text: string }> {
  return t.api('PUT', `/v1/workers/${name}?account=${account}`, { body });
}

function validationsOf(name: string): number {
  return validated.filter((n) => n === name).length;
}

function deployedLine(name: string): Record<string, unknown> | undefined {
  return t.logs.findLast((line) => line.message === 'deployed' && line.worker === name);
}

test('an identical bundle deployed to a second worker is not validated again, and serves', async () => {
  const bundle = textWorker('same bundle');
  assert.equal((await deploy('same-a', bundle)).status, 201);
  assert.equal((await deploy('same-b', bundle)).status, 201);
  assert.equal(validationsOf('same-a'), 1);
  assert.equal(validationsOf('same-b'), 0);
  assert.equal(deployedLine('same-a')?.validation, 'ran');
  assert.equal(deployedLine('same-b')?.validation, 'reused');
  const answer = await t.request('same-b.localhost', '/');
  assert.equal(answer.status, 200);
  assert.equal(await answer.text(), 'same bundle');
});

test('a different bundle, vars, limits, compatibility date, secret or account is validated again', async () => {
  const source = "export default { fetch(request, env) { return new Response(String(env.GREETING)); } };";
  assert.equal((await deploy('cfg-base', moduleDeployment(source))).status, 201);
  const variants: [string, Record<string, unknown>, string?][] = [
    ['cfg-code', moduleDeployment(source + '\n// another bundle')],
    ['cfg-vars', moduleDeployment(source, { vars: { GREETING: 'hi' } })],
    ['cfg-limits', moduleDeployment(source, { limits: { startupCpuMs: 300 } })],
    ['cfg-date', moduleDeployment(source, { compatibilityDate: '2024-09-01' })],
    ['cfg-account', moduleDeployment(source), 'globex'],
  ];
  for (const [name, body, account] of variants) {
    assert.equal((await deploy(name, body, account)).status, 201, name);
    assert.equal(validationsOf(name), 1, `${name} is validated`);
  }
  // A secret is part of what the worker's code sees: the same bundle with one is validated again.
  assert.equal((await t.api('PUT', '/v1/workers/cfg-base/secrets/GREETING', { body: { value: 's3cret' } })).status, 204);
  assert.equal((await deploy('cfg-base', moduleDeployment(source))).status, 201);
  assert.equal(validationsOf('cfg-base'), 2);
});

test('a rejected bundle is validated and reported for every worker it is deployed to', async () => {
  const broken = moduleDeployment("throw new Error('top-level failure'); export default {};");
  for (const name of ['broken-a', 'broken-b']) {
    const answer = await deploy(name, broken);
    assert.equal(answer.status, 400, name);
    assert.match(answer.text, /top-level failure/);
    assert.equal(validationsOf(name), 1, `${name} is validated`);
  }
  // A second try of the same worker is run again too: nothing about a failure is remembered.
  assert.equal((await deploy('broken-a', broken)).status, 400);
  assert.equal(validationsOf('broken-a'), 2);
});
