// The server's log: JSON lines through pino, by level to stdout or stderr, with a least level,
// and workers' request lines sampled while failures are always kept; a reader that stops
// taking lines costs a bounded buffer, and never a hang at exit.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { jsonLinesSink, requestLineSampler, serverLog } from '../src/server/logger.ts';
import { ServeProcess, callApi, moduleDeployment } from './server-support.ts';
import { hostFetch } from './support/serve.ts';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[]; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  return { stream, text: () => text, lines: () => text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>) };
}


/** An `isolet serve` in a folder of its own, stopped and removed when the test ends. */
function serveFor(t: TestContext, env: Record<string, string> | ((dir: string) => Record<string, string>), args: string[]): ServeProcess {
  const dir = mkdtempSync(join(tmpdir(), 'isolet-log-'));
  const serve = new ServeProcess(join(dir, 'data'), typeof env === 'function' ? env(dir) : env, args);
  t.after(async () => {
    serve.kill();
    await serve.exited;
    rmSync(dir, { recursive: true, force: true });
  });
  return serve;
}

test('JSON lines: debug, info and console.log on stdout, warn and error on stderr, in the entry\'s order', () => {
  const out = capture();
  const err = capture();
  const sink = jsonLinesSink({ level: 'debug', stdout: out.stream, stderr: err.stream });
  const log = serverLog(sink);
  log('info', 'server', 'listening on http://127.0.0.1:1', { url: 'http://127.0.0.1:1' });
  log('debug', 'server', 'details');
  log('warn', 'supervisor', 'backing off', { process: 'default/0' });
  sink({ time: 'T', worker: 'w', level: 'log', type: 'console', message: 'from console.log' } as never);
  sink({ time: 'T', worker: 'w', level: 'error', type: 'exception', message: 'Uncaught Error: x\n  at y' } as never);
  sink.flush();
  assert.deepEqual(out.lines().map((line) => [line.level, line.message]), [['info', 'listening on http://127.0.0.1:1'], ['debug', 'details'], ['log', 'from console.log']]);
  assert.deepEqual(err.lines().map((line) => [line.level, line.message]), [['warn', 'backing off'], ['error', 'Uncaught Error: x\n  at y']]);
  // The level first, then the entry as it was made: its message before its fields.
  assert.match(out.text().split('\n')[0]!, /^\{"level":"info","time":"[^"]+","type":"server","message":"listening on [^"]+","url":/);
});

test('the least level drops what is below it; console.log sits between info and warn', () => {
  const out = capture();
  const err = capture();
  const sink = jsonLinesSink({ level: 'warn', stdout: out.stream, stderr: err.stream });
  for (const level of ['debug', 'info', 'log', 'warn', 'error']) sink({ level, message: level } as never);
  assert.deepEqual(out.lines(), []);
  assert.deepEqual(err.lines().map((line) => line.message), ['warn', 'error']);
});

test('announced lines (where the server listens) are written at any least level', () => {
  const out = capture();
  const err = capture();
  const sink = jsonLinesSink({ level: 'error', stdout: out.stream, stderr: err.stream });
  serverLog(sink)('info', 'server', 'dropped at this level');
  serverLog(sink.announce)('info', 'server', 'listening on http://127.0.0.1:1', { url: 'http://127.0.0.1:1' });
  sink.flush();
  assert.deepEqual(out.lines().map((line) => [line.level, line.message, line.url]), [['info', 'listening on http://127.0.0.1:1', 'http://127.0.0.1:1']]);
  assert.deepEqual(err.lines(), []);
});

test('isolet serve --log-level error still says where it listens, and nothing else below error', { timeout: 60_000 }, async (t) => {
  const serve = serveFor(t, {}, ['--processes', '0', '--log-level', 'error']);
  const { port, admin } = await serve.ready();
  assert.equal((await callApi(admin, 'POST', '/v1/accounts', { body: { name: 'acme' } })).status, 201);
  serve.child.kill('SIGTERM');
  assert.equal((await serve.exited).code, 0);
  assert.deepEqual(jsonLines(serve.stdout, 'stdout').map((line) => line.message), ['admin token from ISOLET_ADMIN_TOKEN', `listening on http://127.0.0.1:${port}`, `admin API on ${admin}`]);
  assert.deepEqual(jsonLines(serve.stderr, 'stderr'), []);
});

test('request lines are sampled; failures and other lines always pass', () => {
  const draws = [0.05, 0.5, 0.5, 0.5];
  const keep = requestLineSampler(0.1, () => draws.shift()!);
  assert.equal(keep({ type: 'request', status: 200 }), true);
  assert.equal(keep({ type: 'request', status: 200 }), false);
  assert.equal(keep({ type: 'request', status: 503 }), true);
  assert.equal(keep({ type: 'console' }), true);
  assert.equal(requestLineSampler(0)({ type: 'request', status: 404 }), false);
  assert.equal(requestLineSampler(1)({ type: 'request', status: 200 }), true);
  assert.throws(() => requestLineSampler(2), /from 0 to 1/);
});

// A destination nobody reads: a FIFO opened for reading and writing without blocking, so that a
// write past the pipe's capacity meets EAGAIN as a stalled pipe to a log shipper does.
function stalledFifo(dir: string, name: string): { path: string; fd: number } {
  const path = join(dir, name);
  execFileSync('mkfifo', [path]);
  return { path, fd: openSync(path, constants.O_RDWR | constants.O_NONBLOCK) };
}

test('a log reader that stops taking lines costs the server a bounded buffer: the rest are dropped, counted, and reported once it reads again', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'isolet-log-'));
  const out = stalledFifo(dir, 'out');
  const err = stalledFifo(dir, 'err');
  const maxBufferedBytes = 256 * 1024;
  const sink = jsonLinesSink({ fds: { stdout: out.fd, stderr: err.fd }, maxBufferedBytes });
  const log = serverLog(sink);
  const LINES = 20_000;
  const filler = 'x'.repeat(200);
  try {
    for (let i = 0; i < LINES; i++) log('info', 'console', `line ${i} ${filler}`);
    // Now a reader comes: it takes what the pipe and the bounded buffer held, then the report.
    const reader = openSync(out.path, constants.O_RDONLY | constants.O_NONBLOCK);
    let text = '';
    const chunk = Buffer.alloc(65_536);
    for (let waited = 0; waited < 30_000 && !text.includes('were dropped'); waited += 20) {
      for (;;) {
        let n = 0;
        try {
          n = readSync(reader, chunk);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
        }
        if (n <= 0) break;
        text += chunk.toString('utf8', 0, n);
      }
      if (!text.includes('were dropped')) await sleep(20);
    }
    closeSync(reader);
    const lines = text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
    const delivered = lines.filter((line) => line.type === 'console');
    const report = lines.find((line) => typeof line.dropped === 'number');
    assert.ok(report, 'a line reports the dropped ones');
    assert.equal(report.level, 'warn');
    assert.match(String(report.message), /log lines .* were dropped: stdout did not take them fast enough/);
    assert.equal(delivered.length + (report.dropped as number), LINES, 'every line is either delivered or counted');
    assert.ok(delivered.length < LINES / 4, `only what the pipe and the bound hold is kept (${delivered.length} of ${LINES} delivered)`);
    assert.ok(text.length < maxBufferedBytes + 256 * 1024, `the server held about the bound, not every line (${text.length} bytes read)`);
    // In order, and the first ones are kept (a stalled reader loses the newest, not a random mix).
    assert.deepEqual(delivered.slice(0, 3).map((line) => String(line.message).split(' ').slice(0, 2).join(' ')), ['line 0', 'line 1', 'line 2']);
  } finally {
    // The FIFOs stay open until the process ends: pino flushes its destinations at exit.
    sink.flush();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('flushing at exit gives up on a reader that takes nothing, instead of waiting forever', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'isolet-log-'));
  const out = stalledFifo(dir, 'out');
  const err = stalledFifo(dir, 'err');
  try {
    const sink = jsonLinesSink({ fds: { stdout: out.fd, stderr: err.fd } });
    const log = serverLog(sink);
    for (let i = 0; i < 2000; i++) log('info', 'console', `line ${i} ${'y'.repeat(200)}`);
    sink.flush(); // returns although the pipe is full and nobody reads it
    // Given up: later lines and pino's own flush as the process exits cost nothing either.
    log('info', 'console', 'after the flush');
    sink.flush();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Each line of `text` parsed as JSON; fails naming the first line that is not. */
function jsonLines(text: string, stream: string): Record<string, unknown>[] {
  return text.split('\n').filter((line) => line !== '').map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      assert.fail(`a line of ${stream} is not JSON: ${line}`);
    }
  });
}

