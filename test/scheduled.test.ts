// Scheduled handlers (cron triggers) through the library face: `runtime.scheduled(name, { cron,
// scheduledTime })` runs `scheduled(controller, env, ctx)` under a request's limits and
// resolves with the outcome; the worker's log gets one 'scheduled' line per run. Also the cron
// syntax itself (src/cron/cron.ts): what Cloudflare accepts, what it refuses, and when it fires.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../src/runtime/runtime.ts';
import { WorkerLoadError, type WorkerLogEntry } from '../src/runtime/types.ts';
import { checkCrons, cronSchedule, firesAt, nextRun, MINUTE_MS } from '../src/cron/cron.ts';

const logs: WorkerLogEntry[] = [];
const runtime = new Runtime({ log: (entry) => logs.push(entry), limits: { cpuMs: 50 } });
after(() => runtime.close());

const module = (source: string, crons?: string[]) => ({ modules: [{ name: 'worker.js', source }], crons, vars: { WHO: 'env' } });

test('the handler gets the controller (cron, scheduledTime, noRetry), env and ctx; waitUntil work belongs to the run', async () => {
  await runtime.load('cron-basic', module(`
let seen = [];
export default {
  async fetch() { return Response.json(seen); },
  async scheduled(controller, env, ctx) {
    seen.push({ cron: controller.cron, time: controller.scheduledTime, name: controller.constructor.name, who: env.WHO, now: Date.now() });
    if (controller.cron === 'no retry') controller.noRetry();
    ctx.waitUntil(new Promise((resolve) => setTimeout(() => { console.log('waitUntil done'); resolve(); }, 20)));
  },
};`, ['*/5 * * * *']));
  const scheduledTime = Date.UTC(2030, 0, 1, 12, 5);
  const result = await runtime.scheduled('cron-basic', { cron: '*/5 * * * *', scheduledTime });
  assert.equal(result.outcome, 'ok');
  assert.equal(result.noRetry, false);
  assert.equal(typeof result.cpuMs, 'number');
  // The run resolved after its waitUntil work: its console line is already in the log.
  assert.ok(logs.some((entry) => entry.worker === 'cron-basic' && entry.message === 'waitUntil done'));
  const line = logs.find((entry) => entry.worker === 'cron-basic' && entry.type === 'scheduled');
  assert.ok(line, 'a scheduled line');
  assert.equal(line.cron, '*/5 * * * *');
  assert.equal(line.scheduledTime, scheduledTime);
  assert.equal(line.outcome, 'ok');
  assert.equal(line.level, 'info');
  assert.equal(typeof line.cpuMs, 'number');

  assert.equal((await runtime.scheduled('cron-basic', { cron: 'no retry' })).noRetry, true);
  const response = await runtime.fetch('cron-basic', { method: 'GET', url: 'https://cron/', headers: [] });
  const seen = JSON.parse(Buffer.from(response.body as Uint8Array).toString()) as { cron: string; time: number; name: string; who: string; now: number }[];
  assert.deepEqual(seen.map(({ cron, time, name, who }) => ({ cron, time, name, who })).slice(0, 1), [{ cron: '*/5 * * * *', time: scheduledTime, name: 'ScheduledController', who: 'env' }]);
  // The isolate's clock moves with the event, as with a request.
  assert.ok(Math.abs(seen[0]!.now - Date.now()) < 60_000);
});

