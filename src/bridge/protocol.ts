// The wall between the host (Node) and a worker's isolate, declared once. Both sides compile
// this module: the sandbox runtime (src/sandbox/) implements SandboxEntries and calls
// HostCalls; the host (src/runtime/) implements HostCalls and calls SandboxEntries. The
// positional order in which the host's calls reach the sandbox, the list of entry points the
// host takes off a new context, and the wire types are all derived from here, so neither side
// can drift from the other without the type checker saying so.
//
// What crosses, and how (isolated-vm): the host's calls are Callbacks, which arrive in the
// isolate as plain functions of its realm and take only copies; the sandbox's entries are
// References the host holds, called with copies. No function, object of the host, or
// isolated-vm handle ever crosses into the isolate. Every argument a host call receives is
// hostile (tenant code may have taken over the sandbox runtime) and is checked against the
// validators in src/runtime/host-call-checks.ts before the host acts on it.
//
// Ids: a request id names the host's own record of a request and is allocated by the host.
// The ids the sandbox uses to match the host's answers to its own promises (async-call,
// timer and fetch ids) are the sandbox's own, scoped to its isolate: the host keeps them
// per isolate, bounds how many there are, and never uses one to find anything outside that
// isolate, so a forged id reaches at most the tenant's own work. Allocating them on the host
// would need a synchronous crossing per timer and per operation.

import type { EnvBinding } from './bindings.ts';

/**
 * What the sandbox may call on the host: one function each, made by the host once per
 * isolate. Their results never carry host objects (only copies).
 */
export interface HostCalls {
  /** One console line for the worker's log. */
  log(level: string, message: string): void;
  /** An exception nothing caught (in a timer, a waitUntil promise, ...), with its stack. */
  uncaught(requestId: number, text: string): void;
  /** Starts host timer `timerId` for request `requestId`; the host calls the `fireTimer` entry. */
  startTimer(requestId: number, timerId: number, delayMs: number): void;
  /** Cancels a timer started with startTimer. */
  clearTimer(timerId: number): void;
  /** All of request `requestId`'s work (response and waitUntil) is over. */
  requestDone(requestId: number): void;
  /** The outcome of the `dispatch` entry: the response head (and body, or how to pull it) or an error. */
  respond(requestId: number, result: DispatchResult): void;
  /**
   * The common outcome as primitives, which cross without isolated-vm's structured copy: a
   * response whose body is whole, headers joined as in HeaderLines.
   */
  respondSimple(requestId: number, status: number, statusText: string, headers: HeaderLines, body: string | Uint8Array | null, done: boolean): void;
  /**
   * respondSimple from a run on the host's own thread (an inline dispatch, `dispatch`'s
   * `inline`): the host takes the answer at once, inside the run, rather than as a task its
   * thread finds on a later turn. From the isolate's own thread it would make that thread wait.
   */
  respondSimpleNow(requestId: number, status: number, statusText: string, headers: HeaderLines, body: string | Uint8Array | null, done: boolean): void;
  /**
   * The outcome of the `invoke` entry (an RPC call): the method's result (a value the host hands
   * on, see HOST_CALLS_EXTERNAL_FROM), or its error's message and `errorName`; `done` as in
   * DispatchResult.
   */
  respondCall(requestId: number, ok: boolean, errorName: string, done: boolean, value: unknown): void;
  /** Synchronous host operation `op` (src/bridge/operations.ts); its errors arrive as errors. */
  sync(op: string, args: unknown[]): unknown;
  /** Starts asynchronous host operation `op`; the host answers through the `settle` entry. */
  async(callId: number, requestId: number, op: string, args: unknown[]): void;
  /**
   * `async` for an operation of VALUE_OPERATIONS (src/bridge/operations.ts), with the values it
   * carries (an RPC call's arguments as one list, an embedder's binding's arguments one by one)
   * after `args` (HOST_CALLS_EXTERNAL_FROM); the operation finds them in OpContext.values.
   */
  asyncValues(callId: number, requestId: number, op: string, args: unknown[], ...values: unknown[]): void;
  /** Evaluates sandbox module `name` nested in this call; it arrives through `receiveModule`. */
  loadModule(name: string): void;
}

export type HostCallName = keyof HostCalls;

/**
 * The most of one log line (a console line, an uncaught error's text, an unhandled rejection's
 * reason) that crosses the wall and reaches the log: the sandbox cuts a longer one before it
 * crosses, and the host cuts again whatever comes out of the isolate, the sandbox's word being
 * the tenant's if its code took the sandbox over.
 */
export const MAX_LOG_LINE_CHARS = 16 * 1024;

