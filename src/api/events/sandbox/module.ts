// Event and CustomEvent (DOM §2.2, §2.4), the dispatch algorithm (§2.9), and HTML's ErrorEvent,
// PromiseRejectionEvent, CloseEvent and MessageEvent. A sandbox module
// (see src/runtime/sandbox-modules.ts), evaluated in an isolate the first time its code reads
// Event, CustomEvent or FetchEvent, dispatches an event, or has an abort listener run: a
// hello-world worker does none of these, and in the snapshot they were heap in every idle
// isolate. EventTarget, AbortController and AbortSignal are in ../sandbox.ts.

import type { EventTarget, Listener } from '../sandbox.ts';
import {
  ArrayIsArray, ArrayPrototypeSlice, Error, MathTrunc, Number, NumberIsFinite, ObjectDefineProperty, ObjectFreeze, String,
  SymbolToStringTag, TypeError, safeArray,
} from '../../../sandbox/primordials.ts';

export interface EventsDeps {
  DOMException: new (message?: string, name?: string) => Error;
  removeListener(list: Listener[], listener: Listener): void;
  invokeListener(listener: Listener, target: EventTarget, event: Event): void;
}

export interface EventsApi {
  Event: typeof Event;
  CustomEvent: typeof CustomEvent;
  ErrorEvent: typeof ErrorEvent;
  PromiseRejectionEvent: typeof PromiseRejectionEvent;
  CloseEvent: typeof CloseEvent;
  MessageEvent: typeof MessageEvent;
  /** Mark an event the runtime made as trusted (isTrusted). */
  setTrusted(event: Event): void;
  /** DOM §2.9 dispatch, to `listeners` (the target's for the event's type). */
  dispatch(target: EventTarget, event: Event, listeners: Listener[] | undefined): boolean;
}

export type { Event, CustomEvent };

let deps: EventsDeps;

export interface EventInit { bubbles?: boolean; cancelable?: boolean; composed?: boolean }

// Assigned by the static block of Event; declared first so the block does not hit the TDZ.
let setTrusted: (event: Event) => void;
let dispatchImpl: (target: EventTarget, event: Event, listeners: Listener[] | undefined) => boolean;
class Event {
  static readonly NONE = 0;
  static readonly CAPTURING_PHASE = 1;
  static readonly AT_TARGET = 2;
  static readonly BUBBLING_PHASE = 3;

  #type: string;
  #bubbles: boolean;
  #cancelable: boolean;
  #composed: boolean;
  #trusted = false;
  #timeStamp: number;
  // undefined until dispatched, as in workerd (the DOM says null); both stay set afterwards.
  #target: EventTarget | undefined = undefined;
  #currentTarget: EventTarget | undefined = undefined;
  #phase = 0;
  #canceled = false;
  // workerd: dispatchEvent() answers false when a (non-passive) listener called
  // preventDefault(), even on an event that is not cancelable (whose defaultPrevented stays false).
  #preventCalled = false;
  #stopPropagation = false;
  #stopImmediate = false;
  #dispatching = false;
  #inPassiveListener = false;

  constructor(type: string, init?: EventInit) {
    if (arguments.length === 0) throw new TypeError("Failed to construct 'Event': 1 argument required, but only 0 present.");
    this.#type = String(type);
    this.#bubbles = !!init?.bubbles;
    this.#cancelable = !!init?.cancelable;
    this.#composed = !!init?.composed;
    const perf = (globalThis as { performance?: { now(): number } }).performance;
    this.#timeStamp = perf ? perf.now() : 0;
  }

