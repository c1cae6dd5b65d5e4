// The host half of fetch(): the sandbox (sandbox.ts) builds the Request with its own Request
// class and hands its head here; the host makes the HTTP request, follows redirects itself,
// and hands back the response head. Bodies stream both ways, one chunk per crossing:
//   fetch.start(id, method, url, headers, body, redirect) -> the response head
//   fetch.write(id, chunk | null)   the request body, when it is a stream: resolves when the
//                                   socket took the chunk (backpressure), null ends the body
//   fetch.read(id) -> chunk | null  the response body, pulled as the worker reads it
//   fetch.cancel(id)                (sync) the worker gave up: the connection is destroyed
//
// Why node:http(s) and not undici's fetch: the egress policy must check the address a name
// resolves to and connect to exactly that address (DNS rebinding), on every redirect hop.
// node:http takes a `lookup` function per request, which pins the vetted address without a
// custom dispatcher (undici is not a dependency here, and Node's bundled copy exposes no Agent).
// Redirects have to be followed here anyway, hop by hop, to vet each one; and node:http gives
// the raw header bytes, which is the sandbox's header convention. Bodies flow with the
// streams' own backpressure: nothing is buffered whole.
//
// Arguments come from code a tenant can reach: each is checked here before Node sees it.

import { request as httpRequest, type Agent as HttpAgent, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { AsyncOp, OpContext, OperationTable, SyncOp } from '../../runtime/host-ops.ts';
import { MAX_CALL_BYTES, type FetchHead } from '../../bridge/operations.ts';
import { MAX_HEAD_BYTES } from '../../bridge/protocol.ts';
import { reserveCarried, takeCarried } from '../../runtime/carried-bytes.ts';
import { OpError } from '../../runtime/host-ops.ts';
import { ConnectionSlots, type Slot } from './connection-slots.ts';
import { EgressPolicy, EgressRefused, type EgressTarget } from './egress-policy.ts';
import { countSubrequest, ServiceFetch } from '../service/host.ts';

/** Fetch §4.4 HTTP-redirect fetch, step 5: more than 20 redirects is a network error. */
const MAX_REDIRECTS = 20;
const MAX_URL = 16 * 1024;
/** A whole body (string or bytes) in fetch.start: the isolate's memory bounds it anyway. */
const MAX_WHOLE_BODY = 128 * 1024 * 1024;
const MAX_WRITE_CHUNK = 16 * 1024 * 1024;
/** Outbound fetches open at once in one isolate (each request is held to limits.subrequests). */
const MAX_OPEN_PER_ISOLATE = 1000;

/** Request headers that belong to the connection, not to the worker (RFC 9110 §7.6.1), and framing. */
const HOP_BY_HOP = new Set([
  'host', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length',
]);

const isRedirectStatus = (s: number): boolean => s === 301 || s === 302 || s === 303 || s === 307 || s === 308;

let defaultPolicy: EgressPolicy | undefined;

// Connections are pooled (keep-alive), per Runtime (per policy) and per account (see
// connection-slots.ts: each account has its own pools and its own budget of connections in
// use), and a pooled connection is only reused for the same vetted addresses. A connection goes
// back to the pool only after a request and response that were complete (a cancelled or failed
// exchange destroys it), and a request body is held to its declared length
// (strictContentLength), so nothing of one exchange can leak into the next on the same connection.
interface PinnedOptions { pinned?: string }
const slotsByPolicy = new WeakMap<EgressPolicy, ConnectionSlots>();
/** Closes a Runtime's pooled connections (Runtime.close()). */
export function closeFetchConnections(policy: EgressPolicy): void {
  slotsByPolicy.get(policy)?.close();
  slotsByPolicy.delete(policy);
}

/** The connection budgets and pools of a policy's fetches (exported for tests). */
export function connectionSlots(policy: EgressPolicy): ConnectionSlots {
  let slots = slotsByPolicy.get(policy);
  if (!slots) {
    slots = new ConnectionSlots(policy.limits);
    slotsByPolicy.set(policy, slots);
  }
  return slots;
}


type RequestBody =
  | { kind: 'none' }
  | { kind: 'whole'; bytes: Buffer }
  | { kind: 'stream'; length: number | null }
  /** Whole, carried by the call past one call's bound (src/runtime/carried-bytes.ts): taken before the request goes. */
  | { kind: 'carried'; length: number };

/** A body as it is sent: a carried one has been taken by then. */
type SendableBody = Exclude<RequestBody, { kind: 'carried' }>;

/** One outbound fetch of an isolate. */
interface Outbound {
  id: number;
  controller: AbortController;
  /** The current hop's request, once it exists (the streamed body is written to it). */
  request: ClientRequest | undefined;
  /** Resolves with the first hop's request: a streamed body waits for it. */
  requestReady: Promise<ClientRequest | null>;
  resolveRequest: (req: ClientRequest | null) => void;
  /** The streamed body went to a hop that is over (a redirect to GET): further writes are dropped. */
  bodyDiscarded: boolean;
  response: IncomingMessage | undefined;
  reader: AsyncIterator<Uint8Array> | undefined;
  /** Set when the fetch went through a service binding to another worker instead of the network. */
  service: ServiceFetch | undefined;
  reading: boolean;
  detach: () => void;
  /** The connection budget this fetch holds (the current hop's destination). */
  slot: Slot | undefined;
  /** Set while the fetch waits for its account to have a connection free. */
  waitingForSlot: boolean;
  /** Why the fetch was ended by the host (a deadline), reported to whoever asks next. */
  failure: OpError | undefined;
  /** The deadlines for the response head and for the whole exchange. */
  timers: NodeJS.Timeout[];
}

interface FetchScope {
  open: Map<number, Outbound>;
  /**
   * Ids cancelled before their fetch.start ran: async ops are queued, sync ones are not, so an
   * abort right after fetch() reaches the host first. Bounded: a sandbox cannot grow it.
   */
  cancelledEarly: Set<number>;
  /** Fetches the host ended (a deadline), by id, so that a later read says why. Bounded. */
  failed: Map<number, OpError>;
}
const MAX_CANCELLED_EARLY = 1000;
const MAX_FAILED = 1000;

function fetchScope(ctx: OpContext): FetchScope {
  let scope = ctx.scope.get('fetch') as FetchScope | undefined;
  if (!scope) {
    scope = { open: new Map(), cancelledEarly: new Set(), failed: new Map() };
    ctx.scope.set('fetch', scope);
  }
  return scope;
}

function typeError(message: string): OpError {
  return new OpError('TypeError', message);
}

/**
 * A failure of the network (refused, reset, DNS, TLS): workerd reports these as a plain Error
 * ("Network connection lost."), not the Fetch spec's TypeError; isolet follows workerd, with the
 * cause added to the message.
 */
function networkError(message: string): OpError {
  return new OpError('Error', `Network connection lost. (${message})`);
}

function fetchId(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) throw typeError('fetch: invalid id');
  return value;
}

