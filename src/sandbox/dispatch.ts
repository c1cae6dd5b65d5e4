// Runs one request through the tenant's handler: builds the Request, calls `fetch(request,
// env, ctx)` (module syntax) or the 'fetch' listeners (service-worker syntax), and turns what
// comes back into the plain values the host copies out. Every failure becomes a result the
// host can log and answer with, never an exception that leaks sandbox internals.

import { hostCalls, callAsync } from './host-calls.ts';
import { headBytes, MAX_HEAD_BYTES, type DispatchResult, type HeaderLines, type PullResult } from '../bridge/protocol.ts';
import type { OperationResult } from '../bridge/operations.ts';
import { enterFromHost, requestEndHooks } from './request-context.ts';
import { logLine } from './host-budget.ts';
import { MAX_WHOLE_BODY_CROSSING, SLICE, wholeBodySource } from './whole-body-source.ts';
import { DOMException, events, newAbortSignal, type Event, type GlobalScopeEvents } from '../api/events/sandbox.ts';
import {
  ArrayBufferPrototypeGetByteLength, ArrayIsArray, ArrayPrototypeJoin, ArrayPrototypePush, ArrayPrototypeSlice, Error,
  JSONStringify, Number, Object, ObjectCreate, ObjectDefineProperty, ObjectFreeze, ObjectGetOwnPropertyDescriptor, ObjectGetPrototypeOf, ObjectHasOwn, ObjectKeys,
  Promise, PromisePrototypeThen, PromiseResolve, ReflectApply, ReflectConstruct, RegExpPrototypeTest, SafeMap, SafeWeakMap, String, StringPrototypeSplit, StringPrototypeToLowerCase, StringPrototypeTrim,
  TypeError, TypedArrayPrototypeGetBuffer, TypedArrayPrototypeGetByteLength, TypedArrayPrototypeGetByteOffset,
  TypedArrayPrototypeSet, TypedArrayPrototypeSubarray, Uint8Array, isUint8Array,
} from './primordials.ts';
import { cloudflareWorkersClasses, isDurableObjectClass } from '../api/cloudflare-workers/sandbox.ts';
import { platformObjectName } from '../api/service/sandbox.ts';
import { requestFromHost, responseToHost, signalAbort, type BodySource, type HostResponse, type IncomingSignal } from './web-platform.ts';

type Handler = (request: unknown, env: unknown, ctx: unknown) => unknown;

/**
 * Without the drain hook (isolated-vm's prebuilt binary): turns of the microtask queue a
 * handler's leftover promise callbacks get to call ctx.waitUntil().
 */
const LATE_WAIT_UNTIL_TURNS = 16;

/** True when isolated-vm runs the `drained` entry at the end of every task (isolet's build; set by init). */
let drainHook = false;
/** Continuations waiting for the microtask queue to be empty (see afterMicrotasks). */
let drainWaiters: ((inline: boolean) => void)[] = [];
/** The task running now is a run on the host's own thread (an inline dispatch), until it drains. */
let inline = false;

export function useDrainHook(on: boolean): void {
  drainHook = on;
}

/**
 * Awaited, resumes once every promise callback queued so far has run: ctx.waitUntil() from
 * callbacks a handler left queued still belongs to its request (workerd drains the microtask
 * queue before it looks). With the drain hook that is exact; without it, a fixed number of
 * turns, which a chain of callbacks deeper than that outruns. A thenable of the sandbox's own,
 * not a promise: `await` of a promise reads its `constructor`, which tenant code may have
 * replaced with a getter.
 */
const afterMicrotasks = ObjectFreeze({
  __proto__: null,
  /** Resumes with whether the task that drained ran on the host's thread. */
  then(resume: (inline: boolean) => void): void {
    if (drainHook) ArrayPrototypePush(drainWaiters, resume);
    else void lateTurns(resume);
  },
});

async function lateTurns(resume: (inline: boolean) => void): Promise<void> {
  for (let turn = 0; turn < LATE_WAIT_UNTIL_TURNS; turn++) await undefined;
  resume(false);
}

/**
 * The `drained` entry: isolated-vm runs it at the end of every task into the isolate, once the
 * microtask queue is empty; what it resumes runs before that task ends.
 */
export function drained(): void {
  // What the waiters resume runs after this returns, still in this task.
  const onHostThread = inline;
  inline = false;
  if (drainWaiters.length === 0) return;
  const waiters = drainWaiters;
  drainWaiters = [];
  for (let i = 0; i < waiters.length; i++) waiters[i]!(onHostThread);
}

interface Worker {
  /** The default export's fetch and scheduled handlers when the default export is an object; undefined otherwise. */
  fetch: Handler | undefined;
  scheduled: Handler | undefined;
  thisArg: unknown;
  env: unknown;
  /** The main module's namespace (module syntax); null for a service-worker script. */
  exports: Record<string, unknown> | null;
}

let worker: Worker | undefined;
let globalScope: GlobalScopeEvents | undefined;

