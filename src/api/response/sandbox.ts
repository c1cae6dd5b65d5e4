// Response for the sandbox (Fetch Standard §5.5), with workerd's behaviour where it differs:
// - the status range is 200-599 (workerd allows 101 only together with a webSocket, which
//   isolet does not have yet), with workerd's RangeError message;
// - `type` is "default" or "error" (no basic/cors/opaque: there is no CORS on a server);
// - `webSocket` is null and `cf` undefined;
// - a null body status (204, 205, 304) may come with an empty body (workerd drops it), and
//   Response.error()'s headers are mutable;
// - a statusText may hold any character but controls (sent as UTF-8);
// - a Response with a body (and Response.json/redirect) cannot be made in top-level code.

import { parseAbsoluteURL } from '../url/sandbox.ts';
import {
  Headers, fillHeaders, setHeadersGuard, headerList, toByteString, fromByteString, appendHeaderUnchecked, hasHeaderUnchecked,
  headersAppend, headersGet,
} from '../headers/sandbox.ts';
import { currentRequest, requireRequestContext } from '../../sandbox/request-context.ts';
import { DOMException } from '../events/sandbox.ts';
import { reasonPhrase } from './reason-phrases.ts';
import {
  Body, TEXT_BODY_TYPE, type BodySource, extractBody, bodyFromSource, cloneBody, bodyUsed, assertBodyUsable, bodyForHost,
  consumeText, consumeJSON, consumeBytes, consumeArrayBuffer, consumeBlob, consumeFormData, bodyStream,
} from '../body/sandbox.ts';
import {
  ArrayBuffer, JSONStringify, Number, ObjectDefineProperty, Promise, RangeError, Set, String,
  StringPrototypeCharCodeAt, StringPrototypeIsWellFormed, Symbol, SymbolToStringTag, TypeError, Uint8Array,
} from '../../sandbox/primordials.ts';

export interface ResponseInit {
  status?: number;
  statusText?: string;
  headers?: unknown;
  [key: string]: unknown;
}

// Fetch §2.2 "null body status".
const isNullBodyStatus = (s: number): boolean => s === 101 || s === 103 || s === 204 || s === 205 || s === 304;
// Fetch §2.2 "redirect status".
const isRedirectStatus = (s: number): boolean => s === 301 || s === 302 || s === 303 || s === 307 || s === 308;

// workerd's statusText check: no control characters below U+0020 (tab included); anything
// else is accepted, non-Latin-1 too, and goes on the wire as UTF-8 (RFC 9110's reason-phrase
// allows obs-text bytes). CR, LF and NUL, which would break the status line, are among those
// refused.
function isReasonPhrase(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (StringPrototypeCharCodeAt(s, i) < 0x20) return false;
  return true;
}

// Fetch §5.5: the body's length when it is known without reading it (a string or bytes).
function knownEmpty(body: Body): boolean {
  return (body.text !== null && body.text.length === 0) || (body.bytes !== null && body.bytes.byteLength === 0);
}

const kInternal = Symbol('Response.internal');
// Assigned in Response's static block (which can see its #private fields).
/**
 * structuredClone of a Response, as workerd serializes one: the head (status, statusText,
 * type, headers, mutable again); a Response with a body is a DataCloneError.
 */
export let structuredCloneResponse: (from: Response) => Response;
/** fetch()'s answer (src/api/fetch/sandbox.ts): header pairs and statusText as byte strings. */
export let responseFromFetch: (status: number, statusText: string, headers: string[], body: BodySource | null, url: string, redirected: boolean) => Response;
/**
 * The response as plain values for the host: the head, and the body whole or as a source (the
 * body is then used); null when `value` is no Response.
 */
export let responseToHost: (value: unknown) => HostResponse | null;

export class Response {
  #status = 200;
  #statusText = '';
  // Whether the init gave a statusText: without one, the wire gets workerd's reason phrase.
  #statusTextGiven = false;
  // Made on first read (#headersOf) when the init gave none: most responses are sent without
  // their headers ever being read, and a Headers is two more functions per request to enter.
  // Until then the only header is the Content-Type the body implies (`#impliedType`, or none).
  #headers: Headers | null = null;
  #impliedType: string | null = null;
  #body: Body | null = null;
  #type: 'default' | 'error' = 'default';
  // Set for fetch()'s responses (Fetch §5.5: the URL list's last URL, and whether it has several).
  #url = '';
  #redirected = false;

