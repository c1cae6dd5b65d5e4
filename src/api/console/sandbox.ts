// console inside the isolate: each call becomes one line in the host's log, tagged there with
// the worker's name. Formatting happens here, in the tenant's isolate and on its CPU budget,
// so the host only ever receives a string. The formatting is a sandbox module
// (./sandbox/module.ts), loaded by the first call.

import { host, loadModule } from '../../sandbox/host.ts';

let format: ((args: unknown[]) => string) | undefined;

function send(level: string, args: unknown[]): void {
  format ??= loadModule<{ create(): (args: unknown[]) => string }>('console').create();
  host.log(level, format(args));
}

export function createConsole(): Record<string, unknown> {
  const counts = new Map<string, number>();
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
