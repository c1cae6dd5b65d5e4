// Request for the sandbox (Fetch Standard §5.4), with workerd's behaviour where it differs:
// - methods: workerd accepts only the HTTP methods its HTTP stack knows, and upper-cases every
//   one of them (compatibility flag upper_case_all_http_methods), not just the six of Fetch's
//   "normalize a method"; any other method is a TypeError.
// - URLs with credentials are accepted (workerd does; Fetch forbids them in browsers).
// - mode, credentials, cache, referrer and friends do not exist (workerd has none of them);
//   redirect is 'follow' or 'manual' ('error' is a TypeError), integrity must be empty;
// - `cf` in the init must be an object and is kept as a copy (workerd keeps it as JSON);
//   an incoming request's cf is an empty frozen object (no edge metadata here);
// - `signal` is the init's signal object itself (or the input request's); a request made
//   without one has a fresh signal of its own; a clone shares the original's signal.
// - an incoming request has redirect 'manual' (workerd's default for the request it serves).

import { URL, parseAbsoluteURL } from '../url/sandbox.ts';
import { Headers, fillHeaders, setHeadersGuard, appendHeaderUnchecked, headersAppend, headersGet, headersHas } from '../headers/sandbox.ts';
import {
  Body, type BodySource, extractBody, bodyFromSource, cloneBody, bodyUsed, assertBodyUsable,
  consumeText, consumeJSON, consumeBytes, consumeArrayBuffer, consumeBlob, consumeFormData, bodyStream,
} from '../body/sandbox.ts';
import { requireRequestContext } from '../../sandbox/request-context.ts';
import type { HeaderLines } from '../../bridge/protocol.ts';
import { AbortSignal, DOMException, createDependentSignal, newAbortSignal } from '../events/sandbox.ts';
import {
  ArrayBuffer, ArrayPrototypeIncludes, JSONParse, JSONStringify, ObjectDefineProperty, ObjectFreeze, Promise, String,
  StringPrototypeSplit, StringPrototypeToUpperCase, Symbol, SymbolToStringTag, TypeError, Uint8Array, NO_MEMBERS,
} from '../../sandbox/primordials.ts';

// The methods of kj::HttpMethod that workerd accepts in a Request (M-SEARCH, in kj's list, is
// refused by workerd's Request, in any case).
const METHODS = [
  'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'PURGE', 'OPTIONS', 'TRACE', 'COPY', 'LOCK', 'MKCOL',
  'MOVE', 'PROPFIND', 'PROPPATCH', 'SEARCH', 'UNLOCK', 'ACL', 'REPORT', 'MKACTIVITY', 'CHECKOUT', 'MERGE',
  'NOTIFY', 'SUBSCRIBE', 'UNSUBSCRIBE', 'QUERY', 'BAN',
];

function normalizeMethod(method: unknown): string {
  const m = String(method);
  const upper = StringPrototypeToUpperCase(m);
  if (!ArrayPrototypeIncludes(METHODS, upper)) throw new TypeError(`Invalid HTTP method string: ${m}`);
  return upper;
}

export type RequestRedirect = 'follow' | 'manual';

export interface RequestInit {
  method?: string;
  headers?: unknown;
  body?: unknown;
  redirect?: RequestRedirect;
  signal?: AbortSignal | null;
  cf?: unknown;
  [key: string]: unknown;
}

const kInternal = Symbol('Request.internal');
/** structuredClone of a Request, as workerd serializes one (its head; no body, no signal). */
export let structuredCloneRequest: (from: Request) => Request;
let initRequest: (r: Request, method: string, url: string, headers: Headers, body: Body | null) => void;
/**
 * The Request for an incoming HTTP request. Its headers are immutable, as in workerd; the host
 * already parsed them, so they are taken as they are (HeaderLines, src/bridge/protocol.ts),
 * when first read.
 */
export let requestFromHost: (method: string, url: string, headers: HeaderLines, body: BodySource | null, incoming: IncomingSignal) => Request;

/**
 * The runtime's record of an incoming request (src/sandbox/dispatch.ts) as its Request sees it:
 * the signal that aborts when the client leaves, made when first needed (by the Request or by
 * the client leaving), since most requests never read it and most clients stay.
 */
export interface IncomingSignal {
  signal: AbortSignal | null;
}
/** What fetch() (src/api/fetch/sandbox.ts) sends: the head, the body (unread) and the init's signal. */
export let requestForFetch: (r: Request) => { method: string; url: string; headers: Headers; body: Body | null; signal: AbortSignal | null };