test('a handler that throws is an exception, logged; one over its CPU limit is exceededCpu, and the isolate serves again', async () => {
  await runtime.load('cron-faults', module(`
export default {
  fetch() { return new Response('still here'); },
  async scheduled(controller) {
    if (controller.cron === 'throw') throw new TypeError('cron failed');
    if (controller.cron === 'loop') for (;;) {}
    if (controller.cron === 'reject-later') { await null; return Promise.reject(new RangeError('later')); }
  },
};`));
  const thrown = await runtime.scheduled('cron-faults', { cron: 'throw' });
  assert.equal(thrown.outcome, 'exception');
  assert.match(thrown.error ?? '', /TypeError: cron failed/);
  assert.ok(logs.some((entry) => entry.worker === 'cron-faults' && entry.type === 'exception' && /cron failed/.test(entry.message)));
  assert.ok(logs.some((entry) => entry.worker === 'cron-faults' && entry.type === 'scheduled' && entry.outcome === 'exception' && entry.level === 'error'));
  assert.equal((await runtime.scheduled('cron-faults', { cron: 'reject-later' })).outcome, 'exception');

  const looped = await runtime.scheduled('cron-faults', { cron: 'loop' });
  assert.equal(looped.outcome, 'exceededCpu');
  assert.match(looped.error ?? '', /CPU time limit/);
  const response = await runtime.fetch('cron-faults', { method: 'GET', url: 'https://cron/', headers: [] });
  assert.equal(Buffer.from(response.body as Uint8Array).toString(), 'still here');
});

test('a worker with only a scheduled handler loads; HTTP requests to it get 500 and a log line that says why', async () => {
  await runtime.load('cron-only', module(`export default { scheduled() {} };`, ['0 * * * *']));
  assert.equal((await runtime.scheduled('cron-only', { cron: '0 * * * *' })).outcome, 'ok');
  const response = await runtime.fetch('cron-only', { method: 'GET', url: 'https://cron/', headers: [] });
  assert.equal(response.status, 500);
  assert.ok(logs.some((entry) => entry.worker === 'cron-only' && /no fetch/.test(entry.message)));
});

test('a WorkerEntrypoint class as the default export: its scheduled method gets the controller, env and ctx on this', async () => {
  await runtime.load('cron-class', module(`
import { WorkerEntrypoint } from 'cloudflare:workers';
let seen = 'none';
export default class extends WorkerEntrypoint {
  fetch() { return new Response(seen); }
  async scheduled(controller) {
    seen = controller.cron + ' ' + this.env.WHO + ' ' + typeof this.ctx.waitUntil + ' ' + arguments.length;
  }
}`, ['0 * * * *']));
  assert.equal((await runtime.scheduled('cron-class', { cron: '0 * * * *' })).outcome, 'ok');
  const response = await runtime.fetch('cron-class', { method: 'GET', url: 'https://cron/', headers: [] });
  assert.equal(Buffer.from(response.body as Uint8Array).toString(), '0 * * * * env function 1');
  await assert.rejects(
    runtime.load('cron-class-missing', module(`import { WorkerEntrypoint } from 'cloudflare:workers';\nexport default class extends WorkerEntrypoint { fetch() { return new Response('x'); } }`, ['0 * * * *'])),
    /cron triggers but no scheduled handler/,
  );
});

test('a worker with crons but no scheduled handler, or with a cron Cloudflare refuses, does not load', async () => {
  await assert.rejects(runtime.load('cron-missing', module(`export default { fetch() { return new Response('x'); } };`, ['* * * * *'])), (error: unknown) => {
    assert.ok(error instanceof WorkerLoadError);
    assert.match(error.message, /cron triggers but no scheduled handler/);
    return true;
  });
  await assert.rejects(runtime.load('cron-bad', module(`export default { scheduled() {} };`, ['0 0 * * 0'])), /weekdays from 1 \(Sunday\) to 7/);
  // Without crons, a worker without a scheduled handler answers an event with an exception.
  await runtime.load('cron-none', module(`export default { fetch() { return new Response('x'); } };`));
  const result = await runtime.scheduled('cron-none', { cron: '* * * * *' });
  assert.equal(result.outcome, 'exception');
  assert.match(result.error ?? '', /no scheduled handler/);
});

test("a scheduled handler calls the embedder's bindings as a request's handler does", async () => {
  const notes: unknown[] = [];
  await runtime.load('cron-bound', {
    modules: [{ name: 'worker.js', source: `export default { async scheduled(controller, env) { await env.API.note(controller.cron, controller.scheduledTime); } };` }],
    bindings: { API: { note: async (cron: unknown, time: unknown) => void notes.push([cron, time]) } },
  });
  assert.equal((await runtime.scheduled('cron-bound', { cron: '0 * * * *', scheduledTime: 42 })).outcome, 'ok');
  assert.deepEqual(notes, [['0 * * * *', 42]]);
});

