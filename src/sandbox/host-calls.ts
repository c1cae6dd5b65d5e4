// The sandbox's only way out of the isolate: the host calls (src/bridge/protocol.ts HostCalls).
// The host hands them over once, when it sets up a new context (isolated-vm Callbacks, which
// arrive here as plain functions of this isolate's realm). Modules import `callSync`/`callAsync`
// for host operations (or `hostCalls` for the core's own calls); nothing puts `hostCalls`, or
// any of its functions, where tenant code could reach them.
//
// The host treats every argument as hostile: even if tenant code took over this runtime, all it
// could do is ask for what these calls give any worker.

import { currentRequestId, enterFromHost, onRequestEnd } from './request-context.ts';
import { admitLogLine, logLine, MAX_PENDING_HOST_CALLS } from './host-budget.ts';
import { dropPayload, holdPayload, type OutgoingValue } from './outgoing-payloads.ts';
import type { HostCalls } from '../bridge/protocol.ts';
import { OPERATION_MODES, type AsyncOperation, type OperationCalls, type OperationName, type OperationResult, type SyncOperation } from '../bridge/operations.ts';
import {
  Error, EvalError, MapPrototypeForEach, ReflectApply, ObjectAssign, ObjectDefineProperty, ObjectGetOwnPropertyDescriptor, ObjectGetPrototypeOf, ObjectHasOwn, ObjectKeys, Promise, PromiseReject, RangeError, ReferenceError, SafeMap,
  String, StringPrototypeStartsWith, SyntaxError, TypeError, URIError, Uint8Array, primordialValues, withOriginalIntrinsics,
} from './primordials.ts';

export const hostCalls: HostCalls = {} as HostCalls;

export function connectHost(calls: HostCalls): void {
  ObjectAssign(hostCalls, calls);
  // Console lines and uncaught-error reports share one budget (see host-budget.ts).
  const { log, uncaught } = calls;
  const notice = (message: string) => log('warn', message);
  hostCalls.log = (level, message) => {
    if (admitLogLine(message.length, notice)) log(level, logLine(message));
  };
  hostCalls.uncaught = (requestId, text) => {
    if (admitLogLine(text.length, notice)) uncaught(requestId, logLine(text));
  };
}

/** Runs a synchronous host operation. Its errors arrive as errors of this realm. */
export function callSync<K extends SyncOperation>(op: K, ...args: unknown[]): OperationResult<K> {
  return syncCall(op, args) as OperationResult<K>;
}

function syncCall(op: string, args: unknown[]): unknown {
  try {
    return hostCalls.sync(op, args);
  } catch (error) {
    throw madeHere(error);
  }
}

/**
 * An error a waiting host call (`sync`, `loadModule`) threw, made again in this realm from its
 * kind, name and message, read without running any getter. What isolated-vm hands over has a
 * `stack` of its own that renders the host's side of the call as well: the host's frames are
 * nothing for tenant code to read, and on the prebuilt isolated-vm that getter crashes the
 * process when read through another object, or after tenant code put an accessor for "0" on
 * Object.prototype (native/isolated-vm/error-stack.patch). The copy never reaches anyone.
 */
function madeHere(error: unknown): unknown {
  if (error === null || typeof error !== 'object') return error;
  const message = ownString(error, 'message');
  const proto = ObjectGetPrototypeOf(error);
  for (let i = 0; i < NATIVE_ERRORS.length; i++) {
    const Type = NATIVE_ERRORS[i]!;
    if (proto === Type.prototype) return ObjectHasOwn(error, 'name') ? named(new Type(message), ownString(error, 'name')) : new Type(message);
  }
  return new Error(message);
}

/** The built-in error types: what an error from the host is made again as, by its prototype or its name. */
const NATIVE_ERRORS: readonly ErrorConstructor[] = [Error, TypeError, RangeError, SyntaxError, EvalError, ReferenceError, URIError];
const ERROR_TYPES = { __proto__: null } as unknown as Record<string, ErrorConstructor>;
for (let i = 0; i < NATIVE_ERRORS.length; i++) ERROR_TYPES[NATIVE_ERRORS[i]!.name] = NATIVE_ERRORS[i]!;

/** `error`, named by an own `name` (non-enumerable, as a built-in type's own is on its prototype). */
function named(error: Error, name: string): Error {
  ObjectDefineProperty(error, 'name', { __proto__: null, value: name, writable: true, enumerable: false, configurable: true } as PropertyDescriptor);
  return error;
}

