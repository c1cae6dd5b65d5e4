// The Web platform globals of the sandbox, and the two crossings of a request's head: the
// runtime core (main.ts) installs `webPlatformGlobals` as non-enumerable globals, and
// dispatch.ts turns each host request into a Request and each Response back into plain values.

import { Headers, cloneHeadersForStructuredClone } from '../api/headers/sandbox.ts';
import { Request, requestFromHost, structuredCloneRequest, type IncomingSignal } from '../api/request/sandbox.ts';
import { Response, responseToHost, structuredCloneResponse, type HostResponse } from '../api/response/sandbox.ts';
import { URL, searchParams } from '../api/url/sandbox.ts';
import { encoding } from '../api/encoding/sandbox.ts';
import { events, EventTarget, AbortController, AbortSignal, DOMException } from '../api/events/sandbox.ts';
import { structuredClone, markNotSerializable, markSerializable } from '../api/structured-clone/sandbox.ts';
import { streamGlobals } from '../api/streams/sandbox.ts';
import { compressionGlobals } from '../api/compression/sandbox.ts';
import { fetch } from '../api/fetch/sandbox.ts';
import { blobGlobals } from '../api/blob/sandbox.ts';
import { formDataGlobals } from '../api/form-data/sandbox.ts';
import { urlPatternGlobals } from '../api/url-pattern/sandbox.ts';
import {
  ObjectDefineProperty, ObjectKeys, Promise,
} from './primordials.ts';

export type { BodySource } from '../api/body/sandbox.ts';
export type { HostResponse } from '../api/response/sandbox.ts';
export type { IncomingSignal } from '../api/request/sandbox.ts';
export { requestFromHost, responseToHost };
export { signalAbort } from '../api/events/sandbox.ts';

// HTML §2.7: platform objects without a serialization are a DataCloneError in structuredClone.
// workerd serializes Headers, and the head of a Request or Response without a body.
markSerializable(Headers, cloneHeadersForStructuredClone as (value: object) => object);
markSerializable(Request, structuredCloneRequest as (value: object) => object);
markSerializable(Response, structuredCloneResponse as (value: object) => object);
markNotSerializable(URL, EventTarget, AbortController);

export const webPlatformGlobals: Record<string, unknown> = {
  Headers, Request, Response, URL,
  EventTarget, AbortController, AbortSignal, DOMException, structuredClone, fetch,
};

const eventClass = (name: string): unknown => events()[name as 'Event' | 'CustomEvent' | 'ErrorEvent' | 'PromiseRejectionEvent' | 'CloseEvent' | 'MessageEvent'];
const encodingGlobal = (name: string): unknown => encoding()[name as 'TextEncoder' | 'TextDecoder' | 'atob' | 'btoa'];

/**
 * Globals made on first access (main.ts installs them as accessors that replace themselves
 * with the value): their implementations are sandbox modules, outside the snapshot.
 */
export const lazyWebPlatformGlobals: Record<string, (name: string) => unknown> = {
  ...streamGlobals(),
  ...compressionGlobals(),
  ...blobGlobals(),
  ...formDataGlobals(),
  ...urlPatternGlobals(),
  URLSearchParams: () => searchParams().URLSearchParams,
  Event: eventClass,
  CustomEvent: eventClass,
  ErrorEvent: eventClass,
  PromiseRejectionEvent: eventClass,
  CloseEvent: eventClass,
  MessageEvent: eventClass,
  TextEncoder: encodingGlobal,
  TextDecoder: encodingGlobal,
  atob: encodingGlobal,
  btoa: encodingGlobal,
};

// Bundlers rename classes that clash with globals (esbuild makes DOMException `_DOMException`):
// tenants see `.name`, in stack traces and in `constructor.name`, so pin it to the global name.
for (const key of ObjectKeys(webPlatformGlobals)) {
  ObjectDefineProperty(webPlatformGlobals[key] as Function, 'name', { __proto__: null, value: key, configurable: true });
}

// Keep the documented signatures checked against the implementations.
void (requestFromHost satisfies (method: string, url: string, headers: string, body: import('../api/body/sandbox.ts').BodySource | null, incoming: IncomingSignal) => Request);
void (responseToHost satisfies (value: unknown) => HostResponse | null);
