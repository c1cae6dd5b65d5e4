// fetch()'s exchange with the host: the request sent (its body written one chunk at a time), the
// response head turned into a Response whose body is pulled from the host. A sandbox module (see
// src/runtime/sandbox-modules.ts), evaluated in an isolate by its first fetch(); the checks and
// the Request made from fetch's arguments are in ../sandbox.ts, in the snapshot.

import { MAX_CALL_BYTES, type FetchHead, type OperationCalls } from '../../../bridge/operations.ts';
import { headBytes, MAX_HEAD_BYTES } from '../../../bridge/protocol.ts';
import type { BodySource } from '../../body/sandbox.ts';
import type { Response } from '../../response/sandbox.ts';
import type { AbortSignal } from '../../events/sandbox.ts';
import {
  ArrayBuffer, Promise, PromisePrototypeThen, PromiseReject, TypeError, TypedArrayPrototypeGetBuffer, TypedArrayPrototypeGetByteLength,
  TypedArrayPrototypeSlice, TypedArrayPrototypeSubarray, Uint8Array,
} from '../../../sandbox/primordials.ts';

export interface FetchDeps {
  /** The host's fetch operations, and only those. */
  callSync: OperationCalls['callSync'];
  callAsync: OperationCalls['callAsync'];
  callAsyncCarrying: OperationCalls['callAsyncCarrying'];
  utf8Encode(input: string): Uint8Array;
  responseFromFetch(status: number, statusText: string, headers: string[], body: BodySource | null, url: string, redirected: boolean): Response;
}

let callSync: FetchDeps['callSync'];
let callAsync: FetchDeps['callAsync'];
let callAsyncCarrying: FetchDeps['callAsyncCarrying'];
let utf8Encode: FetchDeps['utf8Encode'];
let responseFromFetch: FetchDeps['responseFromFetch'];

let nextFetchId = 1;

/** Only the chunk's own bytes, as an ArrayBuffer (what crosses to the host cheapest). */
function exactBuffer(chunk: Uint8Array): ArrayBuffer {
  const whole = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer;
  return (whole ? chunk.buffer : TypedArrayPrototypeGetBuffer(TypedArrayPrototypeSlice(chunk))) as ArrayBuffer;
}

function send(
  method: string,
  url: string,
  headers: string[],
  body: Uint8Array | string | BodySource | null,
  redirect: string,
  signal: (AbortSignal & { reason: unknown }) | null,
  /** The env name of the service binding the request goes through; null: the network. */
  service: string | null,
): Promise<Response> {
  if (signal?.aborted) {
    (body as BodySource | null)?.cancel?.(signal.reason);
    return PromiseReject(signal.reason);
  }
  if (headBytes(headers) > MAX_HEAD_BYTES) {
    (body as BodySource | null)?.cancel?.(undefined);
    return PromiseReject(new TypeError(`fetch: the request headers are over ${MAX_HEAD_BYTES / 1024} KB in total.`));
  }
  const id = nextFetchId++;
  let bodyArg: string | ArrayBuffer | { stream: true; length: number | null } | { carried: number } | null;
  let stream: BodySource | null = null;
  // A whole body past one call's bound is carried for the host to take a piece at a time (an
  // argument is copied onto the host's main thread in one go); it stays whole, so a 307 or 308
  // redirect can send it again. Its bytes are the request's own (bodyForHost took them), out of
  // the worker's reach until the host has taken them.
  let carried: Uint8Array | undefined;
  if (typeof body === 'string' && body.length > MAX_CALL_BYTES / 2) body = utf8Encode(body);
  if (body === null || typeof body === 'string') bodyArg = body;
  else if (body instanceof Uint8Array && TypedArrayPrototypeGetByteLength(body) > MAX_CALL_BYTES) {
    carried = body;
    bodyArg = { carried: TypedArrayPrototypeGetByteLength(body) };
  } else if (body instanceof Uint8Array) bodyArg = exactBuffer(body);
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

    PromisePrototypeThen(callAsyncCarrying(carried, 'fetch.start', id, method, url, headers, bodyArg, redirect, service), (head) => {
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
              chunk = await callAsync('fetch.read', id);
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
      for (let at = 0; at < chunk.byteLength; at += MAX_CALL_BYTES) {
        const piece = at === 0 && chunk.byteLength <= MAX_CALL_BYTES ? chunk : TypedArrayPrototypeSubarray(chunk, at, at + MAX_CALL_BYTES);
        // false: the host no longer wants the body (the fetch ended, or a redirect made it a GET).
        if (!(await callAsync('fetch.write', id, exactBuffer(piece)))) {
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

export type FetchSend = typeof send;

export function create(deps: FetchDeps): FetchSend {
  ({ callSync, callAsync, callAsyncCarrying, utf8Encode, responseFromFetch } = deps);
  return send;
}
