// Headers for the sandbox (Fetch Standard §5.2, header lists §2.2.2).
//
// Deviations, following workerd: only the "immutable" guard is enforced. workerd is a server
// runtime, so it forbids no request header names (Cookie, Host, ...) and no response header
// names (Set-Cookie): the "request" and "response" guards exist but restrict nothing.

import { iteratorFactory } from '../iterators/sandbox.ts';
import {
  ArrayFrom, ArrayPrototypeIncludes, ArrayPrototypePush, ArrayPrototypeSort, ObjectDefineProperty, ReflectApply,
  ReflectGetOwnPropertyDescriptor, ReflectOwnKeys, RegExpPrototypeTest, Set, String, StringFromCharCode,
  StringFromCodePoint, StringPrototypeCharCodeAt, StringPrototypeSlice, StringPrototypeToLowerCase, Symbol,
  SymbolIterator, SymbolToStringTag, TypeError,
} from '../../sandbox/primordials.ts';

export type HeadersGuard = 'immutable' | 'request' | 'response' | 'none';
export type HeadersInit = Headers | Iterable<Iterable<string>> | Record<string, string>;

// RFC 9110 §5.6.2 token characters (tchar).
function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = StringPrototypeCharCodeAt(s, i);
    if (c > 0x7e || c <= 0x20) return false;
    // "(),/:;<=>?@[\]{} are delimiters.
    if (c === 0x22 || c === 0x28 || c === 0x29 || c === 0x2c || c === 0x2f || (c >= 0x3a && c <= 0x40) ||
      (c >= 0x5b && c <= 0x5d) || c === 0x7b || c === 0x7d) return false;
  }
  return true;
}
export { isToken as isHttpToken };

// Header names and values are kept as workerd keeps them: as bytes, the UTF-8 of the string the
// worker gave (a lone surrogate becomes its 3-byte WTF-8 form, as V8's UTF-8 writer makes it),
// held in a "byte string" (one char per byte, 0-255, Node's latin1/binary convention, which is
// also how the host reads and writes HTTP header bytes). Reading one back decodes the UTF-8,
// each invalid sequence a U+FFFD (Encoding §4.1 decoder). So `set('x', '€')` is accepted and
// goes on the wire as E2 82 AC, like in workerd; the Fetch spec would throw (ByteString).
// ASCII, the usual case, is the same in both forms and skips the conversions.
const NON_ASCII = /[^\x00-\x7f]/;

