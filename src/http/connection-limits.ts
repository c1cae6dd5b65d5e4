// How long and how many: the limits that keep an HTTP listener's connections (and so the
// process's file descriptors) from being held by clients that send slowly, read slowly or open
// many. Each listener has its own budget, so a flood of one (the data plane) cannot take the
// connections of another (the admin API).
//
// - A connection past the total cap is closed by Node as it is accepted (server.maxConnections:
//   no socket object, no parser), and one past its address's cap is destroyed in the first
//   'connection' listener: either way no file descriptor stays held.
// - A request head must arrive whole within headersTimeoutMs, and the whole request within
//   requestTimeoutMs (Node checks both every connectionsCheckingInterval); the client gets a 408.
// - A connection on which nothing moves for idleTimeoutMs is closed when the wait is the
//   client's: a body trickled or stalled, a response the client does not read, a connection
//   that sent nothing. A wait that is the server's (a worker still working on its answer, a
//   request body the worker has not read yet) is no reason: it is checked again one period on.
// - Between requests, a keep-alive connection is closed after keepAliveTimeoutMs.

import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  /** Most open connections on the listener (past it a new connection is closed as accepted). */
  maxConnections: number;
  /** Most open connections from one client address (an IPv6 client: its /64). */
  maxConnectionsPerAddress: number;
  /** Time a client has to send a whole request head, in ms (then 408 and close). */
  headersTimeoutMs: number;
  /** Time a client has to send a whole request, body included, in ms (then 408 and close). */
  requestTimeoutMs: number;
  /** Time a connection may go without a byte either way while the client is the one to act, in ms. */
  idleTimeoutMs: number;
  /** Time an idle keep-alive connection is kept between requests, in ms. */
  keepAliveTimeoutMs: number;
}

export const DATA_PLANE_CONNECTION_LIMITS: Readonly<ConnectionLimits> = Object.freeze({
  maxConnections: 10_000,
  maxConnectionsPerAddress: 256,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  idleTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
});

export const ADMIN_CONNECTION_LIMITS: Readonly<ConnectionLimits> = Object.freeze({
  maxConnections: 256,
  maxConnectionsPerAddress: 64,
  headersTimeoutMs: 10_000,
  // Deployments upload code (10 MiB by default).
  requestTimeoutMs: 120_000,
  idleTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
});

/** Why a connection was closed at once; reported (aggregated) through `onRefused`. */
export type Refusal = 'per-address' | 'total';

export interface RefusedConnections {
  reason: Refusal;
  /** The client address (its /64 for IPv6) of the last refusal. */
  address: string;
  /** Connections refused for this reason since the last report. */
  count: number;
}

/** Fills in defaults and checks the values; a bad one is a TypeError naming the option. */
export function connectionLimits(
  given: Partial<ConnectionLimits> | undefined,
  defaults: Readonly<ConnectionLimits>,
  option = 'connections',
): ConnectionLimits {
  const limits = { ...defaults };
  for (const key of Object.keys(defaults) as (keyof ConnectionLimits)[]) {
    const value = given?.[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw new TypeError(`${option}.${key} must be a whole number of at least 1, not ${JSON.stringify(value)}.`);
    }
    limits[key] = value;
  }
  // Node refuses a headers timeout longer than the request timeout.
  if (limits.requestTimeoutMs < limits.headersTimeoutMs) limits.requestTimeoutMs = limits.headersTimeoutMs;
  if (limits.maxConnectionsPerAddress > limits.maxConnections) limits.maxConnectionsPerAddress = limits.maxConnections;
  return limits;
}

/** How often refusals are reported at most: a flood makes one log line per period, not one per connection. */
const REPORT_EVERY_MS = 10_000;

/**
 * Applies `limits` to an HTTP server that is not listening yet. `onRefused` hears of
 * connections closed at accept, at most once per reason every 10 s (the first at once).
 */
export function limitConnections<Req extends typeof IncomingMessage, Res extends typeof ServerResponse<InstanceType<Req>>>(
  server: HttpServer<Req, Res> & { connectionsCheckingInterval?: number },
  limits: ConnectionLimits,
  onRefused: (refused: RefusedConnections) => void = () => {},
): void {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  // Node checks the two timeouts above on this interval (default 30 s, which would let a
  // 10 s headers timeout run to 40 s). Read when the server starts listening.
  server.connectionsCheckingInterval = Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4)));
  server.maxConnections = limits.maxConnections;
  server.timeout = limits.idleTimeoutMs;
  server.on('timeout', onIdle);

  const reports = { 'per-address': new Report(), total: new Report() };
  const report = (reason: Refusal, address: string) => {
    const r = reports[reason];
    r.count++;
    r.address = address;
    const now = Date.now();
    if (now - r.last < REPORT_EVERY_MS) return;
    r.last = now;
    onRefused({ reason, address, count: r.count });
    r.count = 0;
  };
  server.on('drop', (data?: { remoteAddress?: string }) => report('total', clientKey(data?.remoteAddress)));

  const open = new Map<string, number>();
  // Before Node's own listener, so a refused connection is gone before anything is made for it.
  server.prependListener('connection', (socket: Socket) => {
    const key = clientKey(socket.remoteAddress);
    const count = (open.get(key) ?? 0) + 1;
    if (count > limits.maxConnectionsPerAddress) {
      socket.destroy();
      report('per-address', key);
      return;
    }
    open.set(key, count);
    socket.once('close', () => {
      const left = open.get(key)! - 1;
      if (left === 0) open.delete(key);
      else open.set(key, left);
    });
  });
}

class Report {
  last = -Infinity;
  count = 0;
  address = '';
}

// Node's own pieces of a server connection, which the idle check reads.
interface ServerSocket extends Socket {
  _httpMessage?: { req?: { complete: boolean; readableLength: number }; writableLength: number } | null;
}

// Called by Node when the socket has been idle for `server.timeout` (or a keep-alive
// connection for keepAliveTimeout). With a 'timeout' listener Node leaves the decision here.
function onIdle(socket: ServerSocket): void {
  const res = socket._httpMessage;
  const req = res?.req;
  if (res == null || req == null) return void socket.destroy(); // between requests, or a head that stalled
  // The server's turn: the request is in (or its unread part waits on our side) and nothing of
  // the response waits for the client to read it. The worker's own limits bound its work.
  const clientIsDone = req.complete || req.readableLength > 0;
  const clientIsReading = socket.writableLength === 0 && res.writableLength === 0;
  if (clientIsDone && clientIsReading) {
    socket.setTimeout(socket.timeout ?? 0); // look again one period on
    return;
  }
  socket.destroy();
}

/** The budget a connection counts against: its IPv4 address, or its IPv6 address's /64. */
export function clientKey(address: string | undefined): string {
  if (address === undefined) return '';
  if (!address.includes(':')) return address;
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:') && lower.includes('.')) return lower.slice(7);
  const [head = '', tail] = lower.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':') + '::/64';
}