function ownString(object: object, key: string): string {
  const descriptor = ObjectGetOwnPropertyDescriptor(object, key);
  const value: unknown = descriptor !== undefined && ObjectHasOwn(descriptor, 'value') ? descriptor.value : undefined;
  return typeof value === 'string' ? value : '';
}

interface PendingCall {
  requestId: number;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  /** A binding's call: an error of a name other than the built-in types' is an Error of that name, not a DOMException. */
  namedErrors: boolean;
}

const pendingCalls = new SafeMap<number, PendingCall>();
let nextCallId = 1;
/** Whether dropRequestCalls runs when a request ends: from the first host call on. */
let dropsOnEnd = false;

/** Runs an asynchronous host operation on behalf of the current request. */
export function callAsync<K extends AsyncOperation>(op: K, ...args: unknown[]): Promise<OperationResult<K>> {
  return startAsync<OperationResult<K>>(op, args);
}

/**
 * `binding.call` (or `service.call`, RPC through a service binding) for the current request, with
 * the values it carries (VALUE_OPERATIONS: a binding method's arguments, RPC's as one list),
 * each copied out now, at the caller's cost, and read only where it is used (the called worker's
 * isolate, the embedder's function). Errors arrive as errors of the name the host gave (an
 * embedder's or a called worker's own error names are no DOMException names). `payload`: a large
 * value the host takes with the `takePayload` entry, at the platform's cost (see
 * outgoing-payloads.ts).
 */
export function callBindingOperation(op: 'binding.call' | 'service.call', args: unknown[], values: unknown[], payload?: OutgoingValue): Promise<unknown> {
  return startAsync(op, args, true, payload, values);
}

/** `carried`: the values of an operation of VALUE_OPERATIONS, a list of the sandbox's own making. */
function startAsync<T>(op: string, args: unknown[], namedErrors = false, payload?: OutgoingValue, carried?: unknown[]): Promise<T> {
  const requestId = currentRequestId();
  if (pendingCalls.size >= MAX_PENDING_HOST_CALLS) {
    return PromiseReject(new RangeError(`Too many operations pending at once (at most ${MAX_PENDING_HOST_CALLS} per isolate: fetch, body reads, crypto.subtle, ...). Await some before starting more.`));
  }
  const callId = nextCallId++;
  if (!dropsOnEnd) {
    dropsOnEnd = true;
    onRequestEnd(dropRequestCalls);
  }
  return new Promise<T>((resolve, reject) => {
    pendingCalls.set(callId, { requestId, resolve: resolve as (value: unknown) => void, reject, namedErrors });
    if (payload !== undefined) holdPayload(callId, payload);
    try {
      if (carried === undefined) hostCalls.async(callId, requestId, op, args);
      else ReflectApply(hostCalls.asyncValues, undefined, callArguments([callId, requestId, op, args], carried));
    } catch (error) {
      // The arguments could not be copied out (a function, say): no answer will come.
      pendingCalls.delete(callId);
      dropPayload(callId);
      throw error;
    }
  });
}

/**
 * `fixed` followed by `rest`, as a list for ReflectApply: defined, not assigned (an index setter a
 * tenant put on Array.prototype never runs), and read by index (no iterator a tenant could replace).
 */
function callArguments(fixed: unknown[], rest: unknown[]): unknown[] {
  for (let i = 0, n = fixed.length; i < rest.length; i++) {
    ObjectDefineProperty(fixed, n + i, { __proto__: null, value: rest[i], writable: true, enumerable: true, configurable: true } as PropertyDescriptor);
  }
  return fixed;
}

function hostError(name: string, message: string, namedErrors: boolean): Error {
  const Type = ERROR_TYPES[name];
  if (Type) return new Type(message);
  if (namedErrors) return named(new Error(message), name);
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
  dropPayload(callId);
  enterFromHost(call.requestId, now);
  if (ok) call.resolve(value);
  else call.reject(hostError(errorName, String(value), call.namedErrors));
}

/** A request's work is over: its calls will never be answered. */
function dropRequestCalls(requestId: number): void {
  if (pendingCalls.size === 0) return;
  // forEach, not for...of: the Map iterator's `next` is the tenant's to replace.
  MapPrototypeForEach(pendingCalls, (call, callId) => {
    if (call.requestId === requestId) {
      pendingCalls.delete(callId);
      dropPayload(callId);
    }
  });
}

