// Compatibility dates and flags: a date in the future and a flag isolet does not know or cannot
// honour are refused, in the config (isolet dev) and at deploy (the server decides); flags that
// only turn on what isolet always does are accepted.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { COMPATIBILITY_FLAGS, compatibilityNotes, compatibilityProblem, navigationPrefersAssets } from '../src/runtime/compatibility.ts';
import { startTestServer, textWorker, type TestServer } from './server-support.ts';

const NOW = new Date('2026-03-10T12:00:00Z');

describe('compatibilityProblem', () => {
  test('today, the past and no date are fine; tomorrow somewhere east of UTC is still today there', () => {
    assert.equal(compatibilityProblem('2026-03-10', undefined, NOW), undefined);
    assert.equal(compatibilityProblem('2021-11-03', undefined, NOW), undefined);
    assert.equal(compatibilityProblem(undefined, undefined, NOW), undefined);
    assert.equal(compatibilityProblem('2026-03-11', undefined, NOW), undefined);
  });

  test('a date in the future is refused, as workerd does', () => {
    assert.match(compatibilityProblem('2026-03-12', undefined, NOW)!, /^the compatibility date 2026-03-12 is in the future \(today is 2026-03-10\)/);
    assert.match(compatibilityProblem('2099-01-01', undefined, NOW)!, /in the future/);
  });

  test('flags: on, partial and refused ones, unknown and repeated ones', () => {
    assert.equal(compatibilityProblem(undefined, ['url_standard', 'streams_enable_constructors', 'nodejs_compat'], NOW), undefined);
    assert.match(compatibilityProblem(undefined, ['url_original'], NOW)!, /url_original is not supported: isolet has only the standard behaviour \(url_standard\)/);
    assert.match(compatibilityProblem(undefined, ['nodejs_als'], NOW)!, /AsyncLocalStorage/);
    assert.match(compatibilityProblem(undefined, ['made_up_flag'], NOW)!, /does not know the compatibility flag 'made_up_flag'/);
    assert.match(compatibilityProblem(undefined, ['url_standard', 'url_standard'], NOW)!, /given twice/);
    assert.match(compatibilityProblem(undefined, ['__proto__', 'constructor'], NOW)!, /does not know the compatibility flag '__proto__'.*'constructor'/);
    assert.match(compatibilityProblem(undefined, new Array(65).fill('url_standard'), NOW)!, /more than the 64 allowed/);
    // Each problem is named in one message.
    assert.match(compatibilityProblem('2099-01-01', ['x', 'url_original'], NOW)!, /future.*; .*'x'; .*url_original/);
  });

  test('nodejs_compat is taken in part, with a note saying what that means', () => {
    assert.deepEqual(compatibilityNotes(['url_standard']), []);
    assert.match(compatibilityNotes(['nodejs_compat'])[0]!, /^nodejs_compat: isolet has no Node\.js APIs yet: a worker that imports node:\* modules fails to bundle/);
  });

  test("static assets' navigation rule: on from 2025-04-01, assets_navigation_prefers_asset_serving turns it on earlier, assets_navigation_has_no_effect off later", () => {
    assert.equal(compatibilityProblem('2024-01-01', ['assets_navigation_prefers_asset_serving'], NOW), undefined);
    assert.equal(compatibilityProblem('2026-01-01', ['assets_navigation_has_no_effect'], NOW), undefined);
    assert.deepEqual(compatibilityNotes(['assets_navigation_prefers_asset_serving', 'assets_navigation_has_no_effect']), []);
    for (const [date, flags, prefers] of [
      [undefined, undefined, false],
      ['2025-03-31', undefined, false],
      ['2025-04-01', undefined, true],
      ['2026-01-01', [], true],
      ['2024-09-01', ['assets_navigation_prefers_asset_serving'], true],
      [undefined, ['assets_navigation_prefers_asset_serving'], true],
      ['2025-04-01', ['assets_navigation_has_no_effect'], false],
      ['2024-09-01', ['assets_navigation_has_no_effect'], false],
      // Both: the enable flag wins, as in Cloudflare's asset worker.
      ['2026-01-01', ['assets_navigation_has_no_effect', 'assets_navigation_prefers_asset_serving'], true],
    ] as const) {
      assert.equal(navigationPrefersAssets(date, flags), prefers, `${date} ${flags}`);
    }
  });

  test('every refused flag says why, and every disable flag of a standard behaviour is refused', () => {
    for (const [flag, rule] of Object.entries(COMPATIBILITY_FLAGS)) {
      assert.ok(rule.why.length > 10, flag);
      if (/_original$|_disable_|^no_global_/.test(flag)) assert.equal(rule.use, 'refused', flag);
    }
  });
});

describe('at deploy', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
    await t.account('acme');
  });
  after(() => t.close());

  const deploy = (body: Record<string, unknown>) => t.api('PUT', '/v1/workers/compat?account=acme', { body });

  test('known flags are stored with the version and shown by the admin API', async () => {
    const answer = await deploy(textWorker('ok', { compatibilityDate: '2024-09-01', compatibilityFlags: ['nodejs_compat', 'url_standard'] }));
    assert.equal(answer.status, 201, answer.text);
    const details = JSON.parse((await t.api('GET', '/v1/workers/compat')).text) as { compatibilityFlags: string[] };
    assert.deepEqual(details.compatibilityFlags, ['nodejs_compat', 'url_standard']);
  });

  test('an unknown flag, a refused flag and a future date are a 400 naming each', async () => {
    const answer = await deploy(textWorker('no', { compatibilityDate: '2999-01-01', compatibilityFlags: ['url_original', 'nope'] }));
    assert.equal(answer.status, 400);
    assert.match(answer.text, /2999-01-01 is in the future/);
    assert.match(answer.text, /url_original is not supported/);
    assert.match(answer.text, /does not know the compatibility flag 'nope'/);
    for (const bad of ['nodejs_compat', [1], null]) {
      assert.equal((await deploy(textWorker('no', { compatibilityFlags: bad }))).status, 400, JSON.stringify(bad));
    }
  });
});
