// The console global: each call becomes one line in the host's log, tagged there with the
// worker's name. Formatting (printf-style substitutions, util.inspect-like rendering of values)
// happens here, in the tenant's isolate and on its CPU budget, so the host only ever receives a
// string. A sandbox module (see src/runtime/sandbox-modules.ts), evaluated in an isolate the
// first time its code reads `console`: a worker that never logs does not carry it in its heap.

import {
  ArrayBuffer, ArrayBufferIsView, ArrayFrom, ArrayIsArray, ArrayPrototypeConcat, ArrayPrototypeJoin,
  ArrayPrototypeMap, ArrayPrototypePush, ArrayPrototypeSlice, DataView, Date, DatePrototypeGetTime,
  DatePrototypeToISOString, Error, JSONStringify, Map, MapPrototypeForEach, MapPrototypeGetSize, MathTrunc, Number,
  NumberIsNaN, ObjectGetPrototypeOf, ObjectIs, ObjectKeys, Promise, RegExp, RegExpPrototypeTest,
  SafeMap, SafeSet, Set, SetPrototypeGetSize, String, StringPrototypeIncludes, StringPrototypeSlice, Uint8Array,
  safeSetValues,
} from '../../../sandbox/primordials.ts';
export interface ConsoleDeps {
  /** One line of the worker's log, at `level`. */
  log(level: string, line: string): void;
}

let deps: ConsoleDeps;

const MAX_LINE = 16 * 1024;
const MAX_DEPTH = 3;
const MAX_ITEMS = 100;

function quote(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    out += c === '\\' ? '\\\\' : c === "'" ? "\\'" : c === '\n' ? '\\n' : c;
  }
  return `'${out}'`;
}

function inspect(value: unknown, depth: number, seen: Set<object>): string {
  switch (typeof value) {
    case 'string':
      return depth === 0 ? value : quote(value);
    case 'number':
      return ObjectIs(value, -0) ? '-0' : String(value);
    case 'bigint':
      return `${value}n`;
    case 'undefined':
    case 'boolean':
      return String(value);
    case 'symbol':
      return String(value);
    case 'function':
      return `[Function: ${value.name || '(anonymous)'}]`;
  }
  if (value === null) return 'null';
  const object = value as object;
  if (seen.has(object)) return '[Circular]';
  try {
    if (object instanceof Error) {
      const stack = typeof object.stack === 'string' ? object.stack : `${object.name}: ${object.message}`;
      return depth === 0 ? stack : `[${stack}]`;
    }
    if (object instanceof Date) return NumberIsNaN(DatePrototypeGetTime(object)) ? 'Invalid Date' : DatePrototypeToISOString(object);
    if (object instanceof RegExp) return String(object);
    if (depth > MAX_DEPTH) return ArrayIsArray(object) ? '[Array]' : '[Object]';
    seen.add(object);
    if (ArrayIsArray(object)) {
      const items = ArrayPrototypeMap(ArrayPrototypeSlice(object, 0, MAX_ITEMS), (item) => inspect(item, depth + 1, seen));
      if (object.length > MAX_ITEMS) ArrayPrototypePush(items, `... ${object.length - MAX_ITEMS} more items`);
      return `[ ${ArrayPrototypeJoin(items, ', ')} ]`;
    }
    if (object instanceof Map) {
      const items: string[] = [];
      MapPrototypeForEach(object, (v, k) => { if (items.length < MAX_ITEMS) ArrayPrototypePush(items, `${inspect(k, depth + 1, seen)} => ${inspect(v, depth + 1, seen)}`); });
      return `Map(${MapPrototypeGetSize(object)}) { ${ArrayPrototypeJoin(items, ', ')} }`;
    }
    if (object instanceof Set) {
      const items: string[] = [];
      for (const v of safeSetValues(object)) { if (items.length >= MAX_ITEMS) break; ArrayPrototypePush(items, inspect(v, depth + 1, seen)); }
      return `Set(${SetPrototypeGetSize(object)}) { ${ArrayPrototypeJoin(items, ', ')} }`;
    }
    if (ArrayBufferIsView(object)) {
      const name = object.constructor?.name ?? 'TypedArray';
      const array = object instanceof DataView ? [] : ArrayPrototypeSlice(ArrayFrom(object as Uint8Array), 0, MAX_ITEMS);
      return `${name}(${(object as Uint8Array).length ?? object.byteLength}) [ ${ArrayPrototypeJoin(array, ', ')} ]`;
    }
    if (object instanceof ArrayBuffer) return `ArrayBuffer { byteLength: ${object.byteLength} }`;
    if (object instanceof Promise) return 'Promise { <pending> }';
    const keys = ArrayPrototypeSlice(ObjectKeys(object), 0, MAX_ITEMS);
    const name = ObjectGetPrototypeOf(object)?.constructor?.name;
    const prefix = name && name !== 'Object' ? `${name} ` : '';
    if (keys.length === 0) return `${prefix}{}`;
    const entries = ArrayPrototypeMap(keys, (key) => {
      const label = RegExpPrototypeTest(/^[A-Za-z_$][\w$]*$/, key) ? key : quote(key);
      return `${label}: ${inspect((object as Record<string, unknown>)[key], depth + 1, seen)}`;
    });
    return `${prefix}{ ${ArrayPrototypeJoin(entries, ', ')} }`;
  } catch {
    return '[object]';
  } finally {
    seen.delete(object);
  }
}

