// Attacks by one tenant on the others, each bounded in time and memory: the attacker gets its
// limit, every other tenant keeps being served. What the runtime must hold whatever the
// attacker runs and whenever it runs it (after its response, in a flood of host calls, under
// hundreds of parked requests), and what ends a process that V8 can no longer keep.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { serve, moduleWorker, type Served } from './support/serve.ts';
import { LOG_CHARS_PER_SECOND, LOG_LINES_PER_SECOND } from '../src/sandbox/host-budget.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const victim = moduleWorker(`export default { fetch() { return new Response('still here'); } };`);

const attacker = moduleWorker(`
let parked = 0;
export default {
  async fetch(request, env, ctx) {
    const { pathname } = new URL(request.url);
    if (pathname === '/loop-after-response') {
      (async () => { for (let i = 0; i < 20; i++) await null; while (true) {} })();
      return new Response('bye');
    }
    if (pathname === '/microtasks-after-response') {
      const again = () => queueMicrotask(again);
      again();
      return new Response('bye');
    }
    if (pathname === '/log-flood') { while (true) console.log('B'.repeat(1024)); }
    if (pathname === '/log-bytes') {
      const line = 'L'.repeat(16 * 1024);
      for (let i = 0; i < 5000; i++) console.log(line);
      return new Response('logged');
    }
    if (pathname === '/sync-flood') { while (true) crypto.getRandomValues(new Uint8Array(16)); }
    if (pathname === '/log-burst') {
      for (let i = 0; i < 3000; i++) console.log('line ' + i);
      return new Response('logged');
    }
    if (pathname === '/timer-flood') { while (true) clearTimeout(setTimeout(() => {}, 1e5)); }
    if (pathname === '/call-flood') {
      const pending = [];
      for (let i = 0; i < 3000; i++) pending.push(crypto.subtle.digest('SHA-256', new Uint8Array(8)));
      const rejected = (await Promise.allSettled(pending)).filter((result) => result.status === 'rejected');
      return new Response(rejected.length + ' ' + rejected[0]?.reason.constructor.name + ': ' + rejected[0]?.reason.message);
    }
    if (pathname === '/park') {
      parked++;
      ctx.waitUntil(new Promise(() => {}));
      return new Response('parked ' + parked);
    }
    if (pathname === '/loop') { while (true) {} }
    return new Response('ok');
  },
};`);

let served: Served;

before(async () => {
  served = await serve({ victim, attacker }, { reduceIdleMemoryAfterMs: 0 });
});

after(async () => {
  await served.close();
});

async function victimAnswers(): Promise<void> {
  const response = await served.fetch('victim', '/');
  assert.equal(response.status, 200);
  assert.equal(await response.text(), 'still here');
}

const cpuLimitLine = (phase: RegExp) => (entry: { worker: string; type: string; limit?: unknown; message: string }) =>
  entry.worker === 'attacker' && entry.type === 'limit' && entry.limit === 'cpu' && phase.test(entry.message);

// A response is taken once the promise callbacks its handler left queued have all run (as in
// workerd), so a loop started in them is the request's own work: it ends at the request's CPU
// limit, and the client gets the 503.
test('a loop a worker starts in promise callbacks after returning its response is stopped at the CPU limit, on more isolates than there are threads', async () => {
  const before = served.logs.length;
  // More attackers than isolate threads (cores + 1): each would hold one forever.
  const attackers = ['attacker', 'attacker2', 'attacker3', 'attacker4'];
  for (const name of attackers.slice(1)) await served.runtime.load(name, { modules: [{ name: 'main.js', source: (attacker.modules![0]!).source }] });
  for (const name of attackers) {
    const response = await served.fetch(name, '/loop-after-response');
    assert.equal(response.status, 503);
    assert.equal(await response.text(), 'Error 1102: Worker exceeded CPU time limit.\n');
  }
  await victimAnswers();
  for (const name of attackers) {
    const line = await served.waitForLog((entry) => entry.worker === name && entry.type === 'limit' && entry.limit === 'cpu');
    assert.match(line.message, /per request/);
  }
  assert.ok(served.logs.length > before);
  await victimAnswers();
  // The worker serves again, from a fresh isolate.
  assert.equal(await (await served.fetch('attacker', '/')).text(), 'ok');
});