test('service-worker syntax gets a ScheduledEvent on its scheduled listeners', async () => {
  await runtime.load('cron-sw', {
    script: `
let last = 'none';
addEventListener('fetch', (event) => event.respondWith(new Response(last)));
addEventListener('scheduled', (event) => {
  event.waitUntil((async () => { last = event.constructor.name + ' ' + event.type + ' ' + event.cron + ' ' + event.scheduledTime; })());
});`,
    crons: ['30 2 * * *'],
  });
  assert.equal((await runtime.scheduled('cron-sw', { cron: '30 2 * * *', scheduledTime: 1234 })).outcome, 'ok');
  const response = await runtime.fetch('cron-sw', { method: 'GET', url: 'https://cron/', headers: [] });
  assert.equal(Buffer.from(response.body as Uint8Array).toString(), 'ScheduledEvent scheduled 30 2 * * * 1234');
});

test("Cloudflare's cron syntax: five fields, names, L, W, #, weekdays 1 (Sunday) to 7, in UTC", () => {
  const at = (expression: string, iso: string) => firesAt(cronSchedule(expression), Date.parse(iso));
  assert.equal(at('*/3 * * * *', '2026-01-01T00:03:00Z'), true);
  assert.equal(at('*/3 * * * *', '2026-01-01T00:04:00Z'), false);
  // Seconds are ignored: the tick is the minute.
  assert.equal(at('*/3 * * * *', '2026-01-01T00:03:59.999Z'), true);
  // 1 is Sunday, as Cloudflare documents ("0 17 * * sun" or "0 17 * * 1").
  assert.equal(at('0 17 * * 1', '2026-01-04T17:00:00Z'), true);
  assert.equal(at('0 17 * * sun', '2026-01-04T17:00:00Z'), true);
  assert.equal(at('10 7 * * 2-6', '2026-01-05T07:10:00Z'), true); // a Monday
  assert.equal(at('10 7 * * mon-fri', '2026-01-03T07:10:00Z'), false); // a Saturday
  // Last Friday of the month, last weekday of the month, second Monday, nearest weekday.
  assert.equal(at('0 18 * * 6L', '2026-01-30T18:00:00Z'), true);
  assert.equal(at('0 18 * * friL', '2026-01-23T18:00:00Z'), false);
  assert.equal(at('59 23 LW * *', '2026-01-30T23:59:00Z'), true);
  assert.equal(at('0 0 * * MON#2', '2026-01-12T00:00:00Z'), true);
  assert.equal(at('0 0 15W * *', '2026-02-16T00:00:00Z'), true); // the 15th is a Sunday
  assert.equal(at('0 0 1 JAN,aug *', '2026-08-01T00:00:00Z'), true);
  assert.deepEqual(checkCrons([' */5 * * * * ', '0 0 1 * *']), ['*/5 * * * *', '0 0 1 * *']);
});

