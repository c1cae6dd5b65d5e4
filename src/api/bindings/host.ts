// The host half of bindings: what a worker's definition binds, checked once when it is loaded
// (WorkerBindings), and the one host operation every binding call goes through, `binding.call`.
// Its sandbox half (./sandbox.ts) builds `env` from what `forSandbox()` gives it.
//
// A binding name the sandbox sends is looked up here, in what the host itself was given, never
// trusted: a host binding's methods are the functions taken from the embedder's object at load,
// in a Map (so no name such as 'constructor' or '__proto__' reaches anything else), and a platform
// binding's spec is the definition's. Host bindings run the embedder's function with copies of
// the arguments and copy the result into the isolate; platform bindings go to the Runtime's
// BindingHost with JSON arguments and at most one binary payload. Either way only an error's
// name and message cross back, the host's time is not the worker's CPU (this operation is async:
// the isolate does not wait for it), and a call ends with its request or after the binding
// timeout, whichever comes first.

import ivm from 'isolated-vm';
import { BINDING_LIMITS, ENV_NAME, type BindingSpec, type EnvBinding } from '../../bridge/bindings.ts';
import { MAX_VALUES, type PlatformBindingAnswer } from '../../bridge/operations.ts';
import { OpError, type AsyncOp, type OpContext, type OperationTable, type OpRequest } from '../../runtime/host-ops.ts';
import { reserveCarried } from '../../runtime/carried-bytes.ts';
import { BodyTooLargeError } from '../../runtime/request-body.ts';
import { WorkerLoadError, type BindingHost, type HostBinding, type JsonValue, type WorkerDefinition } from '../../runtime/types.ts';
import { jsonProblem, specProblem } from './checks.ts';

/** How long a binding call may take by default (RuntimeOptions.bindingTimeoutMs). */
export const DEFAULT_BINDING_TIMEOUT_MS = 30_000;

type Bound =
  | { kind: 'spec'; spec: BindingSpec }
  | { kind: 'host'; target: HostBinding; methods: Map<string, (...args: unknown[]) => unknown> };

/** A worker's bindings as the host holds them, checked when the worker is loaded. */
export class WorkerBindings {
  readonly #bound = new Map<string, Bound>();
  readonly host: BindingHost | undefined;
  readonly timeoutMs: number;

  /** Throws a WorkerLoadError that names the binding and what to change. */
  constructor(definition: WorkerDefinition, host: BindingHost | undefined, timeoutMs = DEFAULT_BINDING_TIMEOUT_MS) {
    this.host = host;
    this.timeoutMs = timeoutMs;
    const bindings = definition.bindings;
    if (bindings === undefined) return;
    if (bindings === null || typeof bindings !== 'object') throw new WorkerLoadError('`bindings` must be an object of env names to bindings.');
    const names = Object.keys(bindings);
    if (names.length > BINDING_LIMITS.bindings) throw new WorkerLoadError(`A worker may have at most ${BINDING_LIMITS.bindings} bindings; it has ${names.length}.`);
    for (const name of names) {
      if (!ENV_NAME.test(name)) {
        throw new WorkerLoadError(`Invalid binding name ${JSON.stringify(name.slice(0, 200))}: use letters, digits, '_' and '$', not starting with a digit (it is read as env.NAME).`);
      }
      if (definition.vars !== undefined && Object.hasOwn(definition.vars, name)) {
        throw new WorkerLoadError(`env.${name} is both a var and a binding: rename one of them.`);
      }
      this.#bound.set(name, bound(name, bindings[name]));
    }
  }

  get size(): number {
    return this.#bound.size;
  }

  get(name: string): Bound | undefined {
    return this.#bound.get(name);
  }