/**
 * A request on this side of the wall, while its work goes on (it leaves `inFlight` when it
 * ends). Its phase mirrors the host's RequestContext: the handler runs (`dispatching`), the
 * host pulls the response body (`streaming`), or only waitUntil work is left (`waitUntil`).
 */
interface InFlight extends IncomingSignal {
  phase: 'dispatching' | 'streaming' | 'waitUntil';
  /** The promises given to ctx.waitUntil(), once there is one. */
  waitUntil: Promise<unknown>[] | null;
  /** The response body the host is pulling (pullResponse), until it ends or is cancelled. */
  responseBody: BodySource | undefined;
  /** What is left of the worker's last chunk when it was larger than a slice. */
  responseRest: Uint8Array | undefined;
  /** A large chunk pullResponse announced, until the host takes it (takeResponseChunk). */
  responseOut: Uint8Array | string | undefined;
  /** The request's body as pulled from the host, if it has one. */
  requestBody: BodySource | null;
}
const inFlight = new SafeMap<number, InFlight>();

/** service-worker syntax: requests are dispatched to the global scope's 'fetch' listeners. */
export function connectServiceWorkerScope(events: GlobalScopeEvents): void {
  globalScope = events;
}

const NO_SCHEDULED_HANDLER =
  'The worker has cron triggers but no scheduled handler: add `async scheduled(controller, env, ctx) { ... }` to its default export ' +
  "(service-worker syntax: addEventListener('scheduled', ...)), or remove its crons ([triggers] crons in wrangler.toml).";

/**
 * Called once after the worker's code is evaluated. A worker needs a fetch handler, or a
 * scheduled one (a worker that only runs on cron triggers); `needsScheduled` (it has cron
 * triggers) requires the scheduled one.
 */
export function registerWorker(namespace: Record<string, unknown> | null, env: unknown, needsScheduled: boolean): string | undefined {
  if (namespace) {
    const durable = durableObjectProblem(namespace);
    if (durable !== undefined) return durable;
    const main = namespace.default as Record<string, unknown> | undefined;
    // A class (`export default class extends WorkerEntrypoint`) is constructed per request.
    if (typeof main === 'function') {
      const prototype = (main as { prototype?: Record<string, unknown> }).prototype;
      if (needsScheduled && typeof prototype?.scheduled !== 'function') return NO_SCHEDULED_HANDLER;
      worker = { fetch: undefined, scheduled: undefined, thisArg: undefined, env, exports: namespace };
      return undefined;
    }
    const usable = main !== null && typeof main === 'object';
    const fetch = usable && typeof main.fetch === 'function' ? main.fetch as Handler : undefined;
    const scheduled = usable && typeof main.scheduled === 'function' ? main.scheduled as Handler : undefined;
    if (fetch === undefined && scheduled === undefined) {
      const exported = ArrayPrototypeJoin(ObjectKeys(namespace), ', ') || 'nothing';
      return `The worker's main module has no fetch handler: it must have \`export default { async fetch(request, env, ctx) { ... } }\` (or a scheduled handler; it exports ${exported}).`;
    }
    if (needsScheduled && scheduled === undefined) return NO_SCHEDULED_HANDLER;
    worker = { fetch, scheduled, thisArg: main, env, exports: namespace };
    return undefined;
  }
  if (!globalScope?.has('fetch') && !globalScope?.has('scheduled')) {
    return "The worker script registers no fetch handler: call addEventListener('fetch', (event) => event.respondWith(...)), or use module syntax with `export default { fetch }`.";
  }
  if (needsScheduled && !globalScope.has('scheduled')) return NO_SCHEDULED_HANDLER;
  worker = { fetch: undefined, scheduled: undefined, thisArg: undefined, env, exports: null };
  return undefined;
}

/** What is wrong with a worker that exports Durable Object classes: isolet has none yet. */
function durableObjectProblem(namespace: Record<string, unknown>): string | undefined {
  const names = ObjectKeys(namespace);
  const classes: string[] = [];
  for (let i = 0; i < names.length; i++) if (isDurableObjectClass(namespace[names[i]!])) ArrayPrototypePush(classes, names[i]!);
  if (classes.length === 0) return undefined;
  return `Durable Objects are not supported by isolet yet: the worker exports ${ArrayPrototypeJoin(classes, ', ')}, ` +
    `a class that extends DurableObject from 'cloudflare:workers'. Remove ${classes.length === 1 ? 'it' : 'them'} ` +
    '(and the durable_objects bindings that name them) to deploy this worker on isolet.';
}

/**
 * The export that answers for `entrypoint` ('' or 'default': the default export), or an Error
 * that names what the worker exports instead.
 */
