// The channel between the control process and a runtime process: every layout round-trips,
// and what a (possibly compromised) runtime process sends that breaks the message table (an
// unknown code, a message only the control process may send, a payload of the wrong shape, a
// frame too large, a body past its window) closes the channel instead of reaching the server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { duplexPair } from 'node:stream';
import { Channel, MAX_UNSENT_BYTES } from '../src/supervisor/channel.ts';
import { IncomingBody } from '../src/supervisor/body-stream.ts';
import { CHUNK_BYTES, MAX_FRAME_BYTES, MESSAGES, STREAM_WINDOW_BYTES, type Message } from '../src/supervisor/messages.ts';

function pair(): { control: Channel; runtime: Channel; received: Message[]; errors: Error[]; raw: (bytes: Buffer) => void } {
  const [a, b] = duplexPair();
  const received: Message[] = [];
  const errors: Error[] = [];
  const control = new Channel(a, 'control', { message: (m) => received.push(m), error: (e) => errors.push(e), close() {} });
  const runtime = new Channel(b, 'runtime', { message: () => {}, error: () => {}, close() {} });
  return { control, runtime, received, errors, raw: (bytes) => b.write(bytes) };
}

function frame(code: number, id: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUInt32LE(payload.byteLength, 0);
  header.writeUInt8(code, 4);
  header.writeUInt32LE(id, 5);
  return Buffer.concat([header, payload]);
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('each layout crosses intact', async () => {
  const { runtime, received, errors } = pair();
  runtime.send('response', 7, { status: 201, statusText: 'Created', headers: [['a', 'b']], stream: true });
  runtime.send('responseWhole', 8, { head: { status: 200, statusText: 'OK', headers: [], stream: false }, body: Buffer.from('hello') });
  runtime.send('responseBody', 7, Buffer.from('chunk'));
  runtime.send('requestCredit', 9, 4096);
  runtime.send('responseEnd', 7, undefined);
  runtime.send('result', 3, { ok: false, error: { kind: 'load', message: 'bad', location: 'a.js:1:2' } });
  await settle();
  assert.deepEqual(errors, []);
  assert.deepEqual(received.map((m) => [m.name, m.id]), [['response', 7], ['responseWhole', 8], ['responseBody', 7], ['requestCredit', 9], ['responseEnd', 7], ['result', 3]]);
  const whole = received[1]!.payload as { body: Uint8Array };
  assert.equal(Buffer.from(whole.body).toString(), 'hello');
  assert.equal(received[3]!.payload, 4096);
});

const hostile: [string, Buffer][] = [
  ['an unknown code', frame(99, 1, Buffer.alloc(0))],
  ['a message only the control process sends', frame(2, 1, Buffer.from(JSON.stringify({ name: 'x', definition: {} })))],
  ['a status outside 200-599', frame(22, 1, Buffer.from(JSON.stringify({ status: 99, statusText: '', headers: [], stream: false })))],
  ['headers that are not string pairs', frame(22, 1, Buffer.from(JSON.stringify({ status: 200, statusText: '', headers: [['a', 1]], stream: false })))],
  ['a log line with an unknown level', frame(28, 0, Buffer.from(JSON.stringify({ time: 't', worker: 'w', level: 'fatal', type: 'console', message: 'm' })))],
  ['a scheduled outcome that is not one', frame(MESSAGES.scheduledResult.code, 1, Buffer.from(JSON.stringify({ outcome: 'fine', noRetry: false, cpuMs: 1, wallMs: 1 })))],
  ['a scheduled result with a negative time', frame(MESSAGES.scheduledResult.code, 1, Buffer.from(JSON.stringify({ outcome: 'ok', noRetry: false, cpuMs: -1, wallMs: 1 })))],
  ['a scheduled event sent by a runtime process', frame(MESSAGES.scheduled.code, 1, Buffer.from(JSON.stringify({ worker: 'w', cron: '* * * * *', scheduledTime: 0 })))],
  ['JSON that does not parse', frame(21, 1, Buffer.from('{'))],
  ['a credit of the wrong size', frame(27, 1, Buffer.alloc(3))],
  ['a frame larger than allowed', (() => { const header = Buffer.alloc(9); header.writeUInt32LE(MAX_FRAME_BYTES + 1, 0); header.writeUInt8(24, 4); return header; })()],
];

for (const [what, bytes] of hostile) {
  test(`${what} closes the channel`, async () => {
    const { control, received, errors, raw } = pair();
    raw(bytes);
    raw(frame(25, 1, Buffer.alloc(0))); // a valid frame after it is never delivered
    await settle();
    assert.equal(errors.length, 1, what);
    assert.match(errors[0]!.message, /malformed|unknown message|frame of|payload|short|credit|JSON/);
    assert.deepEqual(received, []);
    assert.ok(control.closed);
  });
}

test('a body pushed past its window is refused', () => {
  const body = new IncomingBody(() => {}, () => {});
  body.push(new Uint8Array(STREAM_WINDOW_BYTES));
  assert.throws(() => body.push(new Uint8Array(1)), /past its window/);
});

test('a peer that stops reading closes the channel once more than the allowed bytes wait unsent, instead of buffering without end', async () => {
  const [a] = duplexPair();
  const errors: Error[] = [];
  // Nothing reads the other end: every write stays in this side's buffer.
  const control = new Channel(a, 'control', { message() {}, error: (e) => errors.push(e), close() {} });
  const chunk = Buffer.alloc(64 * 1024);
  let sent = 0;
  while (!control.closed && sent <= MAX_UNSENT_BYTES + chunk.byteLength) {
    control.send('requestBody', 1, chunk);
    sent += 9 + chunk.byteLength;
  }
  assert.equal(control.closed, true);
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.message, /the other side stopped reading/);
  assert.ok(sent > MAX_UNSENT_BYTES);
});

