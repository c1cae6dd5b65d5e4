// fetch() for the sandbox (Fetch Standard §5.6): the request is built with the sandbox's own
// Request class (so every check and normalization of `new Request(input, init)` applies), then
// the host performs it (host.ts: node:http, the egress policy, redirects, the subrequest limit).
// The response body is a source pulled from the host one chunk per read, so a worker that
// streams a large download holds one chunk at a time; a request body that is a stream is
// written to the host one chunk at a time, each write waiting for the socket to take it.
//
// Where this differs from workerd:
// - redirect 'error' is accepted by fetch() (workerd's Request refuses it): a redirect then
//   rejects with a TypeError, as in the Fetch spec. `new Request(url, { redirect: 'error' })`
//   is still a TypeError, as in workerd.
// - no automatic decompression: a response with Content-Encoding comes as the bytes that were
//   sent (and no Accept-Encoding is added to requests).

import { callAsync, callSync } from '../../sandbox/host.ts';
import { requireRequestContext } from '../../sandbox/request-context.ts';
import { Request, requestForFetch } from '../request/sandbox.ts';
import { Response, responseFromFetch } from '../response/sandbox.ts';
import { headerList } from '../headers/sandbox.ts';
import { bodyForHost, type BodySource } from '../body/sandbox.ts';
import type { AbortSignal } from '../events/sandbox.ts';

/** What the host answers fetch.start with (see host.ts FetchHead). */
interface FetchHead {
  status: number;
  statusText: string;
  headers: string[];
  url: string;
  redirected: boolean;
  hasBody: boolean;
}

/** Request body chunks cross in pieces of at most this many bytes. */
const WRITE_CHUNK = 1024 * 1024;

let nextFetchId = 1;

/** Only the chunk's own bytes, as an ArrayBuffer (what crosses to the host cheapest). */
function exactBuffer(chunk: Uint8Array): ArrayBuffer {
  const whole = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer;
  return (whole ? chunk.buffer : chunk.slice().buffer) as ArrayBuffer;
}

export function fetch(input: unknown, init?: unknown): Promise<Response> {
  if (arguments.length === 0) return Promise.reject(new TypeError("Failed to execute 'fetch': 1 argument required, but only 0 present."));
  try {
    return startFetch(input, init);
  } catch (error) {
    // Fetch §5.6: fetch() reports every failure as a rejection, never by throwing.
    return Promise.reject(error);
  }
}

// workerd's fetch.length (WebIDL would say 1).
Object.defineProperty(fetch, 'length', { value: 0 });

function startFetch(input: unknown, init: unknown): Promise<Response> {
  requireRequestContext('fetch()');
  // redirect 'error' (Fetch §4.4 step 9): workerd's Request refuses the value, so it is taken
  // out of the init before the Request is made, and applied by the host.
  let redirectError = false;
  if (init !== null && typeof init === 'object' && (init as { redirect?: unknown }).redirect !== undefined &&
    String((init as { redirect?: unknown }).redirect) === 'error') {
    redirectError = true;
    init = Object.create(init as object, { redirect: { value: undefined } });
  }
  const request = new Request(input as never, init as never);
  const parts = requestForFetch(request);
  const redirect = redirectError ? 'error' : request.redirect;
  const signal = parts.signal as (AbortSignal & { reason: unknown }) | null;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return bodyForHost(parts.body).then((body) => send(parts.method, parts.url, headerList(parts.headers).slice(), body, redirect, signal));
}

function send(
  method: string,
  url: string,
  headers: string[],
  body: Uint8Array | string | BodySource | null,
  redirect: string,
  signal: (AbortSignal & { reason: unknown }) | null,
): Promise<Response> {
  if (signal?.aborted) {
    (body as BodySource | null)?.cancel?.(signal.reason);
    return Promise.reject(signal.reason);
  }
  const id = nextFetchId++;
  let bodyArg: string | ArrayBuffer | { stream: true; length: number | null } | null;
  let stream: BodySource | null = null;
  if (body === null || typeof body === 'string') bodyArg = body;
  else if (body instanceof Uint8Array) bodyArg = exactBuffer(body);
  else {
    stream = body;
    bodyArg = { stream: true, length: typeof body.length === 'number' ? body.length : null };
  }

  return new Promise<Response>((resolve, reject) => {
    let settled = false;
    let aborted = false;
    let abortReason: unknown;
    const detach = () => signal?.removeEventListener('abort', onAbort);
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      detach();
      reject(error);
    };
    // The init's signal cancels the host's request, and the response body if it is already out.
    const onAbort = () => {
      aborted = true;
      abortReason = signal!.reason;
      callSync('fetch.cancel', id);
      stream?.cancel?.(abortReason);
      fail(abortReason);
    };
    signal?.addEventListener('abort', onAbort);

    callAsync<FetchHead>('fetch.start', id, method, url, headers, bodyArg, redirect).then((head) => {
      if (settled) {
        callSync('fetch.cancel', id);
        return;
      }
      settled = true;
      let source: BodySource | null = null;
      if (head.hasBody) {
        let done = false;
        source = {
          async pull(): Promise<Uint8Array | null> {
            if (done) return null;
            let chunk: ArrayBuffer | null;
            try {
              chunk = await callAsync<ArrayBuffer | null>('fetch.read', id);
            } catch (error) {
              done = true;
              detach();
              throw aborted ? abortReason : error;
            }
            if (chunk === null) {
              done = true;
              detach();
              return null;
            }
            return new Uint8Array(chunk);
          },
          cancel(): void {
            if (done) return;
            done = true;
            detach();
            callSync('fetch.cancel', id);
          },
        };
      } else {
        detach();
      }
      resolve(responseFromFetch(head.status, head.statusText, head.headers, source, head.url, head.redirected));
    }, (error: unknown) => fail(aborted ? abortReason : error));

    if (stream) pump(id, stream, fail);
  });
}

/**
 * Writes a streamed request body to the host, one chunk at a time: each write resolves when the
 * host's socket took it, so the worker's stream is read only as fast as the upstream accepts.
 */
async function pump(id: number, source: BodySource, fail: (error: unknown) => void): Promise<void> {
  try {
    for (;;) {
      const chunk = await source.pull();
      if (chunk === null) {
        await callAsync('fetch.write', id, null);
        return;
      }
      for (let at = 0; at < chunk.byteLength; at += WRITE_CHUNK) {
        const piece = at === 0 && chunk.byteLength <= WRITE_CHUNK ? chunk : chunk.subarray(at, at + WRITE_CHUNK);
        // false: the host no longer wants the body (the fetch ended, or a redirect made it a GET).
        if (!(await callAsync<boolean>('fetch.write', id, exactBuffer(piece)))) {
          source.cancel?.(new TypeError('The request body is no longer needed.'));
          return;
        }
      }
    }
  } catch (error) {
    // The worker's body stream failed: so does the fetch.
    try {
      source.cancel?.(error);
    } catch {}
    callSync('fetch.cancel', id);
    fail(error);
  }
}