function parseHeaders(value: unknown): [string, string][] {
  if (!Array.isArray(value) || value.length % 2 !== 0) throw typeError('fetch: invalid headers');
  const pairs: [string, string][] = [];
  let bytes = 0;
  for (let i = 0; i < value.length; i += 2) {
    const name = value[i];
    const v = value[i + 1];
    if (typeof name !== 'string' || typeof v !== 'string') throw typeError('fetch: invalid headers');
    bytes += name.length + v.length;
    if (bytes > MAX_HEAD_BYTES) throw typeError(`fetch: the request headers are over ${MAX_HEAD_BYTES / 1024} KB in total.`);
    // Byte strings (one char per byte); CR, LF and NUL would split the head.
    if (/[^\x00-\xff]|[\r\n\0]/.test(name + v)) throw typeError(`fetch: invalid header ${JSON.stringify(name)}`);
    pairs.push([name.toLowerCase(), v]);
  }
  return pairs;
}

function parseBody(value: unknown, method: string): RequestBody {
  if (value === null || value === undefined) return { kind: 'none' };
  if (method === 'GET' || method === 'HEAD') throw typeError('Request with a GET or HEAD method cannot have a body.');
  if (typeof value === 'string') {
    if (value.length > MAX_WHOLE_BODY) throw typeError('fetch: the request body is too large');
    return { kind: 'whole', bytes: Buffer.from(value, 'utf8') };
  }
  if (value instanceof ArrayBuffer) {
    if (value.byteLength > MAX_WHOLE_BODY) throw typeError('fetch: the request body is too large');
    return { kind: 'whole', bytes: Buffer.from(value) };
  }
  if (typeof value === 'object' && typeof (value as { carried?: unknown }).carried === 'number') {
    const length = (value as { carried: number }).carried;
    if (!Number.isSafeInteger(length) || length <= MAX_CALL_BYTES) throw typeError('fetch: invalid body');
    if (length > MAX_WHOLE_BODY) throw typeError('fetch: the request body is too large');
    return { kind: 'carried', length };
  }
  if (typeof value === 'object' && (value as { stream?: unknown }).stream === true) {
    const length = (value as { length?: unknown }).length;
    if (length === null || length === undefined) return { kind: 'stream', length: null };
    if (typeof length === 'number' && Number.isSafeInteger(length) && length >= 0) return { kind: 'stream', length };
  }
  throw typeError('fetch: invalid body');
}