test('a frame of megabytes (an RPC value) crosses whole, read into one buffer as its pieces come', async () => {
  const { runtime, received, errors } = pair();
  const value = Buffer.alloc(24 * 1024 * 1024);
  for (let i = 0; i < value.byteLength; i += 4096) value[i] = i % 251;
  runtime.send('serviceCall', 5, { head: { worker: 'w', binding: 'API', chain: ['w'], method: 'take' }, body: value });
  runtime.send('responseEnd', 6, undefined);
  while (received.length < 2 && errors.length === 0) await settle();
  assert.deepEqual(errors, []);
  assert.deepEqual(received.map((m) => [m.name, m.id]), [['serviceCall', 5], ['responseEnd', 6]]);
  const payload = received[0]!.payload as { head: { method: string }; body: Uint8Array };
  assert.equal(payload.head.method, 'take');
  assert.ok(Buffer.from(payload.body.buffer, payload.body.byteOffset, payload.body.byteLength).equals(value));
});

test('frames split anywhere, in many pieces or several to a piece, arrive whole and in order', async () => {
  const { received, errors, raw } = pair();
  const big = Buffer.alloc(CHUNK_BYTES, 7);
  const bytes = Buffer.concat([
    frame(24, 1, big),
    frame(27, 2, Buffer.from([0, 16, 0, 0])),
    frame(25, 1, Buffer.alloc(0)),
    frame(24, 3, Buffer.from('tail')),
  ]);
  // One byte at a time through the first frame's header, then pieces of odd sizes.
  let at = 0;
  for (; at < 12; at++) raw(bytes.subarray(at, at + 1));
  for (const size of [1000, 3, 50_000, 17]) {
    raw(bytes.subarray(at, at + size));
    at += size;
  }
  raw(bytes.subarray(at));
  await settle();
  assert.deepEqual(errors, []);
  assert.deepEqual(received.map((m) => [m.name, m.id]), [['responseBody', 1], ['requestCredit', 2], ['responseEnd', 1], ['responseBody', 3]]);
  assert.ok(Buffer.from(received[0]!.payload as Uint8Array).equals(big));
  assert.equal(received[1]!.payload, 4096);
  assert.equal(Buffer.from(received[3]!.payload as Uint8Array).toString(), 'tail');
});