test('a self-rescheduling microtask after the response is stopped too: the response never comes before the queue is empty', async () => {
  const response = await served.fetch('attacker', '/microtasks-after-response');
  assert.equal(response.status, 503);
  await response.text();
  await served.waitForLog(cpuLimitLine(/per request/));
  await victimAnswers();
});

test('a console.log flood is cut at the isolate, and the loop ends at the CPU limit', async () => {
  const before = served.logs.length;
  const response = await served.fetch('attacker', '/log-flood');
  assert.equal(response.status, 503, await response.text());
  await victimAnswers();
  const lines = served.logs.slice(before).filter((entry) => entry.worker === 'attacker' && entry.type === 'console');
  // One second's budget at most, plus the notice that lines were dropped.
  assert.ok(lines.length <= LOG_LINES_PER_SECOND + 1, `${lines.length} console lines reached the host`);
});

test('console lines over the budget are dropped, and the drop is announced once', async () => {
  const before = served.logs.length;
  const response = await served.fetch('attacker', '/log-burst');
  assert.equal(await response.text(), 'logged');
  await served.waitForLog((entry) => entry.worker === 'attacker' && entry.type === 'request' && /log-burst/.test(entry.message));
  const lines = served.logs.slice(before).filter((entry) => entry.worker === 'attacker' && entry.type === 'console');
  assert.equal(lines.length, LOG_LINES_PER_SECOND + 1);
  assert.equal(lines.filter((entry) => /Console output is over its limit/.test(entry.message)).length, 1);
  assert.equal(lines[0]!.message, 'line 0');
});

test('5,000 console lines of 16 KiB reach the host as one second\'s byte budget, not 78 MiB', async () => {
  const before = served.logs.length;
  await served.runtime.load('logger', { ...attacker, limits: { cpuMs: 2000 } });
  assert.equal(await (await served.fetch('logger', '/log-bytes')).text(), 'logged');
  await served.waitForLog((entry) => entry.worker === 'logger' && entry.type === 'request');
  const bytes = served.logs.slice(before).filter((entry) => entry.worker === 'logger' && entry.type === 'console')
    .reduce((sum, entry) => sum + entry.message.length, 0);
  assert.ok(bytes <= LOG_CHARS_PER_SECOND + 1024, `${bytes} characters of console output reached the host`);
});

test('a flood of synchronous host calls ends at the CPU limit', async () => {
  const response = await served.fetch('attacker', '/sync-flood');
  assert.equal(response.status, 503);
  await served.waitForLog(cpuLimitLine(/per request/));
  await victimAnswers();
});

test('a setTimeout/clearTimeout flood never reaches the host and ends at the CPU limit', async () => {
  const response = await served.fetch('attacker', '/timer-flood');
  assert.equal(response.status, 503);
  assert.match(await response.text(), /CPU time limit/);
  await victimAnswers();
});

test('pending host calls are bounded inside the isolate', async () => {
  // CPU enough for a thousand crossings: the bound, not the CPU limit, must end this one.
  await served.runtime.load('flooder', { ...attacker, limits: { cpuMs: 2000 } });
  const response = await served.fetch('flooder', '/call-flood');
  const text = await response.text();
  assert.equal(response.status, 200, text + JSON.stringify(served.logs.slice(-3)));
  assert.match(text, /^2000 RangeError: Too many operations pending at once/);
  await victimAnswers();
});

