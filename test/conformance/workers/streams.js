// Streams: ReadableStream, WritableStream, TransformStream, readers, tee, pipes, queuing
// strategies, text/compression streams, and streamed Response bodies. (Pending: streams.)
import { probeRoutes, err, aerr } from './_probe.js';

const read = async (stream) => {
  const out = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return out;
    out.push(value);
  }
};
const bytes = (s) => new TextEncoder().encode(s);

const probes = probeRoutes({
  '/readable': () => ({
    pullSource: async () => {
      let i = 0;
      return read(new ReadableStream({ pull(c) { if (i < 3) c.enqueue(i++); else c.close(); } }));
    },
    startEnqueue: async () => read(new ReadableStream({ start(c) { c.enqueue('a'); c.enqueue('b'); c.close(); } })),
    errorSource: async () => aerr(() => read(new ReadableStream({ start(c) { c.error(new TypeError('bad')); } }))),
    locked: () => {
      const s = new ReadableStream();
      const r = s.getReader();
      return [s.locked, err(() => s.getReader()), (r.releaseLock(), s.locked)];
    },
    cancel: async () => {
      let reason;
      const s = new ReadableStream({ cancel(r) { reason = r; } });
      await s.cancel('why');
      return reason;
    },
    tee: async () => {
      const [a, b] = new ReadableStream({ start(c) { c.enqueue(1); c.enqueue(2); c.close(); } }).tee();
      return [await read(a), await read(b)];
    },
    byob: async () => {
      const s = new ReadableStream({ type: 'bytes', start(c) { c.enqueue(new Uint8Array([1, 2, 3, 4])); c.close(); } });
      const r = s.getReader({ mode: 'byob' });
      const { value } = await r.read(new Uint8Array(2));
      return value;
    },
    from: async () => (typeof ReadableStream.from === 'function' ? read(ReadableStream.from([1, 2, 3])) : 'no ReadableStream.from'),
    asyncIterator: async () => {
      const out = [];
      for await (const chunk of new ReadableStream({ start(c) { c.enqueue('x'); c.enqueue('y'); c.close(); } })) out.push(chunk);
      return out;
    },
    highWaterMark: () => {
      let desired;
      new ReadableStream({ start(c) { desired = c.desiredSize; } }, { highWaterMark: 3 });
      return desired;
    },
    toStringTag: () => Object.prototype.toString.call(new ReadableStream()),
  }),
  '/writable-transform': () => ({
    writable: async () => {
      const chunks = [];
      const w = new WritableStream({ write(c) { chunks.push(c); } });
      const writer = w.getWriter();
      await writer.write('a');
      await writer.write('b');
      await writer.close();
      return chunks;
    },
    transform: async () => {
      const t = new TransformStream({ transform(chunk, c) { c.enqueue(chunk.toUpperCase()); } });
      const writer = t.writable.getWriter();
      writer.write('a');
      writer.write('b');
      writer.close();
      return read(t.readable);
    },
    identityTransform: async () => {
      const t = new TransformStream();
      const w = t.writable.getWriter();
      w.write(1);
      w.close();
      return read(t.readable);
    },
    pipeTo: async () => {
      const chunks = [];
      await new ReadableStream({ start(c) { c.enqueue(1); c.enqueue(2); c.close(); } }).pipeTo(new WritableStream({ write(c) { chunks.push(c); } }));
      return chunks;
    },
    pipeThrough: async () => read(new ReadableStream({ start(c) { c.enqueue('a'); c.close(); } }).pipeThrough(new TransformStream({ transform(x, c) { c.enqueue(x + x); } }))),
    textEncoderStream: async () => {
      if (typeof TextEncoderStream !== 'function') return 'no TextEncoderStream';
      return read(new ReadableStream({ start(c) { c.enqueue('hé'); c.close(); } }).pipeThrough(new TextEncoderStream()));
    },
    textDecoderStream: async () => {
      if (typeof TextDecoderStream !== 'function') return 'no TextDecoderStream';
      return read(new ReadableStream({ start(c) { c.enqueue(new Uint8Array([0x68, 0xc3])); c.enqueue(new Uint8Array([0xa9])); c.close(); } }).pipeThrough(new TextDecoderStream()));
    },
    compression: async () => {
      if (typeof CompressionStream !== 'function') return 'no CompressionStream';
      const gz = new Response(new Response('hello hello hello').body.pipeThrough(new CompressionStream('gzip')));
      const back = await new Response(gz.body.pipeThrough(new DecompressionStream('gzip'))).text();
      return back;
    },
    queuingStrategies: () => [new CountQueuingStrategy({ highWaterMark: 2 }).highWaterMark, new ByteLengthQueuingStrategy({ highWaterMark: 8 }).size(new Uint8Array(3))],
    identityTransformStream: () => typeof IdentityTransformStream,
    fixedLengthStream: () => typeof FixedLengthStream,
    // controller.terminate() after readable.cancel(reason): writer.closed rejects with the reason.
    terminateAfterCancel: async () => {
      const settle = (p) => p.then((v) => ['fulfilled', v], (e) => ['rejected', e]);
      const out = [];
      for (const awaitCancel of [true, false]) {
        let controller;
        const ts = new TransformStream({ start(c) { controller = c; } });
        const reason = { name: 'cancelReason' };
        const cancel = settle(ts.readable.cancel(reason));
        if (awaitCancel) await cancel;
        controller.terminate();
        const [state, error] = await settle(ts.writable.getWriter().closed);
        out.push([(await cancel)[0], state, error === reason ? 'the reason' : error]);
      }
      return out;
    },
  }),
  '/bodies': () => ({
    responseBody: async () => {
      const r = new Response('abc');
      const chunks = await read(r.body);
      return [r.bodyUsed, new TextDecoder().decode(chunks[0])];
    },
    streamBody: async () => new Response(new ReadableStream({ start(c) { c.enqueue(bytes('a')); c.enqueue(bytes('b')); c.close(); } })).text(),
    stringChunksRejected: () => aerr(() => new Response(new ReadableStream({ start(c) { c.enqueue('str'); c.close(); } })).text()),
    bodyIsSameObject: () => {
      const r = new Response('x');
      return r.body === r.body;
    },
    lockedBody: () => {
      const r = new Response('x');
      r.body.getReader();
      return [r.bodyUsed, err(() => r.clone())];
    },
    requestBody: async () => {
      const r = new Request('http://a/', { method: 'POST', body: new ReadableStream({ start(c) { c.enqueue(bytes('q')); c.close(); } }) });
      return r.text();
    },
  }),
});

// /wire: a streamed body as it goes out on the wire (chunks made over time).
export default {
  fetch(request, env, ctx) {
    if (new URL(request.url).pathname !== '/wire') return probes.fetch(request, env, ctx);
    const { readable, writable } = new TransformStream();
    const writer = writable.getWriter();
    (async () => {
      for (const part of ['one ', 'two ', 'three']) {
        await writer.write(bytes(part));
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      await writer.close();
    })();
    return new Response(readable, { headers: { 'content-type': 'text/plain' } });
  },
};