// Every form Cloudflare's parser (cloudflare/saffron) accepts, with when it fires: the next runs
// from Thursday 2026-01-01 00:00 UTC.
const NEXT_RUNS: [expression: string, runs: string[]][] = [
  // Steps from a number: a/n is a-max/n.
  ['0/5 * * * *', ['00:00', '00:05', '00:10']],
  ['5/15 * * * *', ['00:05', '00:20', '00:35', '00:50', '01:05']],
  ['1/3,*/5 * * * *', ['00:00', '00:01', '00:04', '00:05', '00:07']],
  ['0 0 1/10 * *', ['01-01', '01-11', '01-21', '01-31', '02-01']],
  ['0 0 * * 2/2', ['01-02 Fri', '01-05 Mon', '01-07 Wed', '01-09 Fri']],
  // Ranges that wrap around, and steps that count on across the wrap.
  ['0 22-2 * * *', ['00:00', '01:00', '02:00', '22:00', '23:00', '01-02 00:00']],
  ['50-10/5 0 * * *', ['00:00', '00:05', '00:10', '00:50', '00:55', '01-02 00:00']],
  ['0 20-4/2 * * *', ['00:00', '02:00', '04:00', '20:00', '22:00']],
  ['0 0 30-1 * *', ['01-01', '01-30', '01-31', '02-01', '03-01']],
  ['0 0 * * FRI-MON', ['01-02 Fri', '01-03 Sat', '01-04 Sun', '01-05 Mon', '01-09 Fri']],
  ['0 0 * * 7-1', ['01-03 Sat', '01-04 Sun', '01-10 Sat']],
  ['0 0 1 NOV-2 *', ['01-01', '02-01', '11-01', '12-01', '2027-01-01']],
  ['0 0 1 11-FEB/2 *', ['01-01', '11-01', '2027-01-01']],
  // L alone in the day of week is Saturday; nL the month's last such weekday; n#k its kth.
  ['0 0 * * L', ['01-03 Sat', '01-10 Sat']],
  ['0 0 * * 6L', ['01-30 Fri', '02-27 Fri', '03-27 Fri']],
  ['0 0 * * SUN#5', ['03-29 Sun', '05-31 Sun', '08-30 Sun']],
  // L, L-n, LW, L-nW and nW in the day of month, and the nearest weekday stays in its month.
  ['0 0 L * *', ['01-31', '02-28', '03-31']],
  ['0 0 L-3 * *', ['01-28', '02-25', '03-28', '04-27']],
  ['0 0 L-3W * *', ['01-28 Wed', '02-25 Wed', '03-27 Fri', '04-27 Mon']],
  ['0 0 LW * *', ['01-30 Fri', '02-27 Fri', '03-31 Tue', '04-30 Thu', '05-29 Fri']],
  ['0 0 L-30 * *', ['01-01', '03-01', '05-01']],
  ['0 0 L-1 FEB *', ['02-27', '2027-02-27', '2028-02-28']],
  ['0 0 1W AUG *', ['08-03 Mon', '2027-08-02 Mon', '2028-08-01 Tue']], // 2026-08-01 is a Saturday, 2027-08-01 a Sunday
  ['0 0 31W * *', ['01-30 Fri', '03-31 Tue', '05-29 Fri']], // January 31st is a Saturday, May 31st a Sunday
  // After a comma, * is the field's lowest value.
  ['5,* 0 * * *', ['00:00', '00:05', '01-02 00:00']],
  // Both day fields restricted: either matches; only a lone * leaves one out.
  ['0 12 */1 * MON', ['01-01 12:00', '01-02 12:00']],
  ['0 12 * * MON', ['01-05 12:00', '01-12 12:00']],
  ['0 0 13 * FRI', ['01-02 Fri', '01-09 Fri', '01-13 Tue', '01-16 Fri']],
  // Names in any case, tabs between fields.
  ['0\t0 1 jan,Jul *', ['01-01', '07-01']],
];

test('saffron forms: steps from a number, wrapping ranges, L in the day of week, L-n, L-nW, nW; their next runs', () => {
  const from = Date.UTC(2026, 0, 1);
  const weekdays = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  for (const [expression, expected] of NEXT_RUNS) {
    const schedule = cronSchedule(expression);
    const runs: string[] = [];
    let time = from;
    for (const want of expected) {
      const run = nextRun(schedule, time);
      assert.ok(run !== null, expression);
      assert.equal(firesAt(schedule, run), true, `${expression} fires at its next run`);
      const date = new Date(run);
      const iso = date.toISOString();
      // Each expected run is written as briefly as it reads: [year-]month-day and/or hh:mm, and the weekday when it matters.
      const parts = [] as string[];
      if (/\d{4}-/.test(want)) parts.push(iso.slice(0, 10));
      else if (/^\d\d-\d\d/.test(want)) parts.push(iso.slice(5, 10));
      if (/\d\d:\d\d/.test(want)) parts.push(iso.slice(11, 16));
      if (/[A-Z][a-z]{2}$/.test(want)) parts.push(weekdays[date.getUTCDay()]!);
      runs.push(parts.join(' '));
      time = run + MINUTE_MS;
    }
    assert.deepEqual(runs, expected, expression);
  }
});

