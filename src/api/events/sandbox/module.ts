// Event and CustomEvent (DOM §2.2, §2.4) and the dispatch algorithm (§2.9). A sandbox module
// (see src/runtime/sandbox-modules.ts), evaluated in an isolate the first time its code reads
// Event, CustomEvent or FetchEvent, dispatches an event, or has an abort listener run: a
// hello-world worker does none of these, and in the snapshot they were heap in every idle
// isolate. EventTarget, AbortController and AbortSignal are in ../sandbox.ts.

import type { EventTarget, Listener } from '../sandbox.ts';
import {
  ArrayPrototypeSlice, Error, ObjectDefineProperty, String, SymbolToStringTag, TypeError, safeArray,
} from '../../../sandbox/primordials.ts';

export interface EventsDeps {
  DOMException: new (message?: string, name?: string) => Error;
  removeListener(list: Listener[], listener: Listener): void;
  invokeListener(listener: Listener, target: EventTarget, event: Event): void;
}

export interface EventsApi {
  Event: typeof Event;
  CustomEvent: typeof CustomEvent;
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

export interface CustomEventInit extends EventInit { detail?: unknown }

/** DOM §2.4 CustomEvent. As in workerd, `detail` defaults to undefined (the DOM says null). */
class CustomEvent extends Event {
  #detail: unknown;
  constructor(type: string, init?: CustomEventInit) {
    if (arguments.length === 0) throw new TypeError("Failed to construct 'CustomEvent': 1 argument required, but only 0 present.");
    super(type, init);
    this.#detail = init?.detail;
  }
  get detail(): unknown { return this.#detail; }
}
ObjectDefineProperty(CustomEvent, 'length', { __proto__: null, value: 0, configurable: true });
ObjectDefineProperty(CustomEvent.prototype, 'detail', { __proto__: null, enumerable: true });

export function create(given: EventsDeps): EventsApi {
  deps = given;
  // The bundler renames classes; tenants see `.name` (constructor.name, stack traces).
  for (const [C, name] of [[Event, 'Event'], [CustomEvent, 'CustomEvent']] as const) {
    ObjectDefineProperty(C, 'name', { __proto__: null, value: name, configurable: true });
    ObjectDefineProperty(C.prototype, SymbolToStringTag, { __proto__: null, value: name, configurable: true });
  }
  return { Event, CustomEvent, setTrusted, dispatch: dispatchImpl };
}
