// DOMException, EventTarget, AbortController and AbortSignal for the sandbox; Event, CustomEvent
// and the dispatch algorithm are a sandbox module (./sandbox/module.ts), loaded on first use.
// Specs: WebIDL §2.8 (DOMException), DOM §2 (events) and §3.1-3.2 (aborting).
// Internals live in #private fields so tenant code cannot reach them; the few operations other
// sandbox modules need (abort a signal, follow a signal, trusted events) are exported functions.

import { createModule } from '../../sandbox/host-calls.ts';
import { markNotSerializable } from '../structured-clone/sandbox.ts';
import type { Event, EventsApi, EventsDeps } from './sandbox/module.ts';
import {
  ArrayFrom, ArrayPrototypeIncludes, ArrayPrototypeIndexOf, ArrayPrototypePush, ArrayPrototypeSplice,
  ArrayPrototypeUnshift, Error, Map, Number, Object, ObjectDefineProperty, ObjectHasOwn, ObjectSetPrototypeOf,
  ReflectApply, SafeMap, SafeSet, SafeWeakMap, Set, String, Symbol, SymbolToStringTag, TypeError, safeArray,
  safeSetValues,
} from '../../sandbox/primordials.ts';

export type { Event, CustomEvent } from './sandbox/module.ts';

// WebIDL §2.8.1: the legacy code of each name that had one. Built on first use, not at load
// (the bundle is snapshotted and every allocation at load is paid by every isolate).
const LEGACY_CODES: readonly (readonly [string, string])[] = [
  ['INDEX_SIZE_ERR', 'IndexSizeError'], ['DOMSTRING_SIZE_ERR', ''],
  ['HIERARCHY_REQUEST_ERR', 'HierarchyRequestError'], ['WRONG_DOCUMENT_ERR', 'WrongDocumentError'],
  ['INVALID_CHARACTER_ERR', 'InvalidCharacterError'], ['NO_DATA_ALLOWED_ERR', ''],
  ['NO_MODIFICATION_ALLOWED_ERR', 'NoModificationAllowedError'], ['NOT_FOUND_ERR', 'NotFoundError'],
  ['NOT_SUPPORTED_ERR', 'NotSupportedError'], ['INUSE_ATTRIBUTE_ERR', 'InUseAttributeError'],
  ['INVALID_STATE_ERR', 'InvalidStateError'], ['SYNTAX_ERR', 'SyntaxError'],
  ['INVALID_MODIFICATION_ERR', 'InvalidModificationError'], ['NAMESPACE_ERR', 'NamespaceError'],
  ['INVALID_ACCESS_ERR', 'InvalidAccessError'], ['VALIDATION_ERR', ''],
  ['TYPE_MISMATCH_ERR', 'TypeMismatchError'], ['SECURITY_ERR', 'SecurityError'],
  ['NETWORK_ERR', 'NetworkError'], ['ABORT_ERR', 'AbortError'], ['URL_MISMATCH_ERR', 'URLMismatchError'],
  ['QUOTA_EXCEEDED_ERR', 'QuotaExceededError'], ['TIMEOUT_ERR', 'TimeoutError'],
  ['INVALID_NODE_TYPE_ERR', 'InvalidNodeTypeError'], ['DATA_CLONE_ERR', 'DataCloneError'],
];

function legacyCode(name: string): number {
  // InUseAttributeError has no legacy code (its constant exists but the name maps to 0).
  if (name === '' || name === 'InUseAttributeError') return 0;
  for (let i = 0; i < LEGACY_CODES.length; i++) if (LEGACY_CODES[i][1] === name) return i + 1;
  return 0;
}

const ErrorCtor = Error as unknown as { captureStackTrace?(target: object, ctor?: Function): void };

/**
 * WebIDL §2.8.1 DOMException. Inherits Error.prototype like in every engine. As in workerd,
 * code, name and message are own read-only enumerable properties of each instance (not
 * prototype getters), and so is the `stack` accessor: Object.keys() and JSON.stringify() show
 * all four.
 */
export class DOMException {
  declare readonly code: number;
  declare readonly name: string;
  declare readonly message: string;
  declare readonly stack?: string;