  constructor(body?: unknown, init?: ResponseInit) {
    if (body === kInternal) return;
    if (init !== undefined && init !== null && typeof init !== 'object') {
      throw new TypeError("Failed to construct 'Response': The provided value is not of type 'ResponseInit'.");
    }
    // workerd refuses a body in top-level code ("Disallowed operation called within global
    // scope"); a Response without one is allowed there.
    if (body !== undefined && body !== null && currentRequest === 0) requireRequestContext('new Response() with a body');
    if (init === undefined || init === null) {
      // The usual `new Response(text)`: status 200 and no headers but the implied Content-Type,
      // nothing to check, so none of #initialize (each function entered costs a rarely served
      // isolate cache misses; docs/BENCHMARKS.md, "Fewer functions per request").
      if (typeof body === 'string' && StringPrototypeIsWellFormed(body)) {
        this.#body = new Body(body);
        this.#impliedType = TEXT_BODY_TYPE;
        return;
      }
      if (body === undefined || body === null) return;
    }
    const extracted = body === undefined || body === null ? null : extractBody(body);
    Response.#initialize(this, init ?? undefined, extracted);
  }

  // Fetch §5.5 "initialize a response", with workerd's checks. Without an init (the usual
  // `new Response(text)`) there is nothing to check.
  static #initialize(response: Response, init: ResponseInit | undefined, extracted: ReturnType<typeof extractBody> | null): void {
    let headers: Headers | null = null;
    let status = 200;
    if (init !== undefined) {
      if (init.status !== undefined) status = Number(init.status) & 0xffff;
      if (status < 200 || status > 599) {
        throw new RangeError(`Responses may only be constructed with status codes in the range 200 to 599, inclusive.`);
      }
      if (init.statusText !== undefined) {
        const statusText = String(init.statusText);
        if (!isReasonPhrase(statusText)) throw new TypeError('Invalid statusText.');
        // Kept as workerd reads it back: through UTF-8 (a lone surrogate comes back as U+FFFDs).
        response.#statusText = fromByteString(toByteString(statusText));
      }
      // workerd: a Response as the init (`new Response(body, otherResponse)`, as frameworks do)
      // passes on whether its statusText was given, so the wire keeps the default reason phrase.
      response.#statusTextGiven = #statusTextGiven in init ? (init as Response).#statusTextGiven : init.statusText !== undefined;
      if (init.headers !== undefined) {
        headers = new Headers();
        fillHeaders(headers, init.headers);
      }
    }
    response.#status = status;
    if (extracted && isNullBodyStatus(status)) {
      // workerd: an empty string or buffer is no body at all (and implies no Content-Type);
      // any other body, a stream included, is a TypeError.
      if (!knownEmpty(extracted.body)) {
        throw new TypeError('Response with null body status (101, 204, 205, or 304) cannot have a body.');
      }
      extracted = null;
    }
    if (extracted) {
      response.#body = extracted.body;
      const type = extracted.contentType;
      if (headers === null) response.#impliedType = type;
      else if (type !== null && !hasHeaderUnchecked(headers, 'content-type')) appendHeaderUnchecked(headers, 'content-type', type);
    }
    if (headers === null) return;
    setHeadersGuard(headers, 'response');
    response.#headers = headers;
  }

  /** The headers, made now if the init gave none (see `#headers`). */
  #headersOf(): Headers {
    if (this.#headers !== null) return this.#headers;
    const headers = new Headers();
    if (this.#impliedType !== null) appendHeaderUnchecked(headers, 'content-type', this.#impliedType);
    setHeadersGuard(headers, 'response');
    return (this.#headers = headers);
  }

  /** The Content-Type header's value, without making the headers if they are not made yet. */
  #contentType(): string | null {
    return this.#headers === null ? this.#impliedType : headersGet(this.#headers, 'content-type');
  }

  /** Fetch §5.5 Response.json(): the data as JSON, with Content-Type application/json. */
  static json(data: unknown, init?: ResponseInit): Response {
    requireRequestContext('Response.json()');
    // workerd: a value JSON cannot represent (undefined, a function, a symbol) is not an error;
    // the body is then the string "undefined".
    const text = String(JSONStringify(data));
    const response = new Response(kInternal);
    const extracted = extractBody(text);
    extracted.contentType = 'application/json';
    Response.#initialize(response, init ?? undefined, extracted);
    return response;
  }

  /** Fetch §5.5 Response.redirect(): an absolute URL (there is no base URL in a worker). */
  static redirect(url: unknown, status: number = 302): Response {
    requireRequestContext('Response.redirect()');
    const parsed = parseAbsoluteURL(String(url));
    if (parsed === null) throw new TypeError(`Invalid URL: ${String(url)}`);
    status = Number(status) & 0xffff;
    if (!isRedirectStatus(status)) {
      throw new RangeError(`Invalid status code: ${status}. Redirect status must be one of 301, 302, 303, 307, or 308.`);
    }
    const response = new Response(kInternal);
    response.#status = status;
    const headers = new Headers();
    headersAppend(headers, 'location', parsed);
    setHeadersGuard(headers, 'immutable');
    response.#headers = headers;
    return response;
  }

  /** Fetch §5.5 Response.error(): a network error. Its headers are mutable, as in workerd. */
  static error(): Response {
    const response = new Response(kInternal);
    response.#status = 0;
    response.#type = 'error';
    const headers = new Headers();
    setHeadersGuard(headers, 'response');
    response.#headers = headers;
    return response;
  }

  get type(): 'default' | 'error' { return this.#type; }
  get url(): string { return this.#url; }
  get redirected(): boolean { return this.#redirected; }
  get status(): number { return this.#status; }
  get ok(): boolean { return this.#status >= 200 && this.#status <= 299; }
  get statusText(): string { return this.#statusText; }
  get headers(): Headers { return this.#headersOf(); }
  get webSocket(): null { return null; }
  get cf(): undefined { return undefined; }

  /** The body as a ReadableStream (made on first use, see body/sandbox.ts), or null. */
  get body(): ReturnType<typeof bodyStream> { return bodyStream(this.#body); }
  get bodyUsed(): boolean { return bodyUsed(this.#body); }
  text(): Promise<string> { return consumeText(this.#body); }
  json(): Promise<unknown> { return consumeJSON(this.#body); }
  bytes(): Promise<Uint8Array<ArrayBuffer>> { return consumeBytes(this.#body); }
  arrayBuffer(): Promise<ArrayBuffer> { return consumeArrayBuffer(this.#body); }
  blob(): Promise<unknown> { return consumeBlob(this.#body, this.#contentType()); }
  formData(): Promise<unknown> { return consumeFormData(this.#body, this.#contentType()); }

  clone(): Response {
    assertBodyUsable(this.#body);
    const copy = new Response(kInternal);
    copy.#status = this.#status;
    copy.#statusText = this.#statusText;
    copy.#statusTextGiven = this.#statusTextGiven;
    copy.#type = this.#type;
    copy.#url = this.#url;
    copy.#redirected = this.#redirected;
    if (this.#headers === null) {
      copy.#impliedType = this.#impliedType;
    } else {
      const headers = new Headers(this.#headers);
      setHeadersGuard(headers, 'response');
      copy.#headers = headers;
    }
    copy.#body = this.#body ? cloneBody(this.#body) : null;
    return copy;
  }

  static {
    structuredCloneResponse = (from) => {
      if (from.#body !== null) throw new DOMException('ReadableStream can only be serialized for RPC.', 'DataCloneError');
      const copy = new Response(kInternal);
      copy.#status = from.#status;
      copy.#statusText = from.#statusText;
      copy.#statusTextGiven = from.#statusTextGiven;
      copy.#type = from.#type;
      const headers = new Headers(from.#headersOf());
      setHeadersGuard(headers, 'response');
      copy.#headers = headers;
      return copy;
    };
    responseFromFetch = (status, statusText, headerBytes, body, url, redirected) => {
      const response = new Response(kInternal);
      response.#status = status;
      response.#statusText = fromByteString(statusText);
      response.#statusTextGiven = true;
      const headers = new Headers();
      for (let i = 0; i + 1 < headerBytes.length; i += 2) appendHeaderUnchecked(headers, headerBytes[i]!, headerBytes[i + 1]!);
      // As in workerd, a fetched response's headers are immutable (`new Response(r.body, r)` to change them).
      setHeadersGuard(headers, 'immutable');
      response.#headers = headers;
      response.#body = body ? bodyFromSource(body) : null;
      response.#url = url;
      response.#redirected = redirected;
      return response;
    };
    responseToHost = (value) => {
      // The brand check, not `instanceof`: tenant code may give Response a Symbol.hasInstance.
      if (typeof value !== 'object' || value === null || !(#status in value)) return null;
      const r = value as Response;
      // bodyForHost refuses a used or locked body, as assertBodyUsable would.
      return {
        status: r.#status,
        // Header names and values are byte strings already; a given status text becomes one
        // (UTF-8); workerd's reason phrases are ASCII.
        statusText: r.#statusTextGiven ? toByteString(r.#statusText) : r.#status === 200 ? 'OK' : reasonPhrase(r.#status),
        headers: r.#headers !== null ? headerList(r.#headers) : r.#impliedType !== null ? ['content-type', r.#impliedType] : [],
        body: bodyForHost(r.#body),
      };
    };
  }
}
ObjectDefineProperty(Response.prototype, SymbolToStringTag, { __proto__: null, value: 'Response', configurable: true });


export interface HostResponse {
  /** 0 for Response.error(), a network error. */
  status: number;
  statusText: string;
  /**
   * Flat [name, value, ...] in insertion order, lowercase names; one entry per Set-Cookie.
   * Names and values are byte strings (one char per byte: the UTF-8 the worker's strings
   * became), as Node's http module reads and writes header bytes; so is statusText. The
   * response's own list: copy it before anything else can run.
   */
  headers: readonly string[];
  /**
   * A string when the body was made from one (the host encodes it), else bytes, or null; a
   * BodySource when the body is a stream or large (the host pulls it; see dispatch.ts).
   */
  body: Uint8Array | string | BodySource | null;
}