function entrypointOf(w: Worker, entrypoint: string): unknown {
  const exports = w.exports;
  if (exports === null) throw new Error(`The worker is a service-worker script, which has no entrypoint '${entrypoint}': give it module syntax with \`export class ${entrypoint} extends WorkerEntrypoint\`.`);
  const name = entrypoint === '' ? 'default' : entrypoint;
  const target = ObjectHasOwn(exports, name) ? exports[name] : undefined;
  if (target === undefined || target === null || (typeof target !== 'object' && typeof target !== 'function')) {
    throw new Error(`The worker has no entrypoint named '${name}': it exports ${ArrayPrototypeJoin(ObjectKeys(exports), ', ') || 'nothing'}. ` +
      `Export it, e.g. \`export class ${name === 'default' ? 'Api' : name} extends WorkerEntrypoint { ... }\`, or fix the binding's entrypoint.`);
  }
  return target;
}

/**
 * The receiver of a request or a call: an instance of the entrypoint's class, made with the
 * call's ctx and the worker's env as workerd does (`this.ctx`, `this.env`), or the exported
 * object itself.
 */
function receiverOf(w: Worker, entrypoint: string, ctx: ExecutionContext): { self: object; instance: boolean } {
  const target = entrypointOf(w, entrypoint);
  if (typeof target === 'function') return { self: ReflectConstruct(target as new (...args: unknown[]) => object, [ctx, w.env]), instance: true };
  return { self: target as object, instance: false };
}

/** Methods RPC never reaches: the Fetcher's own, the object model's, and what would make a stub thenable. */
function notRpc(method: string): boolean {
  return method === 'fetch' || method === 'connect' || method === 'constructor' || method === 'then' || method === 'dup' || method === 'toJSON';
}

/**
 * The method an RPC call names: on an instance, a method of its class or of a class it extends
 * (never an own property, and nothing of WorkerEntrypoint or Object); on an exported object,
 * one of its own functions. workerd's message when there is none.
 */
function rpcMethod(receiver: { self: object; instance: boolean }, method: string): Function {
  let found: unknown;
  if (!notRpc(method)) {
    if (receiver.instance) {
      const base = cloudflareWorkersClasses().WorkerEntrypoint.prototype;
      for (let proto = ObjectGetPrototypeOf(receiver.self); proto !== null && proto !== base && proto !== Object.prototype; proto = ObjectGetPrototypeOf(proto)) {
        const desc = ObjectGetOwnPropertyDescriptor(proto, method);
        if (desc !== undefined) {
          found = desc.value;
          break;
        }
      }
    } else {
      const desc = ObjectGetOwnPropertyDescriptor(receiver.self, method);
      found = desc?.value;
    }
  }
  if (typeof found !== 'function') throw new TypeError(`The RPC receiver does not implement the method "${method}".`);
  return found;
}

/**
 * What a thrown value says about itself, for the log (the host puts "Uncaught " before it), cut
 * to one log line: a message of megabytes stays in the isolate. Never throws: the value is the
 * tenant's (a Proxy whose traps throw, an object whose toString does), and the request must still
 * be answered as one that threw.
 */
function errorText(error: unknown): string {
  return logLine(describeError(error));
}

function describeError(error: unknown): string {
  try {
    if (error instanceof Error) {
      try {
        const stack = error.stack;
        if (typeof stack === 'string' && stack.length > 0) return stack;
      } catch {}
      return `${error.name}: ${error.message}`;
    }
    if (typeof error === 'string') return error;
    try {
      const json: unknown = JSONStringify(error);
      if (typeof json === 'string') return json;
    } catch {}
    return String(error);
  } catch {
    return `${typeof error === 'object' && error !== null ? 'an object' : typeof error} that could not be described (reading it threw)`;
  }
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return (value as object).constructor?.name ?? 'object';
}

