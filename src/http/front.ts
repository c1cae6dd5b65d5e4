// The HTTP front: turns node:http requests into RuntimeRequests and RuntimeResponses back into
// bytes on the wire. It owns what HTTP itself decides (malformed requests, routing misses,
// hop-by-hop headers, framing, backpressure); everything a worker decides comes from the
// runtime. This is the hot path of every request, so the per-request work is one header loop,
// one AbortController and one async call, with no closures: the listeners are module-level
// functions that find their state on the request and response objects, which are subclasses
// made for that.

import { createServer, IncomingMessage, ServerResponse, STATUS_CODES } from 'node:http';
import type { Server, ServerOptions } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RuntimeRequest, RuntimeResponse } from '../runtime/types.ts';
import { connectionLimits, DATA_PLANE_CONNECTION_LIMITS, limitConnections, type ConnectionLimits, type RefusedConnections } from './connection-limits.ts';
import { UnsentBytes, type UnsentLimits } from './unsent-bytes.ts';

/** The part of a Runtime the front uses (`Pick<Runtime, 'fetch'>`). */
export interface RuntimeFetcher {
  fetch(name: string, request: RuntimeRequest): Promise<RuntimeResponse>;
}

/** One structured log line from the front: a request that failed for a reason not the client's. */
export interface FrontLogEntry {
  time: string;
  level: 'error' | 'warn';
  type: 'http';
  message: string;
  worker?: string;
  method?: string;
  url?: string;
  /** The error's stack (or message), when there is one. */
  error?: string;
  /** Connections closed at accept: the client address (its /64 for IPv6) of the last one. */
  address?: string;
  /** Connections closed at accept since the last such line. */
  refused?: number;
}

export interface HttpFrontOptions {
  /**
   * Picks the worker that serves a request; undefined is a 404. `host` is the request's
   * validated Host ("name[:port]"), handed over so that routing by host need not build
   * `req.headers` (a lazily made object) on the hot path.
   */
  worker: (req: IncomingMessage, host: string) => string | undefined;
  /** Where the front's own log lines go (default: JSON lines on stderr). */
  log?: (entry: FrontLogEntry) => void;
  /** Passed to http.createServer (header size, ...); the timeouts are `connections`'. */
  server?: Omit<ServerOptions<typeof FrontRequest, typeof FrontResponse>, 'IncomingMessage' | 'ServerResponse'>;
  /** Connection caps and timeouts (default DATA_PLANE_CONNECTION_LIMITS). */
  connections?: Partial<ConnectionLimits>;
  /** Response bytes that may wait on slow clients, in all and per worker (default DEFAULT_UNSENT_LIMITS). */
  unsent?: Partial<UnsentLimits>;
}

/** IncomingMessage with the URL the front computed for it. */
export class FrontRequest extends IncomingMessage {
  /** Absolute URL as the client used it (set by the front before routing). */
  absoluteUrl = '';
}

/** ServerResponse that carries the request's AbortController, so 'close' needs no closure. */
export class FrontResponse extends ServerResponse<FrontRequest> {
  abortController: AbortController | null = null;
}

type FrontServer = Server<typeof FrontRequest, typeof FrontResponse>;

/**
 * Creates (but does not start) an HTTP server that sends every request to
 * `runtime.fetch(options.worker(req), ...)`. Call `.listen()` on it.
 */
export function createHttpFront(runtime: RuntimeFetcher, options: HttpFrontOptions): FrontServer {
  const front = new HttpFront(runtime, options);
  const server: FrontServer = createServer<typeof FrontRequest, typeof FrontResponse>(
    // requireHostHeader off: the front checks Host itself (also for duplicates and bad values)
    // and answers every malformed request the same way.
    { ...options.server, requireHostHeader: false, IncomingMessage: FrontRequest, ServerResponse: FrontResponse },
    front.onRequest,
  );
  server.on('clientError', onClientError);
  const log = options.log ?? logToStderr;
  const limits = connectionLimits(options.connections, DATA_PLANE_CONNECTION_LIMITS);
  limitConnections(server, limits, (refused) => log(refusedEntry(refused, limits)));
  return server;
}