const LOGGER = pathToFileURL(join(import.meta.dirname, '..', 'src', 'server', 'logger.ts')).href;

test("Node's warnings and an error nothing caught become JSON lines; the error is written before the process exits 1", { timeout: 60_000 }, () => {
  for (const [fault, said] of [
    ['setTimeout(() => { throw new TypeError("nobody caught this"); }, 50);', /stopped on an exception nothing caught: TypeError: nobody caught this/],
    ['setTimeout(() => void Promise.reject(new Error("nobody handled this")), 50);', /stopped on a promise rejection nothing handled: Error: nobody handled this/],
  ] as const) {
    const script = `import { jsonLinesSink, logProcessEvents, serverLog } from ${JSON.stringify(LOGGER)};
      const sink = jsonLinesSink();
      logProcessEvents(serverLog(sink), () => sink.flush());
      process.emitWarning('this is deprecated', { type: 'DeprecationWarning', code: 'DEP_ISOLET_TEST' });
      ${fault}`;
    const child = spawnSync(process.execPath, ['--no-node-snapshot', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(child.status, 1, child.stderr);
    assert.deepEqual(jsonLines(child.stdout, 'stdout'), []);
    const lines = jsonLines(child.stderr, 'stderr');
    assert.equal(lines.length, 2, child.stderr);
    assert.deepEqual([lines[0]!.level, lines[0]!.message, lines[0]!.code], ['warn', 'DeprecationWarning [DEP_ISOLET_TEST]: this is deprecated', 'DEP_ISOLET_TEST']);
    assert.equal(lines[1]!.level, 'error');
    assert.match(String(lines[1]!.message), said);
    assert.match(String(lines[1]!.stack), /at /);
  }
});

test('isolet serve with runtime processes writes nothing but JSON lines, a warning of Node included', { timeout: 180_000 }, async (t) => {
  // Stands in for a dependency's warning (pg's pgpass deprecation, say), on demand.
  const serve = serveFor(t, (dir) => {
    const preload = join(dir, 'warn-on-signal.mjs');
    writeFileSync(preload, `process.on('SIGUSR2', () => process.emitWarning('a dependency says this is deprecated', { type: 'DeprecationWarning', code: 'DEP_ISOLET_TEST' }));\n`);
    return { NODE_OPTIONS: `--import=${pathToFileURL(preload).href}` };
  }, ['--processes', '1', '--log-level', 'debug']);
  const { port, admin } = await serve.ready();
  assert.equal((await callApi(admin, 'POST', '/v1/accounts', { body: { name: 'acme' } })).status, 201);
  const source = `export default { fetch(request) {
    console.log('two\\nlines', { and: 'an object' });
    console.error('to stderr');
    if (new URL(request.url).pathname === '/boom') throw new Error('boom');
    return new Response('ok');
  } };`;
  assert.equal((await callApi(admin, 'PUT', '/v1/workers/talks?account=acme', { body: moduleDeployment(source) })).status, 201);
  assert.equal((await hostFetch(port, 'talks.localhost', '/')).status, 200);
  assert.equal((await hostFetch(port, 'talks.localhost', '/boom')).status, 500);
  await serve.waitFor('stdout', /"type":"request".*"status":500/);
  serve.child.kill('SIGUSR2');
  await serve.waitFor('stderr', /DEP_ISOLET_TEST/);
  serve.child.kill('SIGTERM');
  assert.deepEqual(await serve.exited, { code: 0, signal: null });
  const out = jsonLines(serve.stdout, 'stdout');
  const err = jsonLines(serve.stderr, 'stderr');
  assert.ok(out.some((line) => line.type === 'supervisor' && line.message === 'runtime process started'), 'the runtime process ran');
  assert.ok(out.some((line) => line.type === 'console' && String(line.message).startsWith('two\nlines {')), serve.stdout);
  assert.ok(err.some((line) => line.type === 'exception'), serve.stderr);
  const warning = err.find((line) => line.code === 'DEP_ISOLET_TEST');
  assert.deepEqual([warning?.level, warning?.type, warning?.message], ['warn', 'server', 'DeprecationWarning [DEP_ISOLET_TEST]: a dependency says this is deprecated']);
});

test('isolet serve --log-request-sample-rate applies to request lines; a failure is always written and metrics count every request', { timeout: 120_000 }, async (t) => {
  const serve = serveFor(t, {}, ['--processes', '0', '--log-request-sample-rate', '0']);
  const { port, admin } = await serve.ready();
  assert.equal((await callApi(admin, 'POST', '/v1/accounts', { body: { name: 'acme' } })).status, 201);
  const source = `export default { fetch(request) {
    if (new URL(request.url).pathname === '/boom') throw new Error('boom');
    console.log('served');
    return new Response('ok');
  } };`;
  assert.equal((await callApi(admin, 'PUT', '/v1/workers/sampled?account=acme', { body: moduleDeployment(source) })).status, 201);
  for (let i = 0; i < 5; i++) assert.equal((await hostFetch(port, 'sampled.localhost', '/')).status, 200);
  assert.equal((await hostFetch(port, 'sampled.localhost', '/boom')).status, 500);
  // Lines are written in the order the requests ended: once the failure's is out, so would be the others'.
  await serve.waitFor('stdout', /"type":"request".*"status":500/);
  const metrics = await callApi(admin, 'GET', '/metrics');
  assert.match(metrics.text, /isolet_requests_total\{worker="sampled",status="2xx"\} 5/);
  serve.child.kill('SIGTERM');
  assert.equal((await serve.exited).code, 0);
  const lines = jsonLines(serve.stdout, 'stdout');
  assert.deepEqual(lines.filter((line) => line.type === 'request').map((line) => line.status), [500]);
  assert.equal(lines.filter((line) => line.type === 'console').length, 5, 'only request lines are sampled');
});
