// URLSearchParams (WHATWG URL §6.2) and application/x-www-form-urlencoded (§5). A sandbox
// module (see src/runtime/sandbox-modules.ts), evaluated in an isolate the first time its code
// reads URLSearchParams, a URL's searchParams or a form body: most workers never do, and in the
// snapshot it was heap in every idle isolate. URL itself is in ../sandbox.ts.

import { iteratorFactory } from '../../iterators/sandbox.ts';
import {
  ArrayFrom, ArrayPrototypeFilter, ArrayPrototypeMap, ArrayPrototypePush, ArrayPrototypeSome, ArrayPrototypeSort,
  ObjectDefineProperty, ReflectApply, ReflectGetOwnPropertyDescriptor, ReflectOwnKeys, SafeMap, String,
  StringPrototypeIncludes, StringPrototypeIndexOf, StringPrototypeReplaceAll, StringPrototypeSlice,
  StringPrototypeSplit, StringPrototypeStartsWith, StringPrototypeToWellFormed, SymbolIterator, SymbolToStringTag,
  TypeError, Uint8Array,
} from '../../../sandbox/primordials.ts';

export interface SearchParamsDeps {
  utf8Encode(text: string): Uint8Array;
  utf8Decode(bytes: Uint8Array, keepBOM?: boolean): string;
  /** §1.3 percent-decode. */
  pctDecodeBytes(bytes: Uint8Array): Uint8Array;
  /** Percent-encode with the application/x-www-form-urlencoded set, space as '+'. */
  formEncode(text: string): string;
  /** Write a serialized query back to the URL a URLSearchParams belongs to (§6.2 update steps). */
  setQuery(url: object, query: string | null): void;
}

export interface SearchParamsApi {
  URLSearchParams: typeof URLSearchParams;
  /** A URL's query object: its list, and the URL it writes back to. */
  attach(params: URLSearchParams, url: object, list: [string, string][]): void;
  /** The URL's query changed: the query object's list follows it. */
  setList(params: URLSearchParams, list: [string, string][]): void;
  parseUrlencoded(input: string): [string, string][];
}

let deps: SearchParamsDeps;

/** WebIDL USVString conversion: lone surrogates become U+FFFD. */
const toUSV = (v: unknown): string => StringPrototypeToWellFormed(String(v));

// ---------------------------------------------------------------------------------------------
// application/x-www-form-urlencoded (§5)

function parseUrlencoded(input: string): [string, string][] {
  const out: [string, string][] = [];
  const sequences = StringPrototypeSplit(input, '&');
  for (let i = 0; i < sequences.length; i++) {
    const sequence = sequences[i]!;
    if (sequence === '') continue;
    const eq = StringPrototypeIndexOf(sequence, '=');
    const name = eq === -1 ? sequence : StringPrototypeSlice(sequence, 0, eq);
    const value = eq === -1 ? '' : StringPrototypeSlice(sequence, eq + 1);
    ArrayPrototypePush(out, [decodeFormComponent(name), decodeFormComponent(value)]);
  }
  return out;
}

function decodeFormComponent(s: string): string {
  s = StringPrototypeReplaceAll(s, '+', ' ');
  if (!StringPrototypeIncludes(s, '%')) return s;
  return deps.utf8Decode(deps.pctDecodeBytes(deps.utf8Encode(s)), true);
}