function refusedEntry({ reason, address, count }: RefusedConnections, limits: ConnectionLimits): FrontLogEntry {
  const message =
    reason === 'total'
      ? `connections refused: ${limits.maxConnections} are open, the most this listener takes (maxConnections)`
      : `connections refused: ${limits.maxConnectionsPerAddress} are open from one client address, the most it may have (maxConnectionsPerAddress)`;
  return { time: new Date().toISOString(), level: 'warn', type: 'http', message, address, refused: count };
}

// Connection-level headers belong to each hop, not to the worker: the front frames the
// response itself (RFC 9110 §7.6.1). content-length is handled apart, see writeResponse.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

// RFC 9110 §5.6.2 token: a field name that can go on the wire.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

// RFC 3986 host [ ":" port ]: a reg-name or IPv4 address, or an IP literal in brackets.
const VALID_HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]{1,5})?$/;

class HttpFront {
  readonly #runtime: RuntimeFetcher;
  readonly #route: (req: IncomingMessage, host: string) => string | undefined;
  readonly #log: (entry: FrontLogEntry) => void;
  readonly #unsent: UnsentBytes;

  constructor(runtime: RuntimeFetcher, options: HttpFrontOptions) {
    this.#runtime = runtime;
    this.#route = options.worker;
    this.#log = options.log ?? logToStderr;
    this.#unsent = new UnsentBytes(options.unsent);
  }

  // An arrow property: bound once per server, not per request.
  readonly onRequest = (req: FrontRequest, res: FrontResponse): void => {
    // One pass over the raw headers: pairs for the runtime, plus the few the front needs.
    const raw = req.rawHeaders;
    const headers: [string, string][] = new Array(raw.length >> 1);
    let host: string | undefined;
    let hosts = 0;
    // RFC 9112 §6.3: without content-length or transfer-encoding a request has no body.
    let body = false;
    for (let i = 0, j = 0; i < raw.length; i += 2, j++) {
      const name = raw[i]!;
      const value = raw[i + 1]!;
      headers[j] = [name, value];
      const length = name.length;
      if (length === 4) {
        if (name.toLowerCase() === 'host') {
          host = value;
          hosts++;
        }
      } else if (length === 14) {
        // Any declared length, 0 included, makes a body (an empty one for 0), as in workerd.
        if (name.toLowerCase() === 'content-length') body = true;
      } else if (length === 17) {
        if (name.toLowerCase() === 'transfer-encoding') body = true;
      }
    }

    // RFC 9112 §3.2: a request with no Host (HTTP/1.1), several, or an invalid one is a 400.
    // HTTP/1.0 may omit it; then the URL names the address the client connected to.
    if (host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor === 0) {
      host = localAuthority(req);
    }
    if (host === undefined || hosts > 1 || !VALID_HOST.test(host)) {
      return sendText(res, 400, 'bad Host header\n');
    }

    // The request target is origin-form ("/path?query") except from proxies, which send
    // absolute-form (RFC 9112 §3.2.2). Routing and the worker both see the Host header's
    // authority, so the two cannot disagree about which site was asked for.
    let path = req.url!;
    if (path.charCodeAt(0) !== 47 /* / */) {
      path = absoluteFormPath(path);
      if (path === '') return sendText(res, 400, 'bad request target\n');
    } else {
      // A fragment is never part of a request target (RFC 9112 §3.2); a client that sends one
      // anyway does not get it into request.url (nor does it in workerd).
      const hash = path.indexOf('#');
      if (hash !== -1) path = path.slice(0, hash);
    }
    req.absoluteUrl = 'http://' + host + path;

    let name: string | undefined;
    try {
      name = this.#route(req, host);
    } catch (error) {
      this.#fail(req, res, undefined, 'the worker router threw', error);
      return;
    }
    if (name === undefined) return sendText(res, 404, 'no worker is routed for this address\n');

    const controller = new AbortController();
    res.abortController = controller;
    res.on('close', onResponseClose);

    const method = req.method!;
    void this.#serve(req, res, name, {
      method,
      url: req.absoluteUrl,
      headers,
      // GET and HEAD bodies are not part of their meaning (RFC 9110 §9.3.1); Node discards them.
      body: body && method !== 'GET' && method !== 'HEAD' ? (req as AsyncIterable<Uint8Array>) : null,
      signal: controller.signal,
    });
  };

  async #serve(req: FrontRequest, res: FrontResponse, name: string, request: RuntimeRequest): Promise<void> {
    let response: RuntimeResponse;
    try {
      response = await this.#runtime.fetch(name, request);
    } catch (error) {
      if ((error as { code?: unknown } | null)?.code === 'ERR_UNKNOWN_WORKER') {
        // Routed to a worker that is gone (deleted between route lookup and fetch).
        return sendText(res, 404, 'no worker is routed for this address\n');
      }
      this.#fail(req, res, name, 'runtime.fetch rejected', error);
      return;
    }
    try {
      await writeResponse(req, res, response, name, this.#unsent);
    } catch (error) {
      this.#fail(req, res, name, 'could not write the response', error);
    }
  }

  #fail(req: FrontRequest, res: FrontResponse, worker: string | undefined, message: string, error: unknown): void {
    this.#log({
      time: new Date().toISOString(),
      level: 'error',
      type: 'http',
      message,
      worker,
      method: req.method,
      url: req.absoluteUrl,
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    });
    if (!res.headersSent && !res.destroyed) sendText(res, 500, 'internal error\n');
    else res.destroy(); // mid-body: cut the connection so the client cannot take a truncated body as whole
  }
}