/** Each sandbox module's exports, once evaluated in this isolate. */
const modules = new SafeMap<string, { create(deps: unknown): unknown }>();
/** The list every module is made from (made once: each module's code keeps it). */
let primordials: readonly unknown[] | undefined;
/** The createModule call whose module the host is delivering now (see receiveModule). */
let creating: { name: string; deps: unknown; api: unknown } | undefined;

/**
 * Sandbox module `name`'s `create(deps)`: the API it makes. The module is evaluated in this
 * isolate on first use (the host keeps large, rarely used parts of the runtime out of the
 * snapshot: see src/runtime/sandbox-modules.ts), and both run with the original built-ins in
 * place, so that what they set up (names, prototypes, captured methods) runs on them, not on
 * whatever tenant code has put in their place by then. On first use all of it runs nested in the
 * host's loadModule call (the host compiles the script and hands it to receiveModule), so that the
 * host can tell what the platform's first use cost and charge it to no request.
 */
export function createModule<D, A>(name: string, deps: D): A {
  return withOriginalIntrinsics(() => {
    const loaded = modules.get(name);
    if (loaded !== undefined) return loaded.create(deps) as A;
    const outer = creating;
    const call = { name, deps: deps as unknown, api: undefined as unknown };
    creating = call;
    try {
      hostCalls.loadModule(name);
    } catch (error) {
      throw madeHere(error);
    } finally {
      creating = outer;
    }
    // Recorded by receiveModule, which made the API too (had create() thrown, so would the host call).
    if (modules.get(name) === undefined) throw new Error(`The runtime could not load its ${name} module.`);
    return call.api as A;
  });
}

/**
 * The host delivers a module (an entry point, see main.ts): the function that makes its exports.
 * Called nested in the host's loadModule call, which createModule made with the original
 * built-ins in place: the module is evaluated and its API made here. A module whose code makes
 * another one on the way nests once more.
 */
export function receiveModule(name: string, module: unknown): void {
  const call = creating;
  if (typeof module !== 'function' || modules.get(name) !== undefined || call === undefined || call.name !== name) {
    throw new Error(`The runtime could not load its ${name} module.`);
  }
  primordials ??= primordialValues();
  const exports = (module as (values: readonly unknown[]) => { create(deps: unknown): unknown })(primordials);
  modules.set(name, exports);
  call.api = exports.create(call.deps);
}

/**
 * The operations of each API whose sandbox half is evaluated on first use (after tenant code may
 * have patched the built-ins it runs on), by the prefix of their names: made here, in the
 * snapshot, as null-prototype objects, so no prototype can add to them and no built-in runs to
 * check a name.
 */
type LimitedApi = 'crypto' | 'fetch' | 'encoding';
const OPERATIONS_OF: Record<LimitedApi, Record<string, 1 | undefined>> = { __proto__: null } as never;
const operationNames = ObjectKeys(OPERATION_MODES) as OperationName[];
for (const api of ['crypto', 'fetch', 'encoding'] as const) {
  const ops = { __proto__: null } as unknown as Record<string, 1 | undefined>;
  for (let i = 0; i < operationNames.length; i++) {
    if (StringPrototypeStartsWith(operationNames[i]!, api + '.')) ops[operationNames[i]!] = 1;
  }
  OPERATIONS_OF[api] = ops;
}

/**
 * callSync and callAsync limited to one API's operations (`crypto.*`, ...), for its sandbox
 * module: it is handed no more than its API reaches anyway.
 */
export function limitedHostCalls(api: LimitedApi): OperationCalls {
  const ops = OPERATIONS_OF[api];
  const op = (name: unknown): string => {
    if (typeof name !== 'string' || ops[name] !== 1) throw new TypeError(`Not a${api === 'encoding' ? 'n' : ''} ${api} operation.`);
    return name;
  };
  return {
    callSync: (name, ...args) => syncCall(op(name), args) as never,
    callAsync: (name, ...args) => startAsync(op(name), args) as never,
    callAsyncCarrying: (bytes, name, ...args) => startAsync(op(name), args, false, bytes === undefined ? undefined : [bytes]) as never,
  };
}