function serializeUrlencoded(list: readonly [string, string][]): string {
  let out = '';
  for (let i = 0; i < list.length; i++) {
    if (i > 0) out += '&';
    out += deps.formEncode(list[i][0]) + '=' + deps.formEncode(list[i][1]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// URLSearchParams (§6.2)

let attachSearchParams: (params: URLSearchParams, url: object, list: [string, string][]) => void;
let setSearchParamsList: (params: URLSearchParams, list: [string, string][]) => void;

const makeEntryIterator = iteratorFactory<[string, string]>('EntryIterator');
const makeKeyIterator = iteratorFactory<string>('KeyIterator');
const makeValueIterator = iteratorFactory<string>('ValueIterator');

class URLSearchParams {
  #list: [string, string][] = [];
  #url: object | null = null;

  constructor(init: unknown = '') {
    if (init !== null && typeof init === 'object') {
      const iter = (init as { [SymbolIterator]?: unknown })[SymbolIterator];
      if (iter !== undefined) {
        if (typeof iter !== 'function') throw new TypeError("Failed to construct 'URLSearchParams': The provided value cannot be converted to a sequence.");
        for (const pair of init as Iterable<unknown>) {
          const items = pair !== null && typeof pair === 'object' && SymbolIterator in pair ? ArrayFrom(pair as Iterable<unknown>) : null;
          if (!items || items.length !== 2) {
            throw new TypeError("Failed to construct 'URLSearchParams': Sequence initializer must only contain pair elements");
          }
          ArrayPrototypePush(this.#list, [toUSV(items[0]), toUSV(items[1])]);
        }
      } else {
        // WebIDL §3.2.23 record<USVString, USVString>: keys that become equal as USVStrings (lone
        // surrogates turn into U+FFFD) are one entry, in the first one's place, with the last value.
        const record = new SafeMap<string, string>();
        const keys = ReflectOwnKeys(init);
        for (let i = 0; i < keys.length; i++) {
          const key = keys[i]!;
          if (typeof key !== 'string') continue;
          const desc = ReflectGetOwnPropertyDescriptor(init, key);
          if (desc?.enumerable) record.set(toUSV(key), toUSV((init as Record<string, unknown>)[key]));
        }
        record.forEach((value, key) => ArrayPrototypePush(this.#list, [key, value] as [string, string]));
      }
    } else {
      let s = toUSV(init);
      if (StringPrototypeStartsWith(s, '?')) s = StringPrototypeSlice(s, 1);
      this.#list = parseUrlencoded(s);
    }
  }

  // §6.2 "update steps": write the list back to the associated URL's query.
  #update(): void {
    const url = this.#url;
    if (!url) return;
    const s = serializeUrlencoded(this.#list);
    deps.setQuery(url, s === '' ? null : s);
  }

  get size(): number { return this.#list.length; }

  append(name: string, value: string): void {
    if (arguments.length < 2) throw new TypeError("Failed to execute 'append' on 'URLSearchParams': 2 arguments required.");
    ArrayPrototypePush(this.#list, [toUSV(name), toUSV(value)]);
    this.#update();
  }

  delete(name: string, value?: string): void {
    if (arguments.length < 1) throw new TypeError("Failed to execute 'delete' on 'URLSearchParams': 1 argument required.");
    const n = toUSV(name);
    const v = value === undefined ? undefined : toUSV(value);
    this.#list = ArrayPrototypeFilter(this.#list, (e) => !(e[0] === n && (v === undefined || e[1] === v)));
    this.#update();
  }

  get(name: string): string | null {
    if (arguments.length < 1) throw new TypeError("Failed to execute 'get' on 'URLSearchParams': 1 argument required.");
    const n = toUSV(name);
    const list = this.#list;
    for (let i = 0; i < list.length; i++) if (list[i]![0] === n) return list[i]![1];
    return null;
  }

  getAll(name: string): string[] {
    if (arguments.length < 1) throw new TypeError("Failed to execute 'getAll' on 'URLSearchParams': 1 argument required.");
    const n = toUSV(name);
    return ArrayPrototypeMap(ArrayPrototypeFilter(this.#list, (e) => e[0] === n), (e) => e[1]);
  }

  has(name: string, value?: string): boolean {
    if (arguments.length < 1) throw new TypeError("Failed to execute 'has' on 'URLSearchParams': 1 argument required.");
    const n = toUSV(name);
    const v = value === undefined ? undefined : toUSV(value);
    return ArrayPrototypeSome(this.#list, (e) => e[0] === n && (v === undefined || e[1] === v));
  }

  set(name: string, value: string): void {
    if (arguments.length < 2) throw new TypeError("Failed to execute 'set' on 'URLSearchParams': 2 arguments required.");
    const n = toUSV(name), v = toUSV(value);
    let i = -1;
    for (let j = 0; j < this.#list.length; j++) if (this.#list[j]![0] === n) { i = j; break; }
    if (i === -1) {
      ArrayPrototypePush(this.#list, [n, v]);
    } else {
      this.#list[i][1] = v;
      this.#list = ArrayPrototypeFilter(this.#list, (e, j) => j <= i || e[0] !== n);
    }
    this.#update();
  }

  sort(): void {
    // §6.2 sort(): stable, by code units of the names (JS string comparison is exactly that).
    const indexed = ArrayPrototypeMap(this.#list, (e, i) => [e, i] as const);
    ArrayPrototypeSort(indexed, (a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[1] - b[1]));
    this.#list = ArrayPrototypeMap(indexed, (e) => e[0]);
    this.#update();
  }

  toString(): string { return serializeUrlencoded(this.#list); }

  forEach(callback: (value: string, name: string, params: URLSearchParams) => void, thisArg?: unknown): void {
    if (typeof callback !== 'function') throw new TypeError("Failed to execute 'forEach' on 'URLSearchParams': parameter 1 is not of type 'Function'.");
    // WebIDL iterable: the list is re-read at each step, so changes during the walk show.
    for (let i = 0; i < this.#list.length; i++) {
      const k = this.#list[i]![0], v = this.#list[i]![1];
      ReflectApply(callback, thisArg, [v, k, this]);
    }
  }

  // WebIDL pair iterators over the live list (changes during the walk show, as in workerd),
  // shaped as workerd's iterator objects (see iterators/sandbox.ts).
  entries(): IterableIterator<[string, string]> {
    return makeEntryIterator((i) => (i < this.#list.length ? [this.#list[i][0], this.#list[i][1]] : undefined));
  }
  keys(): IterableIterator<string> {
    return makeKeyIterator((i) => (i < this.#list.length ? this.#list[i][0] : undefined));
  }
  values(): IterableIterator<string> {
    return makeValueIterator((i) => (i < this.#list.length ? this.#list[i][1] : undefined));
  }
  [SymbolIterator](): IterableIterator<[string, string]> { return this.entries(); }

  static {
    attachSearchParams = (params, url, list) => { params.#url = url; params.#list = list; };
    setSearchParamsList = (params, list) => { params.#list = list; };
  }
}
ObjectDefineProperty(URLSearchParams.prototype, SymbolToStringTag, { __proto__: null, value: 'URLSearchParams', configurable: true });

export function create(given: SearchParamsDeps): SearchParamsApi {
  deps = given;
  // The bundler renames classes; tenants see `.name` (constructor.name, stack traces).
  ObjectDefineProperty(URLSearchParams, 'name', { __proto__: null, value: 'URLSearchParams', configurable: true });
  return { URLSearchParams, attach: attachSearchParams, setList: setSearchParamsList, parseUrlencoded };
}