export class Request {
  #method = 'GET';
  #url = '';
  // An incoming request's headers stay as the host sent them (`#headerLines`, see
  // requestFromHost) until something reads them.
  #headers: Headers | null = null;
  #headerLines = '';
  #body: Body | null = null;
  // The signal given in the init (or taken from the input request), if any; else one made on
  // first read (or, for an incoming request, the runtime's signal, which new Request(incoming)
  // does not take over, as in workerd).
  #signal: AbortSignal | null = null;
  #ownSignal: AbortSignal | null = null;
  #incoming: IncomingSignal | null = null;
  #redirect: RequestRedirect = 'follow';
  // workerd keeps `cf` as JSON and parses it on first read; undefined when there is none.
  #cfJson: string | undefined = undefined;
  #cf: object | undefined = undefined;

  constructor(input: Request | URL | string, init?: RequestInit) {
    if ((input as unknown) === kInternal) return;
    if (arguments.length === 0) throw new TypeError("Failed to construct 'Request': 1 argument required, but only 0 present.");
    if (init !== undefined && init !== null && typeof init !== 'object') {
      throw new TypeError("Failed to construct 'Request': The provided value is not of type 'RequestInit'.");
    }
    init ??= NO_MEMBERS as RequestInit;
    // Fetch §5.4 new Request(input, init), in the spec's order where it is observable.
    let inputRequest: Request | null = null;
    if (input instanceof Request) {
      inputRequest = input;
      this.#url = input.#url;
      this.#method = input.#method;
      this.#redirect = input.#redirect;
      this.#cfJson = input.#cfJson;
    } else {
      const s = String(input);
      // No base URL in a worker: the URL must be absolute.
      const parsed = parseAbsoluteURL(s);
      if (parsed === null) throw new TypeError(`Invalid URL: ${s}`);
      this.#url = parsed;
    }

    if (init.method !== undefined) this.#method = normalizeMethod(init.method);

    if (init.redirect !== undefined) {
      const r = String(init.redirect);
      // workerd: only 'follow' and 'manual' ('error' is not implemented there).
      if (r !== 'follow' && r !== 'manual') {
        throw new TypeError(`Failed to construct 'Request': '${r}' is not a valid value for enumeration RequestRedirect.`);
      }
      this.#redirect = r;
    }

    if (init.integrity !== undefined && String(init.integrity) !== '') {
      throw new TypeError('Subrequest integrity checking is not implemented. The integrity option must be either undefined or an empty string.');
    }

    if (init.cf !== undefined) {
      if (init.cf === null || typeof init.cf !== 'object') {
        throw new TypeError("Incorrect type for the 'cf' field on 'RequestInitializerDict': the provided value is not of type 'Object'.");
      }
      this.#cfJson = JSONStringify(init.cf);
    }

    // The request's signal is init.signal itself, or the input request's (as in workerd).
    let signal: AbortSignal | null = inputRequest ? inputRequest.#signal : null;
    if (init.signal !== undefined) {
      if (init.signal !== null && !(init.signal instanceof AbortSignal)) {
        throw new TypeError("Failed to construct 'Request': member signal is not of type AbortSignal.");
      }
      signal = init.signal;
    }
    this.#signal = signal;

    const headers = new Headers();
    if (init.headers !== undefined) fillHeaders(headers, init.headers);
    else if (inputRequest) fillHeaders(headers, inputRequest.#headersOf());

    const initBody = init.body;
    const hasInitBody = initBody !== undefined && initBody !== null;
    // Fetch §5.4: a used input is refused only when its body would be taken; a body in the
    // init (null too, as in workerd) replaces it.
    const inputUsed = inputRequest !== null && bodyUsed(inputRequest.#body);
    if (inputUsed && initBody === undefined) {
      throw new TypeError('Cannot construct a Request with a Request object that has already been used.');
    }
    const takesInputBody = !hasInitBody && !inputUsed && inputRequest !== null && inputRequest.#body !== null;
    if ((hasInitBody || takesInputBody) && (this.#method === 'GET' || this.#method === 'HEAD')) {
      throw new TypeError('Request with a GET or HEAD method cannot have a body.');
    }
    if (hasInitBody) {
      // workerd refuses a request body in top-level code (a Request without one is fine).
      requireRequestContext('new Request() with a body');
      const { body, contentType } = extractBody(initBody);
      this.#body = body;
      if (contentType !== null && !headersHas(headers, 'content-type')) headersAppend(headers, 'content-type', contentType);
    } else if (takesInputBody) {
      // Fetch §5.4 steps 41-42: the body moves to the new request; the input becomes used.
      this.#body = inputRequest!.#body;
      const spent = new Body();
      spent.used = true;
      inputRequest!.#body = spent;
    }
    setHeadersGuard(headers, 'request');
    this.#headers = headers;
  }

  get method(): string { return this.#method; }
  get url(): string { return this.#url; }
  get headers(): Headers { return this.#headersOf(); }
  get redirect(): RequestRedirect { return this.#redirect; }
  get signal(): AbortSignal { return this.#signal ?? this.#ownSignalOf(); }
  /** Cloudflare's request metadata: what the init gave (a copy), or {} (frozen) for incoming requests. */
  get cf(): object | undefined {
    if (this.#cf === undefined && this.#cfJson !== undefined) this.#cf = this.#incoming !== null ? ObjectFreeze({}) : JSONParse(this.#cfJson) as object;
    return this.#cf;
  }

  #headersOf(): Headers {
    if (this.#headers !== null) return this.#headers;
    const headers = new Headers();
    if (this.#headerLines !== '') {
      const lines = StringPrototypeSplit(this.#headerLines, '\n');
      for (let i = 0; i + 1 < lines.length; i += 2) appendHeaderUnchecked(headers, lines[i]!, lines[i + 1]!);
    }
    setHeadersGuard(headers, 'immutable');
    return (this.#headers = headers);
  }

  /** The signal of a request made without one: its own, or an incoming request's runtime signal. */
  #ownSignalOf(): AbortSignal {
    return this.#ownSignal ??= this.#incoming !== null ? (this.#incoming.signal ??= newAbortSignal()) : newAbortSignal();
  }
  /** workerd's service binding of the request; isolet has none. */
  get fetcher(): null { return null; }
  get integrity(): string { return ''; }
  get keepalive(): boolean { return false; }

  /** The body as a ReadableStream (made on first use, see body/sandbox.ts), or null. */
  get body(): ReturnType<typeof bodyStream> { return bodyStream(this.#body); }
  get bodyUsed(): boolean { return bodyUsed(this.#body); }
  text(): Promise<string> { return consumeText(this.#body); }
  json(): Promise<unknown> { return consumeJSON(this.#body); }
  bytes(): Promise<Uint8Array<ArrayBuffer>> { return consumeBytes(this.#body); }
  arrayBuffer(): Promise<ArrayBuffer> { return consumeArrayBuffer(this.#body); }
  blob(): Promise<unknown> { return consumeBlob(this.#body, headersGet(this.#headersOf(), 'content-type')); }
  formData(): Promise<unknown> { return consumeFormData(this.#body, headersGet(this.#headersOf(), 'content-type')); }

  clone(): Request {
    assertBodyUsable(this.#body);
    const copy = new Request(kInternal as never);
    const headers = new Headers(this.#headersOf());
    setHeadersGuard(headers, 'request');
    initRequest(copy, this.#method, this.#url, headers, this.#body ? cloneBody(this.#body) : null);
    copy.#redirect = this.#redirect;
    copy.#cfJson = this.#cfJson;
    // The clone shares the signal (as in workerd); a clone of an incoming request follows the
    // runtime's signal, so it too aborts when the client goes away.
    copy.#signal = this.#signal;
    if (this.#signal === null && (this.#ownSignal !== null || this.#incoming !== null)) copy.#ownSignal = createDependentSignal([this.#ownSignalOf()]);
    return copy;
  }

  static {
    initRequest = (r, method, url, headers, body) => {
      r.#method = method; r.#url = url; r.#headers = headers; r.#body = body;
    };
    requestFromHost = (method, url, headers, body, incoming) => {
      const r = new Request(kInternal as never);
      r.#method = method; r.#url = url; r.#headerLines = headers; r.#body = body ? bodyFromSource(body) : null;
      r.#incoming = incoming;
      r.#redirect = 'manual';
      r.#cfJson = '{}';
      return r;
    };
    requestForFetch = (r) => ({ method: r.#method, url: r.#url, headers: r.#headersOf(), body: r.#body, signal: r.#signal });
    structuredCloneRequest = (from) => {
      // workerd serializes a Request's head; a body or a signal cannot cross.
      if (from.#body !== null) throw new DOMException('ReadableStream can only be serialized for RPC.', 'DataCloneError');
      if (from.#signal !== null) throw new DOMException('AbortSignal serialization is not enabled.', 'DataCloneError');
      const copy = new Request(kInternal as never);
      const headers = new Headers(from.#headersOf());
      setHeadersGuard(headers, 'request');
      initRequest(copy, from.#method, from.#url, headers, null);
      copy.#redirect = from.#redirect;
      copy.#cfJson = from.#cfJson;
      return copy;
    };
  }
}
ObjectDefineProperty(Request.prototype, SymbolToStringTag, { __proto__: null, value: 'Request', configurable: true });