  /** What the sandbox's `register` builds env's bindings from: specs, and host bindings' method names. */
  forSandbox(): Record<string, EnvBinding> {
    const out: Record<string, EnvBinding> = {};
    for (const [name, b] of this.#bound) out[name] = b.kind === 'spec' ? { spec: b.spec } : { methods: [...b.methods.keys()] };
    return out;
  }
}

function bound(name: string, value: unknown): Bound {
  if (value === null || typeof value !== 'object') {
    throw new WorkerLoadError(`env.${name}: a binding is a spec such as { type: 'kv', namespaceId } or an object of functions.`);
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type === 'string') return { kind: 'spec', spec: checkSpec(name, value as Record<string, unknown>) };
  const methods = new Map<string, (...args: unknown[]) => unknown>();
  const add = (method: string, fn: unknown) => {
    if (method.length > BINDING_LIMITS.nameChars) throw new WorkerLoadError(`env.${name}: a method name is longer than ${BINDING_LIMITS.nameChars} characters.`);
    methods.set(method, fn as (...args: unknown[]) => unknown);
  };
  const prototype = Object.getPrototypeOf(value) as object | null;
  // A plain object is all methods; an instance of a class also holds its state, which stays here.
  const plain = prototype === Object.prototype || prototype === null;
  for (const method of Object.keys(value)) {
    const fn = (value as Record<string, unknown>)[method];
    if (typeof fn === 'function') add(method, fn);
    else if (plain) throw new WorkerLoadError(`env.${name}.${method} is not a function: a host binding holds only functions (pass data as vars).`);
  }
  // Its class's methods, the nearest first, up to Object's own: a name a nearer object has (a
  // field, a getter) hides a farther one, as `value.method` would find it. Descriptors, not
  // reads: a getter is not run at load, and is no method.
  const seen = new Set(Object.getOwnPropertyNames(value));
  for (let proto = prototype; proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
    for (const method of Object.getOwnPropertyNames(proto)) {
      if (method === 'constructor' || seen.has(method)) continue;
      seen.add(method);
      const descriptor = Object.getOwnPropertyDescriptor(proto, method)!;
      if ('value' in descriptor && typeof descriptor.value === 'function') add(method, descriptor.value);
    }
  }
  if (methods.size > BINDING_LIMITS.methods) throw new WorkerLoadError(`env.${name} has ${methods.size} methods, more than the ${BINDING_LIMITS.methods} a host binding may have.`);
  return { kind: 'host', target: value as HostBinding, methods };
}

function checkSpec(name: string, value: Record<string, unknown>): BindingSpec {
  const problem = specProblem(value);
  if (problem !== undefined) throw new WorkerLoadError(`env.${name}: ${problem}.`);
  // A copy: the spec crosses to the sandbox and to runtime processes as JSON.
  return JSON.parse(JSON.stringify(value)) as BindingSpec;
}

/** The error a worker sees for a failure on the host side: its name and message only. */
export function crossing(error: unknown): OpError {
  if (error instanceof OpError) return error;
  let name = 'Error';
  let message: string;
  try {
    if (error !== null && (typeof error === 'object' || typeof error === 'function')) {
      const n = (error as { name?: unknown }).name;
      const m = (error as { message?: unknown }).message;
      if (typeof n === 'string' && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(n) && n.length <= BINDING_LIMITS.errorNameChars) name = n;
      message = typeof m === 'string' ? m : String(error);
    } else {
      message = String(error);
    }
  } catch {
    message = 'the binding threw a value that cannot be shown';
  }
  return new OpError(name, message.slice(0, BINDING_LIMITS.errorMessageChars));
}

/**
 * Settles with `work`, or rejects when the request ends (the worker no longer waits: its answer
 * would be dropped) or `ms` pass, which also aborts `controller` so the host side may stop.
 */
function bounded<T>(work: Promise<T>, request: OpRequest, ms: number, what: string, controller: AbortController): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      request.signal.removeEventListener('abort', ended);
    };
    const ended = () => {
      done();
      controller.abort();
      reject(new OpError('Error', `${what} was cancelled: its request ended.`));
    };
    const timer = setTimeout(() => {
      done();
      controller.abort();
      reject(new OpError('TimeoutError', `${what} did not settle within ${ms} ms.`));
    }, ms);
    if (request.signal.aborted) return ended();
    request.signal.addEventListener('abort', ended, { once: true });
    work.then(
      (value) => {
        done();
        resolve(value);
      },
      (error: unknown) => {
        done();
        reject(error);
      },
    );
  });
}