  constructor(message: unknown = '', name: unknown = 'Error') {
    const m = String(message);
    const n = String(name);
    ObjectDefineProperty(this, 'code', { __proto__: null, value: legacyCode(n), enumerable: true, configurable: true });
    ObjectDefineProperty(this, 'name', { __proto__: null, value: n, enumerable: true, configurable: true });
    ObjectDefineProperty(this, 'message', { __proto__: null, value: m, enumerable: true, configurable: true });
    // V8 gives errors an own `stack`; DOMExceptions in workerd and Node have one too.
    ErrorCtor.captureStackTrace?.(this, DOMException);
    if (ObjectHasOwn(this, 'stack')) ObjectDefineProperty(this, 'stack', { __proto__: null, enumerable: true });
  }

  // The 25 legacy constants, on the interface and its prototype (WebIDL: constants are both).
  declare static readonly INDEX_SIZE_ERR: 1;
  declare static readonly ABORT_ERR: 20;
  declare static readonly DATA_CLONE_ERR: 25;
  declare static readonly TIMEOUT_ERR: 23;
  declare static readonly SYNTAX_ERR: 12;
  declare static readonly INVALID_STATE_ERR: 11;
}
ObjectSetPrototypeOf(DOMException.prototype, Error.prototype);
for (let i = 0; i < LEGACY_CODES.length; i++) {
  const desc = { value: i + 1, enumerable: true, writable: false, configurable: false };
  ObjectDefineProperty(DOMException, LEGACY_CODES[i][0], desc);
  ObjectDefineProperty(DOMException.prototype, LEGACY_CODES[i][0], desc);
}
ObjectDefineProperty(DOMException.prototype, SymbolToStringTag, { __proto__: null, value: 'DOMException', configurable: true });

// ---------------------------------------------------------------------------------------------
// Events (DOM §2.2)

export interface EventInit { bubbles?: boolean; cancelable?: boolean; composed?: boolean }
export interface CustomEventInit extends EventInit { detail?: unknown }

/**
 * Abort `signal` with `reason` (DOM "signal abort"); for the runtime, e.g. client disconnects:
 * an exception of a tenant's listener is reported, not thrown (AbortController.abort() throws it).
 */
export let signalAbort: (signal: AbortSignal, reason?: unknown) => void;
let abortAndRethrow: (signal: AbortSignal, reason?: unknown) => void;
/** Run `fn` once when `signal` aborts (DOM "add an abort algorithm"). */
export let addAbortAlgorithm: (signal: AbortSignal, fn: () => void) => void;
export let removeAbortAlgorithm: (signal: AbortSignal, fn: () => void) => void;
/** A signal that aborts when any of `sources` does (DOM "create a dependent abort signal"). */
export let createDependentSignal: (sources: readonly AbortSignal[]) => AbortSignal;
/** A fresh, never-yet-aborted signal. */
export let newAbortSignal: () => AbortSignal;

let eventsApi: EventsApi | undefined;

/** Event, CustomEvent and dispatching, loaded on first use (./sandbox/module.ts). */
export function events(): EventsApi {
  if (eventsApi !== undefined) return eventsApi;
  const loaded = createModule<EventsDeps, EventsApi>('events', {
    DOMException: DOMException as unknown as EventsDeps['DOMException'],
    removeListener,
    invokeListener,
  });
  // Platform objects without a serialization: structuredClone refuses them (DataCloneError).
  markNotSerializable(loaded.Event);
  eventsApi = loaded;
  return loaded;
}

export interface Listener {
  callback: EventListenerLike;
  capture: boolean;
  once: boolean;
  passive: boolean;
  removed: boolean;
  signal: AbortSignal | null;
  abortAlgorithm: (() => void) | null;
}
type EventListenerLike = ((event: Event) => unknown) | { handleEvent(event: Event): unknown };


function removeListener(list: Listener[], listener: Listener): void {
  listener.removed = true;
  const i = ArrayPrototypeIndexOf(list, listener);
  if (i !== -1) ArrayPrototypeSplice(list, i, 1);
  if (listener.signal && listener.abortAlgorithm) removeAbortAlgorithm(listener.signal, listener.abortAlgorithm);
}

function invokeListener(listener: Listener, target: EventTarget, event: Event): void {
  const cb = listener.callback;
  if (typeof cb === 'function') {
    ReflectApply(cb, target, [event]);
  } else {
    const handle = cb.handleEvent;
    if (typeof handle !== 'function') throw new TypeError("The 'handleEvent' property of an event listener must be a function.");
    ReflectApply(handle, cb, [event]);
  }
}

