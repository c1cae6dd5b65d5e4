// Request for the sandbox (Fetch Standard §5.4), with workerd's behaviour where it differs:
// - methods: workerd accepts only the HTTP methods its HTTP stack knows, and upper-cases every
//   one of them (compatibility flag upper_case_all_http_methods), not just the six of Fetch's
//   "normalize a method"; any other method is a TypeError.
// - URLs with credentials are accepted (workerd does; Fetch forbids them in browsers).
// - mode, credentials, cache, referrer and friends do not exist (workerd has none of them);
//   `cf` is accepted in the init and ignored.

import { URL, parseAbsoluteURL } from '../url/sandbox.ts';
import { Headers, fillHeaders, setHeadersGuard, appendHeaderUnchecked } from '../headers/sandbox.ts';
import {
  Body, type BodySource, extractBody, bodyFromSource, cloneBody, bodyUsed, assertBodyUsable,
  consumeText, consumeJSON, consumeBytes, consumeArrayBuffer, bodyStream,
} from '../body/sandbox.ts';
import { AbortSignal, createDependentSignal, newAbortSignal } from '../events/sandbox.ts';

// The methods of kj::HttpMethod, which is what workerd can send and receive.
const METHODS = [
  'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'PURGE', 'OPTIONS', 'TRACE', 'COPY', 'LOCK', 'MKCOL',
  'MOVE', 'PROPFIND', 'PROPPATCH', 'SEARCH', 'UNLOCK', 'ACL', 'REPORT', 'MKACTIVITY', 'CHECKOUT', 'MERGE',
  'M-SEARCH', 'NOTIFY', 'SUBSCRIBE', 'UNSUBSCRIBE', 'QUERY', 'BAN',
];

function normalizeMethod(method: unknown): string {
  const m = String(method);
  const upper = m.toUpperCase();
  if (!METHODS.includes(upper)) throw new TypeError(`Invalid HTTP method string: ${m}`);
  return upper;
}

export type RequestRedirect = 'follow' | 'manual' | 'error';

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
let initRequest: (r: Request, method: string, url: string, headers: Headers, body: Body | null, signal: AbortSignal) => void;

export class Request {
  #method = 'GET';
  #url = '';
  #headers!: Headers;
  #body: Body | null = null;
  #signal!: AbortSignal;
  #redirect: RequestRedirect = 'follow';

  constructor(input: Request | URL | string, init?: RequestInit) {
    if ((input as unknown) === kInternal) return;
    if (arguments.length === 0) throw new TypeError("Failed to construct 'Request': 1 argument required, but only 0 present.");
    if (init !== undefined && init !== null && typeof init !== 'object') {
      throw new TypeError("Failed to construct 'Request': The provided value is not of type 'RequestInit'.");
    }
    init ??= {};
    // Fetch §5.4 new Request(input, init), in the spec's order where it is observable.
    let inputRequest: Request | null = null;
    if (input instanceof Request) {
      inputRequest = input;
      this.#url = input.#url;
      this.#method = input.#method;
      this.#redirect = input.#redirect;
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
      if (r !== 'follow' && r !== 'manual' && r !== 'error') {
        throw new TypeError(`Failed to construct 'Request': '${r}' is not a valid value for enumeration RequestRedirect.`);
      }
      this.#redirect = r;
    }

    // The request's signal follows init.signal, or the input request's signal.
    let followed: AbortSignal | null = inputRequest ? inputRequest.#signal : null;
    if (init.signal !== undefined) {
      if (init.signal !== null && !(init.signal instanceof AbortSignal)) {
        throw new TypeError("Failed to construct 'Request': member signal is not of type AbortSignal.");
      }
      followed = init.signal;
    }
    this.#signal = followed ? createDependentSignal([followed]) : newAbortSignal();

    const headers = new Headers();
    if (init.headers !== undefined) fillHeaders(headers, init.headers);
    else if (inputRequest) fillHeaders(headers, inputRequest.#headers);

    const initBody = init.body;
    const hasInitBody = initBody !== undefined && initBody !== null;
    if (inputRequest && bodyUsed(inputRequest.#body)) {
      throw new TypeError('Cannot construct a Request with a Request object that has already been used.');
    }
    if ((hasInitBody || (inputRequest !== null && inputRequest.#body !== null)) && (this.#method === 'GET' || this.#method === 'HEAD')) {
      throw new TypeError('Request with a GET or HEAD method cannot have a body.');
    }
    if (hasInitBody) {
      const { body, contentType } = extractBody(initBody);
      this.#body = body;
      if (contentType !== null && !headers.has('content-type')) headers.append('content-type', contentType);
    } else if (inputRequest && inputRequest.#body) {
      // Fetch §5.4 steps 41-42: the body moves to the new request; the input becomes used.
      this.#body = inputRequest.#body;
      const spent = new Body();
      spent.used = true;
      inputRequest.#body = spent;
    }
    setHeadersGuard(headers, 'request');
    this.#headers = headers;
  }

  get method(): string { return this.#method; }
  get url(): string { return this.#url; }
  get headers(): Headers { return this.#headers; }
  get redirect(): RequestRedirect { return this.#redirect; }
  get signal(): AbortSignal { return this.#signal; }
  /** Cloudflare's request metadata; isolet has none to offer. */
  get cf(): undefined { return undefined; }
  get integrity(): string { return ''; }
  get keepalive(): boolean { return false; }

  /** The body as a ReadableStream (made on first use, see body/sandbox.ts), or null. */
  get body(): ReturnType<typeof bodyStream> { return bodyStream(this.#body); }
  get bodyUsed(): boolean { return bodyUsed(this.#body); }
  text(): Promise<string> { return consumeText(this.#body); }
  json(): Promise<unknown> { return consumeJSON(this.#body); }
  bytes(): Promise<Uint8Array<ArrayBuffer>> { return consumeBytes(this.#body); }
  arrayBuffer(): Promise<ArrayBuffer> { return consumeArrayBuffer(this.#body); }

  clone(): Request {
    assertBodyUsable(this.#body);
    const copy = new Request(kInternal as never);
    const headers = new Headers(this.#headers);
    setHeadersGuard(headers, 'request');
    initRequest(copy, this.#method, this.#url, headers, this.#body ? cloneBody(this.#body) : null, createDependentSignal([this.#signal]));
    copy.#redirect = this.#redirect;
    return copy;
  }

  static {
    initRequest = (r, method, url, headers, body, signal) => {
      r.#method = method; r.#url = url; r.#headers = headers; r.#body = body; r.#signal = signal;
    };
  }
}
Object.defineProperty(Request.prototype, Symbol.toStringTag, { value: 'Request', configurable: true });

/**
 * The Request for an incoming HTTP request. Its headers are immutable, as in workerd; the host
 * already parsed them, so they are taken as they are (flat [name, value, ...]).
 */
export function requestFromHost(method: string, url: string, headers: string[], body: BodySource | null, signal: AbortSignal): Request {
  const request = new Request(kInternal as never);
  const h = new Headers();
  for (let i = 0; i + 1 < headers.length; i += 2) appendHeaderUnchecked(h, headers[i], headers[i + 1]);
  setHeadersGuard(h, 'immutable');
  initRequest(request, method, url, h, body ? bodyFromSource(body) : null, signal);
  return request;
}