/** A value the isolate can take: primitives as they are, anything else as a structured clone made here. */
function intoIsolate(value: unknown, what: string): unknown {
  if (value === undefined || value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return value;
  if (typeof value === 'symbol') throw new OpError('TypeError', `${what} returned a symbol, which cannot be copied into the worker.`);
  try {
    return new ivm.ExternalCopy(value);
  } catch {}
  // isolated-vm's copy refuses some values structuredClone() takes (objects with getters, whose
  // values it reads here, on the host): clone them first. Either way, what enters is data.
  try {
    return new ivm.ExternalCopy(structuredClone(value));
  } catch (error) {
    throw new OpError(
      'TypeError',
      `${what} returned a value that cannot be copied into the worker (${error instanceof Error ? error.message : String(error)}): ` +
        'return data that structuredClone() takes (objects, arrays, strings, numbers, Dates, Maps, Sets, ArrayBuffers, ...), not functions or symbols.',
    );
  }
}

/**
 * What a platform binding's call carries, as bytes: the value that crossed with the call, the
 * pieces the host takes out of the isolate (`true`, see src/sandbox/outgoing-payloads.ts), or
 * the unread body of request `requestBody`, read here: neither of the last two is the worker's
 * CPU. At most BINDING_LIMITS.bytes either way.
 */
async function payloadBytes(ctx: OpContext, what: string, bytes: ArrayBuffer | true | null, requestBody: number | null): Promise<Uint8Array | null> {
  const cap = BINDING_LIMITS.bytes;
  const over = (size: number | string) => new OpError('RangeError', `${what}: a value of ${size} bytes is over the ${cap} a binding call may carry.`);
  if (requestBody !== null) {
    const request = ctx.requestById(requestBody);
    if (request === undefined) throw new OpError('TypeError', `${what}: the request body it sends can no longer be read: its request has ended.`);
    try {
      return new Uint8Array(await request.readWholeBody(false, cap) as ArrayBuffer);
    } catch (error) {
      throw error instanceof BodyTooLargeError ? over('more than ' + cap) : error;
    }
  }
  if (bytes !== true) {
    if (bytes !== null && bytes.byteLength > cap) throw over(bytes.byteLength);
    return bytes === null ? null : new Uint8Array(bytes);
  }
  const pieces: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const piece = await ctx.takePayload();
    if (piece === null) break;
    if (piece === false) throw new OpError('TypeError', `${what}: its value was detached or resized before it was sent: keep a buffer as it is until the call settles.`);
    const part = typeof piece === 'string' ? Buffer.from(piece, 'utf8') : new Uint8Array(piece);
    size += part.byteLength;
    if (size > cap) throw over(`more than ${cap}`);
    pieces.push(part);
  }
  if (pieces.length === 1) return pieces[0]!;
  const whole = new Uint8Array(size);
  let at = 0;
  for (const piece of pieces) {
    whole.set(piece, at);
    at += piece.byteLength;
  }
  return whole;
}

const callBinding: AsyncOp<unknown> = async (ctx: OpContext, [name, method, bytes, requestBody = null, listed = false]) => {
  const values = ctx.values;
  if (
    typeof name !== 'string' || typeof method !== 'string' || values === undefined || typeof listed !== 'boolean' ||
    (listed && values.length !== 1) || (!listed && values.length > MAX_VALUES) ||
    (bytes !== null && bytes !== true && !(bytes instanceof ArrayBuffer)) ||
    (requestBody !== null && (!Number.isSafeInteger(requestBody) || bytes !== null))
  ) {
    throw new OpError('TypeError', 'binding.call takes (name, method, bytes | true | null, requestBody | null, listed) and the method\'s arguments as its values, one by one up to MAX_VALUES or as one list.');
  }
  const what = `env.${name.slice(0, BINDING_LIMITS.nameChars)}.${method.slice(0, BINDING_LIMITS.nameChars)}()`;
  const request = ctx.request;
  if (request === undefined) {
    // As Workers refuses I/O there: without a request in flight nothing would bound the call or
    // take its answer (top-level code, or code its request left running after it ended).
    throw new OpError('Error', `${what} was called outside a request (in top-level code, or after its request ended): call bindings within a handler, or in work handed to ctx.waitUntil().`);
  }
  const bindings = ctx.bindings;
  const binding = bindings?.get(name);
  if (bindings === undefined || binding === undefined) throw new OpError('TypeError', `${what}: the worker has no binding of that name.`);
  // Bounded before anything is read: what is inside objects and arrays is read on this thread.
  let nested = 0;
  for (const value of values) nested += value.size;
  if (nested > BINDING_LIMITS.nestedBytes) {
    throw new OpError('RangeError', `${what}: its arguments hold ${nested} bytes inside objects or arrays, more than the ${BINDING_LIMITS.nestedBytes} a binding call may: pass large data as an argument of its own (an ArrayBuffer, a typed array or a string), which the host takes without reading it.`);
  }
  // Read here, where they are used: a top-level buffer or long string the worker passed moves in
  // from the copy made on its isolate's thread, without a copy of its bytes on this one.
  const args = listed ? values[0]!.read() : values.map((value) => value.read());
  if (!Array.isArray(args)) throw new OpError('TypeError', `${what}: its arguments are not a list.`);
  // The copies are the host's memory now, for as long as the call runs: what a worker's calls in
  // flight hold is bounded by its memory limit, or a worker could pass the same large string to
  // call after call of a slow binding and hold gigabytes of the host's memory.
  const release = reserveCarried(ctx, nested + (listed ? 0 : topLevelBytes(args)), () => carriesTooMuch(ctx, what, 'binding calls', 'arguments'));
  try {
    return await callWith(ctx, what, name, method, binding, bindings, request, args, bytes as ArrayBuffer | true | null, requestBody as number | null);
  } finally {
    release();
  }
};