test('what saffron refuses is refused, naming the field and the fix', () => {
  for (const [expression, message] of [
    ['0 0 * * 0', /day of week field '0' .*weekdays from 1 \(Sunday\) to 7.*Fix: write 1 or SUN/],
    ['0 0 * * 1-8', /day of week 8, which is out of range/],
    ['* * * * * *', /6 fields/],
    ['@hourly', /1 field;/],
    ['0 0 ? * 1', /day of month field '\?' .*Fix: write \* for "any"/],
    ['60 * * * *', /minute field '60' has 60, which is out of range: minutes are 0 to 59/],
    ['0 24 * * *', /hour field '24' .*hours are 0 to 23/],
    ['0 0 0 * *', /day of month field '0'/],
    ['0 0 * 13 *', /month field '13'/],
    ['*/0 * * * *', /minute field '\*\/0' has the step \/0: a step in the minute field is 1 to 59/],
    ['*/60 * * * *', /step \/60/],
    ['0 0 */31 * *', /step in the day of month field is 1 to 30/],
    ['0 0 * */12 *', /step in the month field is 1 to 11/],
    ['0 0 * * */7', /step in the day of week field is 1 to 6/],
    ['0 0 31 2 *', /never fires/],
    ['0 0 * * +MON', /day of week field '\+MON' has '\+'/],
    ['*,5 * * * *', /minute field '\*,5' .*\* stands alone/],
    ['*-5 * * * *', /Fix: write \* alone for "any", or the values themselves/],
    ['0 0 3,L * *', /day of month field '3,L' uses L with other values\. Fix: L, LW, L-n, L-nW and nW each stand alone/],
    ['0 0 1W,3 * *', /uses W with other values/],
    ['0 0 L-3,5 * *', /uses L with other values/],
    ['0 0 L-0 * *', /L-n counts 1 to 30 days back/],
    ['0 0 L-31 * *', /L-31/],
    ['0 0 lw * *', /Fix: write L and W as capitals/],
    ['0 0 * * L,2', /day of week field 'L,2' uses L with other values\. Fix: L, nL and n#k each stand alone/],
    ['0 0 * * 6L,2', /uses L with other values/],
    ['0 0 * * MON#6', /after # comes which of the month's weekdays, 1 to 5/],
    ['0 0 * * MON#2,3', /uses # with other values/],
    ['0 0 * JANUARY *', /month field 'JANUARY' has 'JANUARY', which is not a month name\. Fix: names are three letters: write JAN/],
    ['0 0 * * fril', /not a day of week name/],
    ['0 0 1-5/ * *', /'\/' without a step/],
    ['0 0 1-5x * *', /has 'x'/],
    ['5 4 * *\n*', /separated by something other than spaces or tabs/],
  ] as const) {
    assert.throws(() => checkCrons([expression]), message, expression);
  }
  assert.throws(() => checkCrons(['* * * * *', '* * * * *']), /listed twice/);
  // Cloudflare's API refuses two triggers that are one schedule written two ways.
  assert.throws(() => checkCrons(['*/5 * * * *', '0/5 * * * *']), /"\*\/5 \* \* \* \*" and "0\/5 \* \* \* \*" are the same schedule/);
  assert.throws(() => checkCrons(['0 0 * * SAT', '0 0 * * L']), /same schedule/);
  assert.throws(() => checkCrons(Array.from({ length: 11 }, (_, i) => `${i} * * * *`)), /at most 10/);
  assert.throws(() => checkCrons('* * * * *'), /must be a list/);
});