class ExecutionContext {
  #requestId: number;
  constructor(requestId: number) {
    this.#requestId = requestId;
  }
  waitUntil(promise: unknown): void {
    const entry = inFlight.get(this.#requestId);
    if (!entry) return;
    ArrayPrototypePush(entry.waitUntil ??= [], PromiseResolve(promise));
  }
  passThroughOnException(): void {
    // No origin to fall through to on a self-hosted runtime: accepted for compatibility.
  }
  get props(): object {
    return {};
  }
}
ObjectDefineProperty(ExecutionContext, 'name', { __proto__: null, value: 'ExecutionContext' } as PropertyDescriptor);

// FetchEvent (Workers' service-worker syntax): one class for the whole isolate, made on first
// use (it extends the Web platform's Event) and exposed as the global `FetchEvent`. Tenant code
// may construct one (`new FetchEvent('fetch', { request })`), as workerd allows; only the
// runtime's own events answer a request through respondWith.
const eventInternals = new SafeWeakMap<object, { request: unknown; ctx: ExecutionContext | undefined; onRespond: ((value: unknown) => void) | undefined; responded: boolean }>();
let FetchEventClass: (new (type: string, init?: { request?: unknown }) => object) | undefined;

export function fetchEventClass(): new (type: string, init?: { request?: unknown }) => object {
  if (FetchEventClass) return FetchEventClass;
  const EventClass = events().Event as unknown as new (type: string) => object;
  class FetchEvent extends EventClass {
    constructor(type: string, init?: { request?: unknown }) {
      if (arguments.length === 0) throw new TypeError("Failed to construct 'FetchEvent': 1 argument required, but only 0 present.");
      super(String(type));
      eventInternals.set(this, { request: init?.request, ctx: undefined, onRespond: undefined, responded: false });
    }
    get request(): unknown {
      return eventInternals.get(this)?.request;
    }
    respondWith(response: unknown): void {
      const internals = eventInternals.get(this);
      if (!internals) throw new TypeError('Illegal invocation');
      if (internals.responded) throw new DOMException('FetchEvent.respondWith() has already been called; it can only be called once.', 'InvalidStateError');
      internals.responded = true;
      internals.onRespond?.(response);
    }
    waitUntil(promise: unknown): void {
      eventInternals.get(this)?.ctx?.waitUntil(promise);
    }
    passThroughOnException(): void {}
  }
  // The bundle is minified: the name tenants see is pinned.
  ObjectDefineProperty(FetchEvent, 'name', { __proto__: null, value: 'FetchEvent' } as PropertyDescriptor);
  FetchEventClass = FetchEvent;
  return FetchEvent;
}

function makeFetchEvent(request: unknown, ctx: ExecutionContext, onRespond: (value: unknown) => void): unknown {
  const event = new (fetchEventClass())('fetch', { request });
  const internals = eventInternals.get(event)!;
  internals.ctx = ctx;
  internals.onRespond = onRespond;
  return event;
}

/**
 * What the handler returned (a Response, or a promise of one: the caller awaits it), for every
 * case but the default export's own fetch, which handleRequest calls itself.
 */
function callHandler(w: Worker, entrypoint: string, request: unknown, ctx: ExecutionContext): unknown {
  if (w.exports !== null) {
    const receiver = receiverOf(w, entrypoint, ctx);
    const fetch = (receiver.self as { fetch?: unknown }).fetch;
    if (typeof fetch !== 'function') {
      throw new Error(`The worker's entrypoint '${entrypoint === '' ? 'default' : entrypoint}' has no fetch() method, so it cannot take HTTP requests: add \`fetch(request) { ... }\`, or call its methods over RPC.`);
    }
    // A class's fetch takes only the request (env and ctx are on `this`), as in workerd.
    return receiver.instance ? ReflectApply(fetch, receiver.self, [request]) : ReflectApply(fetch, receiver.self, [request, w.env, ctx]);
  }
  let response: unknown;
  let called = false;
  const event = makeFetchEvent(request, ctx, (value) => {
    called = true;
    response = value;
  });
  globalScope!.dispatch(event as Event);
  if (!called) throw new Error('The fetch event listener did not call event.respondWith(); respond to every request.');
  return response;
}

// Scheduled events (cron triggers). Module syntax gets a ScheduledController; service-worker
// syntax a ScheduledEvent (an Event with the same fields, and waitUntil) sent to its 'scheduled'
// listeners. Both classes are made on first use, like FetchEvent, and are no globals.

interface ScheduledState {
  cron: string;
  scheduledTime: number;
  noRetry: boolean;
  ctx: ExecutionContext | undefined;
}

const scheduledStates = new SafeWeakMap<object, ScheduledState>();

function scheduledState(self: object): ScheduledState {
  const state = scheduledStates.get(self);
  if (state === undefined) throw new TypeError('Illegal invocation');
  return state;
}

let ScheduledControllerClass: (new () => object) | undefined;

function controllerClass(): new () => object {
  if (ScheduledControllerClass === undefined) {
    class ScheduledController {
      constructor() {
        throw new TypeError('Illegal constructor');
      }
      get cron(): string {
        return scheduledState(this).cron;
      }
      get scheduledTime(): number {
        return scheduledState(this).scheduledTime;
      }
      noRetry(): void {
        scheduledState(this).noRetry = true;
      }
    }
    ObjectDefineProperty(ScheduledController, 'name', { __proto__: null, value: 'ScheduledController' } as PropertyDescriptor);
    ScheduledControllerClass = ScheduledController;
  }
  return ScheduledControllerClass;
}

/** The members a ScheduledEvent shares with the ScheduledController. */
const CONTROLLER_MEMBERS = ['cron', 'scheduledTime', 'noRetry'] as const;

function scheduledController(state: ScheduledState): object {
  // Made without running the constructor, which tenant code cannot call either.
  const controller = ObjectCreate(controllerClass().prototype) as object;
  scheduledStates.set(controller, state);
  return controller;
}

let ScheduledEventClass: (new (state: ScheduledState) => object) | undefined;

function scheduledEvent(state: ScheduledState): Event {
  if (ScheduledEventClass === undefined) {
    const EventClass = events().Event as unknown as new (type: string) => object;
    class ScheduledEvent extends EventClass {
      constructor(state: ScheduledState) {
        super('scheduled');
        scheduledStates.set(this, state);
      }
      waitUntil(promise: unknown): void {
        scheduledState(this).ctx?.waitUntil(promise);
      }
    }
    ObjectDefineProperty(ScheduledEvent, 'name', { __proto__: null, value: 'ScheduledEvent' } as PropertyDescriptor);
    const controller = controllerClass().prototype;
    for (let i = 0; i < CONTROLLER_MEMBERS.length; i++) {
      const member = CONTROLLER_MEMBERS[i]!;
      ObjectDefineProperty(ScheduledEvent.prototype, member, ObjectGetOwnPropertyDescriptor(controller, member)!);
    }
    ScheduledEventClass = ScheduledEvent;
  }
  return new ScheduledEventClass(state) as Event;
}

/** Calls the worker's scheduled handler: the default export's (an object's, or a class's method, as for fetch), or the 'scheduled' listeners. */
function callScheduled(w: Worker, state: ScheduledState, ctx: ExecutionContext): unknown {
  if (w.exports === null) {
    globalScope!.dispatch(scheduledEvent(state));
    return undefined;
  }
  if (w.scheduled) return ReflectApply(w.scheduled, w.thisArg, [scheduledController(state), w.env, ctx]);
  const receiver = receiverOf(w, '', ctx);
  const scheduled = (receiver.self as { scheduled?: unknown }).scheduled;
  if (typeof scheduled !== 'function') throw new Error(NO_SCHEDULED_HANDLER_NOW);
  // A class's scheduled takes only the controller (env and ctx are on `this`), as in workerd.
  return receiver.instance
    ? ReflectApply(scheduled, receiver.self, [scheduledController(state)])
    : ReflectApply(scheduled, receiver.self, [scheduledController(state), w.env, ctx]);
}

const NO_SCHEDULED_HANDLER_NOW = 'The worker has no scheduled handler: add `async scheduled(controller, env, ctx) { ... }` to its default export.';

/**
 * Runs scheduled event `requestId` through the worker's scheduled handler (the `scheduled`
 * entry, main.ts) and answers the host with the outcome; its waitUntil work goes on after, as a
 * request's does. Never rejects.
 */
export async function handleScheduled(requestId: number, cron: string, scheduledTime: number, now: number): Promise<void> {
  enterFromHost(requestId, now);
  const w = worker;
  if (w === undefined || (w.exports === null && !globalScope!.has('scheduled'))) {
    return hostCalls.respond(requestId, { error: NO_SCHEDULED_HANDLER_NOW, kind: 'no-handler', done: true });
  }
  const entry: InFlight = {
    phase: 'dispatching', signal: null, waitUntil: null, responseBody: undefined, responseRest: undefined, responseOut: undefined,
    requestBody: null,
  };
  inFlight.set(requestId, entry);
  const ctx = new ExecutionContext(requestId);
  const state: ScheduledState = { cron, scheduledTime, noRetry: false, ctx };
  let result: DispatchResult;
  try {
    await callScheduled(w, state, ctx);
    result = { status: 200, statusText: '', headers: [], body: null };
  } catch (error) {
    result = { error: errorText(error), kind: 'exception' };
  }
  await afterMicrotasks;
  if (settle(requestId, entry, false)) result.done = true;
  if (state.noRetry) result.noRetry = true;
  hostCalls.respond(requestId, result);
}

/**
 * The request's response is out: once its waitUntil work is settled too, its work is over.
 * Returns true when that is already the case; then the caller tells the host along with the
 * response (one crossing fewer), otherwise hostCalls.requestDone tells it later.
 */
function settle(requestId: number, entry: InFlight, tellHost = true): boolean {
  // The host may have ended the request meanwhile (e.g. while a body chunk was awaited).
  if (inFlight.get(requestId) !== entry) return false;
  entry.phase = 'waitUntil';
  const waitUntil = entry.waitUntil;
  if (waitUntil === null) {
    // endRequest's work, done here: one function fewer for every request.
    inFlight.delete(requestId);
    for (let i = 0; i < requestEndHooks.length; i++) requestEndHooks[i]!(requestId);
    if (tellHost) hostCalls.requestDone(requestId);
    return true;
  }
  awaitWaitUntil(requestId, waitUntil);
  return false;
}

/**
 * The request's ctx.waitUntil() promises, then its end. A function of its own, so that settle,
 * which every request runs, makes no closures' context for what few requests need.
 */
function awaitWaitUntil(requestId: number, waitUntil: Promise<unknown>[]): void {
  // waitUntil promises can add more waitUntil promises: wait until the list stops growing.
  const drain = (seen: number): Promise<void> => {
    const count = waitUntil.length - seen;
    return PromisePrototypeThen(allSettled(ArrayPrototypeSlice(waitUntil, seen), (reason) => hostCalls.uncaught(requestId, errorText(reason))), () => {
      if (waitUntil.length > seen + count) return drain(seen + count);
    });
  };
  const finish = () => {
    endRequest(requestId);
    hostCalls.requestDone(requestId);
  };
  PromisePrototypeThen(drain(0), finish, finish);
}

/**
 * Promise.allSettled on captured built-ins (the realm's looks up `Promise.resolve` and each
 * promise's `then`): resolves once every promise has settled, reporting each rejection.
 */
function allSettled(promises: Promise<unknown>[], onRejected: (reason: unknown) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    let left = promises.length;
    if (left === 0) return resolve();
    const done = () => {
      if (--left === 0) resolve();
    };
    for (let i = 0; i < promises.length; i++) {
      PromisePrototypeThen(promises[i]!, done, (reason) => {
        onRejected(reason);
        done();
      });
    }
  });
}

