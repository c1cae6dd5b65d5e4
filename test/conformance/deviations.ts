// Where isolet is allowed to answer differently from workerd, each with why, in one place.
// The comparison (harness.ts) applies them explicitly: a check that differs passes as a
// "deviation" only when one of these names it and its `same` says the two answers agree in
// everything the deviation does not cover. Everything else must match workerd exactly.
//
// PENDING_CHECKS are not deviations: they name checks of APIs that are being built now, so
// `npm test` does not fail on them, while `npm run conformance` still runs and reports them.

export interface Deviation {
  /** A check id (`<case id>/<check key>`), or a pattern over check ids. */
  check: string | RegExp;
  reason: string;
  /** Whether the two answers agree once this deviation is allowed for. */
  same: (workerd: unknown, isolet: unknown) => boolean;
}

/** Drops `message` from every thrown-value description ({ $throws, name, message }) in a value. */
function withoutMessages(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutMessages);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    const thrown = '$throws' in value || '$error' in value;
    for (const [key, inner] of Object.entries(value)) {
      if (thrown && key === 'message') continue;
      out[key] = withoutMessages(inner);
    }
    return out;
  }
  return value;
}

function sameIgnoringMessages(a: unknown, b: unknown): boolean {
  return JSON.stringify(withoutMessages(a)) === JSON.stringify(withoutMessages(b));
}

/** Global names workerd has and isolet documents as not built (docs/COMPATIBILITY.md, "missing"). */
export const NOT_YET_IMPLEMENTED_GLOBALS = [
  'Body', 'Cache', 'CacheStorage', 'caches', 'CloseEvent', 'Cloudflare', 'CustomEvent', 'ErrorEvent', 'EventSource',
  'ExtendableEvent', 'FetchEvent', 'HTMLRewriter', 'MessageChannel', 'MessageEvent', 'MessagePort', 'Navigator',
  'PromiseRejectionEvent', 'ScheduledEvent', 'TailEvent', 'TraceEvent', 'URLPattern', 'WebSocket', 'WebSocketPair',
  'WebSocketRequestResponsePair', 'reportError', 'scheduler', 'origin', 'dispatchEvent', 'ServiceWorkerGlobalScope',
  'WorkerGlobalScope',
];

export const DEVIATIONS: Deviation[] = [
  {
    check: /./,
    reason:
      'Error message wording: a thrown error must have the same constructor, name (and DOMException code) as in workerd; ' +
      'its message may differ. isolet copies workerd\'s wording where tenants are known to match on it (body reuse, ' +
      'immutable headers, invalid header name/value) and words the rest itself.',
    same: sameIgnoringMessages,
  },
  {
    check: /^errors\/[^/]+\/(body|headers|statusText)$/,
    reason:
      'An uncaught exception is a 500 in both; the body, its headers and the status text are each runtime\'s own error ' +
      'page. Only the status is compared.',
    same: () => true,
  },
  {
    check: /^timers\/clock\/(frozenDuringSync|performanceFrozen)$/,
    reason:
      'The Spectre defence (DESIGN.md, security layer 2): isolet freezes Date.now() and performance.now() while code runs ' +
      'and advances them only at I/O, as Cloudflare\'s production runtime does; a local workerd lets them tick. ' +
      'Everything else about the clock (advancing across a timer, integer ms, new Date() === Date.now()) is compared.',
    same: (workerd, isolet) => JSON.stringify(workerd).replace('[false', '[true') === JSON.stringify(isolet),
  },
  {
    check: /^globals\/(names\/(SharedArrayBuffer|Atomics)|shape\/(sharedArrayBuffer|atomicsWait))$/,
    reason:
      'Refused on purpose (DESIGN.md, security layer 2): no SharedArrayBuffer or Atomics, which make high-resolution ' +
      'timers. workerd has them because Cloudflare runs one request per isolate thread at a time.',
    same: (_workerd, isolet) => isolet === undefined || isolet === 'undefined' || isolet === 'no Atomics',
  },
  {
    check: /^globals\/names\/(Performance|FinalizationRegistry|WeakRef)$/,
    reason:
      'isolet has these globals and workerd (at this compatibility date) does not: V8 built-ins workerd removes ' +
      '(FinalizationRegistry, WeakRef) and the Performance class behind `performance`. Extra names break no worker.',
    same: (workerd) => workerd === undefined,
  },
];