async function writeResponse(req: FrontRequest, res: FrontResponse, response: RuntimeResponse, worker: string, unsent: UnsentBytes): Promise<void> {
  const { status, body } = response;
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw new RangeError(`worker response has status ${status}, outside 200-599`);
  }
  if (res.destroyed) {
    // The client is gone already; tell the producer to stop.
    if (body !== null && !(body instanceof Uint8Array)) void cancel(body);
    return;
  }

  const head = req.method === 'HEAD';
  const bodiless = head || status === 204 || status === 304;
  const flat: string[] = [];
  let declaredLength: string | undefined;
  for (const [name, value] of response.headers) {
    const lower = name.toLowerCase();
    if (lower === 'content-length') declaredLength = value;
    // A worker's Headers accept names that are no HTTP token (empty, or with non-ASCII bytes),
    // as in workerd; like workerd, the front leaves such fields out of the response.
    else if (!HOP_BY_HOP.has(lower) && TOKEN.test(name)) flat.push(name, value);
  }

  // Framing: a whole body gets its real length; a stream keeps the worker's declared length
  // (held to it by strictContentLength) or goes chunked; HEAD keeps what a GET would say.
  if (body instanceof Uint8Array) {
    if (!(status === 204 || status === 304)) flat.push('content-length', String(body.byteLength));
  } else if (body === null) {
    if (head && declaredLength !== undefined) flat.push('content-length', declaredLength);
    else if (!bodiless) flat.push('content-length', '0');
  } else if (declaredLength !== undefined && !(status === 204 || status === 304)) {
    flat.push('content-length', declaredLength);
    res.strictContentLength = true;
  }

  // The status text is the worker's, or workerd's reason phrase when it gave none (filled in by
  // the sandbox, src/api/response/reason-phrases.ts: an explicit '' stays empty, as in
  // workerd). It and the header names and values are byte strings (see HostResponse), which
  // Node writes as latin1, i.e. as the bytes they stand for.
  res.writeHead(status, response.statusText, flat);

  if (body === null) {
    res.end();
  } else if (body instanceof Uint8Array) {
    res.end(bodiless ? undefined : body);
  } else if (bodiless) {
    res.end();
    void cancel(body);
  } else {
    await pipeBody(res, body, worker, unsent);
  }
}