/** console.log's formatting: printf-style %s %d %i %f %j %o %O %c in a leading string, then the rest. */
function formatLogArgs(args: unknown[]): string {
  let out = '';
  let rest = args;
  if (typeof args[0] === 'string' && args.length > 1 && StringPrototypeIncludes(args[0], '%')) {
    let index = 1;
    const format = args[0];
    // The realm's replace with a RegExp would go through RegExp.prototype[Symbol.replace].
    const replaceToken = (token: string): string => {
      if (token === '%%') return '%';
      if (index >= args.length) return token;
      const arg = args[index++];
      switch (token) {
        case '%s': return typeof arg === 'string' ? arg : inspect(arg, 1, new SafeSet());
        case '%d': case '%i': {
          const n = typeof arg === 'bigint' ? arg : Number(arg);
          return token === '%i' && typeof n === 'number' ? String(MathTrunc(n)) : String(n);
        }
        case '%f': return String(Number(arg));
        case '%j': try { return JSONStringify(arg); } catch { return '[Circular]'; }
        case '%c': return '';
        default: return inspect(arg, 1, new SafeSet());
      }
    };
    for (let i = 0; i < format.length; i++) {
      const c = format[i]!;
      const token = c === '%' && i + 1 < format.length && StringPrototypeIncludes('sdifjoOc%', format[i + 1]!) ? c + format[i + 1]! : '';
      if (token === '') { out += c; continue; }
      out += replaceToken(token);
      i++;
    }
    rest = ArrayPrototypeSlice(args, index);
  } else if (args.length > 0) {
    out = inspect(args[0], 0, new SafeSet());
    rest = ArrayPrototypeSlice(args, 1);
  }
  for (let i = 0; i < rest.length; i++) out += ' ' + inspect(rest[i], 0, new SafeSet());
  return out.length > MAX_LINE ? StringPrototypeSlice(out, 0, MAX_LINE) + '... (truncated)' : out;
}

function send(level: string, args: unknown[]): void {
  deps.log(level, formatLogArgs(args));
}

function createConsole(): Record<string, unknown> {
  const counts = new SafeMap<string, number>();
  const console: Record<string, unknown> = {
    log: (...args: unknown[]) => send('log', args),
    info: (...args: unknown[]) => send('info', args),
    debug: (...args: unknown[]) => send('debug', args),
    warn: (...args: unknown[]) => send('warn', args),
    error: (...args: unknown[]) => send('error', args),
    trace: (...args: unknown[]) => send('debug', ArrayPrototypeConcat<unknown>(args, [new Error('Trace').stack])),
    dir: (value: unknown) => send('log', [value]),
    table: (value: unknown) => send('log', [value]),
    assert: (condition: unknown, ...args: unknown[]) => {
      if (!condition) send('error', ArrayPrototypeConcat<unknown>(['Assertion failed' + (args.length ? ':' : '')], args));
    },
    count: (label = 'default') => {
      const n = (counts.get(label) ?? 0) + 1;
      counts.set(label, n);
      send('log', [`${label}: ${n}`]);
    },
    countReset: (label = 'default') => void counts.delete(label),
    time: () => {},
    timeEnd: () => {},
    timeLog: () => {},
    group: (...args: unknown[]) => { if (args.length) send('log', args); },
    groupCollapsed: (...args: unknown[]) => { if (args.length) send('log', args); },
    groupEnd: () => {},
  };
  return console;
}

export function create(given: ConsoleDeps): Record<string, unknown> {
  deps = given;
  return createConsole();
}