test('requests parked on waitUntil do not dilute a loop\'s CPU charge', async () => {
  const parked = 300;
  await Promise.all(Array.from({ length: parked }, () => served.fetch('attacker', '/park').then((r) => r.text())));
  const response = await served.fetch('attacker', '/loop');
  assert.equal(response.status, 503);
  const line = await served.waitForLog(cpuLimitLine(/per request/));
  // Charged to the looping request alone: not a 300th of it (the limit is 50 ms; the watchdog
  // acts within a tick or so of it, with room here for a loaded machine).
  assert.ok((line.usedMs as number) < 50 * 20, `the loop ran ${line.usedMs} ms`);
  await victimAnswers();
});

/** Runs a script under the project's Node in a child process; the child's own limit guards the test. */
function runChild(source: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--no-node-snapshot', '--input-type=module', '-e', source], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stderr });
    });
  });
}

function fatalLine(stderr: string): { worker: string; level: string } | undefined {
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const parsed = JSON.parse(line);
      if (parsed.type === 'catastrophic') return parsed;
    } catch {}
  }
  return undefined;
}

test('a fatal V8 error in a worker ends the process at once, and its last line names the worker', async () => {
  const { code, signal, stderr } = await runChild(`
    import { Runtime } from './src/runtime/runtime.ts';
    const runtime = new Runtime({ log: () => {} });
    await runtime.load('crasher', { limits: { memoryMb: 1024, cpuMs: 10000 }, modules: [{ name: 'main.js', source: "export default { fetch() { 'x'.repeat(2 ** 27 + 16).split(''); return new Response('no'); } }" }] });
    await runtime.fetch('crasher', { method: 'GET', url: 'http://crasher/', headers: [] });
    process.stderr.write('SURVIVED\\n');
  `);
  assert.ok(!stderr.includes('SURVIVED'), 'the process went on after a fatal error');
  assert.ok(code !== 0 || signal !== null, `the process ended (code ${code}, signal ${signal})`);
  const line = fatalLine(stderr);
  assert.equal(line?.worker, 'crasher', stderr.slice(-2000));
  assert.equal(line?.level, 'fatal');
});

test('an out-of-memory error in an isolate exits with status 70 instead of hanging', async () => {
  // Straight on isolated-vm: the sandbox refuses a table this size, and the native handler is what
  // must hold for whatever else runs V8 out of memory.
  const { code, stderr } = await runChild(`
    import ivm from 'isolated-vm';
    const isolate = new ivm.Isolate({ memoryLimit: 128, onCatastrophicError: () => { process.exit(70); } });
    const context = await isolate.createContext();
    isolate.setFatalLabel('oom-tenant');
    await context.eval("new WebAssembly.Table({ initial: 5_000_000, element: 'anyfunc' })").catch(() => {});
    process.stderr.write('SURVIVED\\n');
  `);
  assert.equal(code, 70, stderr.slice(-2000));
  assert.equal(fatalLine(stderr)?.worker, 'oom-tenant');
});

// A worker that puts accessors for "0" and "get" on Object.prototype makes the first use of a
// runtime module fail inside the host's call, and that error crosses back into the isolate.
// isolated-vm's stack getter on such an error then read its private pair through the tenant's
// "0": a segmentation fault of the process, every tenant in it gone. Run in a child process of
// its own, so that a regression is a failed test rather than the end of this file.
test('a worker that puts accessors for array indexes and descriptor keys on Object.prototype takes down no one', async () => {
  const polluter = `
    Object.defineProperty(Object.prototype, '0', { get() { return {}; }, set(value) {}, configurable: true });
    Object.defineProperty(Object.prototype, 'get', { __proto__: null, get() { return undefined; }, configurable: true });
    export default { async fetch() {
      let seen = '';
      try { new URLPattern('/a'); } catch (error) { seen += typeof error.stack + ' ' + typeof Object.create(error).stack; }
      console.log('after');
      return new Response(seen);
    } };`;
  const { code, signal, stderr } = await runChild(`
    import { Runtime } from './src/runtime/runtime.ts';
    import { fetchText } from './test/support/fetch-text.ts';
    const runtime = new Runtime({ log: () => {} });
    await runtime.load('polluter', { modules: [{ name: 'main.js', source: ${JSON.stringify(polluter)} }] });
    await runtime.load('victim', { modules: [{ name: 'main.js', source: "export default { fetch() { return new Response('still here'); } }" }] });
    const answers = [];
    for (const worker of ['polluter', 'polluter', 'victim']) answers.push({ worker, ...(await fetchText(runtime, worker, '/')) });
    process.stderr.write('ANSWERS ' + JSON.stringify(answers) + '\\n');
    await runtime.close();
  `);
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, stderr.slice(-2000));
  const answers = JSON.parse(/^ANSWERS (.*)$/m.exec(stderr)?.[1] ?? 'null') as { worker: string; status: number; text: string }[];
  assert.equal(answers.length, 3, stderr.slice(-2000));
  // The polluter broke its own isolate (its answers are its own business); it is answered, not hung.
  for (const answer of answers.slice(0, 2)) assert.ok(answer.status >= 200 && answer.status < 600, JSON.stringify(answer));
  assert.deepEqual(answers[2], { worker: 'victim', status: 200, text: 'still here' });
});

