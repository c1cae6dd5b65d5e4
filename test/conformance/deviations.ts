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
  'Body', 'Cache', 'CacheStorage', 'caches', 'Cloudflare', 'EventSource',
  'ExtendableEvent', 'HTMLRewriter', 'MessageChannel', 'MessagePort', 'Navigator',
  'ScheduledEvent', 'TailEvent', 'TraceEvent', 'WebSocket', 'WebSocketPair',
  'WebSocketRequestResponsePair', 'reportError', 'origin',
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
      'The Spectre defence (SECURITY.md): isolet freezes Date.now() and performance.now() while code runs ' +
      'and advances them only at I/O, as Cloudflare\'s production runtime does; a local workerd lets them tick. ' +
      'Everything else about the clock (advancing across a timer, integer ms) is compared.',
    same: (workerd, isolet) => JSON.stringify(workerd).replace('[false', '[true') === JSON.stringify(isolet),
  },
  {
    check: /^timers\/clock\/newDateMatchesNow$/,
    reason:
      'With a clock that ticks while code runs (a local workerd), new Date() and a following Date.now() agree only ' +
      'when both reads fall in the same millisecond, which a busy machine often misses; with isolet\'s frozen clock ' +
      '(the Spectre defence above) they always agree. isolet must say true.',
    same: (_workerd, isolet) => isolet === true,
  },
  {
    check: /^globals\/(names\/(SharedArrayBuffer|Atomics)|shape\/(sharedArrayBuffer|atomicsWait))$/,
    reason:
      'Refused on purpose (SECURITY.md, the Spectre defences): no SharedArrayBuffer or Atomics, which make high-resolution ' +
      'timers. workerd has them because Cloudflare runs one request per isolate thread at a time.',
    same: (_workerd, isolet) => isolet === undefined || isolet === 'undefined' || isolet === 'no Atomics',
  },
  {
    check: /^fetch\/fetch\/redirectError$/,
    reason:
      "fetch(url, { redirect: 'error' }): workerd refuses the mode itself (a TypeError whatever the response); isolet " +
      'implements it as the Fetch spec does (§4.4 step 9: a redirect is a TypeError, other responses are fine). Code ' +
      'written for workerd never passes the mode; code written for browsers and Node works. new Request() still ' +
      "refuses 'error', as in workerd. Here the response is a redirect, so both throw a TypeError.",
    same: sameIgnoringMessages,
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

export const KNOWN_DIFFERENCES: KnownDifference[] = [];