/** Fetch: only http: and https: are fetched over the network (workerd's message). */
function checkScheme(url: URL): void {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw typeError(`Fetch API cannot load: ${url.href}`);
  }
}

/**
 * A lookup that answers with the vetted addresses, whatever the name resolves to now. All of
 * them (each was vetted), so that Node's Happy Eyeballs can fall back from an unreachable IPv6
 * address to IPv4 as it would with its own lookup.
 */
function pinnedLookup(target: EgressTarget): LookupFunction {
  return ((_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options?.all) callback(null, target.addresses.map((a) => ({ address: a.address, family: a.family })));
    else callback(null, target.address, target.family);
  }) as LookupFunction;
}

function destroyed(outbound: Outbound): boolean {
  return outbound.controller.signal.aborted;
}

/**
 * Forgets a fetch. `complete`: its response was read to the end, so its connection is left to
 * the pool; otherwise (cancelled, failed) everything it has open is destroyed.
 */
function closeOutbound(scope: FetchScope, outbound: Outbound, reason: string, complete = false): void {
  scope.open.delete(outbound.id);
  outbound.detach();
  outbound.resolveRequest(null);
  outbound.service?.close();
  for (const timer of outbound.timers) clearTimeout(timer);
  // A response can end before its request body is all sent (the server answered early): then
  // the exchange is not complete, and the connection cannot go back to the pool.
  if (!(complete && (outbound.request?.writableEnded ?? true))) {
    if (!outbound.controller.signal.aborted) outbound.controller.abort(new Error(reason));
    outbound.request?.destroy();
    outbound.response?.destroy();
  }
  // After the destroy: the connection is gone (or back in the pool) before a waiter takes the slot.
  outbound.slot?.release();
  outbound.slot = undefined;
}