/**
 * Runs request `requestId` through the worker's handler and answers the host (the `dispatch`
 * entry, main.ts). Never rejects. A response whose body is whole goes back as primitives
 * (hostCalls.respondSimple) in the same turn as the handler's answer: one promise hop, the one
 * that awaits the handler, so that microtasks the handler queued run before its response is
 * taken, as after any await.
 */
export async function handleRequest(
  requestId: number,
  method: string,
  url: string,
  headers: HeaderLines,
  hasBody: boolean,
  now: number,
  entrypoint: string,
  inlineRun: boolean,
): Promise<void> {
  // The task running now runs on the host's thread: answers it makes go back with respondSimpleNow.
  if (inlineRun) inline = true;
  enterFromHost(requestId, now);
  const w = worker;
  if (w === undefined) return hostCalls.respond(requestId, { error: 'The worker is not loaded.', kind: 'no-handler' });
  const body: BodySource | null = hasBody ? bodyFromHost(requestId, declaredLength(headers)) : null;
  // Every field an own property from the start: a setter the tenant put on Object.prototype
  // must never see an assignment to one (takeResponseChunk runs no tenant code).
  const entry: InFlight = {
    phase: 'dispatching', signal: null, waitUntil: null, responseBody: undefined, responseRest: undefined, responseOut: undefined,
    requestBody: body,
  };
  inFlight.set(requestId, entry);
  let result: DispatchResult;
  let whole: HostResponse | undefined;
  try {
    const request = requestFromHost(method, url, headers, body, entry);
    const ctx = new ExecutionContext(requestId);
    // The usual handler, called here rather than through callHandler: one function fewer.
    const response = await (w.fetch !== undefined && entrypoint === '' ? ReflectApply(w.fetch, w.thisArg, [request, w.env, ctx]) : callHandler(w, entrypoint, request, ctx));
    const head = responseToHost(response);
    if (head === null) {
      result = {
        error: `The fetch handler returned ${typeName(response)} instead of a Response: return (or resolve to) a Response object, e.g. \`return new Response('ok')\`.`,
        kind: 'bad-response',
      };
    } else if (head.status === 0) {
      result = {
        error: 'The fetch handler returned Response.error(), a network error, which cannot be sent to a client: return a Response with a status such as 502 instead.',
        kind: 'bad-response',
      };
    } else if (
      // One header (the usual: the Content-Type a body implies) is counted here, a function fewer.
      (head.headers.length === 2 ? head.headers[0]!.length + head.headers[1]!.length : headBytes(head.headers)) + head.statusText.length > MAX_HEAD_BYTES
    ) {
      const unsent = head.body;
      if (unsent !== null && typeof unsent === 'object' && !isUint8Array(unsent)) unsent.cancel?.(undefined);
      result = {
        error: `The fetch handler's response has ${headBytes(head.headers) + head.statusText.length} bytes of headers and status text, over the ${MAX_HEAD_BYTES / 1024} KB a response may have in total: send large values in the body.`,
        kind: 'bad-response',
      };
    } else {
      let out = head.body;
      if (out !== null && (typeof out === 'string' ? out.length : isUint8Array(out) ? TypedArrayPrototypeGetByteLength(out) : 0) > MAX_WHOLE_BODY_CROSSING) {
        out = wholeBodySource(out as string | Uint8Array);
      }
      if (out === null || typeof out === 'string' || isUint8Array(out)) {
        whole = head;
        whole.body = out;
      } else {
        // Streamed: the request's work goes on until the host has pulled the body to its end.
        entry.responseBody = out;
        entry.phase = 'streaming';
        const length = typeof out.length === 'number' ? out.length : null;
        result = {
          status: head.status, statusText: head.statusText, headers: ArrayPrototypeSlice(head.headers),
          body: { stream: true, length, requestBody: out === entry.requestBody },
        };
      }
    }
  } catch (error) {
    result = { error: errorText(error), kind: 'exception' };
  }
  // ctx.waitUntil() from promise callbacks the handler left queued still belongs to this
  // request: they run before deciding whether the request's work ends with its response.
  const onHostThread = entry.phase !== 'streaming' && await afterMicrotasks;
  // The request's work may be over with its response: the host then hears it in the same call.
  const done = entry.phase !== 'streaming' && settle(requestId, entry, false);
  if (whole !== undefined) {
    const out = whole.body as string | Uint8Array | null;
    (onHostThread ? hostCalls.respondSimpleNow : hostCalls.respondSimple)(requestId, whole.status, whole.statusText, ArrayPrototypeJoin(whole.headers, '\n'), out, done);
    return;
  }
  if (done) result!.done = true;
  hostCalls.respond(requestId, result!);
}

