// Cron triggers on `isolet serve`: deployed with the version and checked at deploy, fired by the
// control process's scheduler (ticked by hand here: no test waits for a minute), run in the
// worker's runtime process, shown in the tail and listed by the admin API. Then the scheduler's
// clock (a tick fired late is skipped, never replayed) with a clock moved by hand.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CronScheduler } from '../src/server/cron-scheduler.ts';
import type { Store, CronRun, CronTick } from '../src/store/store.ts';
import type { WorkerHost } from '../src/server/worker-host.ts';
import type { ScheduledEvent } from '../src/runtime/types.ts';
import { Tail } from './support/tail.ts';
import { formatEntry } from '../src/cli/commands/tail.ts';
import { startTestServer, moduleDeployment, type TestServer } from './server-support.ts';

/** Records every event it runs, and answers the worker's state on fetch. */
const RECORDER = `
const events = [];
export default {
  fetch() { return Response.json(events); },
  async scheduled(controller, env, ctx) {
    events.push({ cron: controller.cron, scheduledTime: controller.scheduledTime, greeting: env.GREETING });
    console.log('tick', controller.cron);
    if (controller.cron === '30 * * * *') throw new Error('the half hour fails');
    ctx.waitUntil(Promise.resolve());
  },
};`;

const TICK = Date.UTC(2030, 0, 1, 12, 0); // a Tuesday (3: Cloudflare counts from Sunday, 1) at noon
const HALF_PAST = Date.UTC(2030, 0, 1, 12, 30);