/** Ends a fetch on a deadline: its connection is destroyed and its slot released; `error` is what the worker sees. */
function failOutbound(scope: FetchScope, outbound: Outbound, error: OpError): void {
  if (!scope.open.has(outbound.id)) return;
  outbound.failure = error;
  if (scope.failed.size >= MAX_FAILED) scope.failed.delete(scope.failed.keys().next().value!);
  scope.failed.set(outbound.id, error);
  closeOutbound(scope, outbound, error.message);
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/** Waits for `promise`, or rejects when `signal` aborts first (a DNS lookup cannot be cancelled, only left). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Sends one hop and resolves with its response head. A pooled connection the server closed
 * while idle fails at once with a reset: the request is sent again, once, on a new one, when
 * its body can be sent again (none or whole; a stream may be partly gone).
 */
async function sendHop(
  outbound: Outbound,
  url: URL,
  target: EgressTarget,
  method: string,
  headers: [string, string][],
  body: SendableBody,
  agent: HttpAgent,
): Promise<IncomingMessage> {
  try {
    return await sendOnce(outbound, url, target, method, headers, body, agent);
  } catch (error) {
    if (!(error instanceof StaleConnection)) throw error;
    return sendOnce(outbound, url, target, method, headers, body, agent, true);
  }
}

class StaleConnection extends Error {}

function sendOnce(
  outbound: Outbound,
  url: URL,
  target: EgressTarget,
  method: string,
  headers: [string, string][],
  body: SendableBody,
  agent: HttpAgent,
  retried = false,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const https = url.protocol === 'https:';
    // Node sends an array of headers as it is, without adding Host: the URL's host is it.
    const flat: string[] = ['host', url.host];
    for (const [name, value] of headers) flat.push(name, value);
    if (body.kind === 'whole') flat.push('content-length', String(body.bytes.byteLength));
    else if (body.kind === 'stream' && body.length !== null) flat.push('content-length', String(body.length));
    // As workerd: a POST, PUT or PATCH without a body says Content-Length: 0 (Node would go chunked).
    else if (body.kind === 'none' && (method === 'POST' || method === 'PUT' || method === 'PATCH')) flat.push('content-length', '0');
    const options: RequestOptions & PinnedOptions & { servername?: string } = {
      method,
      hostname: target.hostname,
      port: url.port === '' ? (https ? 443 : 80) : Number(url.port),
      path: url.pathname + url.search,
      headers: flat as unknown as RequestOptions['headers'],
      lookup: pinnedLookup(target),
      agent,
      pinned: target.addresses.map((a) => a.address).join(','),
      signal: outbound.controller.signal,
    };
    if (https && isIP(target.hostname) === 0) options.servername = target.hostname;
    let req: ClientRequest;
    try {
      req = (https ? httpsRequest : httpRequest)(options);
    } catch (error) {
      reject(typeError(`fetch failed: ${(error as Error).message}`));
      return;
    }
    outbound.request = req;
    // A body shorter or longer than its Content-Length is an error, never a desynchronized connection.
    (req as ClientRequest & { strictContentLength: boolean }).strictContentLength = true;
    req.once('response', resolve);
    // `on`, not `once`: a second error (an abort after a reset) must not go unhandled.
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (destroyed(outbound)) reject(typeError('The fetch was cancelled.'));
      else if (!retried && req.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE') && body.kind !== 'stream') reject(new StaleConnection());
      else reject(networkError(networkMessage(url, error)));
    });
    if (body.kind === 'whole') req.end(body.bytes);
    else if (body.kind === 'none') req.end();
    else outbound.resolveRequest(req);
  });
}

function networkMessage(url: URL, error: NodeJS.ErrnoException): string {
  const code = error.code ?? '';
  if (code === 'ECONNREFUSED') return `fetch to ${url.host} failed: connection refused`;
  if (code === 'ECONNRESET' || code === 'EPIPE') return `fetch to ${url.host}: the connection was reset`;
  if (code === 'ETIMEDOUT') return `fetch to ${url.host} failed: connection timed out`;
  if (code.startsWith('ERR_TLS') || code.includes('CERT') || code === 'DEPTH_ZERO_SELF_SIGNED_CERT') {
    return `fetch to ${url.host} failed: TLS: ${error.message}`;
  }
  return `fetch to ${url.host} failed: ${code || error.message}`;
}

/** Fetch §4.1 main fetch + §4.4 HTTP-redirect fetch, over node:http, each hop vetted. */
/** fetch.start, with a carried body's bytes counted until the fetch has its head or fails (reserveCarried). */
function start(ctx: OpContext, args: unknown[]): Promise<FetchHead> {
  const hold = { release: () => {} };
  return startFetch(ctx, args, hold).finally(() => hold.release());
}

