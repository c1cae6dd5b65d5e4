// The host side of a request body (src/runtime/request-body.ts), without an isolate: what one
// read hands over, what it waits for, and how a body read whole is gathered and bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BodyTooLargeError, MAX_READ_BYTES, RequestBody } from '../src/runtime/request-body.ts';

const KB = 1024;

/** A source of `chunks`; a chunk that is a promise is not ready until it resolves. */
function source(chunks: (Uint8Array | Promise<Uint8Array>)[]): { iterator: AsyncIterator<Uint8Array>; returned: () => boolean } {
  let at = 0;
  let returned = false;
  return {
    iterator: {
      async next() {
        if (at >= chunks.length) return { done: true, value: undefined };
        return { done: false, value: await chunks[at++]! };
      },
      async return() {
        returned = true;
        return { done: true, value: undefined };
      },
    },
    returned: () => returned,
  };
}

const filled = (size: number, byte: number) => new Uint8Array(size).fill(byte);

test('a read joins the chunks that are ready, up to MAX_READ_BYTES, into a buffer of its own', async () => {
  const chunks = Array.from({ length: 20 }, (_, i) => filled(64 * KB, i));
  const body = new RequestBody(source(chunks).iterator);
  const first = new Uint8Array((await body.read())!);
  assert.equal(first.byteLength, MAX_READ_BYTES);
  assert.equal(first.buffer.byteLength, first.byteLength, 'nothing else shares its buffer');
  assert.equal(first[0], 0);
  assert.equal(first[MAX_READ_BYTES - 1], MAX_READ_BYTES / (64 * KB) - 1);
  const rest = new Uint8Array((await body.read())!);
  assert.equal(rest.byteLength, 20 * 64 * KB - MAX_READ_BYTES);
  assert.equal(rest[0], MAX_READ_BYTES / (64 * KB));
  assert.equal(await body.read(), null);
  assert.ok(body.done);
});

test('a read does not wait for a chunk that is not ready, and that chunk is the next read\'s', async () => {
  let arrive!: (chunk: Uint8Array) => void;
  const late = new Promise<Uint8Array>((resolve) => (arrive = resolve));
  const body = new RequestBody(source([filled(10, 1), late, filled(5, 3)]).iterator);
  assert.equal((await body.read())!.byteLength, 10);
  const next = body.read();
  arrive(filled(7, 2));
  const joined = new Uint8Array((await next)!);
  assert.deepEqual([...joined], [2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3]);
  assert.equal(await body.read(), null);
});

test('read whole: the declared length or not, the source longer or shorter than declared, bytes or text', async () => {
  const parts = () => [filled(3000, 65), filled(5000, 66), filled(2000, 67)];
  const expected = [...parts().flatMap((part) => [...part])];
  for (const declared of [undefined, '10000', '4000', '20000', 'nonsense']) {
    const body = new RequestBody(source(parts()).iterator);
    if (declared !== undefined) body.declare(declared);
    const bytes = new Uint8Array((await body.readWhole(false, 1024 * KB)) as ArrayBuffer);
    assert.equal(bytes.byteLength, 10_000, `declared ${declared}`);
    assert.equal(bytes.buffer.byteLength, 10_000);
    assert.deepEqual([...bytes], expected, `declared ${declared}`);
  }
  const text = new RequestBody(source([Buffer.from('\uFEFFh\u00e9'.slice(0, 2)), Buffer.from('\u00e9llo')]).iterator);
  assert.equal(await text.readWhole(true, 1024 * KB), '\uFEFFh\u00e9llo');
});

test('read whole past the cap is a RangeError that says why, and closes the source', async () => {
  for (const declare of [true, false]) {
    const { iterator, returned } = source([filled(600 * KB, 1), filled(600 * KB, 2)]);
    const body = new RequestBody(iterator);
    if (declare) body.declare(String(1200 * KB));
    await assert.rejects(body.readWhole(false, 1024 * KB), (error: unknown) => {
      assert.ok(error instanceof BodyTooLargeError);
      assert.match((error as Error).message, /too large to read whole.*memory limit of 1 MB.*request\.body/);
      return true;
    });
    assert.ok(returned(), 'the source was closed');
  }
});

test('a chunk that is not bytes is a TypeError', async () => {
  const body = new RequestBody(source(['text' as unknown as Uint8Array]).iterator);
  await assert.rejects(body.read(), { name: 'TypeError', message: /must be a Uint8Array, not string/ });
});