// isolated-vm copies an unhandled rejection's reason out of the isolate after the run, reading its
// `message` and then its `stack`. A CPU limit ends the first endless getter; V8 lifts a
// termination once the run's JavaScript has unwound, so the second one used to spin on its thread
// for good, outside any budget, and the ended isolate's teardown never came. Four such requests
// held every isolate thread and no tenant of the process was served again. In a child process:
// a regression is a failed test (close() never resolves) rather than cores spinning under the suite.
test('an unhandled rejection whose message and stack getters never return ends with its isolate, and holds no thread', async () => {
  const rejecter = `
    export default { fetch() {
      for (let i = 0; i < 3; i++) Promise.reject({ get message() { for (;;); }, get stack() { for (;;); }, get name() { for (;;); } });
      return new Response('rejected');
    } };`;
  const { code, signal, stderr } = await runChild(`
    import { Runtime } from './src/runtime/runtime.ts';
    import { fetchText } from './test/support/fetch-text.ts';
    const limits = [];
    const runtime = new Runtime({ log: (entry) => { if (entry.type === 'limit') limits.push(entry.limit); } });
    await runtime.load('rejecter', { modules: [{ name: 'main.js', source: ${JSON.stringify(rejecter)} }] });
    await runtime.load('victim', { modules: [{ name: 'main.js', source: "export default { fetch() { return new Response('still here'); } }" }] });
    const answers = [];
    for (const worker of ['rejecter', 'rejecter', 'rejecter', 'rejecter', 'victim']) answers.push({ worker, ...(await fetchText(runtime, worker, '/')) });
    process.stderr.write('ANSWERS ' + JSON.stringify({ answers, limits }) + '\\n');
    // Waits for every isolate's teardown: one whose thread still spins never ends.
    await runtime.close();
    process.stderr.write('CLOSED\\n');
  `);
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, stderr.slice(-2000));
  assert.match(stderr, /^CLOSED$/m);
  const { answers, limits } = JSON.parse(/^ANSWERS (.*)$/m.exec(stderr)?.[1] ?? 'null') as { answers: { worker: string; status: number; text: string }[]; limits: string[] };
  assert.deepEqual(answers.at(-1), { worker: 'victim', status: 200, text: 'still here' });
  // Each rejecter request's work after its response ran into the CPU limit.
  assert.ok(limits.length >= 1 && limits.every((limit) => limit === 'cpu'), JSON.stringify(limits));
});