async function startFetch(ctx: OpContext, args: unknown[], hold: { release: () => void }): Promise<FetchHead> {
  const [idArg, methodArg, urlArg, headersArg, bodyArg, redirectArg, serviceArg] = args;
  const id = fetchId(idArg);
  const request = ctx.request;
  if (!request || request.signal.aborted) throw typeError('fetch() cannot be used once its request has ended.');
  countSubrequest(ctx, request);
  if (typeof methodArg !== 'string' || !/^[A-Z-]{1,32}$/.test(methodArg)) throw typeError('fetch: invalid method');
  if (typeof urlArg !== 'string' || urlArg.length > MAX_URL) throw typeError('fetch: invalid URL');
  if (redirectArg !== 'follow' && redirectArg !== 'manual' && redirectArg !== 'error') throw typeError('fetch: invalid redirect mode');
  let url: URL;
  try {
    url = new URL(urlArg);
  } catch {
    throw typeError(`Invalid URL: ${urlArg}`);
  }
  checkScheme(url);
  let method = methodArg;
  let headers = parseHeaders(headersArg).filter(([name]) => !HOP_BY_HOP.has(name));
  const parsed = parseBody(bodyArg, method);
  let body: SendableBody;
  if (parsed.kind === 'carried') {
    hold.release = reserveCarried(ctx, parsed.length, () => typeError(`fetch: this worker's fetches waiting to send already hold ${ctx.limits.memoryMb} MB of request bodies, its memory limit: await some before starting more.`));
    const bytes = await takeCarried(ctx, parsed.length, () => typeError('fetch: the request body did not reach the host whole.'));
    body = { kind: 'whole', bytes: Buffer.from(bytes.buffer) };
  } else {
    body = parsed;
  }

  const scope = fetchScope(ctx);
  if (scope.cancelledEarly.delete(id)) throw typeError('The fetch was cancelled.');
  if (scope.open.has(id)) throw typeError('fetch: id in use');
  if (scope.open.size >= MAX_OPEN_PER_ISOLATE) throw typeError('fetch: too many fetches open at once');
  let resolveRequest!: (req: ClientRequest | null) => void;
  const requestReady = new Promise<ClientRequest | null>((resolve) => (resolveRequest = resolve));
  const onRequestEnd = () => closeOutbound(scope, outbound, 'The request that made this fetch has ended.');
  const outbound: Outbound = {
    id, controller: new AbortController(), request: undefined, requestReady, resolveRequest,
    bodyDiscarded: false, response: undefined, reader: undefined, service: undefined, reading: false,
    detach: () => request.signal.removeEventListener('abort', onRequestEnd),
    slot: undefined, waitingForSlot: false, failure: undefined, timers: [],
  };
  // The request's end (client gone, work over) cancels its outbound fetches.
  request.signal.addEventListener('abort', onRequestEnd, { once: true });
  scope.open.set(id, outbound);

  if (serviceArg !== null && serviceArg !== undefined) {
    // To another worker, without the network: no egress policy, connection or redirect applies.
    try {
      const exchange = new ServiceFetch(ctx, serviceArg, { method, url: url.href, headers, body }, outbound.controller.signal);
      outbound.service = exchange;
      const head = await exchange.head();
      if (destroyed(outbound)) throw typeError('The fetch was cancelled.');
      outbound.reader = exchange.reader;
      if (!head.hasBody) closeOutbound(scope, outbound, 'done', true);
      return head;
    } catch (error) {
      const cancelled = destroyed(outbound);
      closeOutbound(scope, outbound, 'failed');
      if (cancelled) throw typeError('The fetch was cancelled.');
      throw error;
    }
  }

  const policy = ctx.egress ?? (defaultPolicy ??= new EgressPolicy());
  const limits = policy.limits;
  const slots = connectionSlots(policy);
  // Wall-clock deadlines: a destination that never answers, or answers forever, holds neither
  // a connection nor the account's budget past them.
  const headTimer = setTimeout(() => failOutbound(scope, outbound, headTimeout(ctx, url, outbound, limits, slots)), limits.headersTimeoutMs);
  const totalTimer = setTimeout(() => failOutbound(scope, outbound, new OpError(
    'TimeoutError',
    `fetch to ${url.host} took longer than ${seconds(limits.timeoutMs)}, the most an outbound request may take ` +
      'with its response body: the connection was closed. Read the body sooner, or fetch less at once.',
  )), limits.timeoutMs);
  headTimer.unref();
  totalTimer.unref();
  outbound.timers.push(headTimer, totalTimer);
  // Until its response head (or its failure), redirects included.
  const span = request.trace?.subrequest(method, url.href);

  try {
    let redirects = 0;
    for (;;) {
      let target;
      try {
        target = await untilAborted(policy.resolve(url.hostname), outbound.controller.signal);
      } catch (error) {
        if (destroyed(outbound)) throw typeError('The fetch was cancelled.');
        if (error instanceof EgressRefused) throw typeError(error.message);
        throw networkError((error as Error).message);
      }
      if (destroyed(outbound)) throw typeError('The fetch was cancelled.');
      const https = url.protocol === 'https:';
      // One slot per destination: the hops of a redirect to the same place keep theirs.
      const destination = `${url.protocol}//${target.hostname}:${url.port}|${target.addresses.map((a) => a.address).join(',')}`;
      if (outbound.slot?.destination !== destination) {
        outbound.slot?.release();
        outbound.slot = undefined;
        outbound.waitingForSlot = true;
        let slot: Slot;
        try {
          slot = await slots.acquire(ctx.account, destination, outbound.controller.signal, ctx.request?.id);
        } catch {
          throw typeError('The fetch was cancelled.');
        } finally {
          outbound.waitingForSlot = false;
        }
        if (destroyed(outbound)) {
          slot.release();
          throw typeError('The fetch was cancelled.');
        }
        outbound.slot = slot;
      }
      const agents = slots.agents(ctx.account);
      const response = await sendHop(outbound, url, target, method, headers, body, https ? agents.https : agents.http);
      // Its errors reach the reader through the iterator; none may go unhandled in between.
      response.on('error', () => {});
      const status = response.statusCode ?? 0;
      const location = response.headers.location;
      if (!isRedirectStatus(status) || redirectArg === 'manual' || location === undefined) {
        clearTimeout(headTimer);
        outbound.response = response;
        const hasBody = method !== 'HEAD' && status !== 204 && status !== 205 && status !== 304;
        if (hasBody) {
          outbound.reader = response[Symbol.asyncIterator]();
          markIdle(scope, outbound);
        }
        else {
          response.resume();
          response.once('end', () => closeOutbound(scope, outbound, 'done', true));
        }
        span?.end(status);
        return {
          status,
          statusText: response.statusMessage ?? '',
          headers: response.rawHeaders,
          url: url.href,
          redirected: redirects > 0,
          hasBody,
        };
      }
      // A redirect to follow (or refuse): this hop is over. A small body is read off, so the
      // connection can serve the next hop; anything else closes it.
      const length = Number(response.headers['content-length'] ?? NaN);
      if (length >= 0 && length <= 64 * 1024) response.resume();
      else response.destroy();
      if (redirectArg === 'error') throw typeError(`fetch to ${url.href} was redirected (${status}) and the redirect mode is 'error'.`);
      if (++redirects > MAX_REDIRECTS) throw typeError(`Too many redirects: fetch to ${url.href} was redirected more than ${MAX_REDIRECTS} times.`);
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw typeError(`Invalid Location header; unable to follow redirect (${JSON.stringify(location)} from ${url.href}).`);
      }
      checkScheme(next);
      // §4.4 step 12: 301/302 of a POST, and 303 of anything but HEAD, become a GET without a
      // body. The request's headers stay as they are, Content-Type included, as in workerd (Fetch
      // would drop the request-body headers; a GET with a Content-Type harms nobody).
      if (((status === 301 || status === 302) && method === 'POST') || (status === 303 && method !== 'GET' && method !== 'HEAD')) {
        method = 'GET';
        if (body.kind === 'stream') outbound.bodyDiscarded = true;
        body = { kind: 'none' };
      } else if (body.kind === 'stream') {
        // §4.4 step 11: the body is sent again, which only a body known whole can be (workerd's message).
        throw typeError(
          'A request with a one-time-use body (it was initialized from a stream, not a buffer) encountered a redirect ' +
            'requiring the body to be retransmitted. To avoid this error in the future, construct this request from a buffer-like body initializer.',
        );
      }
      // §4.4 step 13: Authorization does not follow to another origin (Cookie does, as in workerd:
      // there is no cookie jar here, a worker's Cookie header is its own).
      if (next.origin !== url.origin) headers = headers.filter(([name]) => name !== 'authorization');
      url = next;
    }
  } catch (error) {
    closeOutbound(scope, outbound, 'failed');
    const failure = outbound.failure ?? error;
    span?.end(undefined, (failure as Error).message);
    throw failure;
  }
}

