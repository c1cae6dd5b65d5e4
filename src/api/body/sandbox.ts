// Bodies of Requests and Responses (Fetch Standard §2.2.9 "body", §5.1 BodyInit, §5.3 the Body
// mixin). A body is held as one of four shapes, so that each case pays only for what it is:
//   text   - a string the body was made from, UTF-8-encoded only if bytes are asked for (a
//            string response goes to the host as the string: no encoding in the isolate);
//   bytes  - fully known bytes;
//   source - a pull-based chunk source (the host's request body);
//   stream - a ReadableStream: the tenant's, or one made from the shapes above the first time
//            `.body` is read (from then on the stream is the body's only holder).
// The mixin's readers (text(), arrayBuffer(), ...) read whichever shape there is, so a body
// that nobody asked `.body` of never loads the streams implementation.

import { utf8Decode, utf8Encode } from '../encoding/sandbox.ts';
import { isURLSearchParams, type URLSearchParams } from '../url/sandbox.ts';
import { streams, isReadableStream } from '../streams/sandbox.ts';
import { blobApi, isBlob } from '../blob/sandbox.ts';
import { formDataApi, isFormData } from '../form-data/sandbox.ts';
import {
  ArrayBuffer, ArrayBufferIsView, ArrayBufferPrototypeGetByteLength, ArrayBufferPrototypeSlice, ArrayPrototypePush,
  ArrayPrototypeShift, JSONParse, Promise, PromisePrototypeThen, PromiseResolve, String, StringPrototypeCharCodeAt,
  StringPrototypeIsWellFormed, StringPrototypeTrim, TypeError, TypedArrayPrototypeGetBuffer, TypedArrayPrototypeGetByteLength, TypedArrayPrototypeGetByteOffset,
  TypedArrayPrototypeSet, TypedArrayPrototypeSlice, TypedArrayPrototypeSubarray, Uint8Array,
} from '../../sandbox/primordials.ts';

type ReadableStream = InstanceType<ReturnType<typeof streams>['classes']['ReadableStream']>;

/** A body whose bytes arrive over time: the next chunk, or null at the end. */
export interface BodySource {
  pull(): Promise<Uint8Array | null>;
  /** Stop producing: the reader gave up (optional). */
  cancel?(reason?: unknown): void;
  /** Total length in bytes when known up front (a Content-Length), else null/undefined. */
  readonly length?: number | null;
  /**
   * All the rest at once, as text (UTF-8, a BOM kept) or bytes (optional): the host's request
   * body hands it over in one piece, which spares joining chunks here.
   */
  readWhole?(as: 'text' | 'bytes'): Promise<Uint8Array | string>;
  /**
   * The host's request body, unread: the id of its request. A binding that sends it on (a KV
   * put of `request.body`) has the host read it, so its bytes never enter the isolate.
   */
  readonly hostBody?: number;
}

/** The body of one Request or Response. Never handed to tenant code. */
export class Body {
  declare text: string | null;
  declare bytes: Uint8Array | null;
  declare source: BodySource | null;
  declare stream: ReadableStream | null;
  /** Fetch's "disturbed": read (or being read) by a consumer. */
  declare used: boolean;
  /** `bytes` is shared with a clone: copy before giving it to tenant code. */
  declare shared: boolean;
  // Assigned here rather than as field initializers: those are a function of their own, which
  // every `new Body()` would call, and each function a request enters costs it cache misses in an
  // isolate served rarely (docs/BENCHMARKS.md, "Fewer functions per request").
  constructor(text: string | null = null) {
    this.text = text;
    this.bytes = null;
    this.source = null;
    this.stream = null;
    this.used = false;
    this.shared = false;
  }
}

/** The Content-Type a string body implies (Fetch §5.1 extract a body). */
export const TEXT_BODY_TYPE = 'text/plain;charset=UTF-8';

export type BodyInit = string | ArrayBuffer | ArrayBufferView | URLSearchParams | null;

/**
 * Fetch §5.1 "extract a body": the body and the Content-Type it implies (or null), a valid
 * header value as Headers stores it (so that it may be appended unchecked).
 */
