// The host calls (src/bridge/protocol.ts HostCalls) as the isolated-vm Callbacks a new context
// receives, in HOST_CALL_ORDER. Every argument is checked against the type the protocol
// declares before the host's implementation sees it: the sandbox runtime shares its isolate with
// tenant code, so a call may come from code that took it over. A call that fails its checks is
// dropped (a `post` call has no one to answer) or throws a TypeError (a `wait` call).

import ivm from 'isolated-vm';
import { HOST_CALL_ORDER, HOST_CALLS, HOST_CALLS_EXTERNAL_FROM, type DispatchResult, type HostCallName, type HostCalls } from '../bridge/protocol.ts';

type Check<T> = (value: unknown) => value is T;
type ArgumentChecks<F> = F extends (...args: infer A) => unknown ? { [I in keyof A]: Check<A[I]> } : never;

const isNumber = (value: unknown): value is number => typeof value === 'number';
const isString = (value: unknown): value is string => typeof value === 'string';
const isBoolean = (value: unknown): value is boolean => typeof value === 'boolean';
const isArray = (value: unknown): value is unknown[] => Array.isArray(value);
/** A structured clone the sandbox made: any value (the host only hands it on, copied). */
const isAny = (_value: unknown): _value is unknown => true;
/** A value the host hands on (HOST_CALLS_EXTERNAL_FROM): an ExternalCopy on isolet's build, a copy on a stock one. */
const isHandedOn = isAny;
const isWholeBody = (value: unknown): value is string | Uint8Array | null =>
  value === null || typeof value === 'string' || value instanceof Uint8Array;

function isDispatchResult(value: unknown): value is DispatchResult {
  if (value === null || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  if (typeof v.error === 'string') return v.kind === 'exception' || v.kind === 'bad-response' || v.kind === 'no-handler';
  if (typeof v.status !== 'number' || typeof v.statusText !== 'string' || !Array.isArray(v.headers)) return false;
  if (!v.headers.every((h) => typeof h === 'string') || v.headers.length % 2 !== 0) return false;
  const body = v.body;
  if (isWholeBody(body)) return true;
  if (body === null || typeof body !== 'object') return false;
  const streamed = body as Record<string, unknown>;
  return streamed.stream === true && (streamed.length === null || isNumber(streamed.length)) && isBoolean(streamed.requestBody);
}

/** A whole answer's primitives (respondSimple and respondSimpleNow). */
const SIMPLE_ANSWER: ArgumentChecks<HostCalls['respondSimple']> = [isNumber, isNumber, isString, isString, isWholeBody, isBoolean];

/** What each host call's arguments must be, position by position; the type checker holds this to HostCalls. */
const CHECKS: { [K in HostCallName]: ArgumentChecks<HostCalls[K]> } = {
  log: [isString, isString],
  uncaught: [isNumber, isString],
  startTimer: [isNumber, isNumber, isNumber],
  clearTimer: [isNumber],
  requestDone: [isNumber],
  respond: [isNumber, isDispatchResult],
  respondSimple: SIMPLE_ANSWER,
  respondSimpleNow: SIMPLE_ANSWER,
  respondCall: [isNumber, isBoolean, isString, isBoolean, isHandedOn],
  sync: [isString, isArray],
  async: [isNumber, isNumber, isString, isArray],
  asyncValues: [isNumber, isNumber, isString, isArray],
  loadModule: [isString],
};

/** The Callbacks to hand the `init` entry, positionally, each running `calls[name]` on checked arguments. */
export function hostCallbacks(calls: HostCalls): ivm.Callback[] {
  return HOST_CALL_ORDER.map((name) => {
    const checks = CHECKS[name] as readonly ((value: unknown) => boolean)[];
    const call = calls[name] as (...args: unknown[]) => unknown;
    const waits = HOST_CALLS[name] === 'wait';
    const from = HOST_CALLS_EXTERNAL_FROM[name];
    // A call whose handed-on values are as many as it declares (respondCall's one), not a rest.
    const fixed = from !== undefined && checks.length > from;
    const checked = (...args: unknown[]): unknown => {
      if (fixed && args.length > checks.length) {
        releaseFrom(args, from);
        return undefined;
      }
      for (let i = 0; i < checks.length; i++) {
        if (!checks[i]!(args[i])) {
          // Their memory is outside every heap: freed now, not whenever a collection finds the handles.
          if (from !== undefined) releaseFrom(args, from);
          if (waits) throw new TypeError(`Host call ${name}: argument ${i + 1} is not what the protocol declares.`);
          return undefined;
        }
      }
      return call(...args);
    };
    // `externalFrom` is isolet's (native/isolated-vm/zzz-external-from.patch): not in isolated-vm's types.
    const options = { ...(waits ? {} : { ignored: true }), ...(from === undefined ? {} : { externalFrom: from }) } as ivm.CallbackOptions;
    return new ivm.Callback(checked, options);
  });
}

function releaseFrom(args: unknown[], from: number): void {
  for (let i = from; i < args.length; i++) {
    const value = args[i];
    if (value instanceof ivm.ExternalCopy) value.release();
  }
}