/**
 * Runs RPC call `requestId`: method `method` of the entrypoint with `args` (copies the host
 * made), and answers the host through respondCall (never rejects). The call is a request of its
 * own on this side as on the host's: its ctx.waitUntil() work keeps it in flight, and its CPU is
 * charged to it.
 */
export async function handleCall(requestId: number, entrypoint: string, method: string, args: unknown[], now: number): Promise<void> {
  enterFromHost(requestId, now);
  const entry: InFlight = {
    phase: 'dispatching', signal: null, waitUntil: null, responseBody: undefined, responseRest: undefined, responseOut: undefined,
    requestBody: null,
  };
  inFlight.set(requestId, entry);
  let ok = true;
  let value: unknown;
  let errorName = '';
  try {
    const w = worker;
    if (w === undefined) throw new Error('The worker is not loaded.');
    // The host hands the caller's value on unread: a list only if the caller's sandbox made one.
    if (!ArrayIsArray(args)) throw new TypeError('The RPC call\'s arguments are not a list.');
    const receiver = receiverOf(w, entrypoint, new ExecutionContext(requestId));
    value = await ReflectApply(rpcMethod(receiver, method), receiver.self, args);
    const platform = platformObjectName(value);
    if (platform !== undefined) {
      throw new DOMException(`The method "${method}" returned a ${platform}, which isolet's RPC cannot pass yet: return plain data (objects, arrays, strings, numbers, Maps, Dates, bytes), or call the service's fetch() for a ${platform}.`, 'DataCloneError');
    }
  } catch (error) {
    ok = false;
    const { name, message } = wireError(error);
    errorName = name;
    // The host reads an error's message (a result it only hands on): as long as a log line.
    value = logLine(message);
  }
  await afterMicrotasks;
  const done = settle(requestId, entry, false);
  try {
    // A result crosses as a list of one: a value of any kind is then a serialized copy, which can cross between processes as bytes.
    hostCalls.respondCall(requestId, ok, errorName, done, ok ? [value] : value);
  } catch (error) {
    // The result could not be cloned (a function, a class instance's private state, ...).
    hostCalls.respondCall(requestId, false, 'DataCloneError', done, logLine(`The result of "${method}" could not be sent back: ${wireError(error).message}`));
  }
}