export function extractBody(init: unknown): { body: Body; contentType: string | null } {
  const body = new Body();
  let contentType: string | null = null;
  if (typeof init === 'string') {
    // The usual body, tested first; the rest of the (… or USVString) case is below.
    if (StringPrototypeIsWellFormed(init)) body.text = init;
    else body.bytes = wtf8Encode(init);
    contentType = TEXT_BODY_TYPE;
  } else if (isReadableStream(init)) {
    // Fetch §5.1 extract a body, ReadableStream: a disturbed or locked stream is a TypeError.
    const stream = init as ReadableStream;
    if (streams().locked(stream) || streams().isDisturbed(stream)) {
      throw new TypeError('This ReadableStream is disturbed (has already been read from), and cannot be used as a body.');
    }
    body.stream = stream;
  } else if (init instanceof ArrayBuffer) {
    body.bytes = new Uint8Array(ArrayBufferPrototypeSlice(init, 0));
  } else if (ArrayBufferIsView(init)) {
    // The view's own bytes, read through the original getters (DataView has its own, same-named ones).
    body.bytes = new Uint8Array(ArrayBufferPrototypeSlice(init.buffer as ArrayBuffer, init.byteOffset, init.byteOffset + init.byteLength));
  } else if (isBlob(init)) {
    // Fetch §5.1: a Blob's bytes, and its type (when not empty) as the Content-Type. The bytes
    // are immutable and shared with the Blob: `shared` makes readers copy them.
    const api = blobApi();
    body.bytes = api.bytesOf(init as InstanceType<typeof api.Blob>);
    body.shared = true;
    const type = (init as { type: string }).type;
    // A Blob's type is printable ASCII (File API §3.1): trimmed, it is a valid header value.
    if (type !== '') contentType = StringPrototypeTrim(type);
  } else if (isFormData(init)) {
    // Fetch §5.1: the multipart/form-data encoding, with a fresh boundary in the Content-Type.
    const { bytes, contentType: type } = formDataApi().serialize(init);
    body.bytes = bytes;
    contentType = type;
  } else if (isURLSearchParams(init)) {
    body.text = init.toString();
    contentType = 'application/x-www-form-urlencoded;charset=UTF-8';
  } else {
    // WebIDL: anything else in the (… or USVString) union converts to a string. workerd does not
    // make it a USVString: a lone surrogate is written as its WTF-8 bytes (U+D800 -> ED A0 80),
    // not U+FFFD. Such a (rare) body is kept as bytes, so that the host's native UTF-8 encoding
    // of string bodies (which would replace it) never sees one.
    const text = String(init);
    if (StringPrototypeIsWellFormed(text)) body.text = text;
    else body.bytes = wtf8Encode(text);
    contentType = TEXT_BODY_TYPE;
  }
  return { body, contentType };
}

/** UTF-8 encode, but a lone surrogate becomes its own 3-byte (WTF-8) form, as workerd writes it. */
function wtf8Encode(text: string): Uint8Array {
  const out = new Uint8Array(text.length * 3);
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    let c = StringPrototypeCharCodeAt(text, i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = StringPrototypeCharCodeAt(text, i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++; }
    }
    if (c < 0x80) out[o++] = c;
    else if (c < 0x800) { out[o++] = 0xc0 | (c >> 6); out[o++] = 0x80 | (c & 0x3f); }
    else if (c < 0x10000) { out[o++] = 0xe0 | (c >> 12); out[o++] = 0x80 | ((c >> 6) & 0x3f); out[o++] = 0x80 | (c & 0x3f); }
    else { out[o++] = 0xf0 | (c >> 18); out[o++] = 0x80 | ((c >> 12) & 0x3f); out[o++] = 0x80 | ((c >> 6) & 0x3f); out[o++] = 0x80 | (c & 0x3f); }
  }
  return TypedArrayPrototypeSlice(out, 0, o);
}

/** A body that reads from `source` (e.g. the host's request body). */
export function bodyFromSource(source: BodySource): Body {
  const body = new Body();
  body.source = source;
  return body;
}

/** Fetch §2.2.9 "clone a body": known contents are shared, a source is teed. */
export function cloneBody(body: Body): Body {
  const copy = new Body();
  copy.text = body.text;
  if (body.bytes) { copy.bytes = body.bytes; copy.shared = body.shared = true; }
  if (body.stream) {
    const branches = streams().tee(body.stream);
    body.stream = branches[0];
    copy.stream = branches[1];
  }
  if (body.source) {
    const branches = teeSource(body.source);
    body.source = branches[0];
    copy.source = branches[1];
  }
  return copy;
}