test('a large body given whole is pulled a slice at a time, so a client that does not read holds no copy on the host', async () => {
  // 3 MiB of text with multi-byte characters and surrogate pairs on every slice boundary.
  await served.runtime.load('big', moduleWorker(`
    const unit = 'a€😀'.repeat(1024);
    const text = unit.repeat(3 * 1024 * 1024 / unit.length);
    export default { fetch(request) {
      return new URL(request.url).pathname === '/bytes' ? new Response(new Uint8Array(3 * 1024 * 1024).fill(7)) : new Response(text);
    } };`, { limits: { cpuMs: 1000 } }));
  const expected = Buffer.from('a€😀'.repeat(1024).repeat(3 * 1024 * 1024 / (4 * 1024)));
  const response = await served.runtime.fetch('big', { method: 'GET', url: 'https://big.example/', headers: [] });
  assert.equal(response.status, 200);
  assert.ok(response.body !== null && !(response.body instanceof Uint8Array), 'the body is pulled, not handed over whole');
  assert.equal(response.headers.find(([name]) => name === 'content-length')?.[1], String(expected.byteLength));
  const chunks: Uint8Array[] = [];
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    assert.ok(chunk.byteLength <= 1024 * 1024, `a pull handed over ${chunk.byteLength} bytes`);
    chunks.push(chunk);
  }
  assert.ok(chunks.length > 1);
  assert.ok(Buffer.concat(chunks).equals(expected), 'the text arrives intact');

  const bytes = await served.runtime.fetch('big', { method: 'GET', url: 'https://big.example/bytes', headers: [] });
  const iterator = (bytes.body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  const first = await iterator.next();
  assert.ok(!first.done && first.value.byteLength <= 1024 * 1024);
  // The client goes away after one slice: the rest is never copied out.
  await iterator.return!();

  // A streamed chunk larger than a slice is handed over in slices too.
  await served.runtime.load('bigchunk', moduleWorker(`
    export default { fetch() {
      const chunk = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
      return new Response(new ReadableStream({ start(controller) { controller.enqueue(chunk); controller.close(); } }));
    } };`, { limits: { cpuMs: 1000 } }));
  const streamed = await served.runtime.fetch('bigchunk', { method: 'GET', url: 'https://big.example/', headers: [] });
  const parts: Uint8Array[] = [];
  for await (const chunk of streamed.body as AsyncIterable<Uint8Array>) {
    assert.ok(chunk.byteLength <= 1024 * 1024, `a pull handed over ${chunk.byteLength} bytes`);
    parts.push(chunk);
  }
  const whole = Buffer.concat(parts);
  assert.equal(whole.byteLength, 3 * 1024 * 1024);
  assert.ok(whole.every((byte, i) => byte === i % 251));
  await victimAnswers();
});

test('a service-worker script that replaces Object.defineProperty and Object.keys sees no env value bound', async () => {
  await served.runtime.load('snoop', {
    script: `
      const seen = [];
      const original = Object.defineProperty;
      Object.defineProperty = function (target, name, descriptor) { seen.push(String(name)); return original(target, name, descriptor); };
      const keys = Object.keys;
      Object.keys = function (value) { seen.push('keys'); return keys(value); };
      addEventListener('fetch', (event) => event.respondWith(new Response(JSON.stringify({ seen, secret: typeof SECRET }))));
    `,
    vars: { SECRET: 'hunter2' },
  });
  const response = await served.runtime.fetch('snoop', { method: 'GET', url: 'https://snoop.example/', headers: [] });
  const body = JSON.parse(Buffer.from(response.body as Uint8Array).toString());
  // Lazily loaded platform modules may still call the replaced function (run-to-completion and
  // captured built-ins for those are the isolate wall's work); binding env is not among them.
  assert.equal(body.secret, 'string');
  assert.ok(!body.seen.includes('SECRET') && !body.seen.includes('keys'), JSON.stringify(body.seen));
});

test('importing a Node.js built-in is refused with a message that names it and the fix', async () => {
  await assert.rejects(
    served.runtime.load('nodefs', moduleWorker(`import fs from 'node:fs'; export default { fetch() { return new Response(typeof fs); } };`)),
    (error: Error) => {
      assert.match(error.message, /Cannot import 'node:fs' \(imported from main\.js\): isolet does not provide Node\.js's built-in modules/);
      assert.match(error.message, /Web platform APIs/);
      return true;
    },
  );
});