/** The error of a call past what a worker's `calls` in flight may carry (reserveCarried): its memory limit. */
export function carriesTooMuch(ctx: Pick<OpContext, 'limits'>, what: string, calls: string, noun: string): OpError {
  return new OpError('RangeError', `${what}: this worker's ${calls} in flight already carry ${ctx.limits.memoryMb} MB of ${noun}, its memory limit: await some before starting more.`);
}

/** Bytes of the arguments that crossed as values of their own (moved in, not read). */
function topLevelBytes(args: unknown[]): number {
  let bytes = 0;
  for (const arg of args) {
    if (typeof arg === 'string') bytes += arg.length;
    else if (arg instanceof ArrayBuffer || ArrayBuffer.isView(arg)) bytes += arg.byteLength;
  }
  return bytes;
}

async function callWith(
  ctx: OpContext, what: string, name: string, method: string, binding: Bound, bindings: WorkerBindings,
  request: NonNullable<OpContext['request']>, args: unknown[], bytes: ArrayBuffer | true | null, requestBody: number | null,
): Promise<unknown> {
  const controller = new AbortController();
  if (binding.kind === 'host') {
    const fn = binding.methods.get(method);
    if (fn === undefined) throw new OpError('TypeError', `${what} is not a function of that binding.`);
    let result: unknown;
    try {
      // Whatever the function does synchronously runs here, on the host's thread, not the
      // isolate's: none of it is the worker's CPU.
      result = await bounded(Promise.resolve().then(() => Reflect.apply(fn, binding.target, args)), request, bindings.timeoutMs, what, controller);
    } catch (error) {
      throw crossing(error);
    }
    return intoIsolate(result, what);
  }
  const host = bindings.host;
  if (host === undefined) throw new OpError('Error', `${what}: ${binding.spec.type} bindings are not available in this runtime (it has no binding host).`);
  const problem = jsonProblem(args);
  if (problem !== undefined) throw new OpError('TypeError', `${what}: its arguments hold ${problem}.`);
  if (Buffer.byteLength(JSON.stringify(args)) > BINDING_LIMITS.argsBytes) throw new OpError('RangeError', `${what}: its arguments are over ${BINDING_LIMITS.argsBytes} bytes of JSON.`);
  let answer;
  let releasePayload = (): void => {};
  try {
    // Gathered before the call's time starts: a request body comes at the client's pace (its
    // request's own timeouts bound it, and it ends with its request).
    const value = await payloadBytes(ctx, what, bytes, requestBody);
    // Counted with the arguments: the host holds it until the call settles (up to 32 MiB a call).
    if (value !== null) releasePayload = reserveCarried(ctx, value.byteLength, () => carriesTooMuch(ctx, what, 'binding calls', 'values'));
    answer = await bounded(host.call({
      worker: ctx.worker,
      account: ctx.account,
      name,
      binding: binding.spec,
      method,
      args: args as JsonValue[],
      ...(value === null ? {} : { bytes: value }),
      signal: controller.signal,
    }), request, bindings.timeoutMs, what, controller);
  } catch (error) {
    throw crossing(error);
  } finally {
    releasePayload();
  }
  const out = answer.bytes;
  if (out === undefined) return intoIsolate({ value: answer.value, bytes: null } satisfies PlatformBindingAnswer, what);
  // The payload's own bytes, in a buffer made here (the handler's may be a window on a channel
  // frame, or kept by it), moved into the isolate as it is: copied in there, megabytes were the
  // worker's CPU (a 25 MiB KV value cost ~120 ms of a 50 ms limit), on the host they are not.
  const own = new Uint8Array(out).buffer;
  try {
    return new ivm.ExternalCopy({ value: answer.value, bytes: own } satisfies PlatformBindingAnswer, { transferList: [own] });
  } catch (error) {
    throw new OpError('TypeError', `${what}: its answer cannot be copied into the worker (${error instanceof Error ? error.message : String(error)}).`);
  }
};

export const bindingAsyncOps = {
  'binding.call': callBinding,
} satisfies Partial<OperationTable>;
