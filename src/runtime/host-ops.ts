// The host's implementation of the operations declared in src/bridge/operations.ts, which the
// sandbox calls with callSync/callAsync (src/sandbox/host-calls.ts). Each Web API keeps its
// host half next to its sandbox half (src/api/<name>/host.ts); this table joins them, and the
// type checker holds it to the declaration: every operation, each with its declared result.
// Operations receive their arguments as copies made by isolated-vm and must validate every one
// of them: they come from code a tenant can reach.

import { webcrypto } from 'node:crypto';
import type { RpcValue } from './rpc-value.ts';
import type { RequestTrace, ServiceHost, WorkerLimits } from './types.ts';
import { urlHostOps } from '../api/url/host.ts';
import { cryptoAsyncOps, cryptoSyncOps } from '../api/crypto/host.ts';
import { encodingSyncOps } from '../api/encoding/host.ts';
import { memorySyncOps } from '../api/memory/host.ts';
import { fetchAsyncOps, fetchSyncOps } from '../api/fetch/host.ts';
import { bindingAsyncOps, type WorkerBindings } from '../api/bindings/host.ts';
import { serviceAsyncOps } from '../api/service/host.ts';
import type { EgressPolicy } from '../api/fetch/egress-policy.ts';
import type { OperationName, OperationResult, Operations } from '../bridge/operations.ts';

/** What an operation knows about who is calling. */
export interface OpContext {
  /** The worker's name. */
  readonly worker: string;
  /** Who owns the worker (WorkerDefinition.account, or the worker's own name without one). */
  readonly account: string;
  readonly limits: WorkerLimits;
  /** The request the call belongs to, when it belongs to one in flight. */
  readonly request: OpRequest | undefined;
  /**
   * A request of this isolate still in flight, by the id the host gave it: a body is read
   * through its own request, whichever request's code reads it. Never another isolate's.
   */
  requestById(id: number): OpRequest | undefined;
  /**
   * State an API keeps per isolate (e.g. the keys crypto.subtle made), by API name. Dropped
   * with the isolate, so nothing of one isolate is reachable from another.
   */
  readonly scope: Map<string, unknown>;
  /** Where the worker's fetch() may connect (RuntimeOptions.egress); the default policy when absent. */
  readonly egress?: EgressPolicy;
  /** What the worker's definition binds, checked at load, and who answers platform bindings; absent: nothing. */
  readonly bindings?: WorkerBindings;
  /** Where the worker's service-binding calls go (RuntimeOptions.serviceHost, or the Runtime's own workers). */
  readonly services?: ServiceHost;
  /**
   * Charges CPU the host spent on this worker's behalf (key generation, compression, ...) to
   * the request the call belongs to, under the same limit as the isolate's own CPU; a request
   * over it is stopped like any other.
   */
  chargeCpu(ns: number): void;
  /**
   * The next piece of the large value this async call carries, taken out of the isolate at
   * the platform's cost (the `takePayload` entry, src/sandbox/outgoing-payloads.ts): null at
   * its end, false when the worker detached or resized it after the call.
   */
  takePayload(): Promise<ArrayBuffer | string | null | false>;
  /**
   * The values an operation of VALUE_OPERATIONS carries (src/bridge/operations.ts), as the
   * sandbox sent them through `asyncValues`; undefined for any other call. Each is used once.
   */
  readonly values?: readonly RpcValue[];
}

export interface OpRequest {
  readonly id: number;
  /** The service-binding calls the request came through and its own worker last (ServiceKeys). */
  readonly chain: readonly string[];
  /** Where its subrequests are traced, when tracing is on. */
  readonly trace?: RequestTrace | undefined;
  /** Aborted when the client goes away or the request's work ends. */
  readonly signal: AbortSignal;
  /** Outbound requests made so far (the subrequest limit counts them). */
  subrequests: number;
  /** The next piece of the request's body, or null at its end. */
  readBody(): Promise<ArrayBuffer | null>;
  /**
   * All the rest of the request's body at once (`text`: decoded as UTF-8), a RangeError past
   * `capBytes`; empty when nothing is left.
   */
  readWholeBody(text: boolean, capBytes: number): Promise<ArrayBuffer | string>;
}

export type SyncOp<R = unknown> = (ctx: OpContext, args: unknown[]) => R;
export type AsyncOp<R = unknown> = (ctx: OpContext, args: unknown[]) => Promise<R>;

/** Every operation's implementation, as its declared mode and result say. */
export type OperationTable = {
  [K in OperationName]: Operations[K]['mode'] extends 'sync' ? SyncOp<OperationResult<K>> : AsyncOp<OperationResult<K>>;
};

/** An error whose name reaches the sandbox as the error's type (TypeError, a DOMException name, ...). */
export class OpError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

const MAX_RANDOM_BYTES = 65536;
const MB = 1024 * 1024;
const MAX_DOMAIN = 4096;

function domain(args: unknown[]): string | undefined {
  const value = args[0];
  return typeof value === 'string' && value.length <= MAX_DOMAIN ? value : undefined;
}

/** The request whose body a body operation reads: the one named, which need not be the caller's. */
function bodyOwner(ctx: OpContext, requestId: unknown): OpRequest {
  if (typeof requestId !== 'number') throw new OpError('TypeError', 'A request body is read through the id of its request.');
  const request = ctx.requestById(requestId);
  if (!request) {
    throw new OpError(
      'TypeError',
      'This request body can no longer be read: the request it came with has ended. Read a request body ' +
        "while its request is in flight (in its handler, or in work it hands to ctx.waitUntil()).",
    );
  }
  return request;
}

export const operations: OperationTable = {
  'crypto.randomBytes': (_ctx, [length]) => {
    if (typeof length !== 'number' || !Number.isInteger(length) || length < 0 || length > MAX_RANDOM_BYTES) {
      throw new OpError('RangeError', `randomBytes: length must be an integer from 0 to ${MAX_RANDOM_BYTES}`);
    }
    // A fresh buffer of exactly `length` bytes: never a slice of a pool, whose other bytes would leak.
    const bytes = new Uint8Array(length);
    webcrypto.getRandomValues(bytes);
    return bytes.buffer;
  },
  'url.domainToASCII': (_ctx, args) => {
    const d = domain(args);
    return d === undefined ? '' : urlHostOps.domainToASCII(d);
  },
  'url.domainToUnicode': (_ctx, args) => {
    const d = domain(args);
    return d === undefined ? '' : urlHostOps.domainToUnicode(d);
  },
  'body.read': (ctx, [requestId]) => bodyOwner(ctx, requestId).readBody(),
  'body.readWhole': (ctx, [requestId, as]) => {
    if (as !== 'text' && as !== 'bytes') throw new OpError('TypeError', "body.readWhole: read the body as 'text' or 'bytes'");
    // Never more than the isolate could hold: the host does not buffer without bound for a tenant.
    return bodyOwner(ctx, requestId).readWholeBody(as === 'text', ctx.limits.memoryMb * MB);
  },
  ...cryptoSyncOps,
  ...cryptoAsyncOps,
  ...fetchSyncOps,
  ...fetchAsyncOps,
  ...encodingSyncOps,
  ...memorySyncOps,
  ...bindingAsyncOps,
  ...serviceAsyncOps,
};
