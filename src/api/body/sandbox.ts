// Bodies of Requests and Responses (Fetch Standard §2.2.9 "body", §5.1 BodyInit, §5.3 the Body
// mixin). A body is held as one of three shapes, so that each case pays only for what it is:
//   text   - a string the body was made from, UTF-8-encoded only if bytes are asked for (a
//            string response goes to the host as the string: no encoding in the isolate);
//   bytes  - fully known bytes;
//   source - a pull-based chunk source (the host's request body today; ReadableStream later).
// `body` (the ReadableStream getter) returns null until streams land: ReadableStream will wrap
// a BodySource (and BodySource will wrap a tenant's ReadableStream), with no change here to the
// other shapes.

import { utf8Decode, utf8Encode } from '../encoding/sandbox.ts';
import { URLSearchParams } from '../url/sandbox.ts';

/** A body whose bytes arrive over time: the next chunk, or null at the end. */
export interface BodySource {
  pull(): Promise<Uint8Array | null>;
  /** Stop producing: the reader gave up (optional). */
  cancel?(reason?: unknown): void;
  /** Total length in bytes when known up front (a Content-Length), else null/undefined. */
  readonly length?: number | null;
}

/** The body of one Request or Response. Never handed to tenant code. */
export class Body {
  text: string | null = null;
  bytes: Uint8Array | null = null;
  source: BodySource | null = null;
  /** Fetch's "disturbed": read (or being read) by a consumer. */
  used = false;
  /** `bytes` is shared with a clone: copy before giving it to tenant code. */
  shared = false;
}

export type BodyInit = string | ArrayBuffer | ArrayBufferView | URLSearchParams | null;

/** Fetch §5.1 "extract a body": the body and the Content-Type it implies (or null). */
export function extractBody(init: unknown): { body: Body; contentType: string | null } {
  const body = new Body();
  let contentType: string | null = null;
  if (init instanceof ArrayBuffer) {
    body.bytes = new Uint8Array(init.slice(0));
  } else if (ArrayBuffer.isView(init)) {
    body.bytes = new Uint8Array(init.buffer.slice(init.byteOffset, init.byteOffset + init.byteLength));
  } else if (init instanceof URLSearchParams) {
    body.text = init.toString();
    contentType = 'application/x-www-form-urlencoded;charset=UTF-8';
  } else {
    // WebIDL: anything else in the (… or USVString) union converts to a string.
    body.text = String(init).toWellFormed();
    contentType = 'text/plain;charset=UTF-8';
  }
  return { body, contentType };
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
  if (body.source) {
    const [a, b] = teeSource(body.source);
    body.source = a;
    copy.source = b;
  }
  return copy;
}

function teeSource(source: BodySource): [BodySource, BodySource] {
  const queues: Uint8Array[][] = [[], []];
  let done = false;
  let pending: Promise<void> | null = null;
  const fill = (): Promise<void> => (pending ??= source.pull().then((chunk) => {
    pending = null;
    if (chunk === null) done = true;
    else { queues[0].push(chunk); queues[1].push(chunk); }
  }));
  const cancelled = [false, false];
  const branch = (i: number): BodySource => ({
    async pull() {
      for (;;) {
        if (queues[i].length > 0) return queues[i].shift()!;
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
  return body !== null && body.used;
}

const USED_MESSAGE = 'Body has already been used. It can only be used once. Use tee() first if you need to read it twice.';

/** Throw if `body` cannot be read any more (Fetch "unusable"); for clone() and constructors. */
export function assertBodyUsable(body: Body | null, message = USED_MESSAGE): void {
  if (body !== null && body.used) throw new TypeError(message);
}

async function readSource(source: BodySource): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const chunk = await source.pull();
    if (chunk === null) break;
    chunks.push(chunk);
    total += chunk.byteLength;
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.byteLength; }
  return out;
}

/**
 * Read the whole body and mark it used (Fetch §5.3 "consume body"). Returns the original
 * string when the body was made from one and `preferText`, else bytes that the caller owns.
 */
async function takeBody(body: Body | null, preferText: boolean): Promise<string | Uint8Array> {
  if (body === null) return preferText ? '' : new Uint8Array(0);
  if (body.used) throw new TypeError(USED_MESSAGE);
  body.used = true;
  if (body.text !== null) {
    const text = body.text;
    body.text = null;
    return preferText ? text : utf8Encode(text);
  }
  if (body.bytes !== null) {
    const bytes = body.bytes;
    body.bytes = null;
    return body.shared ? bytes.slice() : bytes;
  }
  const source = body.source!;
  body.source = null;
  return readSource(source);
}

export async function consumeText(body: Body | null): Promise<string> {
  const data = await takeBody(body, true);
  // Fetch §5.3 text(): "UTF-8 decode", which strips a leading BOM.
  return typeof data === 'string' ? data : utf8Decode(data);
}

export async function consumeJSON(body: Body | null): Promise<unknown> {
  return JSON.parse(await consumeText(body));
}

export async function consumeBytes(body: Body | null): Promise<Uint8Array<ArrayBuffer>> {
  const data = await takeBody(body, false) as Uint8Array;
  // Hand out a view of a whole, exactly sized buffer (sources may give subarrays).
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer) {
    return data as Uint8Array<ArrayBuffer>;
  }
  return data.slice();
}

export async function consumeArrayBuffer(body: Body | null): Promise<ArrayBuffer> {
  return (await consumeBytes(body)).buffer;
}

/**
 * The whole body for the host: a string when the body was made from one (the host encodes it
 * natively), else bytes; null for no body. Marks the body used.
 */
export async function bodyForHost(body: Body | null): Promise<Uint8Array | string | null> {
  if (body === null) return null;
  return takeBody(body, true);
}