/**
 * Writes chunks as the worker makes them, waiting for 'drain' when the socket is full; a chunk
 * the socket did not take counts as unsent until then, and the next chunk is pulled only when
 * the unsent caps have room (unsent-bytes.ts).
 */
async function pipeBody(res: FrontResponse, body: AsyncIterable<Uint8Array>, worker: string, unsent: UnsentBytes): Promise<void> {
  for await (const chunk of body) {
    // Leaving the loop early (break/return) calls the iterator's return(): the worker's stream
    // is cancelled, which is what a client disconnect should do.
    if (res.destroyed) return;
    if (chunk.byteLength === 0) continue; // an empty chunk would end chunked encoding early
    if (!res.write(chunk)) {
      const bytes = chunk.byteLength;
      unsent.hold(worker, bytes);
      const open = await drained(res);
      unsent.release(worker, bytes);
      if (!open) return;
    }
    await unsent.room(worker);
  }
  if (!res.destroyed) res.end();
}

/** Resolves true on 'drain', false if the response closes first. */
function drained(res: FrontResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const onDrain = () => {
      res.off('close', onClose);
      resolve(true);
    };
    const onClose = () => {
      res.off('drain', onDrain);
      resolve(false);
    };
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

async function cancel(body: AsyncIterable<Uint8Array>): Promise<void> {
  try {
    await body[Symbol.asyncIterator]().return?.();
  } catch {
    // The producer's cleanup failing is not the client's problem.
  }
}

// 'close' fires both after a finished response and when the connection drops first; only the
// second is an abort (the worker's request.signal).
function onResponseClose(this: FrontResponse): void {
  const controller = this.abortController;
  this.abortController = null;
  if (controller !== null && !this.writableFinished) controller.abort();
}

function absoluteFormPath(target: string): string {
  if (!/^https?:\/\//i.test(target)) return '';
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return '';
  }
  return url.pathname + url.search;
}

function localAuthority(req: FrontRequest): string {
  const address = req.socket.localAddress ?? '127.0.0.1';
  const port = req.socket.localPort;
  const host = address.includes(':') ? `[${address}]` : address;
  return port === undefined ? host : `${host}:${port}`;
}

function sendText(res: FrontResponse, status: number, text: string): void {
  // The reason phrase is named: a writeHead that failed before (e.g. on a header value Node
  // refuses) may have left the worker's statusText on the response.
  res.writeHead(status, STATUS_CODES[status], {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    // After a malformed request, nothing more on this connection can be trusted.
    ...(status === 400 ? { connection: 'close' } : undefined),
  });
  res.end(text);
}

interface ClientError extends Error {
  code?: string;
}

// The parser rejected the bytes (bad request line, invalid header, header overflow, ...):
// answer plainly and close, the runtime never sees it. Node's own default is similar, but it
// sends no body and no content-type, which leaves people guessing.
function onClientError(error: ClientError, socket: Duplex): void {
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (error.code === 'ECONNRESET' || !socket.writable || (inFlight != null && inFlight.headersSent)) {
    socket.destroy();
    return;
  }
  const status =
    error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const text =
    status === 431 ? 'request headers too large\n' : status === 408 ? 'request timeout\n' : 'malformed request\n';
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
      'connection: close\r\ncontent-type: text/plain; charset=utf-8\r\n' +
      `content-length: ${text.length}\r\n\r\n${text}`,
  );
}

function logToStderr(entry: FrontLogEntry): void {
  process.stderr.write(JSON.stringify(entry) + '\n');
}
