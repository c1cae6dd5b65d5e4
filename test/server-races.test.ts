// Check-then-act races on the control plane, made deterministic: a hostile account starts a
// request whose body it holds open (past the server's first ownership check: the server has
// answered `100 Continue`), changes who owns the name meanwhile, then finishes the body. The
// server must decide on the owner at the moment it writes, so the late request fails and the
// other account's worker, secrets and traffic stay as they were.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { scrub, scrubError } from '../src/server/scrub.ts';
import { request as httpRequest } from 'node:http';
import { startTestServer, moduleDeployment, textWorker, type TestServer, type TestAccount } from './server-support.ts';

/** A request whose head is sent and whose body waits for finish(). */
interface HeldRequest {
  finish(): Promise<{ status: number; text: string }>;
}

/**
 * Sends the head with `Expect: 100-continue` and resolves once the server has answered
 * `100 Continue`. The handler's checks before the body run in the same turn as the request
 * event, so by the time the client sees the 100 they have been made.
 */
function holdRequest(adminUrl: string, method: string, path: string, token: string, body: unknown): Promise<HeldRequest> {
  const url = new URL(adminUrl);
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: url.hostname,
      port: url.port,
      method,
      path,
      agent: false,
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
        expect: '100-continue',
      },
      timeout: 60_000,
    });
    const answer = new Promise<{ status: number; text: string }>((done, fail) => {
      req.on('response', (res) => {
        let out = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (out += chunk));
        res.on('end', () => done({ status: res.statusCode ?? 0, text: out }));
        res.on('error', fail);
      });
      req.on('error', fail);
      req.on('timeout', () => req.destroy(new Error('no answer in time')));
    });
    answer.catch(() => {});
    req.on('continue', () => resolve({ finish: () => (req.end(text), answer) }));
    req.on('error', reject);
    // A server that refused at once answers without 100: the race never started.
    req.on('response', (res) => reject(new Error(`answered ${res.statusCode} before the body`)));
    req.flushHeaders();
  });
}

let t: TestServer;
let attacker: TestAccount;
let victim: TestAccount;

before(async () => {
  t = await startTestServer();
  attacker = await t.account('attacker');
  victim = await t.account('victim');
});

after(async () => {
  await t.close();
});

const SECRET = 'victim-secret-7d1f0c';

/**
 * Service-worker syntax gets env as globals once its code has run: a setter put there first
 * receives the secret and throws it into the validation error that goes back to the client.
 */
const THIEF = `
  const define = Object.defineProperty;
  Object.defineProperty = (target, name, descriptor) => {
    if (name === 'KEY') throw new Error('stolen:' + descriptor.value);
    return define(target, name, descriptor);
  };
  addEventListener('fetch', (event) => event.respondWith(new Response('thief')));
`;

/** A worker that shows its env.KEY. */
function keyEcho(label: string): Record<string, unknown> {
  return moduleDeployment(`export default { fetch(req, env) { return new Response(${JSON.stringify(label)} + ":" + String(env.KEY)); } };`);
}

/** The victim creates `name` with a secret KEY. */
async function victimCreates(name: string): Promise<void> {
  assert.equal((await t.api('PUT', `/v1/workers/${name}`, { token: victim.token, body: keyEcho('victim') })).status, 201);
  assert.equal((await t.api('PUT', `/v1/workers/${name}/secrets/KEY`, { token: victim.token, body: { value: SECRET } })).status, 204);
}

async function served(name: string): Promise<string> {
  return (await t.request(`${name}.localhost`, '/')).text();
}

