// `POST /v1/workers`: many deployments of one account in one request. Each worker is checked,
// validated and answered on its own, as `PUT /v1/workers/:name` would answer it; the ones that
// pass are stored and serve, the others store nothing; one bundle is validated once. On both
// stores: SQLite, and PostgreSQL as a node of a cluster has it.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ADMIN_TOKEN, recordValidations, startTestServer, moduleDeployment, textWorker, type TestAccount, type TestServer } from './server-support.ts';
import { TestPostgres } from './support/postgres.ts';

const postgres = new TestPostgres();
after(() => postgres.close());

interface Result {
  name: string;
  status: number;
  version?: { number: number; hash: string };
  urls?: string[];
  error?: { code: string; message: string; location?: string };
}

for (const engine of ['SQLite', 'PostgreSQL'] as const) describe(engine, () => {
  let t: TestServer;
  let acme: TestAccount;
  let validated: string[] = [];

  before(async () => {
    t = await startTestServer(
      engine === 'SQLite'
        ? {}
        : { database: await postgres.database(), env: { ISOLET_ADMIN_TOKEN: ADMIN_TOKEN, ISOLET_SECRETS_KEY: randomBytes(32).toString('base64') } },
    );
    validated = recordValidations(t);
    acme = await t.account('acme');
    await t.account('globex');
    assert.equal((await t.api('PUT', '/v1/workers/theirs?account=globex', { body: textWorker('globex') })).status, 201);
  });
  after(() => t.close());

  async function bulk(workers: unknown[], options: { account?: string; token?: string } = {}): Promise<{ status: number; results: Result[]; text: string }> {
    const query = options.account === undefined ? '' : `?account=${options.account}`;
    const answer = await t.api('POST', `/v1/workers${query}`, { body: { workers }, token: options.token });
    return { status: answer.status, results: answer.body?.results ?? [], text: answer.text };
  }

  test('one bundle to many workers: each deployed and serving, validated once', async () => {
    const names = ['fleet-0', 'fleet-1', 'fleet-2', 'fleet-3'];
    const answer = await bulk(names.map((name) => ({ name, ...textWorker('fleet') })), { account: 'acme' });
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(answer.results.map((r) => [r.name, r.status, r.version?.number]), names.map((name) => [name, 201, 1]));
    assert.match(answer.results[0]!.urls![0]!, /fleet-0\.localhost/);
    assert.equal(validated.filter((name) => name.startsWith('fleet-')).length, 1);
    for (const name of names) {
      const served = await t.request(`${name}.localhost`, '/');
      assert.equal(await served.text(), 'fleet');
    }
  });

  test('each worker is answered on its own: bad names, duplicates, broken code and names taken are refused, the rest deploy', async () => {
    const answer = await bulk(
      [
        { name: 'mixed-good', ...textWorker('good') },
        { name: 'Bad_Name', ...textWorker('x') },
        { name: 'mixed-broken', ...moduleDeployment("throw new Error('broken at the top'); export default {};") },
        { name: 'mixed-good', ...textWorker('again') },
        { name: 'theirs', ...textWorker('mine now') },
        { name: 'mixed-unknown-field', ...textWorker('x'), colour: 'red' },
        'not an object',
      ],
      { account: 'acme' },
    );
    assert.equal(answer.status, 200, answer.text);
    const [good, badName, broken, duplicate, taken, unknownField, notObject] = answer.results;
    assert.equal(good!.status, 201);
    assert.equal(badName!.status, 400);
    assert.match(badName!.error!.message, /Invalid worker name/);
    assert.equal(broken!.status, 400);
    assert.match(broken!.error!.message, /broken at the top/);
    assert.equal(duplicate!.status, 400);
    assert.match(duplicate!.error!.message, /more than once/);
    assert.equal(taken!.status, 403);
    assert.match(taken!.error!.message, /is taken/);
    assert.equal(unknownField!.status, 400);
    assert.match(unknownField!.error!.message, /Unknown field 'colour'/);
    assert.equal(notObject!.status, 400);
    assert.equal(notObject!.name, 'workers[6]');

    assert.equal(await (await t.request('mixed-good.localhost', '/')).text(), 'good');
    assert.equal((await t.api('GET', '/v1/workers/mixed-broken')).status, 404, 'a refused worker stores nothing');
    assert.equal(await (await t.request('theirs.localhost', '/')).text(), 'globex', "another account's worker is untouched");
  });

  test('an account token deploys only to its own account, within its worker quota; the operator must name the account', async () => {
    const own = await bulk([{ name: 'acme-own', ...textWorker('own') }], { token: acme.token });
    assert.equal(own.results[0]!.status, 201);
    assert.equal((await bulk([{ name: 'acme-other', ...textWorker('x') }], { token: acme.token, account: 'globex' })).status, 403);
    assert.equal((await bulk([{ name: 'no-account', ...textWorker('x') }])).status, 400);

    assert.equal((await t.api('PUT', '/v1/accounts/acme/quotas', { body: { maxWorkers: 8 } })).status, 200);
    const listed = (await t.api('GET', '/v1/workers?account=acme')).body as unknown[];
    const room = 8 - listed.length;
    const over = await bulk(Array.from({ length: room + 2 }, (_, i) => ({ name: `quota-${i}`, ...textWorker('q') })), { token: acme.token });
    assert.deepEqual(over.results.map((r) => r.status), [...Array(room).fill(201), 403, 403]);
    assert.match(over.results.at(-1)!.error!.message, /quota is 8/);
  });

  test('the request itself is checked: its shape and how many workers it holds', async () => {
    assert.equal((await t.api('POST', '/v1/workers?account=acme', { body: { workers: [] } })).status, 400);
    assert.equal((await t.api('POST', '/v1/workers?account=acme', { body: [{ name: 'x' }] })).status, 400);
    const tooMany = Array.from({ length: 1001 }, (_, i) => ({ name: `many-${i}`, ...textWorker('m') }));
    const answer = await bulk(tooMany, { account: 'acme' });
    assert.equal(answer.status, 400);
    assert.match(answer.text, /1 to 1000 deployments/);
  });
});