/** An error as it crosses: its name and message only, read without letting a getter of the tenant's throw here. */
function wireError(error: unknown): { name: string; message: string } {
  try {
    if (error !== null && typeof error === 'object') {
      const { name, message } = error as { name?: unknown; message?: unknown };
      return { name: typeof name === 'string' ? name : 'Error', message: typeof message === 'string' ? message : String(message) };
    }
    return { name: 'Error', message: String(error) };
  } catch {
    return { name: 'Error', message: 'An error that could not be read was thrown.' };
  }
}


/**
 * The host wants the next chunk of a streamed response body (its socket can take more): the
 * chunk, or null at the end, or `{ error }` when the stream failed (the host cuts the
 * connection, so that the client cannot take a truncated body as whole, and logs the error as
 * the worker's exception).
 */
export async function pullResponse(requestId: number, now: number): Promise<PullResult> {
  enterFromHost(requestId, now);
  const entry = inFlight.get(requestId);
  const source = entry?.responseBody;
  if (!entry || !source) return null;
  let chunk: Uint8Array | null;
  try {
    // The rest of a chunk larger than a slice comes first: the host holds one slice at a time.
    const rest = entry.responseRest;
    entry.responseRest = undefined;
    chunk = rest ?? await source.pull();
  } catch (error) {
    finishResponseBody(requestId, entry);
    return { error: errorText(error) };
  }
  if (chunk === null) {
    finishResponseBody(requestId, entry);
    return null;
  }
  // A slice of a text body given whole (whole-body-source.ts): the host encodes it.
  if (typeof chunk === 'string') {
    if ((chunk as string).length <= INLINE_CHUNK) return chunk;
    entry.responseOut = chunk;
    return (chunk as string).length;
  }
  if (TypedArrayPrototypeGetByteLength(chunk) > SLICE) {
    entry.responseRest = TypedArrayPrototypeSubarray(chunk, SLICE);
    chunk = TypedArrayPrototypeSubarray(chunk, 0, SLICE);
  }
  // A large chunk is copied out by a call of its own that runs no tenant code, so that the host
  // charges the worker for its stream's work and not for the platform's copying.
  const size = TypedArrayPrototypeGetByteLength(chunk);
  if (size > INLINE_CHUNK) {
    entry.responseOut = chunk;
    return size;
  }
  return ownBytes(chunk);
}

