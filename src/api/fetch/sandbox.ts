// fetch() for the sandbox (Fetch Standard §5.6): the request is built with the sandbox's own
// Request class (so every check and normalization of `new Request(input, init)` applies), then
// the host performs it (host.ts: node:http, the egress policy, redirects, the subrequest limit).
// The exchange with the host is a sandbox module (./sandbox/module.ts), loaded by the first fetch().
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

import { limitedHostCalls, createModule } from '../../sandbox/host-calls.ts';
import { requireRequestContext } from '../../sandbox/request-context.ts';
import { Request, requestForFetch } from '../request/sandbox.ts';
import { Response, responseFromFetch } from '../response/sandbox.ts';
import { headerList } from '../headers/sandbox.ts';
import { bodyForHost } from '../body/sandbox.ts';
import { utf8Encode } from '../encoding/sandbox.ts';
import type { AbortSignal } from '../events/sandbox.ts';
import type { FetchDeps, FetchSend } from './sandbox/module.ts';
import {
  ArrayPrototypeSlice, ObjectCreate, ObjectDefineProperty, Promise, PromisePrototypeThen, PromiseReject, String,
  TypeError,
} from '../../sandbox/primordials.ts';

let sendToHost: FetchSend | undefined;

const send: FetchSend = (method, url, headers, body, redirect, signal, service) => {
  if (sendToHost === undefined) {
    // Evaluated on first use, after tenant code may have run: only the host's fetch operations.
    const calls = limitedHostCalls('fetch');
    sendToHost = createModule<FetchDeps, FetchSend>('fetch', {
      callSync: calls.callSync,
      callAsync: calls.callAsync,
      callAsyncCarrying: calls.callAsyncCarrying,
      utf8Encode,
      responseFromFetch,
    });
  }
  return sendToHost(method, url, headers, body, redirect, signal, service);
};

export function fetch(input: unknown, init?: unknown): Promise<Response> {
  if (arguments.length === 0) return PromiseReject(new TypeError("Failed to execute 'fetch': 1 argument required, but only 0 present."));
  try {
    return startFetch(input, init, null);
  } catch (error) {
    // Fetch §5.6: fetch() reports every failure as a rejection, never by throwing.
    return PromiseReject(error);
  }
}

/**
 * fetch() through service binding `binding` (`env.NAME.fetch(input, init)`): the same argument
 * handling, and the request goes to the bound worker instead of the network.
 */
export function serviceFetch(binding: string, input: unknown, init: unknown, argumentCount: number): Promise<Response> {
  if (argumentCount === 0) return PromiseReject(new TypeError("Failed to execute 'fetch' on 'Fetcher': 1 argument required, but only 0 present."));
  try {
    return startFetch(input, init, binding);
  } catch (error) {
    return PromiseReject(error);
  }
}

// workerd's fetch.length (WebIDL would say 1).
ObjectDefineProperty(fetch, 'length', { __proto__: null, value: 0 });

function startFetch(input: unknown, init: unknown, service: string | null): Promise<Response> {
  requireRequestContext('fetch()');
  // redirect 'error' (Fetch §4.4 step 9): workerd's Request refuses the value, so it is taken
  // out of the init before the Request is made, and applied by the host.
  let redirectError = false;
  if (init !== null && typeof init === 'object' && (init as { redirect?: unknown }).redirect !== undefined &&
    String((init as { redirect?: unknown }).redirect) === 'error') {
    redirectError = true;
    init = ObjectCreate(init as object, { redirect: { __proto__: null, value: undefined } as PropertyDescriptor });
  }
  const request = new Request(input as never, init as never);
  const parts = requestForFetch(request);
  const redirect = redirectError ? 'error' : request.redirect;
  const signal = parts.signal as (AbortSignal & { reason: unknown }) | null;
  if (signal?.aborted) return PromiseReject(signal.reason);
  return sendWithBody(parts, redirect, signal, service);
}

// Awaits, where a `then` callback returning send()'s promise would resolve a promise with a
// promise, which calls that promise's `then`: the realm's, which tenant code may have replaced.
async function sendWithBody(parts: ReturnType<typeof requestForFetch>, redirect: string, signal: AbortSignal | null, service: string | null): Promise<Response> {
  const body = await bodyForHost(parts.body, true);
  return await send(parts.method, parts.url, ArrayPrototypeSlice(headerList(parts.headers)), body, redirect, signal, service);
}