/**
 * Checks of APIs that are being built right now: reported as pending, not failed. (A case can
 * also be pending as a whole: `pending` in cases.ts.)
 */
export const PENDING_CHECKS: { check: string | RegExp; api: string }[] = [
  { check: /^globals\/names\/(Blob|File|FormData)$/, api: 'FormData/Blob' },
  { check: /^globals\/names\/fetch$/, api: 'fetch' },
  { check: /^crypto\/random\/digestStream$/, api: 'crypto.subtle' },
  // Not deviations: they count against the pass rate, but npm test does not fail on them.
  { check: new RegExp(`^globals/names/(${NOT_YET_IMPLEMENTED_GLOBALS.join('|')})$`), api: 'not built yet (docs/COMPATIBILITY.md)' },
];

/**
 * Differences found and not (yet) decided: each is a finding, reported with a repro and the
 * source file likely responsible. They count as failures in the pass rate; `npm test` tolerates
 * them so that it fails only on new differences. Fix one (in src/ or by declaring it an
 * intended deviation above) and remove it here.
 */
export interface KnownDifference {
  check: RegExp;
  finding: string;
  /** Where in src/ the behaviour most likely comes from. */
  source: string;
}

export const KNOWN_DIFFERENCES: KnownDifference[] = [
  { check: /^headers\/basics\/fromNull$/, finding: '`new Headers(null)` is accepted (workerd: TypeError).', source: 'src/api/headers/sandbox.ts' },
  { check: /^headers\/basics\/symbolKeys$/, finding: 'A record init with a symbol key throws (workerd skips symbol keys).', source: 'src/api/headers/sandbox.ts' },
  { check: /^headers\/validation\/(nameEmpty|nameNonAscii|valueEuro)$/, finding: "workerd accepts the header name '' and 'é', and the value '€'; isolet throws TypeError as the Fetch spec says.", source: 'src/api/headers/sandbox.ts' },
  { check: /^headers\/combine\/(mutationDuringIteration|deleteDuringIteration)$/, finding: 'Iterating Headers sees changes made during the walk (workerd iterates a snapshot taken when the iterator was made).', source: 'src/api/headers/sandbox.ts' },
  { check: /^(headers\/combine\/iteratorProto|url\/params\/iteratorTag)$/, finding: 'Headers/URLSearchParams iterators are generators ("[object Generator]", and the last result has `value: undefined`); workerd\'s are "[object Iterator]" with `{ done: true }`.', source: 'src/api/headers/sandbox.ts, src/api/url/sandbox.ts' },
  { check: /^headers\/shape\/length$/, finding: 'Headers.length is 1 (workerd: 0, the init is optional).', source: 'src/api/headers/sandbox.ts' },
  { check: /^headers\/shape\/errorGuard$/, finding: "Response.error()'s headers are immutable (workerd lets them be set).", source: 'src/api/response/sandbox.ts' },
  { check: /^url\/api\/createObjectURL$/, finding: 'URL.createObjectURL/revokeObjectURL are absent (workerd has them, throwing when called).', source: 'src/api/url/sandbox.ts' },
  { check: /^request\/(construct\/cfProperty|incoming(-[a-z]+)?\/cf)$/, finding: 'request.cf is undefined: `new Request(url, { cf })` drops it, and incoming requests have none (workerd: an object).', source: 'src/api/request/sandbox.ts, src/sandbox/dispatch.ts' },
  { check: /^request\/construct\/fetcher$/, finding: 'request.fetcher is undefined (workerd: null).', source: 'src/api/request/sandbox.ts' },
  { check: /^request\/construct\/redirectModes$/, finding: "redirect: 'error' is accepted (workerd refuses it: only 'follow' and 'manual').", source: 'src/api/request/sandbox.ts' },
  { check: /^request\/construct\/integrity$/, finding: 'A non-empty `integrity` is accepted (workerd: TypeError, subrequest integrity is not implemented).', source: 'src/api/request/sandbox.ts' },
  { check: /^request\/methods\/"m-search"$/, finding: "method 'm-search' is upper-cased to 'M-SEARCH' (workerd: TypeError; its method list has no M-SEARCH).", source: 'src/api/request/sandbox.ts' },
  { check: /^request\/body\/(signal|cloneSignal)$/, finding: "`new Request(url, { signal }).signal` is not the init's signal, and a clone's signal does not follow the original's (workerd: the same signal; a clone follows).", source: 'src/api/request/sandbox.ts' },
  { check: /^request\/incoming\/url$/, finding: "The request target's #fragment reaches request.url (workerd drops it; a fragment is never part of a request target, RFC 9112 §3.2).", source: 'src/http/front.ts' },
  { check: /^request\/incoming(-[a-z]+)?\/redirect$/, finding: "An incoming request's redirect mode is 'follow' (workerd: 'manual').", source: 'src/sandbox/dispatch.ts, src/api/request/sandbox.ts' },
  { check: /^request\/incoming(-[a-z]+)?\/clone$/, finding: 'clone() of an incoming request whose body has been read succeeds, with bodyUsed false (workerd: TypeError).', source: 'src/api/request/sandbox.ts, src/api/body/sandbox.ts' },
  { check: /^response\/construct\/statusTextNonLatin$/, finding: "statusText '€' throws (workerd accepts it).", source: 'src/api/response/sandbox.ts' },
  { check: /^response\/(construct\/nullBodyStatus|statics\/jsonNullBodyStatus)$/, finding: "new Response('', { status: 204 }) throws (workerd allows an empty string body with a null-body status).", source: 'src/api/response/sandbox.ts' },
  { check: /^response\/body\/bom$/, finding: 'response.text() strips a leading UTF-8 BOM (as the Fetch spec says); workerd keeps it.', source: 'src/api/body/sandbox.ts' },
  { check: /^response\/body\/loneSurrogate$/, finding: "A string body with a lone surrogate is encoded as U+FFFD (EF BF BD); workerd writes its WTF-8 bytes (ED A0 80).", source: 'src/api/body/sandbox.ts' },
  { check: /^response\/statics\/(jsonUndefined|jsonFunction)$/, finding: 'Response.json(undefined) and Response.json(() => 1) throw TypeError (workerd answers with an empty body).', source: 'src/api/response/sandbox.ts' },
  { check: /^encoding\/decoder\/(otherLabels|latin1Decode|utf16Decode)$/, finding: 'TextDecoder supports only UTF-8 (documented); workerd decodes utf-16le/be, windows-1252, iso-8859-2, shift_jis, gbk, ...', source: 'src/api/encoding/sandbox.ts' },
  { check: /^encoding\/(encoder|decoder)\/toStringTag$/, finding: 'TextEncoder/TextDecoder have no Symbol.toStringTag ("[object Object]"); workerd: "[object TextEncoder]".', source: 'src/api/encoding/sandbox.ts' },
  { check: /^events\/event\/defaults$/, finding: "A new Event's target and currentTarget are null (workerd: undefined).", source: 'src/api/events/sandbox.ts' },
  { check: /^events\/event\/customEvent$/, finding: 'CustomEvent is missing.', source: 'src/api/events/sandbox.ts' },
  { check: /^events\/target\/eventFields$/, finding: "A listener's `this` is the target, and currentTarget is null after dispatch (workerd: `this` is undefined; currentTarget stays the target).", source: 'src/api/events/sandbox.ts' },
  { check: /^events\/target\/cancelResult$/, finding: 'dispatchEvent returns true when a listener calls preventDefault() on a non-cancelable event (the DOM spec\'s answer); workerd returns false.', source: 'src/api/events/sandbox.ts' },
  { check: /^events\/target\/listenerThrows$/, finding: "A listener's exception is reported and the next listener runs (the DOM spec); workerd rethrows it from dispatchEvent and skips the rest.", source: 'src/api/events/sandbox.ts' },
  { check: /^events\/abort\/(controller|staticAbort)$/, finding: "The default abort reason's message is 'This operation was aborted' (workerd: 'The operation was aborted').", source: 'src/api/events/sandbox.ts' },
  { check: /^events\/abort\/timeoutBadArg$/, finding: 'AbortSignal.timeout(-1) throws TypeError (workerd accepts it).', source: 'src/api/events/sandbox.ts' },
  { check: /^events\/domexception\/ownKeys$/, finding: "A DOMException has no own enumerable keys (workerd: code, name, message, stack).", source: 'src/api/events/sandbox.ts' },
  { check: /^clone\/refused\/(headers|request|response)$/, finding: 'structuredClone of Headers/Request/Response throws DataCloneError (as browsers do); workerd clones them without error.', source: 'src/sandbox/web-platform.ts (markNotSerializable)' },
  { check: /^crypto\/random\/(notView|noArgs)$/, finding: 'crypto.getRandomValues([1, 2]) and getRandomValues() throw DOMException TypeMismatchError (workerd: TypeError).', source: 'src/api/crypto/sandbox.ts' },
  { check: /^crypto\/random\/unbound$/, finding: 'An unbound getRandomValues works (workerd: TypeError, illegal invocation).', source: 'src/api/crypto/sandbox.ts' },
  { check: /^timers\/order\/delays$/, finding: 'setTimeout(f, 0) is clamped to 1 ms, so a 1 ms timer set first fires before 0 ms ones (workerd keeps 0 and 1 apart: 0, 0b, 1, 5, 10).', source: 'src/api/timers/sandbox.ts' },
  { check: /^timers\/order\/clearBogus$/, finding: "clearTimeout('x') / clearInterval({}) are ignored (workerd: TypeError, parameter 1 is not of type 'Number').", source: 'src/api/timers/sandbox.ts' },
  { check: /^timers\/order\/queueMicrotaskThis$/, finding: 'A queueMicrotask callback runs with `this` undefined (workerd: the global object).', source: 'src/api/timers/sandbox.ts' },
  { check: /^timers\/order\/scheduler$/, finding: 'scheduler.wait() is missing.', source: 'src/api/timers/sandbox.ts' },
  { check: /^globals\/shape\/(globalThisTag|globalProtoChain)$/, finding: 'The global object is a plain object; in workerd it is a ServiceWorkerGlobalScope (an EventTarget).', source: 'src/sandbox/main.ts' },
  { check: /^globals\/shape\/navigator$/, finding: "navigator.userAgent is 'isolet' (workerd: 'Cloudflare-Workers'; libraries sniff it).", source: 'src/sandbox/main.ts' },
  { check: /^globals\/shape\/atLoad$/, finding: "new Response() works in top-level code (workerd: Error, 'Disallowed operation called within global scope').", source: 'src/api/response/sandbox.ts' },
  { check: /^(http|hono|itty)\/[^/]+\/statusText$/, finding: "The front fills an empty statusText from Node's table: 299 and 599 get '' and 418 \"I'm a Teapot\" (workerd: 'Successful', 'Server Error', \"I'm a teapot\").", source: 'src/http/front.ts' },
  { check: /^http\/echo-empty-post\/body$/, finding: 'A POST with Content-Length: 0 arrives with request.body null (workerd: an empty stream, so text() is "" either way but body !== null).', source: 'src/http/front.ts' },
];