function headTimeout(ctx: OpContext, url: URL, outbound: Outbound, limits: EgressPolicy['limits'], slots: ConnectionSlots): OpError {
  const after = `fetch to ${url.host} timed out after ${seconds(limits.headersTimeoutMs)}`;
  if (outbound.waitingForSlot) {
    return new OpError(
      'TimeoutError',
      `${after} waiting for a free connection: this account has ${slots.inUse(ctx.account)} outbound connections in use ` +
        `(at most ${limits.connectionsPerAccount}, and ${limits.connectionsPerDestination} to one destination). ` +
        'A response holds its connection until its body is read or cancelled: read or cancel the bodies you do not need (response.body.cancel()).',
    );
  }
  return new OpError('TimeoutError', `${after} without a response (the most an outbound request may wait for its response head).`);
}

/** The next piece of a streamed request body (null: its end). Resolves when the socket took it. */
async function write(ctx: OpContext, args: unknown[]): Promise<boolean> {
  const outbound = fetchScope(ctx).open.get(fetchId(args[0]));
  const chunk = args[1];
  if (!(chunk === null || (chunk instanceof ArrayBuffer && chunk.byteLength <= MAX_WRITE_CHUNK))) throw typeError('fetch: invalid body chunk');
  // The fetch is over, or its body is no longer wanted (a redirect made it a GET): say so,
  // and the sandbox stops reading the worker's stream.
  if (!outbound || outbound.bodyDiscarded) return false;
  if (outbound.service !== undefined) return outbound.service.write(chunk);
  const req = await outbound.requestReady;
  if (!req || req.destroyed || outbound.bodyDiscarded) return false;
  if (chunk === null) {
    req.end();
    return true;
  }
  if (req.write(Buffer.from(chunk))) return true;
  await new Promise<void>((resolve) => {
    const done = () => {
      req.off('drain', done);
      req.off('close', done);
      resolve();
    };
    req.on('drain', done);
    req.on('close', done);
  });
  return !req.destroyed;
}

