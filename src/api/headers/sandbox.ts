// Headers for the sandbox (Fetch Standard §5.2, header lists §2.2.2).
//
// Deviations, following workerd: only the "immutable" guard is enforced. workerd is a server
// runtime, so it forbids no request header names (Cookie, Host, ...) and no response header
// names (Set-Cookie): the "request" and "response" guards exist but restrict nothing.

export type HeadersGuard = 'immutable' | 'request' | 'response' | 'none';
export type HeadersInit = Headers | Iterable<Iterable<string>> | Record<string, string>;

// RFC 9110 §5.6.2 token characters (tchar).
function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7e || c <= 0x20) return false;
    // "(),/:;<=>?@[\]{} are delimiters.
    if (c === 0x22 || c === 0x28 || c === 0x29 || c === 0x2c || c === 0x2f || (c >= 0x3a && c <= 0x40) ||
      (c >= 0x5b && c <= 0x5d) || c === 0x7b || c === 0x7d) return false;
  }
  return true;
}
export { isToken as isHttpToken };

/** WebIDL ByteString conversion: code units above 0xFF are a TypeError. */
function toByteString(value: unknown): string {
  const s = String(value);
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0xff) {
      throw new TypeError(`Cannot convert argument to a ByteString because the character at index ${i} has a value of ${s.charCodeAt(i)} which is greater than 255.`);
    }
  }
  return s;
}

/** Fetch §2.2 "normalize": strip leading and trailing HTTP whitespace (tab, LF, CR, space). */
function normalizeValue(value: string): string {
  let start = 0, end = value.length;
  const ws = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
  while (start < end && ws(value.charCodeAt(start))) start++;
  while (end > start && ws(value.charCodeAt(end - 1))) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

function validName(name: unknown): string {
  const n = toByteString(name);
  if (!isToken(n)) throw new TypeError(`Invalid header name.`);
  return n.toLowerCase();
}

function validValue(value: unknown): string {
  const v = normalizeValue(toByteString(value));
  // Fetch §2.2 "header value": no NUL, LF or CR.
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0 || c === 0x0a || c === 0x0d) throw new TypeError(`Invalid header value.`);
  }
  return v;
}

let headersGuardSetter: (headers: Headers, guard: HeadersGuard) => void;
let headersRawAppend: (headers: Headers, name: string, value: string) => void;
let headersRawList: (headers: Headers) => readonly string[];

export class Headers {
  // The header list as parallel flat storage: [name0, value0, name1, value1, ...], names
  // lowercased (nothing in the API exposes the original case). Insertion order is kept.
  #list: string[] = [];
  #guard: HeadersGuard = 'none';
  // Fetch §2.2 "sort and combine", cached until the next change; iterators read through it.
  #sorted: [string, string][] | null = null;

  constructor(init?: HeadersInit) {
    if (init === undefined || init === null) return;
    fillHeaders(this, init);
  }

  #checkMutable(): void {
    if (this.#guard === 'immutable') throw new TypeError("Can't modify immutable headers.");
  }

  append(name: string, value: string): void {
    if (arguments.length < 2) throw new TypeError("Failed to execute 'append' on 'Headers': 2 arguments required.");
    const n = validName(name), v = validValue(value);
    this.#checkMutable();
    this.#list.push(n, v);
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
    return out;
  }

  getSetCookie(): string[] {
    const out: string[] = [];
    const list = this.#list;
    for (let i = 0; i < list.length; i += 2) if (list[i] === 'set-cookie') out.push(list[i + 1]);
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
    const n = validName(name);
    const list = this.#list;
    for (let i = 0; i < list.length; i += 2) if (list[i] === n) return true;
    return false;
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
    if (!found) list.push(n, v);
    this.#sorted = null;
  }