/**
 * The most bytes of header names and values a response the worker answers with (its status text
 * too), or a request its fetch() sends, may hold: Cloudflare's limit on each, 128 KB in total.
 * The sandbox checks before anything crosses (a head crosses in one go, copied onto the host's
 * main thread, which every tenant of the process shares); the host checks a fetch's again.
 */
export const MAX_HEAD_BYTES = 128 * 1024;

/** The bytes of a header list as it crosses (name, value, name, value, ...: byte strings, a character a byte). */
export function headBytes(headers: readonly string[]): number {
  let bytes = 0;
  for (let i = 0; i < headers.length; i++) bytes += headers[i]!.length;
  return bytes;
}

/**
 * How each host call crosses, in the order the host hands them to the `init` entry (isolated-vm
 * Callbacks cross only as direct arguments, so positionally). `wait`: the isolate waits for the
 * host's answer; `post`: the call is queued to the host's thread and the isolate goes on (no
 * result, and the cheapest crossing).
 */
export const HOST_CALLS = {
  log: 'post',
  uncaught: 'post',
  startTimer: 'post',
  clearTimer: 'post',
  requestDone: 'post',
  sync: 'wait',
  async: 'post',
  asyncValues: 'post',
  loadModule: 'wait',
  respond: 'post',
  respondSimple: 'post',
  respondSimpleNow: 'wait',
  respondCall: 'post',
} as const satisfies { [K in HostCallName]: 'wait' | 'post' };

/**
 * Host calls whose arguments from the given position on are values the host hands on, to
 * another isolate or to an embedder's function: on isolet's isolated-vm each reaches the host as
 * an ExternalCopy (the Callback option `externalFrom`, native/isolated-vm/zzz-external-from.patch),
 * copied out on the isolate's thread at the moment of the call and read where it is used, never
 * copied onto the host's main thread to be handed on (src/runtime/rpc-value.ts). A stock build
 * ignores the option and hands over copies.
 */
export const HOST_CALLS_EXTERNAL_FROM: { readonly [K in HostCallName]?: number } = { asyncValues: 4, respondCall: 4 };

/** The host calls in the order `init` takes them. */
export const HOST_CALL_ORDER = Object.keys(HOST_CALLS) as HostCallName[];

/** What the host may call in the sandbox: the runtime's entry points, taken off each new context. */
export interface SandboxEntries {
  /**
   * Once per isolate, before the worker's code loads: whether isolated-vm runs `drained` (the
   * host installed it as the drain hook), then the host calls, in HOST_CALL_ORDER.
   */
  init(drainHook: boolean, ...calls: HostCalls[HostCallName][]): void;
  /**
   * Run by isolet's isolated-vm at the end of every task into the isolate, once the microtask
   * queue is empty (`Reference.setDrainHook`, native/isolated-vm/zzz-drain-hook.patch): resumes
   * what waited for the queue to drain (src/sandbox/dispatch.ts, afterMicrotasks).
   */
  drained(): void;
  /**
   * After the worker's code ran: builds `env` from its vars and bindings (null: none) and finds
   * its handlers; returns what is wrong with either, if anything. `needsScheduled`: the worker
   * has cron triggers, so it must have a scheduled handler.
   */
  register(namespace: Record<string, unknown> | null, env: unknown, bindings: Record<string, EnvBinding> | null, bindGlobals: boolean, needsScheduled: boolean): string | undefined;
  /**
   * Starts request `requestId` (head fields as primitives, headers as HeaderLines). Returns at
   * once: the answer comes back through `respond`/`respondSimple`, since isolated-vm's promise
   * handshake costs more than a small request. `entrypoint` names the export that answers (a
   * service binding's `entrypoint`); '' is the default export.
   */
  dispatch(requestId: number, method: string, url: string, headers: HeaderLines, hasBody: boolean, now: number, entrypoint: string, inline: boolean): void;
  /**
   * Starts RPC call `requestId`: method `method` of entrypoint `entrypoint` ('' the default
   * export) with `args` (a structured clone, read on this isolate's thread). Returns at once;
   * the outcome comes back through `respondCall`.
   */
  invoke(requestId: number, entrypoint: string, method: string, args: unknown[], now: number): void;
  /**
   * Before the worker's modules are linked: builds `env` (as `register` would, which then uses
   * it) and puts the exports of built-in module `name` ('cloudflare:workers', which exports env)
   * where that module's own source takes them once, when it is evaluated, before any tenant code
   * runs (see src/runtime/worker-script.ts). Returns what is wrong with env's bindings, if anything.
   */
  exposeBuiltinModule(name: string, env: unknown, bindings: Record<string, EnvBinding> | null): string | undefined;
  /**
   * Starts scheduled event `requestId` (a cron trigger: `controller.cron`, `.scheduledTime`).
   * Returns at once; the outcome comes back through `respond`, without a response body: a
   * result with a status when the handler finished, an error when it threw.
   */
  scheduled(requestId: number, cron: string, scheduledTime: number, now: number): void;
  /** The next chunk of a streamed response body (see PullResult). */
  pullResponse(requestId: number, now: number): Promise<PullResult>;
  /**
   * The chunk the last pullResponse announced by its size, as a buffer copied out, or a slice
   * of a text body (null if there is none). Runs no tenant code: the host charges its CPU, the copy, to no request.
   */
  takeResponseChunk(requestId: number): ArrayBuffer | string | null;
  /**
   * The next piece of the large value async call `callId` carries (src/sandbox/outgoing-payloads.ts):
   * a buffer copied out, or text the host encodes as UTF-8; null when there is no more; false
   * when the value was detached or resized after the call. Runs no tenant code: the host
   * charges its CPU, the copy, to no request.
   */
  takePayload(callId: number): ArrayBuffer | string | null | false;
  /** The host will pull no more of the response body: the worker's stream is cancelled. */
  cancelResponse(requestId: number, now: number): void;
  /** Host timer `timerId` of request `requestId` went off. */
  fireTimer(requestId: number, timerId: number, now: number): void;
  /** The client of request `requestId` went away: its request.signal fires. */
  abort(requestId: number, now: number): void;
  /** The host ended request `requestId`'s work (its waitUntil ran too long, say): forget it. */
  end(requestId: number): void;
  /** The outcome of an async host call: a value, or an error as its name and message (see WireError). */
  settle(callId: number, now: number, ok: boolean, value: unknown, errorName: string): void;
  /** A sandbox module the host compiled for `loadModule`: the function that makes its exports, evaluated here, nested in that call. */
  receiveModule(name: string, module: unknown): void;
}