/** The next chunk of the response body, or null at its end. */
async function read(ctx: OpContext, args: unknown[]): Promise<ArrayBuffer | null> {
  const scope = fetchScope(ctx);
  const id = fetchId(args[0]);
  const outbound = scope.open.get(id);
  if (!outbound || !outbound.reader) throw scope.failed.get(id) ?? typeError('This fetch\'s response body is closed.');
  if (outbound.reading) throw typeError('This fetch\'s response body is already being read.');
  outbound.reading = true;
  outbound.slot?.idle(undefined);
  let next: IteratorResult<Uint8Array>;
  try {
    next = await outbound.reader.next();
  } catch (error) {
    const cancelled = destroyed(outbound);
    closeOutbound(scope, outbound, 'failed');
    if (outbound.failure) throw outbound.failure;
    if (cancelled) throw typeError('The fetch was cancelled.');
    throw networkError(`the response body was cut off: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  } finally {
    outbound.reading = false;
  }
  if (next.done) {
    closeOutbound(scope, outbound, 'done', true);
    return null;
  }
  markIdle(scope, outbound);
  const view = next.value;
  // Exactly the chunk's bytes: a Buffer may be a window on a larger allocation.
  return view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength) as ArrayBuffer;
}

/**
 * The response waits on the worker to read it: if the worker then waits for a connection this
 * one holds, it is cancelled (workerd's rule against a worker deadlocked on its own unread
 * responses), and a later read says why.
 */
function markIdle(scope: FetchScope, outbound: Outbound): void {
  outbound.slot?.idle(() => failOutbound(scope, outbound, typeError(
    'This response was cancelled because the worker started another fetch() while it held the most connections it may have open ' +
      'and did not read this one. Read or cancel (`response.body.cancel()`) response bodies you do not need.',
  )));
}

const cancel: SyncOp = (ctx, args) => {
  const scope = fetchScope(ctx);
  const id = fetchId(args[0]);
  const outbound = scope.open.get(id);
  if (outbound) closeOutbound(scope, outbound, 'cancelled');
  else {
    if (scope.cancelledEarly.size >= MAX_CANCELLED_EARLY) scope.cancelledEarly.delete(scope.cancelledEarly.values().next().value!);
    scope.cancelledEarly.add(id);
  }
  return undefined;
};

export const fetchAsyncOps = {
  'fetch.start': start,
  'fetch.write': write,
  'fetch.read': read,
} satisfies Partial<OperationTable>;

export const fetchSyncOps = {
  'fetch.cancel': cancel,
} satisfies Partial<OperationTable>;