  get type(): string { return this.#type; }
  get target(): EventTarget | undefined { return this.#target; }
  get srcElement(): EventTarget | undefined { return this.#target; }
  get currentTarget(): EventTarget | undefined { return this.#currentTarget; }
  get eventPhase(): number { return this.#phase; }
  get bubbles(): boolean { return this.#bubbles; }
  get cancelable(): boolean { return this.#cancelable; }
  get composed(): boolean { return this.#composed; }
  get isTrusted(): boolean { return this.#trusted; }
  get timeStamp(): number { return this.#timeStamp; }
  get defaultPrevented(): boolean { return this.#canceled; }
  get returnValue(): boolean { return !this.#canceled; }
  set returnValue(value: boolean) { if (!value) this.preventDefault(); }
  get cancelBubble(): boolean { return this.#stopPropagation; }
  set cancelBubble(value: boolean) { if (value) this.#stopPropagation = true; }

  composedPath(): EventTarget[] {
    // (#currentTarget is set whenever #dispatching is)
    return this.#dispatching && this.#currentTarget !== undefined ? [this.#currentTarget] : [];
  }
  stopPropagation(): void { this.#stopPropagation = true; }
  stopImmediatePropagation(): void { this.#stopPropagation = true; this.#stopImmediate = true; }
  preventDefault(): void {
    // DOM §2.2 "set the canceled flag": ignored when not cancelable or inside a passive listener.
    if (this.#inPassiveListener) return;
    if (this.#cancelable) this.#canceled = true;
    if (this.#dispatching) this.#preventCalled = true;
  }

  static {
    setTrusted = (event) => { event.#trusted = true; };
    dispatchImpl = (target, event, listeners) => {
      if (event.#dispatching) {
        throw new deps.DOMException('The event is already being dispatched.', 'InvalidStateError');
      }
      event.#dispatching = true;
      event.#preventCalled = false;
      event.#target = target;
      event.#currentTarget = target;
      event.#phase = Event.AT_TARGET;
      try {
        // DOM §2.9 "inner invoke": iterate a clone, skipping listeners removed meanwhile. A
        // listener's exception ends the dispatch and propagates out of dispatchEvent(), as in
        // workerd (the DOM would report it and go on with the next listener).
        if (listeners) {
          const snapshot = ArrayPrototypeSlice(listeners);
          for (const listener of safeArray(snapshot)) {
            if (listener.removed) continue;
            if (listener.once) deps.removeListener(listeners, listener);
            event.#inPassiveListener = listener.passive;
            try {
              deps.invokeListener(listener, target, event);
            } finally {
              event.#inPassiveListener = false;
            }
            if (event.#stopImmediate) break;
          }
        }
      } finally {
        event.#dispatching = false;
        event.#phase = Event.NONE;
        event.#stopPropagation = false;
        event.#stopImmediate = false;
      }
      return !(event.#canceled || event.#preventCalled);
    };
  }
}

/** The event constructors' `type` argument is required. */
function requireType(args: number, name: string): void {
  if (args === 0) throw new TypeError(`Failed to construct '${name}': 1 argument required, but only 0 present.`);
}

export interface CustomEventInit extends EventInit { detail?: unknown }

/** DOM §2.4 CustomEvent. As in workerd, `detail` defaults to undefined (the DOM says null). */
class CustomEvent extends Event {
  #detail: unknown;
  constructor(type: string, init?: CustomEventInit) {
    requireType(arguments.length, 'CustomEvent');
    super(type, init);
    this.#detail = init?.detail;
  }
  get detail(): unknown { return this.#detail; }
}
ObjectDefineProperty(CustomEvent, 'length', { __proto__: null, value: 0, configurable: true });
ObjectDefineProperty(CustomEvent.prototype, 'detail', { __proto__: null, enumerable: true });

/** An event's init member, read only when the caller passed a dictionary (WebIDL reads each by [[Get]]). */
function member(init: object | null | undefined, key: string): unknown {
  return init === undefined || init === null ? undefined : (init as Record<string, unknown>)[key];
}

/** WebIDL `unsigned long` / `unsigned short` conversion (modulo), for lineno, colno and code. */
function unsigned(value: unknown, bits: 16 | 32): number {
  const n = Number(value);
  if (!NumberIsFinite(n)) return 0;
  const int = MathTrunc(n);
  return bits === 32 ? int >>> 0 : int & 0xffff;
}

export interface ErrorEventInit extends EventInit { message?: string; filename?: string; lineno?: number; colno?: number; error?: unknown }

/** HTML §8.1.4.8 ErrorEvent: an error reported to a global (reportError, error handlers). */
class ErrorEvent extends Event {
  #message: string;
  #filename: string;
  #lineno: number;
  #colno: number;
  #error: unknown;
  constructor(type: string, init?: ErrorEventInit) {
    requireType(arguments.length, 'ErrorEvent');
    super(type, init);
    // Dictionary members in WebIDL's order (lexicographic), each read once.
    const colno = member(init, 'colno'), error = member(init, 'error'), filename = member(init, 'filename');
    const lineno = member(init, 'lineno'), message = member(init, 'message');
    this.#colno = colno === undefined ? 0 : unsigned(colno, 32);
    this.#error = error;
    this.#filename = filename === undefined ? '' : String(filename);
    this.#lineno = lineno === undefined ? 0 : unsigned(lineno, 32);
    this.#message = message === undefined ? '' : String(message);
  }
  get message(): string { return this.#message; }
  get filename(): string { return this.#filename; }
  get lineno(): number { return this.#lineno; }
  get colno(): number { return this.#colno; }
  get error(): unknown { return this.#error; }
}

export interface PromiseRejectionEventInit extends EventInit { promise: Promise<unknown>; reason?: unknown }

/** HTML §8.1.7.2 PromiseRejectionEvent (unhandledrejection, rejectionhandled). */
class PromiseRejectionEvent extends Event {
  #promise: object;
  #reason: unknown;
  constructor(type: string, init: PromiseRejectionEventInit) {
    requireType(arguments.length, 'PromiseRejectionEvent');
    super(type, init);
    const promise = member(init, 'promise'), reason = member(init, 'reason');
    if (promise === undefined || promise === null || (typeof promise !== 'object' && typeof promise !== 'function')) {
      throw new TypeError("Failed to construct 'PromiseRejectionEvent': required member promise is undefined or not an object.");
    }
    this.#promise = promise;
    this.#reason = reason;
  }
  get promise(): object { return this.#promise; }
  get reason(): unknown { return this.#reason; }
}

export interface CloseEventInit extends EventInit { wasClean?: boolean; code?: number; reason?: string }

/** WebSockets §9 CloseEvent. */
class CloseEvent extends Event {
  #wasClean: boolean;
  #code: number;
  #reason: string;
  constructor(type: string, init?: CloseEventInit) {
    requireType(arguments.length, 'CloseEvent');
    super(type, init);
    const code = member(init, 'code'), reason = member(init, 'reason'), wasClean = member(init, 'wasClean');
    this.#code = code === undefined ? 0 : unsigned(code, 16);
    this.#reason = reason === undefined ? '' : String(reason);
    this.#wasClean = !!wasClean;
  }
  get wasClean(): boolean { return this.#wasClean; }
  get code(): number { return this.#code; }
  get reason(): string { return this.#reason; }
}

export interface MessageEventInit extends EventInit { data?: unknown; origin?: string; lastEventId?: string; source?: unknown; ports?: unknown[] }

const NO_PORTS: readonly unknown[] = ObjectFreeze([]);

/** HTML §9.2 MessageEvent. isolet has no MessagePort: `ports` is always empty. */
class MessageEvent extends Event {
  #data: unknown;
  #origin: string;
  #lastEventId: string;
  #source: unknown;
  constructor(type: string, init?: MessageEventInit) {
    requireType(arguments.length, 'MessageEvent');
    super(type, init);
    const data = member(init, 'data'), lastEventId = member(init, 'lastEventId'), origin = member(init, 'origin');
    const ports = member(init, 'ports'), source = member(init, 'source');
    if (ports !== undefined && (!ArrayIsArray(ports) || ports.length > 0)) {
      throw new TypeError("Failed to construct 'MessageEvent': ports must be an empty sequence: this runtime has no MessagePort.");
    }
    this.#data = data === undefined ? null : data;
    this.#lastEventId = lastEventId === undefined ? '' : String(lastEventId);
    this.#origin = origin === undefined ? '' : String(origin);
    this.#source = source === undefined ? null : source;
  }
  get data(): unknown { return this.#data; }
  get origin(): string { return this.#origin; }
  get lastEventId(): string { return this.#lastEventId; }
  get source(): unknown { return this.#source; }
  get ports(): readonly unknown[] { return NO_PORTS; }
}

// Their attributes are enumerable accessors, as WebIDL's are; the constructors take 1 argument.
for (const [C, members] of [
  [ErrorEvent, ['message', 'filename', 'lineno', 'colno', 'error']],
  [PromiseRejectionEvent, ['promise', 'reason']],
  [CloseEvent, ['wasClean', 'code', 'reason']],
  [MessageEvent, ['data', 'origin', 'lastEventId', 'source', 'ports']],
] as const) {
  ObjectDefineProperty(C, 'length', { __proto__: null, value: 1, configurable: true });
  for (const key of safeArray(members)) ObjectDefineProperty(C.prototype, key, { __proto__: null, enumerable: true });
}

export function create(given: EventsDeps): EventsApi {
  deps = given;
  // The bundler renames classes; tenants see `.name` (constructor.name, stack traces).
  for (const [C, name] of [
    [Event, 'Event'], [CustomEvent, 'CustomEvent'], [ErrorEvent, 'ErrorEvent'], [PromiseRejectionEvent, 'PromiseRejectionEvent'],
    [CloseEvent, 'CloseEvent'], [MessageEvent, 'MessageEvent'],
  ] as const) {
    ObjectDefineProperty(C, 'name', { __proto__: null, value: name, configurable: true });
    ObjectDefineProperty(C.prototype, SymbolToStringTag, { __proto__: null, value: name, configurable: true });
  }
  return { Event, CustomEvent, ErrorEvent, PromiseRejectionEvent, CloseEvent, MessageEvent, setTrusted, dispatch: dispatchImpl };
}
