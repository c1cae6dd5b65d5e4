// WHATWG Streams for the sandbox, loaded into an isolate the first time its code touches a
// stream (see src/runtime/sandbox-modules.ts for why it is not in the snapshot).
//
// The core is web-streams-polyfill, whose logic is the spec's reference implementation
// (ReadableStream with default and byte controllers, BYOB readers, tee, pipeTo/pipeThrough,
// async iteration, ReadableStream.from, WritableStream, TransformStream, queuing strategies).
// On top of it, written here: the Encoding Standard's TextEncoderStream/TextDecoderStream, and
// Workers' IdentityTransformStream and FixedLengthStream, with workerd's behaviour (they extend
// TransformStream, their readable side is a byte stream, their writable side takes bytes only).
// Plus the bridges the Body mixin uses between streams and body sources.

import {
  ReadableStream, ReadableStreamDefaultReader, ReadableStreamBYOBReader, ReadableStreamBYOBRequest,
  ReadableStreamDefaultController, ReadableByteStreamController, WritableStream,
  WritableStreamDefaultWriter, WritableStreamDefaultController, TransformStream,
  TransformStreamDefaultController, ByteLengthQueuingStrategy, CountQueuingStrategy,
  type Transformer, type UnderlyingByteSource,
} from 'web-streams-polyfill';
import type { BodySource } from '../../body/sandbox.ts';
import {
  ArrayBuffer, ArrayBufferIsView, Number, NumberIsSafeInteger, ObjectDefineProperty, ObjectEntries, Promise,
  ObjectGetOwnPropertyDescriptor, PromisePrototypeThen, ReflectApply, SafeWeakMap, String, StringPrototypeCharCodeAt, StringPrototypeSlice,
  SymbolToStringTag, TypeError, TypedArrayPrototypeSlice, Uint8Array,
} from '../../../sandbox/primordials.ts';
import { setAbortController } from './intrinsics.ts';

interface Encoder { encode(input: string): Uint8Array }
interface Decoder { decode(input?: Uint8Array, options?: { stream?: boolean }): string; encoding: string; fatal: boolean; ignoreBOM: boolean }
export interface StreamsDeps {
  AbortController: Parameters<typeof setAbortController>[0];
  TextEncoder: new () => Encoder;
  TextDecoder: new (label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean }) => Decoder;
}

type AnyReadable = ReadableStream<unknown>;
type AnyReader = ReadableStreamDefaultReader<unknown>;

// The classes' own methods, taken as this module loads, before tenant code can reach the
// classes: the platform's code reads, writes and tees streams with these, so what tenant code
// puts on the prototypes (ReadableStreamDefaultReader.prototype.read, say) changes nothing in
// how bodies are read and the platform's readers never pass through it.
function method<A extends unknown[], R>(proto: object, name: string): (self: object, ...args: A) => R {
  const fn = ObjectGetOwnPropertyDescriptor(proto, name)!.value as (...args: A) => R;
  return (self, ...args) => ReflectApply(fn, self, args);
}
function getter<R>(proto: object, name: string): (self: object) => R {
  const fn = ObjectGetOwnPropertyDescriptor(proto, name)!.get as () => R;
  return (self) => ReflectApply(fn, self, []);
}
const streamGetReader = method<[], AnyReader>(ReadableStream.prototype, 'getReader');
const streamLocked = getter<boolean>(ReadableStream.prototype, 'locked');
const streamTee = method<[], [AnyReadable, AnyReadable]>(ReadableStream.prototype, 'tee');
const streamCancel = method<[unknown?], Promise<void>>(ReadableStream.prototype, 'cancel');
const readerRead = method<[], Promise<{ done: boolean; value?: unknown }>>(ReadableStreamDefaultReader.prototype, 'read');
const readerCancel = method<[unknown], Promise<void>>(ReadableStreamDefaultReader.prototype, 'cancel');
const byteEnqueue = method<[ArrayBufferView], void>(ReadableByteStreamController.prototype, 'enqueue');
const byteClose = method<[], void>(ReadableByteStreamController.prototype, 'close');
const byteByobRequest = getter<ReadableStreamBYOBRequest | null>(ReadableByteStreamController.prototype, 'byobRequest');
const byobRespond = method<[number], void>(ReadableStreamBYOBRequest.prototype, 'respond');
const transformEnqueue = method<[unknown], void>(TransformStreamDefaultController.prototype, 'enqueue');
const transformReadable = getter<ReadableStream<Uint8Array>>(TransformStream.prototype, 'readable');

