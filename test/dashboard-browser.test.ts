// The dashboard in a real browser: headless Chromium, started here (test/support/browser.ts),
// signs in, rolls a worker back, deploys by upload, sets a secret and watches a live tail,
// as a person would, against `isolet serve` in this process. Tenant strings full of markup
// must show as text and run nothing. Screenshots of a failure go to a temporary directory.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { startBrowser, type StartedBrowser } from './support/browser.ts';
import { ADMIN_TOKEN, moduleDeployment, startTestServer, textWorker, type TestAccount, type TestServer } from './server-support.ts';

/** Markup a hostile tenant puts wherever it can; it sets window.__pwned if it ever runs. */
const HOSTILE = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>`;
const STEP_MS = 20_000;

describe('dashboard in a browser', { timeout: 240_000 }, () => {
  let t: TestServer;
  let acme: TestAccount;
  let chromium: StartedBrowser;
  const contexts: BrowserContext[] = [];

  before(async () => {
    t = await startTestServer();
    acme = await t.account('acme');
    const other = await t.account('other');
    const deploy = async (name: string, token: string, body: Record<string, unknown>) => {
      const answer = await t.api('PUT', `/v1/workers/${name}`, { token, body });
      assert.equal(answer.status, 201, answer.text);
    };
    await deploy('shop', acme.token, textWorker('shop v1', { message: `first ${HOSTILE}` }));
    await deploy('shop', acme.token, moduleDeployment(
      `export default { fetch(request) {
        const path = new URL(request.url).pathname;
        if (path === '/fail') throw new Error('failed on purpose');
        console.log(${JSON.stringify(`tail line ${HOSTILE}`)}, path);
        return new Response('shop v2');
      } };`,
      { message: 'second' },
    ));
    await deploy('hidden', other.token, textWorker('not yours'));
    chromium = await startBrowser();
  });

  after(async () => {
    await chromium?.close();
    await t?.close();
  });

  /** A fresh browser profile (its own sessionStorage) on the dashboard, with the page's errors collected. */
  async function open(options: { timezoneId?: string; locale?: string } = {}): Promise<{ page: Page; problems: string[] }> {
    const context = await chromium.browser.newContext(options);
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      // A refused token is answered 401, which Chromium reports as a failed load: expected.
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`console: ${message.text()}`);
    });
    await page.goto(`${t.server.adminUrl}/dashboard/`);
    return { page, problems };
  }

  /** Runs a step; on failure saves a screenshot (outside the repository) and says where. */
  async function step(page: Page, name: string, body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } catch (error) {
      const path = join(chromium.artifacts, `${name.replace(/[^a-z0-9]+/gi, '-')}.png`);
      await page.screenshot({ path, fullPage: true }).catch(() => {});
      throw new Error(`${name}: ${(error as Error).message}\nScreenshot: ${path}`, { cause: error });
    }
  }

  async function signIn(page: Page, token: string): Promise<void> {
    // By keyboard: the token field has focus when the page opens, and Enter submits.
    await page.getByLabel('Token').waitFor();
    assert.equal(await page.evaluate("document.activeElement?.getAttribute('name')"), 'token');
    await page.keyboard.type(token);
    await page.keyboard.press('Enter');
  }

  /** Signed in as acme, on one of shop's views, reached by its links as a person would. */
  async function openShop(tab: 'Versions and deploy' | 'Live tail', options: { timezoneId?: string; locale?: string } = {}): Promise<{ page: Page; problems: string[] }> {
    const opened = await open(options);
    const { page } = opened;
    await signIn(page, acme.token);
    await step(page, `open ${tab}`, async () => {
      await page.getByRole('link', { name: 'shop' }).click();
      await page.getByRole('link', { name: tab }).click();
      await page.getByRole('heading', { name: `shop: ${tab}` }).waitFor();
    });
    return opened;
  }

  async function assertNothingRan(page: Page): Promise<void> {
    assert.equal(await page.evaluate('window.__pwned'), undefined, 'tenant markup ran in the page');
    assert.equal(await page.locator('main img, main script').count(), 0, 'tenant markup became elements');
  }

  test('an account token signs in and sees only its own workers; a wrong token is refused', async () => {
    const { page, problems } = await open();
    await step(page, 'wrong token', async () => {
      await signIn(page, 'isl_not-a-token');
      await page.getByRole('alert').filter({ hasText: 'unknown or was revoked' }).waitFor();
    });
    await step(page, 'sign in', async () => {
      await page.getByLabel('Token').fill('');
      await signIn(page, acme.token);
      await page.getByRole('heading', { name: 'Workers', level: 1 }).waitFor();
      await page.getByRole('link', { name: 'shop' }).waitFor();
      assert.equal(await page.getByRole('link', { name: 'hidden' }).count(), 0, "another account's worker is listed");
      assert.equal(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Accounts' }).count(), 0);
      await page.getByText('Signed in with an account token').waitFor();
    });
    // The token lives in this tab's sessionStorage only: no cookie carries it.
    assert.deepEqual(await page.context().cookies(), []);
    assert.deepEqual(problems, []);
  });

  test('rolls a worker back from its versions, and the data plane serves the older version', async () => {
    const { page, problems } = await openShop('Versions and deploy');
    await step(page, 'versions', async () => {
      // The hostile version message is shown, as text.
      await page.getByRole('cell', { name: `first ${HOSTILE}` }).waitFor();
      await assertNothingRan(page);
    });
    await step(page, 'rollback', async () => {
      await page.getByRole('button', { name: 'Roll back to version 1' }).click();
      await page.getByRole('status').filter({ hasText: 'Version 1 of shop is active.' }).waitFor();
      await page.getByRole('button', { name: 'Activate version 2' }).waitFor();
    });
    const worker = await t.api('GET', '/v1/workers/shop', { token: acme.token });
    assert.equal(worker.body.activeVersion.number, 1);
    assert.equal(await (await t.request('shop.localhost', '/')).text(), 'shop v1');
    await step(page, 'activate again', async () => {
      await page.getByRole('button', { name: 'Activate version 2' }).click();
      await page.getByRole('status').filter({ hasText: 'Version 2 of shop is active.' }).waitFor();
    });
    assert.equal(await (await t.request('shop.localhost', '/')).text(), 'shop v2');
    assert.deepEqual(problems, []);
  });

  test("a live tail shows the worker's console lines as they happen, as text", async () => {
    // A browser far from UTC: the tail's times are local, as the rest of the page's.
    const { page, problems } = await openShop('Live tail', { timezoneId: 'Asia/Kolkata', locale: 'en-US' });
    await step(page, 'connected', async () => {
      await page.getByText('Connected: entries of shop appear as they happen.').waitFor();
    });
    // The subscription is made when the stream opens: wait for it, not for time.
    await waitFor(() => t.server.bus.subscriberCount('shop') === 1, 'the tail to subscribe');
    assert.equal(await (await t.request('shop.localhost', '/watched')).text(), 'shop v2');
    const log = page.getByRole('log', { name: 'Log entries of shop' });
    await step(page, 'tail lines', async () => {
      await log.getByText(`tail line ${HOSTILE} /watched`).waitFor();
      await log.getByText('GET http://shop.localhost/watched 200').waitFor();
      const time = log.locator('li', { hasText: 'GET http://shop.localhost/watched 200' }).locator('time');
      const iso = (await time.getAttribute('datetime'))!;
      const local = new Date(iso).toLocaleTimeString('en-US', { timeZone: 'Asia/Kolkata', hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3 });
      assert.equal(await time.textContent(), local, `the entry of ${iso} is shown in the browser's time zone`);
      await assertNothingRan(page);
      assert.equal(await log.locator('img, script').count(), 0);
    });
    await step(page, 'errors only', async () => {
      // The choice goes to the server as the tail's filter (src/observability/tail-filter.ts).
      await Promise.all([
        page.waitForRequest((request) => request.url().endsWith('/v1/workers/shop/tail?status=error')),
        page.getByLabel('Entries', { exact: true }).selectOption('error'),
      ]);
      await page.getByText('Connected: entries of shop appear as they happen.').waitFor();
      // Until the new stream is subscribed a failure goes unseen: fail again until one shows.
      const failed = log.getByText('GET http://shop.localhost/fail 500');
      for (let i = 0; i < 50 && !(await failed.isVisible()); i++) {
        assert.equal((await t.request('shop.localhost', '/fail')).status, 500);
        await failed.waitFor({ timeout: 200 }).catch(() => {});
      }
      await failed.waitFor();
    });
    await step(page, 'stop', async () => {
      await page.getByRole('button', { name: 'Stop' }).click();
      await page.getByText('Stopped.').waitFor();
    });
    await waitFor(() => t.server.bus.subscriberCount('shop') === 0, 'the tail to end when stopped');
    assert.deepEqual(problems, []);
  });

  test('deploys a new version by uploading a script, and keeps secrets write-only', async () => {
    const { page, problems } = await openShop('Versions and deploy');
    await step(page, 'upload', async () => {
      await page.getByLabel('Script').setInputFiles({
        name: 'worker.js',
        mimeType: 'text/javascript',
        buffer: Buffer.from("export default { fetch(request, env) { return new Response('shop v3 ' + (env.API_KEY ? 'with key' : 'no key')); } };"),
      });
      await page.getByLabel('Message').fill('uploaded from the dashboard');
      await page.getByRole('button', { name: 'Deploy new version' }).click();
      await page.getByRole('status').filter({ hasText: /Deployed shop: version \d+ is active\./ }).waitFor();
      await page.getByRole('cell', { name: 'uploaded from the dashboard' }).waitFor();
    });
    assert.equal(await (await t.request('shop.localhost', '/')).text(), 'shop v3 no key');
    const value = 'sk_live_do-not-show-me';
    await step(page, 'set secret', async () => {
      await page.getByRole('link', { name: 'Secrets' }).click();
      await page.getByLabel('Name').fill('API_KEY');
      await page.getByLabel('Value').fill(value);
      await page.getByRole('button', { name: 'Set secret' }).click();
      await page.getByRole('status').filter({ hasText: 'Secret API_KEY set' }).waitFor();
      await page.getByRole('cell', { name: 'API_KEY' }).waitFor();
      assert.equal((await page.content()).includes(value), false, "the secret's value is in the page");
    });
    assert.equal(await (await t.request('shop.localhost', '/')).text(), 'shop v3 with key');
    await step(page, 'delete secret', async () => {
      await page.getByRole('button', { name: 'Delete secret API_KEY' }).click();
      await page.getByRole('status').filter({ hasText: 'Secret API_KEY deleted.' }).waitFor();
      await page.getByText('No secrets.').waitFor();
    });
    assert.deepEqual(problems, []);
  });

  test("the operator manages accounts and sees each worker's last hour", async () => {
    for (let i = 0; i < 3; i++) assert.equal((await t.request('shop.localhost', '/counted')).status, 200);
    const { page, problems } = await open();
    await signIn(page, ADMIN_TOKEN);
    await step(page, 'accounts', async () => {
      await page.getByText('Signed in as the operator').waitFor();
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Accounts' }).click();
      await page.getByRole('heading', { name: 'Accounts', level: 1 }).waitFor();
      await page.getByLabel('Name').fill('beta');
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.getByRole('link', { name: 'beta', exact: true }).waitFor();
      await assertAccessible(page);
    });
    assert.equal((await t.api('GET', '/v1/accounts/beta/tokens')).status, 200);
    await step(page, 'charts', async () => {
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Workers' }).click();
      // The operator sees every account's workers.
      await page.getByRole('link', { name: 'hidden' }).waitFor();
      await page.getByRole('link', { name: 'shop' }).click();
      const requests = page.locator('figure[data-series="requests"] figcaption');
      await requests.waitFor();
      const caption = await requests.textContent();
      const counted = Number(/Requests: ([\d.]+) in the last hour/.exec(caption ?? '')?.[1]);
      assert.ok(counted >= 3, `the requests chart counts the requests made: ${caption}`);
      assert.equal(await page.locator('figure.chart svg[role="img"]').count(), 4);
      await assertAccessible(page);
    });
    assert.deepEqual(problems, []);
  });

  test('the page is usable by keyboard alone: skip link, then every control in reach', async () => {
    const { page } = await open();
    await signIn(page, acme.token);
    await page.getByRole('link', { name: 'shop' }).waitFor();
    // Signing in moved focus to the new view's heading; a page loaded afresh starts at the top.
    assert.equal(await page.evaluate('document.activeElement?.tagName'), 'H1');
    await page.reload();
    await page.getByRole('link', { name: 'shop' }).waitFor();
    await step(page, 'skip link', async () => {
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate('document.activeElement?.textContent'), 'Skip to content');
      await page.keyboard.press('Enter');
      assert.equal(await page.evaluate('document.activeElement?.id'), 'main');
    });
    await step(page, 'tab to a worker', async () => {
      for (let i = 0; i < 20; i++) {
        await page.keyboard.press('Tab');
        if ((await page.evaluate('document.activeElement?.textContent')) === 'shop') break;
      }
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { name: 'shop: Overview' }).waitFor();
      // The new view's heading takes focus, so a screen reader announces it.
      assert.equal(await page.evaluate('document.activeElement?.tagName'), 'H1');
    });
  });

  test("a worker's routes, and its errors, CPU and cold starts charted over the last hour", async () => {
    assert.equal((await t.api('POST', '/v1/accounts/acme/zones', { body: { zone: 'acme.example.com' } })).status, 201);
    // Work the CPU chart can show: a fixed amount of it, not a time (a loaded machine stretches time).
    const busy = moduleDeployment(`export default { fetch(request) {
      let sum = 0;
      for (let i = 0; i < 3e6; i++) sum += i % 7;
      if (new URL(request.url).pathname === '/fail') throw new Error('failed on purpose');
      return new Response(String(sum));
    } };`, { routes: ['acme.example.com/api/*', 'status.acme.example.com/*'] });
    assert.equal((await t.api('PUT', '/v1/workers/busy', { token: acme.token, body: busy })).status, 201);
    for (let i = 0; i < 3; i++) assert.equal((await t.request('busy.localhost', '/')).status, 200);
    for (let i = 0; i < 2; i++) assert.equal((await t.request('busy.localhost', '/fail')).status, 500);
    const { page, problems } = await open();
    await signIn(page, acme.token);
    const caption = async (series: string): Promise<string> => {
      const figure = page.locator(`figure[data-series="${series}"] figcaption`);
      await figure.waitFor();
      return (await figure.textContent()) ?? '';
    };
    const total = (text: string, title: string): number => Number(new RegExp(`^${title}: ([\\d.]+)(?: ms)? in the last hour`).exec(text)?.[1]);
    await step(page, 'charts', async () => {
      await page.getByRole('link', { name: 'busy' }).click();
      await page.getByRole('heading', { name: 'busy: Overview' }).waitFor();
      const requests = await caption('requests');
      assert.equal(total(requests, 'Requests'), 5, requests);
      const errors = await caption('errors');
      assert.equal(total(errors, 'Errors \\(5xx answers\\)'), 2, errors);
      const cpu = await caption('cpuMs');
      assert.ok(total(cpu, 'CPU time') > 0, cpu);
      const coldStarts = await caption('coldStarts');
      assert.equal(total(coldStarts, 'Cold starts'), 1, coldStarts);
      // Each chart's numbers are in a table too: the errors' minute holds both.
      assert.equal(await page.locator('figure[data-series="errors"] tbody td').first().textContent(), '2');
    });
    await step(page, 'routes', async () => {
      await page.getByRole('link', { name: 'Routes' }).click();
      await page.getByRole('heading', { name: 'busy: Routes' }).waitFor();
      const listed = await page.getByRole('main').locator('li code').allTextContents();
      assert.deepEqual(listed.sort(), ['acme.example.com/api/*', 'status.acme.example.com/*']);
      await assertAccessible(page);
    });
    await step(page, 'no routes', async () => {
      await page.goto(`${t.server.adminUrl}/dashboard/#/workers/shop/routes`);
      await page.getByRole('heading', { name: 'shop: Routes' }).waitFor();
      await page.getByText('No routes: shop answers only on its own host.').waitFor();
    });
    assert.deepEqual(problems, []);
  });
});

/** Landmarks are there, and every form control has a label. */
async function assertAccessible(page: Page): Promise<void> {
  for (const role of ['banner', 'main'] as const) assert.equal(await page.getByRole(role).count(), 1, `one ${role} landmark`);
  assert.ok((await page.getByRole('navigation').count()) >= 1, 'a navigation landmark');
  // (Strings run in the page: this file is type-checked without the DOM's types.)
  const unlabelled = await page.evaluate(
    "[...document.querySelectorAll('input, select, textarea')].filter((c) => c.labels.length === 0 && !c.getAttribute('aria-label')).map((c) => c.outerHTML)",
  );
  assert.deepEqual(unlabelled, []);
  assert.equal(await page.evaluate('document.documentElement.lang'), 'en');
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = STEP_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