/** A JS string as its UTF-8 bytes (WTF-8 for lone surrogates), one char per byte. */
export function toByteString(value: string): string {
  if (!RegExpPrototypeTest(NON_ASCII, value)) return value;
  let out = '';
  for (let i = 0; i < value.length; i++) {
    let c = StringPrototypeCharCodeAt(value, i);
    if (c < 0x80) { out += value[i]; continue; }
    if (c < 0x800) { out += StringFromCharCode(0xc0 | (c >> 6), 0x80 | (c & 0x3f)); continue; }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < value.length) {
      const d = StringPrototypeCharCodeAt(value, i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        out += StringFromCharCode(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
        continue;
      }
    }
    out += StringFromCharCode(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  return out;
}

/** Bytes (one char per byte) decoded as UTF-8, each maximal invalid subpart a U+FFFD. */
export function fromByteString(bytes: string): string {
  if (!RegExpPrototypeTest(NON_ASCII, bytes)) return bytes;
  let out = '';
  const n = bytes.length;
  for (let i = 0; i < n;) {
    const b = StringPrototypeCharCodeAt(bytes, i);
    if (b < 0x80) { out += bytes[i++]; continue; }
    // Encoding §4.1 UTF-8 decoder: the lead byte fixes the length and the first continuation range.
    let need: number, cp: number, lo = 0x80, hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) { need = 1; cp = b & 0x1f; }
    else if (b >= 0xe0 && b <= 0xef) { need = 2; cp = b & 0x0f; if (b === 0xe0) lo = 0xa0; else if (b === 0xed) hi = 0x9f; }
    else if (b >= 0xf0 && b <= 0xf4) { need = 3; cp = b & 0x07; if (b === 0xf0) lo = 0x90; else if (b === 0xf4) hi = 0x8f; }
    else { out += '\ufffd'; i++; continue; }
    let j = i + 1;
    for (; need > 0; need--, j++) {
      const c = j < n ? StringPrototypeCharCodeAt(bytes, j) : -1;
      if (c < lo || c > hi) break;
      cp = (cp << 6) | (c & 0x3f);
      lo = 0x80; hi = 0xbf;
    }
    if (need > 0) { out += '\ufffd'; i = j; continue; }
    out += StringFromCodePoint(cp);
    i = j;
  }
  return out;
}

/** Fetch §2.2 "normalize": strip leading and trailing HTTP whitespace (tab, LF, CR, space). */
function normalizeValue(value: string): string {
  let start = 0, end = value.length;
  const ws = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
  while (start < end && ws(StringPrototypeCharCodeAt(value, start))) start++;
  while (end > start && ws(StringPrototypeCharCodeAt(value, end - 1))) end--;
  return start === 0 && end === value.length ? value : StringPrototypeSlice(value, start, end);
}

/**
 * A header name as workerd checks and stores it: its bytes may be anything but ASCII controls,
 * space, DEL and the delimiters of RFC 9110 §5.6.2 (bytes of non-ASCII characters pass, and so
 * does the empty name); stored lower-cased. workerd lower-cases byte by byte, A-Z and also
 * 0xC0-0xDE (the Latin-1 capitals' range, applied to UTF-8 bytes): so a non-ASCII name reads
 * back mangled ('é' as U+FFFD). isolet does the same, so that such names compare and read back
 * alike. Neither runtime sends them: they are no HTTP token (see src/http/front.ts).
 */
function validName(name: unknown): string {
  const n = toByteString(String(name));
  let latinCapitals = false;
  for (let i = 0; i < n.length; i++) {
    const c = StringPrototypeCharCodeAt(n, i);
    if (c <= 0x20 || c === 0x7f || c === 0x22 || c === 0x28 || c === 0x29 || c === 0x2c || c === 0x2f ||
      (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x5d) || c === 0x7b || c === 0x7d) {
      throw new TypeError('Invalid header name.');
    }
    if (c >= 0xc0 && c <= 0xde) latinCapitals = true;
  }
  if (!latinCapitals) return StringPrototypeToLowerCase(n); // (no byte 0x80-0xBF or 0xDF-0xFF changes case)
  let lower = '';
  for (let i = 0; i < n.length; i++) {
    const c = StringPrototypeCharCodeAt(n, i);
    lower += (c >= 0x41 && c <= 0x5a) || (c >= 0xc0 && c <= 0xde) ? StringFromCharCode(c + 0x20) : n[i];
  }
  return lower;
}

function validValue(value: unknown): string {
  const v = normalizeValue(toByteString(String(value)));
  // Fetch §2.2 "header value": no NUL, LF or CR (they would break HTTP framing).
  for (let i = 0; i < v.length; i++) {
    const c = StringPrototypeCharCodeAt(v, i);
    if (c === 0 || c === 0x0a || c === 0x0d) throw new TypeError(`Invalid header value.`);
  }
  return v;
}

const makeEntryIterator = iteratorFactory<[string, string]>('EntryIterator');
const makeKeyIterator = iteratorFactory<string>('KeyIterator');
const makeValueIterator = iteratorFactory<string>('ValueIterator');

/** Set the guard (Fetch §5.2); used by Request and Response. */
export let setHeadersGuard: (headers: Headers, guard: HeadersGuard) => void;
/** Append without validation, for header lists the host already parsed. */
export let appendHeaderUnchecked: (headers: Headers, name: string, value: string) => void;
/** The raw header list, flat [name, value, ...] in insertion order with lowercase names. */
export let headerList: (headers: Headers) => readonly string[];
let headersGuardGetter: (headers: Headers) => HeadersGuard;

export class Headers {
  // The header list as parallel flat storage: [name0, value0, name1, value1, ...], names
  // lowercased (nothing in the API exposes the original case), names and values as byte
  // strings (see toByteString). Insertion order is kept.
  #list: string[] = [];
  #guard: HeadersGuard = 'none';
  // Fetch §2.2 "sort and combine", decoded, cached until the next change. The cached array is
  // never changed in place, so an iterator or forEach holding it walks a snapshot.
  #sorted: [string, string][] | null = null;

  // `= undefined` keeps Headers.length 0, as in workerd (the init is optional).
  constructor(init: HeadersInit | undefined = undefined) {
    // workerd: null is not a valid init (a TypeError), only undefined means none.
    if (init === undefined) return;
    fillHeaders(this, init);
  }

  #checkMutable(): void {
    if (this.#guard === 'immutable') throw new TypeError("Can't modify immutable headers.");
  }

  append(name: string, value: string): void {
    if (arguments.length < 2) throw new TypeError("Failed to execute 'append' on 'Headers': 2 arguments required.");
    const n = validName(name), v = validValue(value);
    this.#checkMutable();
    ArrayPrototypePush(this.#list, n, v);
    this.#sorted = null;
  }

  delete(name: string): void {
    if (arguments.length < 1) throw new TypeError("Failed to execute 'delete' on 'Headers': 1 argument required.");
    const n = validName(name);
    this.#checkMutable();
    const list = this.#list;
    let w = 0;
    for (let r = 0; r < list.length; r += 2) {
      if (list[r] !== n) { list[w++] = list[r]; list[w++] = list[r + 1]; }
    }
    if (w !== list.length) { list.length = w; this.#sorted = null; }
  }

  get(name: string): string | null {
    if (arguments.length < 1) throw new TypeError("Failed to execute 'get' on 'Headers': 1 argument required.");
    const n = validName(name);
    // Fetch §2.2 "get": values of the same name joined with ", ".
    let out: string | null = null;
    const list = this.#list;
    for (let i = 0; i < list.length; i += 2) {
      if (list[i] === n) out = out === null ? list[i + 1] : out + ', ' + list[i + 1];
    }
    return out === null ? null : fromByteString(out);
  }

  getSetCookie(): string[] {
    const out: string[] = [];
    const list = this.#list;
    for (let i = 0; i < list.length; i += 2) if (list[i] === 'set-cookie') ArrayPrototypePush(out, fromByteString(list[i + 1]));
    return out;
  }

  /** workerd's non-standard multi-value getter; only 'set-cookie' is allowed, as there. */
  getAll(name: string): string[] {
    const n = validName(name);
    if (n !== 'set-cookie') throw new TypeError('getAll() can only be used with the header name "Set-Cookie".');
    return this.getSetCookie();
  }

  has(name: string): boolean {
    if (arguments.length < 1) throw new TypeError("Failed to execute 'has' on 'Headers': 1 argument required.");
    return hasHeaderUnchecked(this, validName(name));
  }

  set(name: string, value: string): void {
    if (arguments.length < 2) throw new TypeError("Failed to execute 'set' on 'Headers': 2 arguments required.");
    const n = validName(name), v = validValue(value);
    this.#checkMutable();
    // Fetch §2.2 "set": replace the first, remove the others.
    const list = this.#list;
    let found = false, w = 0;
    for (let r = 0; r < list.length; r += 2) {
      if (list[r] === n) {
        if (found) continue;
        found = true;
        list[w++] = n; list[w++] = v;
      } else {
        list[w++] = list[r]; list[w++] = list[r + 1];
      }
    }
    list.length = w;
    if (!found) ArrayPrototypePush(list, n, v);
    this.#sorted = null;
  }

  #sortAndCombine(): [string, string][] {
    if (this.#sorted) return this.#sorted;
    // Fetch §2.2 "sort and combine": names sorted (byte order; they are lowercase ASCII), each
    // name once with its combined value, except set-cookie which keeps one entry per value.
    const list = this.#list;
    const names: string[] = [];
    for (let i = 0; i < list.length; i += 2) if (!ArrayPrototypeIncludes(names, list[i])) ArrayPrototypePush(names, list[i]);
    ArrayPrototypeSort(names, (a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const out: [string, string][] = [];
    for (let n = 0; n < names.length; n++) {
      const name = names[n]!;
      const decoded = fromByteString(name);
      if (name === 'set-cookie') {
        for (let i = 0; i < list.length; i += 2) if (list[i] === name) ArrayPrototypePush(out, [name, fromByteString(list[i + 1])] as [string, string]);
      } else {
        let value: string | null = null;
        for (let i = 0; i < list.length; i += 2) {
          if (list[i] === name) value = value === null ? list[i + 1] : value + ', ' + list[i + 1];
        }
        ArrayPrototypePush(out, [decoded, fromByteString(value!)] as [string, string]);
      }
    }
    return (this.#sorted = out);
  }

  // Iteration (forEach and the iterators) walks a snapshot of the sorted and combined list
  // taken when it starts, as in workerd: changes made during the walk are not seen. (WebIDL's
  // pair iterators would re-read the live list at each step; Node and browsers do.)
  forEach(callback: (value: string, name: string, headers: Headers) => void, thisArg?: unknown): void {
    if (typeof callback !== 'function') throw new TypeError("Failed to execute 'forEach' on 'Headers': parameter 1 is not of type 'function'.");
    const pairs = this.#sortAndCombine();
    for (let i = 0; i < pairs.length; i++) ReflectApply(callback, thisArg, [pairs[i][1], pairs[i][0], this]);
  }

  entries(): IterableIterator<[string, string]> {
    const pairs = this.#sortAndCombine();
    return makeEntryIterator((i) => (i < pairs.length ? [pairs[i][0], pairs[i][1]] : undefined));
  }
  keys(): IterableIterator<string> {
    const pairs = this.#sortAndCombine();
    return makeKeyIterator((i) => pairs[i]?.[0]);
  }
  values(): IterableIterator<string> {
    const pairs = this.#sortAndCombine();
    return makeValueIterator((i) => pairs[i]?.[1]);
  }
  [SymbolIterator](): IterableIterator<[string, string]> { return this.entries(); }

  static {
    setHeadersGuard = (headers, guard) => { headers.#guard = guard; };
    // For headers the host already parsed and validated (incoming requests): no re-validation.
    appendHeaderUnchecked = (headers, name, value) => {
      // The first header (often the only one, a body's Content-Type) makes a list of exactly two:
      // a push into the empty list would allocate room for nineteen.
      if (headers.#list.length === 0) headers.#list = [StringPrototypeToLowerCase(name), value];
      else ArrayPrototypePush(headers.#list, StringPrototypeToLowerCase(name), value);
      headers.#sorted = null;
    };
    headerList = (headers) => headers.#list;
    headersGuardGetter = (headers) => headers.#guard;
  }
}
ObjectDefineProperty(Headers.prototype, SymbolToStringTag, { __proto__: null, value: 'Headers', configurable: true });

/** Fetch §5.2 "fill": from a Headers, a sequence of pairs, or a record. */
export function fillHeaders(headers: Headers, init: unknown): void {
  if (init instanceof Headers) {
    const list = headerList(init);
    for (let i = 0; i < list.length; i += 2) appendHeaderUnchecked(headers, list[i], list[i + 1]);
    return;
  }
  if (init === null || (typeof init !== 'object' && typeof init !== 'function')) {
    throw new TypeError("Failed to construct 'Headers': The provided value is not of type '(record<ByteString, ByteString> or sequence<sequence<ByteString>>)'.");
  }
  const iter = (init as { [SymbolIterator]?: unknown })[SymbolIterator];
  if (iter !== undefined && iter !== null) {
    if (typeof iter !== 'function') throw new TypeError("Failed to construct 'Headers': The object must have a callable @@iterator property.");
    // The init's own iteration protocol, as WebIDL's sequence conversion walks it.
    for (const pair of init as Iterable<unknown>) {
      const items = pair !== null && typeof pair === 'object' && SymbolIterator in pair ? ArrayFrom(pair as Iterable<unknown>) : null;
      if (!items || items.length !== 2) throw new TypeError('Invalid value: Headers init sequence must only contain pairs of [name, value].');
      headersAppend(headers, items[0] as string, items[1] as string);
    }
    return;
  }
  const keys = ReflectOwnKeys(init);
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k]!;
    const desc = ReflectGetOwnPropertyDescriptor(init, key);
    if (!desc?.enumerable) continue;
    // WebIDL record<ByteString, ByteString> conversion takes string keys only, so symbols are
    // skipped (as in workerd).
    if (typeof key === 'symbol') continue;
    headersAppend(headers, key, (init as Record<string, string>)[key]!);
  }
}

// Headers' methods as the platform calls them (fill, Request, Response): Headers.prototype is
// the tenant's to change, and what it puts there must not change how they build their headers.
const { append, get, has } = Headers.prototype;
export function headersAppend(headers: Headers, name: string, value: string): void { ReflectApply(append, headers, [name, value]); }
export function headersGet(headers: Headers, name: string): string | null { return ReflectApply(get, headers, [name]); }
export function headersHas(headers: Headers, name: string): boolean { return ReflectApply(has, headers, [name]); }

/** Whether the list has a header `name` (lowercase), without validating it. */
export function hasHeaderUnchecked(headers: Headers, name: string): boolean {
  const list = headerList(headers);
  for (let i = 0; i < list.length; i += 2) if (list[i] === name) return true;
  return false;
}

/**
 * structuredClone of a Headers, as workerd serializes them: a plain Headers (whatever the
 * subclass) with the same list and guard.
 */
export function cloneHeadersForStructuredClone(from: Headers): Headers {
  const copy = new Headers();
  fillHeaders(copy, from);
  setHeadersGuard(copy, headersGuardGetter(from));
  return copy;
}
