// Event, EventTarget, AbortController, AbortSignal (timeout, any, throwIfAborted), DOMException.
import { probeRoutes, err } from './_probe.js';

const DOM_NAMES = ['IndexSizeError', 'HierarchyRequestError', 'WrongDocumentError', 'InvalidCharacterError', 'NoModificationAllowedError',
  'NotFoundError', 'NotSupportedError', 'InvalidStateError', 'SyntaxError', 'InvalidModificationError', 'NamespaceError',
  'InvalidAccessError', 'TypeMismatchError', 'SecurityError', 'NetworkError', 'AbortError', 'URLMismatchError', 'QuotaExceededError',
  'TimeoutError', 'InvalidNodeTypeError', 'DataCloneError', 'EncodingError', 'NotReadableError', 'UnknownError', 'ConstraintError',
  'DataError', 'TransactionInactiveError', 'ReadOnlyError', 'VersionError', 'OperationError', 'NotAllowedError', 'SomethingElse'];

export default probeRoutes({
  '/event': () => ({
    defaults: () => {
      const e = new Event('x');
      return [e.type, e.bubbles, e.cancelable, e.composed, e.defaultPrevented, e.eventPhase, e.isTrusted, e.target, e.currentTarget,
        e.returnValue, e.cancelBubble, typeof e.timeStamp];
    },
    init: () => {
      const e = new Event('y', { bubbles: true, cancelable: true, composed: true });
      return [e.bubbles, e.cancelable, e.composed];
    },
    preventDefault: () => {
      const a = new Event('x', { cancelable: true });
      a.preventDefault();
      const b = new Event('x');
      b.preventDefault();
      return [a.defaultPrevented, b.defaultPrevented, a.returnValue];
    },
    noType: () => err(() => new Event()),
    constants: () => [Event.NONE, Event.CAPTURING_PHASE, Event.AT_TARGET, Event.BUBBLING_PHASE],
    composedPath: () => new Event('x').composedPath(),
    toStringTag: () => Object.prototype.toString.call(new Event('x')),
    subclass: () => {
      class MyEvent extends Event {
        constructor() {
          super('mine');
          this.detail = 1;
        }
      }
      const t = new EventTarget();
      let got;
      t.addEventListener('mine', (e) => (got = [e.type, e.detail, e instanceof MyEvent]));
      t.dispatchEvent(new MyEvent());
      return got;
    },
    customEvent: () => (typeof CustomEvent === 'function' ? [new CustomEvent('c', { detail: { a: 1 } }).detail] : 'no CustomEvent'),
  }),
  '/target': () => ({
    // The global scope is an EventTarget (ServiceWorkerGlobalScope), its methods on the prototype chain.
    globalScope: () => {
      const seen = [];
      const f = (e) => seen.push([e.type, e.target === globalThis, e.currentTarget === globalThis, e.eventPhase]);
      addEventListener('probe', f);
      const first = dispatchEvent(new Event('probe'));
      removeEventListener('probe', f);
      const second = dispatchEvent(new Event('probe'));
      addEventListener('once', { handleEvent(e) { seen.push([e.type, this !== globalThis]); } }, { once: true });
      dispatchEvent(new Event('once'));
      dispatchEvent(new Event('once'));
      const cancel = (e) => e.preventDefault();
      addEventListener('c', cancel);
      const cancelled = dispatchEvent(new Event('c', { cancelable: true }));
      removeEventListener('c', cancel);
      const thrower = () => { throw new Error('boom'); };
      addEventListener('t', thrower);
      const thrown = err(() => dispatchEvent(new Event('t')));
      removeEventListener('t', thrower);
      const own = ['addEventListener', 'removeEventListener', 'dispatchEvent'].map((n) => [typeof globalThis[n], Object.hasOwn(globalThis, n)]);
      return [seen, first, second, cancelled, thrown, own, err(() => dispatchEvent({ type: 'x' })), err(() => addEventListener('x')), err(() => removeEventListener('x'))];
    },
    dispatchOrder: () => {
      const t = new EventTarget();
      const out = [];
      t.addEventListener('x', () => out.push(1));
      t.addEventListener('x', { handleEvent: () => out.push(2) });
      t.addEventListener('x', () => out.push(3), { once: true });
      const r1 = t.dispatchEvent(new Event('x'));
      t.dispatchEvent(new Event('x'));
      return [out, r1];
    },
    duplicateListener: () => {
      const t = new EventTarget();
      let n = 0;
      const f = () => n++;
      t.addEventListener('x', f);
      t.addEventListener('x', f);
      t.dispatchEvent(new Event('x'));
      t.removeEventListener('x', f);
      t.dispatchEvent(new Event('x'));
      return n;
    },
    eventFields: () => {
      const t = new EventTarget();
      let seen;
      t.addEventListener('x', function (e) {
        seen = [e.target === t, e.currentTarget === t, e.eventPhase, this === t];
      });
      const e = new Event('x');
      t.dispatchEvent(e);
      return [seen, e.eventPhase, e.currentTarget];
    },
    stopImmediate: () => {
      const t = new EventTarget();
      const out = [];
      t.addEventListener('x', (e) => {
        out.push(1);
        e.stopImmediatePropagation();
      });
      t.addEventListener('x', () => out.push(2));
      t.dispatchEvent(new Event('x'));
      return out;
    },
    cancelResult: () => {
      const t = new EventTarget();
      t.addEventListener('x', (e) => e.preventDefault());
      return [t.dispatchEvent(new Event('x', { cancelable: true })), t.dispatchEvent(new Event('x'))];
    },
    redispatch: () => {
      const t = new EventTarget();
      let inner;
      t.addEventListener('x', (e) => (inner = err(() => t.dispatchEvent(e))));
      t.dispatchEvent(new Event('x'));
      return inner;
    },
    dispatchNonEvent: () => err(() => new EventTarget().dispatchEvent({ type: 'x' })),
    listenerThrows: () => {
      const t = new EventTarget();
      const out = [];
      t.addEventListener('x', () => {
        throw new Error('boom');
      });
      t.addEventListener('x', () => out.push('second ran'));
      const r = err(() => t.dispatchEvent(new Event('x')));
      return [r, out];
    },
    signalOption: () => {
      const t = new EventTarget();
      const ac = new AbortController();
      let n = 0;
      t.addEventListener('x', () => n++, { signal: ac.signal });
      t.dispatchEvent(new Event('x'));
      ac.abort();
      t.dispatchEvent(new Event('x'));
      return n;
    },
    nullListener: () => err(() => new EventTarget().addEventListener('x', null)),
    badListener: () => err(() => new EventTarget().addEventListener('x', 5)),
    removeDuringDispatch: () => {
      const t = new EventTarget();
      const out = [];
      const b = () => out.push('b');
      t.addEventListener('x', () => {
        out.push('a');
        t.removeEventListener('x', b);
      });
      t.addEventListener('x', b);
      t.dispatchEvent(new Event('x'));
      return out;
    },
    subclassTarget: () => {
      class T extends EventTarget {}
      const t = new T();
      let ok = false;
      t.addEventListener('x', () => (ok = true));
      t.dispatchEvent(new Event('x'));
      return ok;
    },
    toStringTag: () => Object.prototype.toString.call(new EventTarget()),
  }),
  '/abort': () => ({
    controller: () => {
      const ac = new AbortController();
      const out = [ac.signal.aborted, ac.signal.reason];
      let fired = 0;
      ac.signal.addEventListener('abort', () => fired++);
      ac.signal.onabort = () => fired++;
      ac.abort();
      ac.abort();
      out.push(ac.signal.aborted, ac.signal.reason?.name, ac.signal.reason?.message, ac.signal.reason instanceof DOMException, fired);
      return out;
    },
    customReason: () => {
      const ac = new AbortController();
      ac.abort('why');
      return [ac.signal.reason, err(() => ac.signal.throwIfAborted())];
    },
    undefinedReason: () => {
      const ac = new AbortController();
      ac.abort(undefined);
      return ac.signal.reason?.name;
    },
    throwIfAbortedDefault: () => {
      const ac = new AbortController();
      ac.signal.throwIfAborted();
      ac.abort();
      return err(() => ac.signal.throwIfAborted());
    },
    staticAbort: () => {
      const s = AbortSignal.abort();
      return [s.aborted, s.reason.name, s.reason.message, AbortSignal.abort(5).reason];
    },
    timeoutShape: () => {
      const s = AbortSignal.timeout(10);
      return [s.aborted, s instanceof AbortSignal];
    },
    timeoutFires: async () => {
      const s = AbortSignal.timeout(5);
      await new Promise((resolve) => s.addEventListener('abort', resolve));
      return [s.aborted, s.reason.name, s.reason.message, s.reason.code];
    },
    timeoutBadArg: () => err(() => AbortSignal.timeout(-1)),
    any: () => {
      if (typeof AbortSignal.any !== 'function') return 'no AbortSignal.any';
      const a = new AbortController();
      const b = new AbortController();
      const s = AbortSignal.any([a.signal, b.signal]);
      const before = s.aborted;
      b.abort('b first');
      a.abort('a second');
      return [before, s.aborted, s.reason];
    },
    anyAlreadyAborted: () => (typeof AbortSignal.any === 'function' ? AbortSignal.any([AbortSignal.abort('x')]).reason : 'no AbortSignal.any'),
    anyEmpty: () => (typeof AbortSignal.any === 'function' ? AbortSignal.any([]).aborted : 'no AbortSignal.any'),
    newSignal: () => err(() => new AbortSignal()),
    toStringTags: () => [Object.prototype.toString.call(new AbortController()), Object.prototype.toString.call(new AbortController().signal)],
    signalIsEventTarget: () => new AbortController().signal instanceof EventTarget,
  }),
  '/domexception': () => ({
    names: () => DOM_NAMES.map((name) => {
      const e = new DOMException('m', name);
      return [e.name, e.code, e.message];
    }),
    defaults: () => {
      const e = new DOMException();
      return [e.name, e.message, e.code, e instanceof Error, Object.prototype.toString.call(e), String(e)];
    },
    constants: () => [DOMException.INDEX_SIZE_ERR, DOMException.ABORT_ERR, DOMException.DATA_CLONE_ERR, DOMException.TIMEOUT_ERR,
      new DOMException('x').ABORT_ERR],
    optionsBag: () => {
      const e = new DOMException('m', { name: 'AbortError', cause: 'c' });
      return [e.name, e.cause];
    },
    stack: () => typeof new DOMException('m').stack,
    ownKeys: () => Object.keys(new DOMException('m', 'AbortError')),
    structuredClone: () => {
      const c = structuredClone(new DOMException('m', 'DataCloneError'));
      return [c instanceof DOMException, c.name, c.message, c.code];
    },
  }),
});
