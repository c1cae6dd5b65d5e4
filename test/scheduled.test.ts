// Scheduled handlers (cron triggers) through the library face: `runtime.scheduled(name, { cron,
// scheduledTime })` runs `scheduled(controller, env, ctx)` under a request's limits and
// resolves with the outcome; the worker's log gets one 'scheduled' line per run. Also the cron
// syntax itself (src/cron/cron.ts): what Cloudflare accepts, what it refuses, and when it fires.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../src/runtime/runtime.ts';
import { WorkerLoadError, type WorkerLogEntry } from '../src/runtime/types.ts';
import { checkCrons, cronSchedule, firesAt } from '../src/cron/cron.ts';

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

  for (const [expression, message] of [
    ['0 0 * * 0', /weekdays from 1 \(Sunday\) to 7/],
    ['0 0 * * 1-8', /day of week 8 is out of range/],
    ['* * * * * *', /6 fields/],
    ['@hourly', /1 field;/],
    ['0 0 ? * 1', /day of month field '\?'/],
    ['60 * * * *', /minute: 60/],
    ['*/0 * * * *', /stepping/],
    ['0 0 31 2 *', /never fires/],
    ['0 0 * * +MON', /day of week field/],
  ] as const) {
    assert.throws(() => checkCrons([expression]), message, expression);
  }
  assert.throws(() => checkCrons(['* * * * *', '* * * * *']), /listed twice/);
  assert.throws(() => checkCrons(Array.from({ length: 11 }, (_, i) => `${i} * * * *`)), /at most 10/);
  assert.throws(() => checkCrons('* * * * *'), /must be a list/);
});
