// The console global: each call becomes one line in the host's log, tagged there with the
// worker's name. Formatting (printf-style substitutions, util.inspect-like rendering of values)
// happens here, in the tenant's isolate and on its CPU budget, so the host only ever receives a
// string. A sandbox module (see src/runtime/sandbox-modules.ts), evaluated in an isolate the
// first time its code reads `console`: a worker that never logs does not carry it in its heap.

import {
  ArrayBuffer, ArrayBufferIsView, ArrayFrom, ArrayIsArray, Error, JSONStringify, Map, MathTrunc, Number,
  ObjectGetPrototypeOf, ObjectIs, ObjectKeys, Promise, SafeMap, SafeSet, Set, String, Uint8Array,
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
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
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
      return value.toString();
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
    if (object instanceof Date) return isNaN(object.getTime()) ? 'Invalid Date' : object.toISOString();
    if (object instanceof RegExp) return String(object);
    if (depth > MAX_DEPTH) return ArrayIsArray(object) ? '[Array]' : '[Object]';
    seen.add(object);
    if (ArrayIsArray(object)) {
      const items = object.slice(0, MAX_ITEMS).map((item) => inspect(item, depth + 1, seen));
      if (object.length > MAX_ITEMS) items.push(`... ${object.length - MAX_ITEMS} more items`);
      return `[ ${items.join(', ')} ]`;
    }
    if (object instanceof Map) {
      const items = [...object].slice(0, MAX_ITEMS).map(([k, v]) => `${inspect(k, depth + 1, seen)} => ${inspect(v, depth + 1, seen)}`);
      return `Map(${object.size}) { ${items.join(', ')} }`;
    }
    if (object instanceof Set) {
      const items = [...object].slice(0, MAX_ITEMS).map((v) => inspect(v, depth + 1, seen));
      return `Set(${object.size}) { ${items.join(', ')} }`;
    }
    if (ArrayBufferIsView(object)) {
      const name = object.constructor?.name ?? 'TypedArray';
      const array = object instanceof DataView ? [] : ArrayFrom(object as Uint8Array).slice(0, MAX_ITEMS);
      return `${name}(${(object as Uint8Array).length ?? object.byteLength}) [ ${array.join(', ')} ]`;
    }
    if (object instanceof ArrayBuffer) return `ArrayBuffer { byteLength: ${object.byteLength} }`;
    if (object instanceof Promise) return 'Promise { <pending> }';
    const keys = ObjectKeys(object).slice(0, MAX_ITEMS);
    const name = ObjectGetPrototypeOf(object)?.constructor?.name;
    const prefix = name && name !== 'Object' ? `${name} ` : '';
    if (keys.length === 0) return `${prefix}{}`;
    const entries = keys.map((key) => {
      const label = /^[A-Za-z_$][\w$]*$/.test(key) ? key : quote(key);
      return `${label}: ${inspect((object as Record<string, unknown>)[key], depth + 1, seen)}`;
    });
    return `${prefix}{ ${entries.join(', ')} }`;
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
  if (typeof args[0] === 'string' && args.length > 1 && args[0].includes('%')) {
    let index = 1;
    out = args[0].replace(/%[sdifjoOc%]/g, (token) => {
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
    });
    rest = args.slice(index);
  } else if (args.length > 0) {
    out = inspect(args[0], 0, new SafeSet());
    rest = args.slice(1);
  }
  for (const arg of rest) out += ' ' + inspect(arg, 0, new SafeSet());
  return out.length > MAX_LINE ? out.slice(0, MAX_LINE) + '... (truncated)' : out;
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
    trace: (...args: unknown[]) => send('debug', [...args, new Error('Trace').stack]),
    dir: (value: unknown) => send('log', [value]),
    table: (value: unknown) => send('log', [value]),
    assert: (condition: unknown, ...args: unknown[]) => {
      if (!condition) send('error', ['Assertion failed' + (args.length ? ':' : ''), ...args]);
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
