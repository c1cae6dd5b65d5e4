// The sandbox's only way out of the isolate. The host fills `host` once, when it sets up a new
// context (the functions are isolated-vm Callbacks, which arrive here as plain functions of
// this isolate's realm). Modules import `callSync`/`callAsync` (or `host` for the core's own
// operations); nothing puts `host`, or any of its functions, where tenant code could reach them.
//
// The host treats every argument as hostile: even if tenant code took over this runtime, all it
// could do is ask for what these operations give any worker.

import { advanceClock } from '../api/clock/sandbox.ts';
import { currentRequestId, enterRequest } from './request-context.ts';
import { admitLogLine, MAX_PENDING_HOST_CALLS } from './host-budget.ts';
import {
  Error, EvalError, MapPrototypeForEach, ObjectAssign, Promise, PromiseReject, RangeError, ReferenceError, SafeMap,
  String, SyntaxError, TypeError, URIError, Uint8Array, withOriginalIntrinsics,
} from './primordials.ts';

export interface HostOps {
  /** Send one console line to the host's log for this worker. */
  log(level: string, message: string): void;
  /** An exception nothing caught (in a timer, a waitUntil promise, ...), with its stack. */
  uncaught(requestId: number, text: string): void;
  /** Start host timer `timerId` for request `requestId`; the host calls back `fireTimer`. */
  startTimer(requestId: number, timerId: number, delayMs: number): void;
  /** Cancel a timer started with startTimer. */
  clearTimer(timerId: number): void;
  /** All of request `requestId`'s work (response and waitUntil) is over. */
  requestDone(requestId: number): void;
  /** The outcome of dispatch(requestId, ...): the response head (and body) or an error. */
  respond(requestId: number, result: unknown): void;
  /** The common outcome, as primitives: a response whose body is whole (headers joined by '\n'). */
  respondSimple(requestId: number, status: number, statusText: string, headers: string, body: string | Uint8Array | null, done: boolean): void;
  /** Synchronous host operation `op` (see src/runtime/host-ops.ts for the table). */
  sync(op: string, args: unknown[]): unknown;
  /** Start asynchronous host operation `op`; the host answers through `settleCall(callId, ...)`. */
  async(callId: number, requestId: number, op: string, args: unknown[]): void;
  /** Evaluate sandbox module `name` (src/runtime/sandbox-modules.ts); it arrives via receiveModule. */
  loadModule(name: string): void;
}

export const host: HostOps = {} as HostOps;

export function connectHost(ops: HostOps): void {
  ObjectAssign(host, ops);
  // Console lines and uncaught-error reports share one budget (see host-budget.ts).
  const { log, uncaught } = ops;
  const notice = (message: string) => log('warn', message);
  host.log = (level, message) => {
    if (admitLogLine(message.length, notice)) log(level, message);
  };
  host.uncaught = (requestId, text) => {
    if (admitLogLine(text.length, notice)) uncaught(requestId, text);
  };
}

/** Runs a synchronous host operation. Its errors arrive as errors of this realm. */
export function callSync<T = unknown>(op: string, ...args: unknown[]): T {
  return host.sync(op, args) as T;
}