/** Chunks up to this size cross with the pull: copying them costs less than a crossing of their own. */
const INLINE_CHUNK = 64 * 1024;

/** The large chunk pullResponse announced, copied out by the host (see pullResponse). */
export function takeResponseChunk(requestId: number): ArrayBuffer | string | null {
  const entry = inFlight.get(requestId);
  const chunk = entry?.responseOut;
  if (entry === undefined || chunk === undefined) return null;
  entry.responseOut = undefined;
  return typeof chunk === 'string' ? chunk : ownBytes(chunk);
}

/**
 * Only the chunk's own bytes cross (a view may be a window on a larger buffer), as an
 * ArrayBuffer: isolated-vm copies that with less overhead than a typed array. Runs no tenant
 * code (takeResponseChunk's CPU is charged to nobody): brand-checking getters, and `set` into a
 * buffer of its own where `slice` would look up the chunk's species constructor.
 */
function ownBytes(chunk: Uint8Array): ArrayBuffer {
  const buffer = TypedArrayPrototypeGetBuffer(chunk) as ArrayBuffer;
  const size = TypedArrayPrototypeGetByteLength(chunk);
  if (TypedArrayPrototypeGetByteOffset(chunk) === 0 && size === ArrayBufferPrototypeGetByteLength(buffer)) return buffer;
  const own = new Uint8Array(size);
  TypedArrayPrototypeSet(own, chunk);
  return TypedArrayPrototypeGetBuffer(own) as ArrayBuffer;
}

/** The host will pull no more (the client left, or the response needs no body): cancel the stream. */
export function cancelResponse(requestId: number, now: number): void {
  enterFromHost(requestId, now);
  const entry = inFlight.get(requestId);
  if (!entry || !entry.responseBody) return;
  const source = entry.responseBody;
  finishResponseBody(requestId, entry);
  try {
    source.cancel?.(new DOMException('The client disconnected before the response was complete.', 'AbortError'));
  } catch (error) {
    hostCalls.uncaught(requestId, errorText(error));
  }
}

function finishResponseBody(requestId: number, entry: InFlight): void {
  if (entry.responseBody === undefined) return;
  entry.responseBody = undefined;
  entry.responseOut = undefined;
  settle(requestId, entry);
}

// A request body, pulled from the host a piece at a time: the host reads its source only when
// asked, which is what gives uploads their backpressure. Read whole, it comes in one piece that
// the host made (src/runtime/request-body.ts), so nothing is joined here.
function bodyFromHost(requestId: number, length: number | null): BodySource {
  let reading = false;
  // No spread of arguments: it would iterate with the realm's (replaceable) array iterator.
  const read = async <K extends 'body.read' | 'body.readWhole'>(op: K, as?: 'text' | 'bytes'): Promise<OperationResult<K>> => {
    if (reading) throw new TypeError('This body is already being read.');
    reading = true;
    try {
      return await (as === undefined ? callAsync(op, requestId) : callAsync(op, requestId, as));
    } finally {
      reading = false;
    }
  };
  return {
    length,
    hostBody: requestId,
    async pull(): Promise<Uint8Array | null> {
      const chunk = await read('body.read');
      return chunk === null ? null : new Uint8Array(chunk);
    },
    async readWhole(as: 'text' | 'bytes'): Promise<Uint8Array | string> {
      const whole = await read('body.readWhole', as);
      return typeof whole === 'string' ? whole : new Uint8Array(whole);
    },
  } as BodySource;
}

function declaredLength(lines: HeaderLines): number | null {
  const headers = StringPrototypeSplit(lines, '\n');
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (headers[i]!.length === 14 && StringPrototypeToLowerCase(headers[i]!) === 'content-length') {
      const value = StringPrototypeTrim(headers[i + 1]!);
      return RegExpPrototypeTest(/^[0-9]{1,15}$/, value) ? Number(value) : null;
    }
  }
  return null;
}

export function abortRequest(requestId: number, now: number): void {
  enterFromHost(requestId, now);
  const entry = inFlight.get(requestId);
  if (entry) {
    const reason = new DOMException('The client disconnected before the response was complete.', 'AbortError');
    // signalAbort reports an abort listener's exception instead of throwing it: the stream
    // cancellation below must happen whatever the tenant's listeners do. A signal nobody read
    // yet is made here, aborted, for whoever reads it later.
    signalAbort(entry.signal ??= newAbortSignal(), reason);
    cancelResponse(requestId, now);
  }
}

/** The host ended a request's work (e.g. its waitUntil ran too long): forget it here too. */
export function endRequest(requestId: number): void {
  inFlight.delete(requestId);
  for (let i = 0; i < requestEndHooks.length; i++) requestEndHooks[i]!(requestId);
}

export function reportUncaught(requestId: number, error: unknown): void {
  hostCalls.uncaught(requestId, errorText(error));
}