  #sortAndCombine(): [string, string][] {
    if (this.#sorted) return this.#sorted;
    // Fetch §2.2 "sort and combine": names sorted (byte order; they are lowercase ASCII), each
    // name once with its combined value, except set-cookie which keeps one entry per value.
    const list = this.#list;
    const names: string[] = [];
    for (let i = 0; i < list.length; i += 2) if (!names.includes(list[i])) names.push(list[i]);
    names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const out: [string, string][] = [];
    for (const name of names) {
      if (name === 'set-cookie') {
        for (let i = 0; i < list.length; i += 2) if (list[i] === name) out.push([name, list[i + 1]]);
      } else {
        out.push([name, this.get(name)!]);
      }
    }
    return (this.#sorted = out);
  }

  forEach(callback: (value: string, name: string, headers: Headers) => void, thisArg?: unknown): void {
    if (typeof callback !== 'function') throw new TypeError("Failed to execute 'forEach' on 'Headers': parameter 1 is not of type 'Function'.");
    // WebIDL pair iterable: re-read the pairs at each step, so changes during the walk show.
    for (let i = 0; i < this.#sortAndCombine().length; i++) {
      const [name, value] = this.#sortAndCombine()[i];
      callback.call(thisArg, value, name, this);
    }
  }

  *entries(): IterableIterator<[string, string]> {
    for (let i = 0; i < this.#sortAndCombine().length; i++) {
      const [name, value] = this.#sortAndCombine()[i];
      yield [name, value];
    }
  }
  *keys(): IterableIterator<string> {
    for (let i = 0; i < this.#sortAndCombine().length; i++) yield this.#sortAndCombine()[i][0];
  }
  *values(): IterableIterator<string> {
    for (let i = 0; i < this.#sortAndCombine().length; i++) yield this.#sortAndCombine()[i][1];
  }
  [Symbol.iterator](): IterableIterator<[string, string]> { return this.entries(); }

  static {
    headersGuardSetter = (headers, guard) => { headers.#guard = guard; };
    // For headers the host already parsed and validated (incoming requests): no re-validation.
    headersRawAppend = (headers, name, value) => { headers.#list.push(name.toLowerCase(), value); headers.#sorted = null; };
    headersRawList = (headers) => headers.#list;
  }
}
Object.defineProperty(Headers.prototype, Symbol.toStringTag, { value: 'Headers', configurable: true });

/** Fetch §5.2 "fill": from a Headers, a sequence of pairs, or a record. */
export function fillHeaders(headers: Headers, init: unknown): void {
  if (init instanceof Headers) {
    const list = headersRawList(init);
    for (let i = 0; i < list.length; i += 2) headersRawAppend(headers, list[i], list[i + 1]);
    return;
  }
  if (init === null || (typeof init !== 'object' && typeof init !== 'function')) {
    throw new TypeError("Failed to construct 'Headers': The provided value is not of type '(record<ByteString, ByteString> or sequence<sequence<ByteString>>)'.");
  }
  const iter = (init as { [Symbol.iterator]?: unknown })[Symbol.iterator];
  if (iter !== undefined && iter !== null) {
    if (typeof iter !== 'function') throw new TypeError("Failed to construct 'Headers': The object must have a callable @@iterator property.");
    for (const pair of init as Iterable<unknown>) {
      const items = pair !== null && typeof pair === 'object' && Symbol.iterator in pair ? Array.from(pair as Iterable<unknown>) : null;
      if (!items || items.length !== 2) throw new TypeError('Invalid value: Headers init sequence must only contain pairs of [name, value].');
      headers.append(items[0] as string, items[1] as string);
    }
    return;
  }
  for (const key of Reflect.ownKeys(init)) {
    const desc = Reflect.getOwnPropertyDescriptor(init, key);
    if (!desc?.enumerable) continue;
    if (typeof key === 'symbol') throw new TypeError('Cannot convert a Symbol value to a string');
    headers.append(key, (init as Record<string, string>)[key]);
  }
}

/** Set the guard (Fetch §5.2); used by Request and Response. */
export function setHeadersGuard(headers: Headers, guard: HeadersGuard): void { headersGuardSetter(headers, guard); }
/** Append without validation, for header lists the host already parsed. */
export function appendHeaderUnchecked(headers: Headers, name: string, value: string): void { headersRawAppend(headers, name, value); }
/** The raw header list, flat [name, value, ...] in insertion order with lowercase names. */
export function headerList(headers: Headers): readonly string[] { return headersRawList(headers); }