function teeSource(source: BodySource): [BodySource, BodySource] {
  const queues: Uint8Array[][] = [[], []];
  let done = false;
  let pending: Promise<void> | null = null;
  const fill = (): Promise<void> => (pending ??= PromisePrototypeThen(source.pull(), (chunk) => {
    pending = null;
    if (chunk === null) done = true;
    else { ArrayPrototypePush(queues[0], chunk); ArrayPrototypePush(queues[1], chunk); }
  }));
  const cancelled = [false, false];
  const branch = (i: number): BodySource => ({
    async pull() {
      for (;;) {
        if (queues[i].length > 0) return ArrayPrototypeShift(queues[i])!;
        if (done) return null;
        await fill();
      }
    },
    cancel(reason) {
      cancelled[i] = true;
      queues[i].length = 0;
      if (cancelled[0] && cancelled[1]) source.cancel?.(reason);
    },
    length: source.length ?? null,
  });
  return [branch(0), branch(1)];
}

export function bodyUsed(body: Body | null): boolean {
  if (body === null) return false;
  return body.used || (body.stream !== null && streams().isDisturbed(body.stream));
}

/**
 * The body as a ReadableStream (the Body mixin's `body` getter). Made on first use from the
 * body's text, bytes or source; the stream then holds the body alone.
 */
export function bodyStream(body: Body | null): ReadableStream | null {
  if (body === null) return null;
  if (body.stream !== null) return body.stream;
  const api = streams();
  let source: BodySource;
  if (body.used) {
    source = { pull: () => PromiseResolve(null) };
  } else if (body.source !== null) {
    source = body.source;
  } else {
    let bytes: Uint8Array | null = body.text !== null ? utf8Encode(body.text) : body.bytes!;
    // The stream transfers the buffers it is given: a clone's shared bytes are copied first.
    if (body.shared && body.bytes !== null) bytes = TypedArrayPrototypeSlice(bytes);
    const length = bytes.byteLength;
    source = { pull: () => { const b = bytes; bytes = null; return PromiseResolve(b); }, length };
  }
  body.text = null;
  body.bytes = null;
  body.source = null;
  const stream = api.streamFromSource(source);
  if (body.used) {
    // A body already read is a disturbed stream (Fetch: "body is unusable").
    PromisePrototypeThen(api.cancel(stream), undefined, () => {});
  }
  body.stream = stream;
  return stream;
}

const USED_MESSAGE = 'Body has already been used. It can only be used once. Use tee() first if you need to read it twice.';

/** Throw if `body` cannot be read any more (Fetch "unusable"); for clone() and constructors. */
export function assertBodyUsable(body: Body | null, message = USED_MESSAGE): void {
  if (body === null) return;
  if (bodyUsed(body) || (body.stream !== null && streams().locked(body.stream))) throw new TypeError(message);
}

async function readSource(source: BodySource): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const chunk = await source.pull();
    if (chunk === null) break;
    ArrayPrototypePush(chunks, chunk);
    total += chunk.byteLength;
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < chunks.length; i++) { TypedArrayPrototypeSet(out, chunks[i]!, at); at += TypedArrayPrototypeGetByteLength(chunks[i]!); }
  return out;
}

/**
 * Read the whole body and mark it used (Fetch §5.3 "consume body"). Returns the original
 * string when the body was made from one and `preferText`, else bytes that the caller owns.
 */
/** The contents of a body made from a string or bytes (the string itself, else bytes the caller owns), marked used. */
function takeKnownBody(body: Body): string | Uint8Array {
  body.used = true;
  if (body.text !== null) {
    const text = body.text;
    body.text = null;
    return text;
  }
  const bytes = body.bytes!;
  body.bytes = null;
  return body.shared ? TypedArrayPrototypeSlice(bytes) : bytes;
}

async function takeBody(body: Body | null, preferText: boolean): Promise<string | Uint8Array> {
  if (body === null) return preferText ? '' : new Uint8Array(0);
  if (bodyUsed(body)) throw new TypeError(USED_MESSAGE);
  if (body.stream !== null) {
    if (streams().locked(body.stream)) throw new TypeError('This ReadableStream is currently locked to a reader.');
    body.used = true;
    // A stream nobody read that only wraps a source (`new Response(request.body)`): read the source.
    const source = streams().takeSource(body.stream, true) ?? streams().sourceFromStream(body.stream);
    return await readWhole(source, preferText);
  }
  body.used = true;
  if (body.source === null) {
    const data = takeKnownBody(body);
    return preferText || typeof data !== 'string' ? data : utf8Encode(data);
  }
  const source = body.source!;
  body.source = null;
  // `return await`: an async function resolving to a promise would call its (replaceable) `then`.
  return await readWhole(source, preferText);
}

