// The host half of service bindings: `env.NAME.fetch()` (fetch.start with a service, see
// ../fetch/host.ts) and RPC (`service.call`). A binding name the sandbox sends is looked up in
// the worker's own definition (WorkerBindings), never trusted; the call then goes to the
// Runtime's ServiceHost, which finds the bound worker (in this Runtime, or through the control
// process of `isolet serve`) and checks that it may be called.
//
// Each call counts against the caller's subrequest limit. The caller waits for the called
// worker without using CPU (these operations are async): each side's CPU is its own.

import { BINDING_LIMITS } from '../../bridge/bindings.ts';
import type { FetchHead } from '../../bridge/operations.ts';
import { OpError, type AsyncOp, type OpContext, type OperationTable, type OpRequest } from '../../runtime/host-ops.ts';
import type { RuntimeResponse, ServiceCall, ServiceHost } from '../../runtime/types.ts';
import { carriesTooMuch, crossing } from '../bindings/host.ts';
import { reserveCarried } from '../../runtime/carried-bytes.ts';
import { BodyPipe } from './body-pipe.ts';

/** Who takes a service call: the host, and the call as it describes the caller and the binding. */
export function serviceCallOf(ctx: OpContext, name: unknown, what: string): { host: ServiceHost; call: ServiceCall; request: OpRequest } {
  const request = ctx.request;
  if (request === undefined || request.signal.aborted) {
    throw new OpError('Error', `Disallowed operation called within global scope or after its request ended: ${what}. Call service bindings within a handler.`);
  }
  if (typeof name !== 'string' || name.length > BINDING_LIMITS.nameChars) throw new OpError('TypeError', `${what}: invalid binding name.`);
  const bound = ctx.bindings?.get(name);
  if (bound === undefined || bound.kind !== 'spec' || bound.spec.type !== 'service') throw new OpError('TypeError', `env.${name} is not a service binding of this worker.`);
  const host = ctx.services;
  if (host === undefined) throw new OpError('Error', `env.${name}: service bindings are not available in this runtime.`);
  const spec = bound.spec;
  return {
    host,
    request,
    call: { worker: ctx.worker, account: ctx.account, name, service: spec.service, ...(spec.entrypoint === undefined ? {} : { entrypoint: spec.entrypoint }), chain: request.chain },
  };
}

/** One more subrequest of the request: counted here, on the host, where tenant code cannot skip it. */
export function countSubrequest(ctx: OpContext, request: OpRequest): void {
  request.subrequests++;
  if (request.subrequests > ctx.limits.subrequests) throw new OpError('TypeError', 'Too many subrequests.');
}

/**
 * RPC: (name, method) and the arguments it carries as one value -> the method's result. Both are
 * handed on between the isolates unread (RpcValue): the called worker's sandbox finds out whether
 * the arguments are a list, as it takes them.
 */
const call: AsyncOp<unknown> = async (ctx, [name, method]) => {
  const what = `env.${String(name).slice(0, BINDING_LIMITS.nameChars)}.${String(method).slice(0, BINDING_LIMITS.nameChars)}()`;
  const service = serviceCallOf(ctx, name, what);
  if (typeof method !== 'string' || method.length === 0 || method.length > BINDING_LIMITS.nameChars) throw new OpError('TypeError', `${what}: invalid method name.`);
  const args = ctx.values?.length === 1 ? ctx.values[0]! : undefined;
  if (args === undefined) throw new OpError('TypeError', `${what}: invalid arguments.`);
  countSubrequest(ctx, service.request);
  // The copy is outside every heap until the called worker reads it: what a worker's calls in
  // flight hold so is bounded by its memory limit, or one request's calls could each carry a copy
  // of the same large value and hold gigabytes of the host's memory.
  const release = reserveCarried(ctx, args.size, () => carriesTooMuch(ctx, what, 'RPC calls', 'arguments'));
  try {
    return await service.host.call(service.call, method, args);
  } catch (error) {
    throw crossing(error);
  } finally {
    release();
  }
};

/** A request body on its way to a service: whole, or written a chunk at a time (fetch.write). */
export type ServiceBody = { kind: 'none' } | { kind: 'whole'; bytes: Buffer } | { kind: 'stream'; length: number | null };

/**
 * fetch.start through service binding `name`: the request goes to the bound worker, its body
 * and the response's streamed both ways. Made synchronously, so that fetch.write finds it while
 * the response head is on its way; `signal` aborts both (the caller gave up).
 */
export class ServiceFetch {
  /** The response body, pulled by fetch.read, once the head is here. */
  reader: AsyncIterator<Uint8Array> | undefined;
  readonly #pipe: BodyPipe | undefined;
  readonly #response: Promise<RuntimeResponse>;
  readonly #method: string;
  readonly #url: string;

  constructor(
    ctx: OpContext,
    name: unknown,
    request: { method: string; url: string; headers: [string, string][]; body: ServiceBody },
    signal: AbortSignal,
  ) {
    const service = serviceCallOf(ctx, name, `env.${String(name).slice(0, BINDING_LIMITS.nameChars)}.fetch()`);
    this.#method = request.method;
    this.#url = request.url;
    this.#pipe = request.body.kind === 'stream' ? new BodyPipe() : undefined;
    const headers = request.headers;
    if (request.body.kind === 'whole') headers.push(['content-length', String(request.body.bytes.byteLength)]);
    else if (request.body.kind === 'stream' && request.body.length !== null) headers.push(['content-length', String(request.body.length)]);
    this.#response = service.host.fetch(service.call, {
      method: request.method,
      url: request.url,
      headers,
      body: request.body.kind === 'whole' ? request.body.bytes : this.#pipe ?? null,
      signal,
    });
  }

  /** The response head; its body, if any, is `reader` from then on. */
  async head(): Promise<FetchHead> {
    let response: RuntimeResponse;
    try {
      response = await this.#response;
    } catch (error) {
      this.#pipe?.close();
      throw crossing(error);
    }
    const body = response.body;
    const hasBody = this.#method !== 'HEAD' && response.status !== 204 && response.status !== 205 && response.status !== 304 && body !== null;
    if (body !== null) {
      const reader = body instanceof Uint8Array ? once(body) : body[Symbol.asyncIterator]();
      if (hasBody) this.reader = reader;
      else void reader.return?.().catch(() => {});
    }
    const flat: string[] = [];
    for (const [header, value] of response.headers) flat.push(header, value);
    return { status: response.status, statusText: response.statusText, headers: flat, url: this.#url, redirected: false, hasBody };
  }

  /** The next piece of a streamed request body (null: its end); false once it is no longer wanted. */
  write(chunk: ArrayBuffer | null): Promise<boolean> {
    return this.#pipe === undefined ? Promise.resolve(false) : this.#pipe.write(chunk === null ? null : new Uint8Array(chunk));
  }

  /** The caller is done with it (read to the end, cancelled, or its request ended). */
  close(): void {
    this.#pipe?.close();
    void this.reader?.return?.().catch(() => {});
  }
}

function once(bytes: Uint8Array): AsyncIterator<Uint8Array> {
  let done = bytes.byteLength === 0;
  return {
    next: async () => {
      if (done) return { done: true, value: undefined };
      done = true;
      return { done: false, value: bytes };
    },
    return: async () => {
      done = true;
      return { done: true, value: undefined };
    },
  };
}

export const serviceAsyncOps = {
  'service.call': call,
} satisfies Partial<OperationTable>;
