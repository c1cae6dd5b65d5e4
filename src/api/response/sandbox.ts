// Response for the sandbox (Fetch Standard §5.5), with workerd's behaviour where it differs:
// - the status range is 200-599 (workerd allows 101 only together with a webSocket, which
//   isolet does not have yet), with workerd's RangeError message;
// - `type` is "default" or "error" (no basic/cors/opaque: there is no CORS on a server);
// - `webSocket` is null and `cf` undefined.

import { parseAbsoluteURL } from '../url/sandbox.ts';
import { Headers, fillHeaders, setHeadersGuard, headerList } from '../headers/sandbox.ts';
import {
  type Body, type BodySource, extractBody, cloneBody, bodyUsed, assertBodyUsable, bodyForHost,
  consumeText, consumeJSON, consumeBytes, consumeArrayBuffer, bodyStream,
} from '../body/sandbox.ts';

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

// RFC 9110 reason-phrase: HTAB, SP, VCHAR, obs-text.
function isReasonPhrase(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!(c === 9 || (c >= 0x20 && c <= 0x7e) || (c >= 0x80 && c <= 0xff))) return false;
  }
  return true;
}

const kInternal = Symbol('Response.internal');
// Assigned in Response's static block (which can see its #private fields).
let initializeResponse: (r: Response, init: ResponseInit, extracted: ReturnType<typeof extractBody> | null) => void;
let responseParts: (r: Response) => { status: number; statusText: string; headers: Headers; body: Body | null };

export class Response {
  #status = 200;
  #statusText = '';
  #headers!: Headers;
  #body: Body | null = null;
  #type: 'default' | 'error' = 'default';

  constructor(body?: unknown, init?: ResponseInit) {
    if (body === kInternal) return;
    if (init !== undefined && init !== null && typeof init !== 'object') {
      throw new TypeError("Failed to construct 'Response': The provided value is not of type 'ResponseInit'.");
    }
    const extracted = body === undefined || body === null ? null : extractBody(body);
    initializeResponse(this, init ?? {}, extracted);
  }

  // Fetch §5.5 "initialize a response".
  static #initialize(response: Response, init: ResponseInit, extracted: ReturnType<typeof extractBody> | null): void {
    const status = init.status === undefined ? 200 : Number(init.status) & 0xffff;
    if (status < 200 || status > 599) {
      throw new RangeError(`Responses may only be constructed with status codes in the range 200 to 599, inclusive.`);
    }
    const statusText = init.statusText === undefined ? '' : String(init.statusText);
    if (!isReasonPhrase(statusText)) throw new TypeError('Invalid statusText.');
    response.#status = status;
    response.#statusText = statusText;
    const headers = new Headers();
    if (init.headers !== undefined) fillHeaders(headers, init.headers);
    if (extracted) {
      if (isNullBodyStatus(status)) throw new TypeError(`Response with null body status (${status}) cannot have a body.`);
      response.#body = extracted.body;
      if (extracted.contentType !== null && !headers.has('content-type')) headers.append('content-type', extracted.contentType);
    }
    setHeadersGuard(headers, 'response');
    response.#headers = headers;
  }

  /** Fetch §5.5 Response.json(): the data as JSON, with Content-Type application/json. */
  static json(data: unknown, init?: ResponseInit): Response {
    const text = JSON.stringify(data);
    if (text === undefined) throw new TypeError('Value is not JSON serializable.');
    const response = new Response(kInternal);
    const extracted = extractBody(text);
    extracted.contentType = 'application/json';
    initializeResponse(response, init ?? {}, extracted);
    return response;
  }

  /** Fetch §5.5 Response.redirect(): an absolute URL (there is no base URL in a worker). */
  static redirect(url: unknown, status: number = 302): Response {
    const parsed = parseAbsoluteURL(String(url));
    if (parsed === null) throw new TypeError(`Invalid URL: ${String(url)}`);
    status = Number(status) & 0xffff;
    if (!isRedirectStatus(status)) {
      throw new RangeError(`Invalid status code: ${status}. Redirect status must be one of 301, 302, 303, 307, or 308.`);
    }
    const response = new Response(kInternal);
    response.#status = status;
    const headers = new Headers();
    headers.append('location', parsed);
    setHeadersGuard(headers, 'immutable');
    response.#headers = headers;
    return response;
  }

  /** Fetch §5.5 Response.error(): a network error. */
  static error(): Response {
    const response = new Response(kInternal);
    response.#status = 0;
    response.#type = 'error';
    const headers = new Headers();
    setHeadersGuard(headers, 'immutable');
    response.#headers = headers;
    return response;
  }

  get type(): 'default' | 'error' { return this.#type; }
  get url(): string { return ''; }
  get redirected(): boolean { return false; }
  get status(): number { return this.#status; }
  get ok(): boolean { return this.#status >= 200 && this.#status <= 299; }
  get statusText(): string { return this.#statusText; }
  get headers(): Headers { return this.#headers; }
  get webSocket(): null { return null; }
  get cf(): undefined { return undefined; }

  /** The body as a ReadableStream (made on first use, see body/sandbox.ts), or null. */
  get body(): ReturnType<typeof bodyStream> { return bodyStream(this.#body); }
  get bodyUsed(): boolean { return bodyUsed(this.#body); }
  text(): Promise<string> { return consumeText(this.#body); }
  json(): Promise<unknown> { return consumeJSON(this.#body); }
  bytes(): Promise<Uint8Array<ArrayBuffer>> { return consumeBytes(this.#body); }
  arrayBuffer(): Promise<ArrayBuffer> { return consumeArrayBuffer(this.#body); }

  clone(): Response {
    assertBodyUsable(this.#body);
    const copy = new Response(kInternal);
    copy.#status = this.#status;
    copy.#statusText = this.#statusText;
    copy.#type = this.#type;
    const headers = new Headers(this.#headers);
    setHeadersGuard(headers, this.#type === 'error' ? 'immutable' : 'response');
    copy.#headers = headers;
    copy.#body = this.#body ? cloneBody(this.#body) : null;
    return copy;
  }

  static {
    initializeResponse = (response, init, extracted) => Response.#initialize(response, init, extracted);
    responseParts = (r) => ({ status: r.#status, statusText: r.#statusText, headers: r.#headers, body: r.#body });
  }
}
Object.defineProperty(Response.prototype, Symbol.toStringTag, { value: 'Response', configurable: true });


export interface HostResponse {
  status: number;
  statusText: string;
  /** Flat [name, value, ...] in insertion order, lowercase names; one entry per Set-Cookie. */
  headers: string[];
  /**
   * A string when the body was made from one (the host encodes it), else bytes, or null; a
   * BodySource when the body is a stream or large (the host pulls it; see dispatch.ts).
   */
  body: Uint8Array | string | BodySource | null;
}

/** The response as plain values for the host: the head, and the body whole or as a source. */
export async function responseToHost(response: Response): Promise<HostResponse> {
  const parts = responseParts(response);
  assertBodyUsable(parts.body);
  const body = await bodyForHost(parts.body);
  return { status: parts.status, statusText: parts.statusText, headers: headerList(parts.headers).slice(), body };
}
