// The server's log: JSON lines through pino, by level to stdout or stderr, with a least level,
// and workers' request lines sampled while failures are always kept.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { jsonLinesSink, requestLineSampler, serverLog } from '../src/server/logger.ts';

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