const ignore = (): void => {};

/** `reader.cancel(reason)`, its rejection ignored, without the realm's replaceable `catch`. */
function cancelQuietly(reader: AnyReader, reason: unknown): void {
  PromisePrototypeThen(readerCancel(reader, reason), undefined, ignore);
}

/** Byte lengths known up front (FixedLengthStream, a request body with Content-Length). */
const lengths = new SafeWeakMap<object, number>();

/** A chunk a byte consumer accepts (ArrayBuffer or a view of one) as a Uint8Array over the same bytes. */
function chunkBytes(chunk: unknown): Uint8Array | null {
  if (chunk instanceof Uint8Array) return chunk;
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  if (ArrayBufferIsView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return null;
}

// workerd's messages for what a byte-oriented writable side refuses.
function writableBytes(chunk: unknown): Uint8Array {
  const bytes = chunkBytes(chunk);
  if (bytes) return bytes;
  if (typeof chunk === 'string') {
    throw new TypeError("This TransformStream is being used as a byte stream, but received a string on its writable side. If you wish to write a string, you'll probably want to explicitly UTF-8-encode it with TextEncoder.");
  }
  throw new TypeError('This TransformStream is being used as a byte stream, but received an object of non-ArrayBuffer/ArrayBufferView type on its writable side.');
}

/** Closes a byte stream's controller, answering a pending BYOB read with "done" (Streams §4.10.7 respond(0) after close). */
function closeBytes(controller: ReadableByteStreamController): void {
  byteClose(controller);
  const request = byteByobRequest(controller);
  if (request !== null) byobRespond(request, 0);
}

/**
 * A byte stream (BYOB readers work on it) that pulls `source` one chunk per read: nothing is
 * read ahead (high-water mark 0), so a slow reader slows the source, which is backpressure.
 */
export function streamFromSource(source: BodySource): ReadableStream<Uint8Array> {
  const stream = new ReadableStream<Uint8Array>({
    __proto__: null,
    type: 'bytes',
    async pull(controller) {
      // An empty chunk (an empty body's bytes, say) enqueues nothing, and the stream would not
      // call pull() again for the read that waits (Streams §4.10.4: only a pull requested
      // while this one ran is repeated): pull on until there are bytes or the end.
      for (;;) {
        const chunk = await source.pull();
        if (chunk === null) return closeBytes(controller);
        // enqueue() transfers the chunk's buffer: sources hand over buffers they no longer use.
        if (chunk.byteLength > 0) return byteEnqueue(controller, chunk);
      }
    },
    cancel(reason) {
      source.cancel?.(reason);
    },
  } as UnderlyingByteSource, { __proto__: null, highWaterMark: 0 } as { highWaterMark: number });
  if (typeof source.length === 'number') lengths.set(stream, source.length);
  origins.set(stream, source);
  return stream;
}

/** The source a stream from streamFromSource reads, so a consumer may read the source directly. */
const origins = new SafeWeakMap<object, BodySource>();

/**
 * The source under `stream` when nothing has read it yet: the stream is locked (so nobody else
 * can), and the caller reads the source instead, skipping the stream's per-chunk work. `read`:
 * the caller reads it now, so the stream counts as read (disturbed), as if it had been.
 */
export function takeSource(stream: AnyReadable, read = false): BodySource | undefined {
  const source = origins.get(stream);
  if (source === undefined || streamLocked(stream) || isDisturbed(stream)) return undefined;
  streamGetReader(stream);
  origins.delete(stream);
  // The polyfill keeps the spec's [[disturbed]] slot as `_disturbed` (see isDisturbed).
  if (read) (stream as unknown as { _disturbed: boolean })._disturbed = true;
  return source;
}

/** Reads `stream` as a body source: each chunk must be bytes, as Fetch's body reading requires. */
export function sourceFromStream(stream: AnyReadable): BodySource {
  const reader = streamGetReader(stream);
  return {
    async pull(): Promise<Uint8Array | null> {
      for (;;) {
        const { done, value } = await readerRead(reader);
        if (done) return null;
        const bytes = chunkBytes(value);
        if (bytes === null) {
          const error = new TypeError('This ReadableStream did not return bytes.');
          cancelQuietly(reader, error);
          throw error;
        }
        if (bytes.byteLength > 0) return bytes;
      }
    },
    cancel(reason?: unknown): void {
      cancelQuietly(reader, reason);
    },
    length: lengths.get(stream) ?? null,
  };
}

/** Streams §4.2.? "IsReadableStreamDisturbed": has anyone read or cancelled it. */
export function isDisturbed(stream: AnyReadable): boolean {
  // The polyfill keeps the spec's [[disturbed]] slot as `_disturbed`.
  return (stream as unknown as { _disturbed?: boolean })._disturbed === true;
}

export function knownLength(stream: AnyReadable): number | undefined {
  return lengths.get(stream);
}

/** A byte stream over the chunks of `inner`, so that BYOB readers work on it. */
function byteReadable(inner: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = streamGetReader(inner);
  return new ReadableStream<Uint8Array>({
    __proto__: null,
    type: 'bytes',
    async pull(controller) {
      const { done, value } = await readerRead(reader);
      if (done) return closeBytes(controller);
      byteEnqueue(controller, value as Uint8Array);
    },
    cancel(reason) {
      return readerCancel(reader, reason);
    },
  } as UnderlyingByteSource, { __proto__: null, highWaterMark: 0 } as { highWaterMark: number });
}

// FixedLengthStream hands its length to IdentityTransformStream's constructor through here
// (the constructor signature is workerd's, with no room for it).
let pendingExpectedLength: number | undefined;

/**
 * workerd's IdentityTransformStream: bytes written come out unchanged; the readable side is a
 * byte stream, the writable side refuses anything but ArrayBuffer/ArrayBufferView.
 */
export class IdentityTransformStream extends TransformStream<Uint8Array, Uint8Array> {
  #readable: ReadableStream<Uint8Array>;
  constructor(options?: { highWaterMark?: number }) {
    const expected = pendingExpectedLength;
    pendingExpectedLength = undefined;
    let seen = 0;
    void options; // accepted as in workerd; the readable side reads nothing ahead anyway
    super({
      __proto__: null,
      transform(chunk, controller) {
        const bytes = writableBytes(chunk);
        if (expected !== undefined) {
          seen += bytes.byteLength;
          if (seen > expected) throw new TypeError('Attempt to write too many bytes through a FixedLengthStream.');
        }
        // A copy: the readable side transfers what it is given, and the writer keeps its buffer.
        if (bytes.byteLength > 0) transformEnqueue(controller, TypedArrayPrototypeSlice(bytes));
      },
      flush() {
        if (expected !== undefined && seen < expected) {
          throw new TypeError('FixedLengthStream did not see all expected bytes before close().');
        }
      },
    } as Transformer<Uint8Array, Uint8Array>);
    this.#readable = byteReadable(transformReadable(this));
    if (expected !== undefined) lengths.set(this.#readable, expected);
  }
  override get readable(): ReadableStream<Uint8Array> {
    return this.#readable;
  }
}

/**
 * workerd's FixedLengthStream: an IdentityTransformStream that must carry exactly
 * `expectedLength` bytes; a Response with its readable side gets that Content-Length.
 */
export class FixedLengthStream extends IdentityTransformStream {
  constructor(expectedLength: number | bigint, options?: { highWaterMark?: number }) {
    if (arguments.length === 0) throw new TypeError("Failed to construct 'FixedLengthStream': 1 argument required, but only 0 present.");
    const n = typeof expectedLength === 'bigint' ? Number(expectedLength) : Number(expectedLength);
    if (!NumberIsSafeInteger(n) || n < 0) {
      throw new TypeError('FixedLengthStream requires a non-negative integer expected length.');
    }
    pendingExpectedLength = n;
    super(options);
  }
}

/** What the polyfill keeps of a TransformStream in its slots (the spec's internal slots). */
interface TransformSlots {
  _finishPromise?: Promise<void>;
  _controlledTransformStream?: { _readable: { _state: string }; _writable: { _state: string } };
}

/**
 * controller.terminate() while `readable.cancel(reason)` is still settling leaves the writable
 * side to that cancel, which errors it with `reason`, as workerd does (the polyfill errors it
 * with terminate's own TypeError first, so writer.closed rejected with that instead).
 */
function keepCancelReasonOnTerminate(): void {
  const proto = TransformStreamDefaultController.prototype as unknown as Record<string, unknown>;
  const terminate = proto.terminate as (this: unknown) => void;
  const replacement = {
    terminate(this: TransformSlots): void {
      const stream = this?._controlledTransformStream;
      // Cancelling: the readable side is closed, a finish is under way, the writable still open.
      const cancelling = stream !== undefined && this._finishPromise !== undefined
        && stream._readable._state === 'closed' && stream._writable._state === 'writable';
      if (!cancelling) ReflectApply(terminate, this, []);
    },
  }.terminate;
  ObjectDefineProperty(proto, 'terminate', { __proto__: null, value: replacement, writable: true, enumerable: true, configurable: true });
}

/** U+FFFD in UTF-8 (no array literal: `new Uint8Array([...])` would call the array's replaceable iterator). */
function replacementCharacter(): Uint8Array {
  const bytes = new Uint8Array(3);
  bytes[0] = 0xef;
  bytes[1] = 0xbf;
  bytes[2] = 0xbd;
  return bytes;
}

/** The module's classes and helpers, made with the runtime's encoding classes. */
export function create(deps: StreamsDeps) {
  setAbortController(deps.AbortController);
  // Encoding Standard §5.1: TextEncoderStream. A lone high surrogate at the end of a chunk waits
  // for the next chunk; one left at the end becomes U+FFFD.
  class TextEncoderStream extends TransformStream<string, Uint8Array> {
    constructor() {
      const encoder = new deps.TextEncoder();
      let pendingHigh = '';
      super({
      __proto__: null,
        transform(chunk, controller) {
          let text = pendingHigh + String(chunk);
          pendingHigh = '';
          const last = StringPrototypeCharCodeAt(text, text.length - 1);
          if (last >= 0xd800 && last <= 0xdbff) {
            pendingHigh = StringPrototypeSlice(text, -1);
            text = StringPrototypeSlice(text, 0, -1);
          }
          if (text.length > 0) transformEnqueue(controller, encoder.encode(text));
        },
        flush(controller) {
          if (pendingHigh !== '') transformEnqueue(controller, replacementCharacter());
        },
      } as Transformer<string, Uint8Array>);
    }
    get encoding(): string {
      return 'utf-8';
    }
  }

  // Encoding Standard §5.2: TextDecoderStream, a TextDecoder in streaming mode.
  class TextDecoderStream extends TransformStream<unknown, string> {
    #decoder: Decoder;
    constructor(label: string = 'utf-8', options?: { fatal?: boolean; ignoreBOM?: boolean }) {
      const decoder = new deps.TextDecoder(label, options);
      super({
      __proto__: null,
        transform(chunk, controller) {
          const bytes = chunkBytes(chunk);
          if (bytes === null) throw new TypeError('TextDecoderStream: chunk is not an ArrayBuffer or ArrayBufferView.');
          const text = decoder.decode(bytes, { stream: true });
          if (text !== '') transformEnqueue(controller, text);
        },
        flush(controller) {
          const text = decoder.decode();
          if (text !== '') transformEnqueue(controller, text);
        },
      } as Transformer<unknown, string>);
      this.#decoder = decoder;
    }
    get encoding(): string { return this.#decoder.encoding; }
    get fatal(): boolean { return this.#decoder.fatal; }
    get ignoreBOM(): boolean { return this.#decoder.ignoreBOM; }
  }
  ObjectDefineProperty(TextEncoderStream.prototype, SymbolToStringTag, { __proto__: null, value: 'TextEncoderStream', configurable: true });
  ObjectDefineProperty(TextDecoderStream.prototype, SymbolToStringTag, { __proto__: null, value: 'TextDecoderStream', configurable: true });
  ObjectDefineProperty(IdentityTransformStream.prototype, SymbolToStringTag, { __proto__: null, value: 'IdentityTransformStream', configurable: true });
  ObjectDefineProperty(FixedLengthStream.prototype, SymbolToStringTag, { __proto__: null, value: 'FixedLengthStream', configurable: true });

  keepCancelReasonOnTerminate();

  const classes = {
    ReadableStream, ReadableStreamDefaultReader, ReadableStreamBYOBReader, ReadableStreamBYOBRequest,
    ReadableStreamDefaultController, ReadableByteStreamController, WritableStream,
    WritableStreamDefaultWriter, WritableStreamDefaultController, TransformStream,
    TransformStreamDefaultController, ByteLengthQueuingStrategy, CountQueuingStrategy,
    TextEncoderStream, TextDecoderStream, IdentityTransformStream, FixedLengthStream,
  };
  // This module is minified with identifiers renamed: tenants see the real class names.
  for (const [name, value] of ObjectEntries(classes)) {
    ObjectDefineProperty(value, 'name', { __proto__: null, value: name, configurable: true });
  }
  return {
    classes, streamFromSource, sourceFromStream, takeSource, isDisturbed, knownLength, chunkBytes,
    locked: streamLocked, tee: streamTee, cancel: streamCancel, transformEnqueue,
  };
}

export type StreamsApi = ReturnType<typeof create>;