describe('cron triggers on isolet serve, in a runtime process', { timeout: 120_000 }, () => {
  let t: TestServer;
  let token: string;

  before(async () => {
    t = await startTestServer({ processes: 1, cronTimer: false });
    token = (await t.account('acme')).token;
  });
  after(() => t.close());

  test('a deployment with crons but no scheduled handler, or a cron Cloudflare refuses, is refused and names the fix', async () => {
    const missing = await t.api('PUT', '/v1/workers/no-handler', { token, body: moduleDeployment('export default { fetch() { return new Response("x"); } };', { crons: ['*/5 * * * *'] }) });
    assert.equal(missing.status, 400);
    assert.match(missing.body.error.message, /cron triggers but no scheduled handler: add `async scheduled\(controller, env, ctx\)/);
    const unix = await t.api('PUT', '/v1/workers/bad-cron', { token, body: moduleDeployment(RECORDER, { crons: ['0 0 * * 0'] }) });
    assert.equal(unix.status, 400);
    assert.match(unix.body.error.message, /^`crons`: Invalid cron "0 0 \* \* 0": .*1 \(Sunday\) to 7 \(Saturday\)/);
    const many = await t.api('PUT', '/v1/workers/bad-cron', { token, body: moduleDeployment(RECORDER, { crons: Array.from({ length: 11 }, (_, i) => `${i} * * * *`) }) });
    assert.equal(many.status, 400);
    assert.match(many.body.error.message, /at most 10 cron triggers/);
    const notList = await t.api('PUT', '/v1/workers/bad-cron', { token, body: moduleDeployment(RECORDER, { crons: '* * * * *' }) });
    assert.equal(notList.status, 400);
    assert.equal((await t.api('GET', '/v1/workers/no-handler', { token })).status, 404, 'nothing was stored');
  });

  test('each tick runs the due handlers once, with the right controller, in the tail and in the list of runs', async () => {
    const deployed = await t.api('PUT', '/v1/workers/ticker', {
      token,
      body: moduleDeployment(RECORDER, { crons: ['*/15 * * * *', '0 12 * * 3', '30 * * * *'], vars: { GREETING: 'hi' } }),
    });
    assert.equal(deployed.status, 201, deployed.text);
    assert.deepEqual((await t.api('GET', '/v1/workers/ticker', { token })).body.crons, ['*/15 * * * *', '0 12 * * 3', '30 * * * *']);

    const tail = await Tail.open(t.server.adminUrl, 'ticker', token);
    try {
      const runs = await t.server.scheduler.tick(TICK + 12_345); // seconds are dropped: the tick is the minute
      assert.deepEqual(runs.map((run) => [run.cron, run.scheduledTime, run.outcome]).sort(), [
        ['*/15 * * * *', TICK, 'ok'],
        ['0 12 * * 3', TICK, 'ok'],
      ]);
      const line = await tail.waitFor((entry) => entry.type === 'scheduled' && entry.cron === '0 12 * * 3');
      assert.equal(line.outcome, 'ok');
      assert.equal(line.scheduledTime, TICK);
      assert.equal(typeof line.cpuMs, 'number');
      await tail.waitFor((entry) => entry.type === 'console' && entry.message === 'tick 0 12 * * 3');

      // The same tick again (another node's timer, or this one's): claimed already, nothing runs.
      assert.deepEqual(await t.server.scheduler.tick(TICK), []);
      // A minute where nothing is due.
      assert.deepEqual(await t.server.scheduler.tick(TICK + 60_000), []);

      const failed = await t.server.scheduler.tick(HALF_PAST);
      assert.deepEqual(failed.map((run) => [run.cron, run.outcome]).sort(), [['*/15 * * * *', 'ok'], ['30 * * * *', 'exception']]);
      assert.match(failed.find((run) => run.outcome === 'exception')!.error ?? '', /the half hour fails/);
      await tail.waitFor((entry) => entry.type === 'scheduled' && entry.outcome === 'exception' && entry.level === 'error');
      await tail.waitFor((entry) => entry.type === 'exception' && /the half hour fails/.test(entry.message));
    } finally {
      tail.close();
    }

    const events = await (await t.request('ticker.localhost', '/')).json() as { cron: string; scheduledTime: number; greeting: string }[];
    assert.deepEqual(events.map((e) => [e.cron, e.scheduledTime, e.greeting]).sort(), [
      ['*/15 * * * *', TICK, 'hi'],
      ['*/15 * * * *', HALF_PAST, 'hi'],
      ['0 12 * * 3', TICK, 'hi'],
      ['30 * * * *', HALF_PAST, 'hi'],
    ]);

    const listed = await t.api('GET', '/v1/workers/ticker/crons', { token });
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.crons, ['*/15 * * * *', '0 12 * * 3', '30 * * * *']);
    assert.deepEqual(listed.body.runs.map((run: Record<string, unknown>) => [run.scheduledTime, run.cron, run.outcome, run.node]), [
      [new Date(HALF_PAST).toISOString(), '*/15 * * * *', 'ok', t.server.nodeId],
      [new Date(HALF_PAST).toISOString(), '30 * * * *', 'exception', t.server.nodeId],
      [new Date(TICK).toISOString(), '*/15 * * * *', 'ok', t.server.nodeId],
      [new Date(TICK).toISOString(), '0 12 * * 3', 'ok', t.server.nodeId],
    ]);
    // Another account sees neither the worker nor its runs.
    const other = await t.account('other');
    assert.equal((await t.api('GET', '/v1/workers/ticker/crons', { token: other.token })).status, 404);
  });

  test('POST /v1/workers/:name/crons runs one of its triggers now, on this node, for its owner only, and records the run', async () => {
    const deployed = await t.api('PUT', '/v1/workers/on-demand', { token, body: moduleDeployment(RECORDER, { crons: ['0 3 * * *', '30 * * * *'] }) });
    assert.equal(deployed.status, 201, deployed.text);
    const ran = await t.api('POST', '/v1/workers/on-demand/crons', { token, body: { cron: '0 3 * * *' } });
    assert.equal(ran.status, 200, ran.text);
    assert.equal(ran.body.cron, '0 3 * * *');
    assert.equal(ran.body.outcome, 'ok');
    assert.equal(ran.body.worker, 'on-demand');
    const failed = await t.api('POST', '/v1/workers/on-demand/crons', { token, body: { cron: '30 * * * *' } });
    assert.equal(failed.status, 200, failed.text);
    assert.equal(failed.body.outcome, 'exception');
    assert.match(failed.body.error, /the half hour fails/);
    // The handler saw the cron it was asked for, at the time it ran.
    const events = await (await t.request('on-demand.localhost', '/')).json() as { cron: string; scheduledTime: number }[];
    assert.deepEqual(events.map((e) => e.cron), ['0 3 * * *', '30 * * * *']);
    assert.ok(events.every((e) => Math.abs(e.scheduledTime - Date.parse(ran.body.scheduledTime)) < 10 * 60_000));
    const listed = await t.api('GET', '/v1/workers/on-demand/crons', { token });
    assert.deepEqual(listed.body.runs.map((run: Record<string, unknown>) => [run.cron, run.outcome]).sort(), [['0 3 * * *', 'ok'], ['30 * * * *', 'exception']]);

    // Only a trigger the active version has; only the owner.
    const unknown = await t.api('POST', '/v1/workers/on-demand/crons', { token, body: { cron: '* * * * *' } });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.error.message, /one of the worker's triggers.*"0 3 \* \* \*", "30 \* \* \* \*"/);
    assert.equal((await t.api('POST', '/v1/workers/on-demand/crons', { token, body: {} })).status, 400);
    const other = await t.account('other-runner');
    assert.equal((await t.api('POST', '/v1/workers/on-demand/crons', { token: other.token, body: { cron: '0 3 * * *' } })).status, 404);
    assert.equal((await t.api('DELETE', '/v1/workers/on-demand', { token })).status, 204);
  });

  test('isolet tail prints a scheduled line with its cron, outcome and times', () => {
    const line = formatEntry({ time: new Date().toISOString(), worker: 'w', level: 'info', type: 'scheduled', message: 'scheduled "*/5 * * * *" ok', cron: '*/5 * * * *', outcome: 'ok', cpuMs: 1.5, wallMs: 3 });
    assert.match(line, /  info   scheduled "\*\/5 \* \* \* \*" ok cpu 1\.5 ms wall 3 ms$/);
  });

  test('crons belong to the version: a rollback to one without them stops them, a deploy without them too', async () => {
    assert.equal((await t.api('PUT', '/v1/workers/flip', { token, body: moduleDeployment(RECORDER) })).status, 201);
    assert.equal((await t.api('PUT', '/v1/workers/flip', { token, body: moduleDeployment(RECORDER, { crons: ['* * * * *'] }) })).status, 201);
    const minute = TICK + 5 * 60_000;
    assert.deepEqual((await t.server.scheduler.tick(minute)).filter((run) => run.worker === 'flip').map((run) => run.cron), ['* * * * *']);
    assert.equal((await t.api('POST', '/v1/workers/flip/rollback', { token, body: {} })).status, 200);
    assert.deepEqual((await t.server.scheduler.tick(minute + 60_000)).filter((run) => run.worker === 'flip'), []);
    assert.equal((await t.api('DELETE', '/v1/workers/flip', { token })).status, 204);
  });
});

describe("the scheduler's clock", () => {
  /** A store that grants every claim and keeps what is recorded; a host that records what it runs. */
  function fakes() {
    const ran: { worker: string; event: ScheduledEvent }[] = [];
    const recorded: CronRun[] = [];
    const store = {
      claimCronTicks: async (_time: number, _node: string, due: CronTick[]) => due,
      recordCronRuns: async (runs: CronRun[]) => void recorded.push(...runs),
    } as unknown as Store;
    const host = {
      scheduled: async (worker: string, event: ScheduledEvent) => {
        ran.push({ worker, event });
        return { outcome: 'ok' as const, noRetry: false, cpuMs: 1, wallMs: 1 };
      },
    } as unknown as WorkerHost;
    return { ran, recorded, store, host };
  }

  test('a tick fires at its minute; one fired a minute or more late is skipped and logged, not replayed', async () => {
    const { ran, recorded, store, host } = fakes();
    let clock = TICK - 1;
    const logs: { level: string; message: string }[] = [];
    const scheduler = new CronScheduler({
      store, host, node: 'n1', now: () => clock,
      workers: () => [{ name: 'w', crons: ['* * * * *'] }],
      log: (level, _type, message) => logs.push({ level, message }),
      workerLog: () => {},
    });
    try {
      scheduler.start(); // armed for TICK, 1 ms away on this clock
      clock = TICK + 5;
      while (recorded.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      assert.deepEqual(ran, [{ worker: 'w', event: { cron: '* * * * *', scheduledTime: TICK } }]);
      await scheduler.close();

      // A node that wakes up two minutes past its tick (suspended, or its loop blocked) runs nothing for it.
      const late = new CronScheduler({
        store, host, node: 'n1', now: () => clock,
        workers: () => [{ name: 'w', crons: ['* * * * *'] }],
        log: (level, _type, message) => logs.push({ level, message }),
        workerLog: () => {},
      });
      clock = TICK + 60_000 - 1;
      late.start();
      clock = TICK + 3 * 60_000;
      while (!logs.some((line) => /skipped/.test(line.message))) await new Promise((resolve) => setTimeout(resolve, 5));
      await late.close();
      assert.equal(ran.length, 1, 'the missed tick was not run');
      assert.equal(logs.find((line) => /skipped/.test(line.message))!.level, 'warn');
    } finally {
      await scheduler.close();
    }
  });

  test('a tick whose claim fails (the database is away) runs nothing', async () => {
    const { ran, host } = fakes();
    const logs: string[] = [];
    const store = { claimCronTicks: async () => { throw new Error('The database is unavailable'); } } as unknown as Store;
    const scheduler = new CronScheduler({
      store, host, node: 'n1', workers: () => [{ name: 'w', crons: ['* * * * *'] }], log: (_l, _t, message) => logs.push(message), workerLog: () => {},
    });
    assert.deepEqual(await scheduler.tick(TICK), []);
    assert.deepEqual(ran, []);
    assert.match(logs[0]!, /could not be claimed/);
  });

  test('runs past the bound wait their turn; a worker that cannot be reached is an exception in its log', async () => {
    const { recorded, store } = fakes();
    let running = 0;
    let most = 0;
    const host = {
      scheduled: async (worker: string) => {
        if (worker === 'gone') throw new Error('its runtime process is waiting to restart');
        running++;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running--;
        return { outcome: 'ok' as const, noRetry: false, cpuMs: 1, wallMs: 5 };
      },
    } as unknown as WorkerHost;
    const workerLines: Record<string, unknown>[] = [];
    const workers = [...Array.from({ length: 10 }, (_, i) => ({ name: `w${i}`, crons: ['* * * * *'] })), { name: 'gone', crons: ['* * * * *'] }];
    const scheduler = new CronScheduler({
      store, host, node: 'n1', workers: () => workers, log: () => {}, workerLog: (entry) => workerLines.push(entry), concurrentRuns: 3,
    });
    const runs = await scheduler.tick(TICK);
    assert.equal(runs.length, 11);
    assert.ok(most <= 3, `at most 3 at once, saw ${most}`);
    assert.equal(recorded.length, 11);
    const gone = runs.find((run) => run.worker === 'gone')!;
    assert.equal(gone.outcome, 'exception');
    assert.match(gone.error ?? '', /could not run to its end: its runtime process is waiting to restart/);
    assert.equal(workerLines.length, 1);
    assert.equal(workerLines[0]!.type, 'scheduled');
  });
});