export type EntryName = keyof SandboxEntries;

/** Every entry point, as the host takes them off a new context's global. */
export const ENTRY_NAMES = [
  'init', 'register', 'dispatch', 'scheduled', 'invoke', 'exposeBuiltinModule', 'pullResponse', 'takeResponseChunk', 'takePayload', 'cancelResponse', 'fireTimer', 'abort', 'end',
  'settle', 'receiveModule', 'drained',
] as const satisfies readonly EntryName[];

/** Compile-time check that ENTRY_NAMES lists every entry: a name missing there is an error here. */
export type AllEntriesListed = Exclude<EntryName, (typeof ENTRY_NAMES)[number]> extends never ? true : never;
const allEntriesListed: AllEntriesListed = true;
void allEntriesListed;

/** The global a new context holds its entries in until the host takes them (and deletes it). */
export const ENTRIES_GLOBAL = '__isolet';

/**
 * Header pairs as one string, name and value alternating, separated by '\n' (which no valid
 * header name or value holds, RFC 9110 §5.5): a primitive crosses without a structured copy.
 */
export type HeaderLines = string;

/**
 * The body in a dispatch result: whole (a string or bytes, the fast path: one crossing per
 * request), none, or streamed: the host pulls it with pullResponse as its socket takes more;
 * `length` is its byte length when known (FixedLengthStream, a request body with a
 * Content-Length passed through). `requestBody: true` says the body is the request's own body,
 * unread (`new Response(request.body)`): the host sends it on by itself, without a crossing per
 * chunk, and calls cancelResponse when it is done.
 */
export type DispatchBody = Uint8Array | string | null | StreamedBody;

export interface StreamedBody {
  stream: true;
  length: number | null;
  requestBody: boolean;
}

/** Why a request got no response from the worker's handler. */
export type DispatchFailure = 'exception' | 'bad-response' | 'no-handler';

/**
 * `done`: the request's work (waitUntil included) was over when it answered. `noRetry`: a
 * scheduled event's handler called `controller.noRetry()`.
 */
export type DispatchResult = (
  | { status: number; statusText: string; headers: string[]; body: DispatchBody }
  | { error: string; kind: DispatchFailure }
) & { done?: boolean; noRetry?: boolean };

/**
 * A chunk of a streamed response body: bytes, a slice of a text body (the host encodes it),
 * the size of a large chunk the host then takes with takeResponseChunk, null at its end, or the
 * stream's failure (the host cuts the connection, so that the client cannot take a truncated
 * body as whole, and logs the error as the worker's exception).
 */
export type PullResult = ArrayBuffer | string | number | null | { error: string };

/**
 * An error crosses as its name and message: the sandbox makes an error of its own realm from
 * them (a built-in error type, else a DOMException of that name), never a host object.
 */
export interface WireError {
  name: string;
  message: string;
}