describe('races on who owns a worker', () => {
  test("a deploy held open while another account creates the name is refused, and never runs with that account's secrets", async () => {
    const thief = { script: THIEF };
    const held = await holdRequest(t.server.adminUrl, 'PUT', '/v1/workers/fresh-name', attacker.token, thief);
    await victimCreates('fresh-name');
    const answer = await held.finish();
    assert.equal(answer.status, 403, answer.text);
    assert.match(answer.text, /taken/);
    assert.doesNotMatch(answer.text, new RegExp(SECRET));
    assert.ok(!JSON.stringify(t.logs).includes(SECRET), 'the secret is in no log line');
    assert.equal(await served('fresh-name'), `victim:${SECRET}`);
    const versions = await t.api('GET', '/v1/workers/fresh-name/versions', { token: victim.token });
    assert.equal(versions.body.length, 1);
  });

  test('a deploy held open while its own worker is deleted and the name taken by another account is refused', async () => {
    assert.equal((await t.api('PUT', '/v1/workers/handover', { token: attacker.token, body: textWorker('attacker') })).status, 201);
    const held = await holdRequest(t.server.adminUrl, 'PUT', '/v1/workers/handover', attacker.token, { script: THIEF });
    assert.equal((await t.api('DELETE', '/v1/workers/handover', { token: attacker.token })).status, 204);
    await victimCreates('handover');
    const answer = await held.finish();
    assert.equal(answer.status, 403, answer.text);
    assert.doesNotMatch(answer.text, new RegExp(SECRET));
    assert.equal(await served('handover'), `victim:${SECRET}`);
  });

  test("a secret PUT held open while the name changes hands is a 404 and writes nothing into the other account's worker", async () => {
    assert.equal((await t.api('PUT', '/v1/workers/plant', { token: attacker.token, body: keyEcho('attacker') })).status, 201);
    const held = await holdRequest(t.server.adminUrl, 'PUT', '/v1/workers/plant/secrets/KEY', attacker.token, { value: 'planted' });
    assert.equal((await t.api('DELETE', '/v1/workers/plant', { token: attacker.token })).status, 204);
    assert.equal((await t.api('PUT', '/v1/workers/plant', { token: victim.token, body: keyEcho('victim') })).status, 201);
    const answer = await held.finish();
    assert.equal(answer.status, 404, answer.text);
    assert.equal(await served('plant'), 'victim:undefined');
    assert.deepEqual((await t.api('GET', '/v1/workers/plant/secrets', { token: victim.token })).body, []);
  });

  test('a secret DELETE after the name changed hands is a 404 and leaves the secret', async () => {
    assert.equal((await t.api('PUT', '/v1/workers/unplant', { token: attacker.token, body: keyEcho('attacker') })).status, 201);
    // DELETE has no body to hold: the attacker's view of ownership is from before the change.
    assert.equal((await t.api('DELETE', '/v1/workers/unplant', { token: attacker.token })).status, 204);
    await victimCreates('unplant');
    assert.equal((await t.api('DELETE', '/v1/workers/unplant/secrets/KEY', { token: attacker.token })).status, 404);
    assert.equal(await served('unplant'), `victim:${SECRET}`);
  });

  test('a rollback held open while the name changes hands is a 404 and changes nothing', async () => {
    assert.equal((await t.api('PUT', '/v1/workers/rewind', { token: attacker.token, body: textWorker('a1') })).status, 201);
    assert.equal((await t.api('PUT', '/v1/workers/rewind', { token: attacker.token, body: textWorker('a2') })).status, 201);
    const held = await holdRequest(t.server.adminUrl, 'POST', '/v1/workers/rewind/rollback', attacker.token, { version: 1 });
    assert.equal((await t.api('DELETE', '/v1/workers/rewind', { token: attacker.token })).status, 204);
    assert.equal((await t.api('PUT', '/v1/workers/rewind', { token: victim.token, body: textWorker('v1') })).status, 201);
    assert.equal((await t.api('PUT', '/v1/workers/rewind', { token: victim.token, body: textWorker('v2') })).status, 201);
    const answer = await held.finish();
    assert.equal(answer.status, 404, answer.text);
    assert.equal(await served('rewind'), 'v2');
    const versions = await t.api('GET', '/v1/workers/rewind/versions', { token: victim.token });
    assert.deepEqual(versions.body.map((v: { active: boolean }) => v.active), [true, false]);
  });
});

describe('secret values never travel in errors', () => {
  test('a script that hooks the binding of its env reads no secret during validation', async () => {
    const owner = await t.account('scrubbed');
    assert.equal((await t.api('PUT', '/v1/workers/quoter', { token: owner.token, body: { script: 'addEventListener("fetch", (e) => e.respondWith(new Response("ok")));' } })).status, 201);
    const value = 'own-secret-5a9e2b';
    assert.equal((await t.api('PUT', '/v1/workers/quoter/secrets/KEY', { token: owner.token, body: { value } })).status, 204);
    // The sandbox binds env with built-ins captured before the script ran: the hook never fires.
    const answer = await t.api('PUT', '/v1/workers/quoter', { token: owner.token, body: { script: THIEF } });
    assert.equal(answer.status, 201, answer.text);
    assert.doesNotMatch(answer.text, new RegExp(value));
    assert.ok(!JSON.stringify(t.logs).includes(value));
  });

  test('an error that quotes a secret value is scrubbed before it is answered or logged', () => {
    const error = new Error('stolen:own-secret-5a9e2b at main.js');
    const scrubbed = scrubError(error, ['own-secret-5a9e2b']) as Error;
    assert.equal(scrubbed.message, 'stolen:[redacted] at main.js');
    assert.ok(!String(scrubbed.stack).includes('own-secret-5a9e2b'));
    assert.equal(scrub('a secret: s3cr3t, and again s3cr3t', ['s3cr3t']), 'a secret: [redacted], and again [redacted]');
  });
});