function reportException(error: unknown): void {
  const g = globalThis as { reportError?(e: unknown): void; console?: { error(...a: unknown[]): void } };
  if (typeof g.reportError === 'function') g.reportError(error);
  else g.console?.error(error);
}

function flattenCapture(options: unknown): boolean {
  if (typeof options === 'boolean') return options;
  return options !== null && typeof options === 'object' && !!(options as { capture?: unknown }).capture;
}

export interface AddEventListenerOptions { capture?: boolean; once?: boolean; passive?: boolean; signal?: AbortSignal }

let hasListeners: (target: EventTarget, type: string) => boolean;
let listenersOf: (target: EventTarget, type: string) => Listener[] | undefined;

export class EventTarget {
  #listeners: Map<string, Listener[]> | null = null;

  addEventListener(type: string, callback: EventListenerLike | null, options?: boolean | AddEventListenerOptions): void {
    if (arguments.length < 2) throw new TypeError("Failed to execute 'addEventListener' on 'EventTarget': 2 arguments required.");
    type = String(type);
    // DOM §2.7 "flatten more".
    const capture = flattenCapture(options);
    let once = false, passive = false;
    let signal: AbortSignal | null = null;
    if (options !== null && typeof options === 'object') {
      once = !!options.once;
      passive = !!options.passive;
      if (options.signal !== undefined) {
        if (!(options.signal instanceof AbortSignal)) throw new TypeError("Failed to execute 'addEventListener' on 'EventTarget': member signal is not of type AbortSignal.");
        signal = options.signal;
      }
    }
    if (signal?.aborted) return;
    if (callback === null || callback === undefined) return;
    if (typeof callback !== 'function' && typeof callback !== 'object') {
      throw new TypeError("Failed to execute 'addEventListener' on 'EventTarget': The callback provided as parameter 2 is not an object.");
    }
    const map = (this.#listeners ??= new SafeMap());
    let list = map.get(type);
    if (!list) map.set(type, (list = []));
    for (const l of safeArray(list)) if (l.callback === callback && l.capture === capture) return;
    const listener: Listener = { callback, capture, once, passive, removed: false, signal, abortAlgorithm: null };
    ArrayPrototypePush(list, listener);
    if (signal) {
      listener.abortAlgorithm = () => removeListener(list, listener);
      addAbortAlgorithm(signal, listener.abortAlgorithm);
    }
  }

  removeEventListener(type: string, callback: EventListenerLike | null, options?: boolean | { capture?: boolean }): void {
    const list = this.#listeners?.get(String(type));
    if (!list) return;
    const capture = flattenCapture(options);
    for (const l of safeArray(list)) {
      if (l.callback === callback && l.capture === capture) { removeListener(list, l); return; }
    }
  }

  dispatchEvent(event: Event): boolean {
    // Before the module is loaded no Event can exist.
    if (eventsApi === undefined || !(event instanceof eventsApi.Event)) {
      throw new TypeError("Failed to execute 'dispatchEvent' on 'EventTarget': parameter 1 is not of type 'Event'.");
    }
    return eventsApi.dispatch(this, event, this.#listeners?.get(event.type));
  }

  static {
    hasListeners = (target, type) => (target.#listeners?.get(type)?.length ?? 0) > 0;
    listenersOf = (target, type) => target.#listeners?.get(type);
  }
}

// Captured at load: tenants may replace them later.
const reflectApply = Reflect.apply;
const nativeAdd = EventTarget.prototype.addEventListener;
const nativeRemove = EventTarget.prototype.removeEventListener;

/** The runtime's hold on the global scope's listeners (service-worker 'fetch' dispatch). */
export interface GlobalScopeEvents {
  /** Dispatches `event` to the global scope's listeners of its type, as dispatchEvent does. */
  dispatch(event: Event): boolean;
  /** Whether the global scope has a listener of `type` now. */
  has(type: string): boolean;
}

/**
 * The global scope's EventTarget methods, as workerd's ServiceWorkerGlobalScope has them: the
 * listeners are kept by a hidden EventTarget, and events are dispatched with `scope` as their
 * target. `connect` gets the runtime's own way to dispatch to them: a request's FetchEvent goes
 * to the 'fetch' listeners registered at that moment, so removeEventListener, `once` and
 * stopImmediatePropagation() apply to it as to any event. The methods never use `this`: a bare
 * `addEventListener(...)` in a module has none.
 */
export function globalScopeEventMethods(scope: object, connect: (events: GlobalScopeEvents) => void) {
  const listeners = new EventTarget();
  connect({
    dispatch: (event) => events().dispatch(scope as EventTarget, event, listenersOf(listeners, event.type)),
    has: (type) => hasListeners(listeners, type),
  });
  // Rest parameters: the argument checks count what was passed, and workerd's lengths are 0.
  return {
    addEventListener(...args: unknown[]): void {
      reflectApply(nativeAdd, listeners, args);
    },
    removeEventListener(...args: unknown[]): void {
      if (args.length < 2) throw new TypeError("Failed to execute 'removeEventListener' on 'EventTarget': 2 arguments required.");
      reflectApply(nativeRemove, listeners, args);
    },
    dispatchEvent(...args: unknown[]): boolean {
      const event = args[0];
      if (eventsApi === undefined || !(event instanceof eventsApi.Event)) {
        throw new TypeError("Failed to execute 'dispatchEvent' on 'EventTarget': parameter 1 is not of type 'Event'.");
      }
      return eventsApi.dispatch(scope as EventTarget, event, listenersOf(listeners, event.type));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Event handler IDL attributes (HTML §8.1.8.1), used for AbortSignal.onabort. The handler is
// registered as a listener the first time it is set, so it keeps its place in listener order.

const handlerSlots = new SafeWeakMap<EventTarget, Map<string, { value: unknown; listener: (e: Event) => unknown }>>();

export function getEventHandler(target: EventTarget, type: string): unknown {
  return handlerSlots.get(target)?.get(type)?.value ?? null;
}

export function setEventHandler(target: EventTarget, type: string, value: unknown): void {
  let slots = handlerSlots.get(target);
  if (!slots) handlerSlots.set(target, (slots = new SafeMap()));
  const handler = typeof value === 'function' || (value !== null && typeof value === 'object') ? value : null;
  const slot = slots.get(type);
  if (slot) { slot.value = handler; return; }
  if (handler === null) return;
  const entry = {
    value: handler as unknown,
    listener(this: EventTarget, event: Event): unknown {
      const fn = entry.value;
      if (typeof fn !== 'function') return undefined;
      const result = ReflectApply(fn, this, [event]);
      if (result === false) event.preventDefault();
      return result;
    },
  };
  slots.set(type, entry);
  target.addEventListener(type, entry.listener);
}

// ---------------------------------------------------------------------------------------------
// Aborting (DOM §3.1, §3.2)

const kCreate = Symbol('AbortSignal.create');
// workerd's wording of the default abort reason (the DOM leaves it to the implementation).
const DEFAULT_ABORT_MESSAGE = 'The operation was aborted';

export class AbortSignal extends EventTarget {
  #aborted = false;
  #reason: unknown = undefined;
  #algorithms: Set<() => void> | null = null;
  // DOM §3.2: dependent signals (AbortSignal.any) and the sources they follow.
  #dependents: Set<AbortSignal> | null = null;
  #dependent = false;
  #sources: AbortSignal[] | null = null;

  constructor(token?: unknown) {
    if (token !== kCreate) throw new TypeError('Illegal constructor');
    super();
  }

  get aborted(): boolean { return this.#aborted; }
  get reason(): unknown { return this.#reason; }
  throwIfAborted(): void { if (this.#aborted) throw this.#reason; }
  get onabort(): unknown { return getEventHandler(this, 'abort'); }
  set onabort(value: unknown) { setEventHandler(this, 'abort', value); }

  static abort(reason?: unknown): AbortSignal {
    const signal = new AbortSignal(kCreate);
    signal.#aborted = true;
    signal.#reason = reason !== undefined ? reason : new DOMException(DEFAULT_ABORT_MESSAGE, 'AbortError');
    return signal;
  }

  static timeout(ms: number): AbortSignal {
    // workerd converts the argument like setTimeout's delay (a negative or NaN one is 0) and
    // refuses only a missing one.
    if (arguments.length === 0) throw new TypeError("Failed to execute 'timeout' on 'AbortSignal': parameter 1 is not of type 'number'.");
    ms = Number(ms);
    const signal = new AbortSignal(kCreate);
    // The core installs setTimeout per isolate; look it up at call time, never at load.
    const setTimer = (globalThis as { setTimeout?: (fn: () => void, ms: number) => unknown }).setTimeout;
    if (typeof setTimer !== 'function') throw new TypeError('AbortSignal.timeout() needs timers, which are not available here.');
    setTimer(() => signalAbort(signal, new DOMException('The operation was aborted due to timeout', 'TimeoutError')), ms);
    return signal;
  }

  static any(signals: Iterable<AbortSignal>): AbortSignal {
    const list = ArrayFrom(signals);
    for (const s of safeArray(list)) if (!(s instanceof AbortSignal)) throw new TypeError("Failed to execute 'any' on 'AbortSignal': Failed to convert value to 'AbortSignal'.");
    return createDependentSignal(list);
  }

  static {
    createDependentSignal = (sources) => {
      // DOM §3.2 "create a dependent abort signal".
      const result = new AbortSignal(kCreate);
      for (const source of safeArray(sources)) {
        if (source.#aborted) { result.#aborted = true; result.#reason = source.#reason; return result; }
      }
      result.#dependent = true;
      result.#sources = [];
      // A dependent source contributes its own sources (DOM §3.2 step 4.2), so the result
      // follows the signals that actually get aborted.
      for (const source of safeArray(sources)) {
        for (const s of safeArray(source.#dependent ? source.#sources! : [source])) {
          if (ArrayPrototypeIncludes(result.#sources, s)) continue;
          ArrayPrototypePush(result.#sources, s);
          (s.#dependents ??= new SafeSet()).add(result);
        }
      }
      return result;
    };
    signalAbort = (signal, reason) => {
      // For the runtime: a listener's exception is reported, never thrown at the runtime.
      try {
        abortAndRethrow(signal, reason);
      } catch (error) {
        reportException(error);
      }
    };
    abortAndRethrow = (signal, reason) => {
      // DOM §3.2 "signal abort". A listener's exception (which dispatchEvent rethrows, as in
      // workerd) is rethrown once every dependent signal has been aborted too.
      if (signal.#aborted) return;
      signal.#aborted = true;
      signal.#reason = reason !== undefined ? reason : new DOMException(DEFAULT_ABORT_MESSAGE, 'AbortError');
      const dependentsToAbort: AbortSignal[] = [];
      if (signal.#dependents) {
        for (const d of safeSetValues(signal.#dependents)) {
          if (!d.#aborted) { d.#aborted = true; d.#reason = signal.#reason; ArrayPrototypePush(dependentsToAbort, d); }
        }
        signal.#dependents = null;
      }
      let thrown: { error: unknown } | null = null;
      ArrayPrototypeUnshift(dependentsToAbort, signal);
      for (const s of safeArray(dependentsToAbort)) {
        try {
          runAbortSteps(s);
        } catch (error) {
          thrown ??= { error };
        }
      }
      if (thrown) throw thrown.error;
    };
    const runAbortSteps = (signal: AbortSignal): void => {
      const algorithms = signal.#algorithms;
      signal.#algorithms = null;
      if (algorithms) for (const fn of safeSetValues(algorithms)) {
        try { fn(); } catch (e) { reportException(e); }
      }
      // Without a listener (an onabort included) the event would reach nobody.
      if (!hasListeners(signal, 'abort')) return;
      const api = events();
      const event = new api.Event('abort');
      api.setTrusted(event);
      signal.dispatchEvent(event);
    };
    addAbortAlgorithm = (signal, fn) => {
      if (signal.#aborted) return;
      (signal.#algorithms ??= new SafeSet()).add(fn);
    };
    removeAbortAlgorithm = (signal, fn) => { signal.#algorithms?.delete(fn); };
    newAbortSignal = () => new AbortSignal(kCreate);
  }
}


export class AbortController {
  #signal: AbortSignal = newAbortSignal();
  get signal(): AbortSignal { return this.#signal; }
  /** Aborts the signal; a throwing 'abort' listener's exception propagates, as in workerd. */
  abort(reason?: unknown): void { abortAndRethrow(this.#signal, reason); }
}

// Literal names: a bundler may rename the classes (e.g. to _EventTarget).
for (const [C, name] of [[EventTarget, 'EventTarget'], [AbortSignal, 'AbortSignal'], [AbortController, 'AbortController']] as const) {
  ObjectDefineProperty(C.prototype, SymbolToStringTag, { __proto__: null, value: name, configurable: true });
}