interface PendingCall {
  requestId: number;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

const pendingCalls = new SafeMap<number, PendingCall>();
let nextCallId = 1;

/** Runs an asynchronous host operation on behalf of the current request. */
export function callAsync<T = unknown>(op: string, ...args: unknown[]): Promise<T> {
  return startAsync<T>(op, args);
}

function startAsync<T>(op: string, args: unknown[]): Promise<T> {
  const requestId = currentRequestId();
  if (pendingCalls.size >= MAX_PENDING_HOST_CALLS) {
    return PromiseReject(new RangeError(`Too many operations pending at once (at most ${MAX_PENDING_HOST_CALLS} per isolate: fetch, body reads, crypto.subtle, ...). Await some before starting more.`));
  }
  const callId = nextCallId++;
  return new Promise<T>((resolve, reject) => {
    pendingCalls.set(callId, { requestId, resolve: resolve as (value: unknown) => void, reject });
    host.async(callId, requestId, op, args);
  });
}

const ERROR_TYPES: Record<string, ErrorConstructor> = {
  __proto__: null as never,
  Error, TypeError, RangeError, SyntaxError, EvalError, ReferenceError, URIError,
};

function hostError(name: string, message: string): Error {
  const Type = ERROR_TYPES[name];
  if (Type) return new Type(message);
  const DOMExceptionClass = (globalThis as unknown as { DOMException?: new (m: string, n: string) => Error }).DOMException;
  if (DOMExceptionClass) return new DOMExceptionClass(message, name);
  const error = new Error(message);
  error.name = name;
  return error;
}

/** The host's answer to an asynchronous operation (an entry point, see main.ts). */
export function settleCall(callId: number, now: number, ok: boolean, value: unknown, errorName: string): void {
  const call = pendingCalls.get(callId);
  if (!call) return;
  pendingCalls.delete(callId);
  advanceClock(now);
  enterRequest(call.requestId);
  if (ok) call.resolve(value);
  else call.reject(hostError(errorName, String(value)));
}

/** A request's work is over: its calls will never be answered. */
export function dropRequestCalls(requestId: number): void {
  // forEach, not for...of: the Map iterator's `next` is the tenant's to replace.
  MapPrototypeForEach(pendingCalls, (call, callId) => {
    if (call.requestId === requestId) pendingCalls.delete(callId);
  });
}

const modules = new SafeMap<string, unknown>();
let delivered: { name: string; exports: unknown } | undefined;

/**
 * The exports of sandbox module `name`, evaluated in this isolate on first use (the host keeps
 * large, rarely used parts of the runtime out of the snapshot: see src/runtime/sandbox-modules.ts).
 * Synchronous: the host runs the module's script nested in this call.
 */
export function loadModule<T>(name: string): T {
  const loaded = modules.get(name);
  if (loaded !== undefined) return loaded as T;
  delivered = undefined;
  // The module's top-level code captures the built-ins it runs on: the originals, not the tenant's.
  withOriginalIntrinsics(() => host.loadModule(name));
  const arrived = delivered as { name: string; exports: unknown } | undefined;
  delivered = undefined;
  if (!arrived || arrived.name !== name) throw new Error(`The runtime could not load its ${name} module.`);
  modules.set(name, arrived.exports);
  return arrived.exports as T;
}

/**
 * Loads sandbox module `name` and calls its `create(deps)`, both with the original built-ins in
 * place: what `create` sets up (names, prototypes, captured methods) runs on them too, not on
 * whatever tenant code has put in their place by the time the module is first used.
 */
export function createModule<D, A>(name: string, deps: D): A {
  return withOriginalIntrinsics(() => loadModule<{ create(deps: D): A }>(name).create(deps));
}

/** The host delivers a module's exports (an entry point, see main.ts). */
export function receiveModule(name: string, exports: unknown): void {
  delivered = { name, exports };
}

/**
 * callSync and callAsync limited to `ops`, for a sandbox module evaluated on first use, after
 * tenant code may have patched the built-ins it runs on: it is handed no more than its API
 * reaches anyway. `ops` is a null-prototype object literal, so no prototype can add to it and
 * no built-in runs to check a name.
 */
export function limitedHostCalls(
  ops: Record<string, 1 | undefined>,
  refusal: string,
): { callSync<T = unknown>(op: string, ...args: unknown[]): T; callAsync<T = unknown>(op: string, ...args: unknown[]): Promise<T> } {
  const op = (name: unknown): string => {
    if (typeof name !== 'string' || ops[name] !== 1) throw new TypeError(refusal);
    return name;
  };
  return {
    // ReflectApply, not a spread: spreading an array calls its (replaceable) iterator.
    callSync: <T>(name: string, ...args: unknown[]) => host.sync(op(name), args) as T,
    callAsync: <T>(name: string, ...args: unknown[]) => startAsync<T>(op(name), args),
  };
}