/** The rest of `source` in one piece: text only when the source can give it (the caller decodes bytes). */
async function readWhole(source: BodySource, preferText: boolean): Promise<string | Uint8Array> {
  if (source.readWhole !== undefined) return await source.readWhole(preferText ? 'text' : 'bytes');
  return await readSource(source);
}

export async function consumeText(body: Body | null): Promise<string> {
  const data = await takeBody(body, true);
  // Fetch §5.3 text() says "UTF-8 decode", which strips a leading BOM; workerd keeps it
  // (its text() decodes without BOM sniffing), and workerd wins.
  return typeof data === 'string' ? data : utf8Decode(data, true);
}

/** Fetch §5.3 blob(): the bytes, typed with the body's Content-Type (workerd: the header's value as is). */
export async function consumeBlob(body: Body | null, contentType: string | null): Promise<unknown> {
  const bytes = await consumeBytes(body);
  return blobApi().blobOf(bytes, contentType ?? '');
}

/** Fetch §5.3 formData(): multipart/form-data or application/x-www-form-urlencoded, else a TypeError. */
export async function consumeFormData(body: Body | null, contentType: string | null): Promise<unknown> {
  const api = formDataApi();
  const bytes = await consumeBytes(body);
  return api.parse(bytes, contentType);
}

export async function consumeJSON(body: Body | null): Promise<unknown> {
  return JSONParse(await consumeText(body));
}

export async function consumeBytes(body: Body | null): Promise<Uint8Array<ArrayBuffer>> {
  const data = await takeBody(body, false) as Uint8Array;
  // Hand out a view of a whole, exactly sized buffer (sources may give subarrays).
  const buffer = TypedArrayPrototypeGetBuffer(data);
  if (TypedArrayPrototypeGetByteOffset(data) === 0 && buffer instanceof ArrayBuffer &&
    TypedArrayPrototypeGetByteLength(data) === ArrayBufferPrototypeGetByteLength(buffer)) {
    return data as Uint8Array<ArrayBuffer>;
  }
  return TypedArrayPrototypeSlice(data) as Uint8Array<ArrayBuffer>;
}

export async function consumeArrayBuffer(body: Body | null): Promise<ArrayBuffer> {
  return (await consumeBytes(body)).buffer;
}

/** Bodies from bytes larger than this go to the host in chunks, not in the dispatch result. */
const WHOLE_BODY_MAX = 1024 * 1024;
const BODY_CHUNK = 256 * 1024;

/**
 * The body for the host, marking it used: a string when the body was made from one (the host
 * encodes it natively) or bytes, both of which cross whole in the dispatch result (one
 * crossing per request); a BodySource for a stream, a pulled source or large bytes, which the
 * host pulls chunk by chunk as its socket takes them; null for no body. `keepWhole`: bytes of
 * any size stay whole (fetch() carries them, so that a 307 or 308 redirect can send them again).
 */
export function bodyForHost(body: Body | null, keepWhole = false): Uint8Array | string | BodySource | null {
  if (body === null) return null;
  if (body.stream !== null || body.source !== null) {
    if (bodyUsed(body) || (body.stream !== null && streams().locked(body.stream))) throw new TypeError(USED_MESSAGE);
    body.used = true;
    if (body.source !== null) {
      const source = body.source;
      body.source = null;
      return source;
    }
    // A stream that only wraps a source (e.g. `new Response(request.body)`): hand over the source.
    return streams().takeSource(body.stream!) ?? streams().sourceFromStream(body.stream!);
  }
  if (body.used) throw new TypeError(USED_MESSAGE);
  const text = body.text;
  if (text !== null) {
    // The usual body, taken here rather than through takeKnownBody: one function fewer.
    body.used = true;
    body.text = null;
    return text;
  }
  const data = takeKnownBody(body);
  if (typeof data === 'string' || keepWhole || data.byteLength <= WHOLE_BODY_MAX) return data;
  let at = 0;
  return {
    pull() {
      if (at >= data.byteLength) return PromiseResolve(null);
      const chunk = TypedArrayPrototypeSubarray(data, at, at + BODY_CHUNK);
      at += chunk.byteLength;
      return PromiseResolve(chunk);
    },
    length: data.byteLength,
  };
}
