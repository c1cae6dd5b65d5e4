// The sandbox runtime's entry points, taken off a new context's global: the host keeps
// references to them and the global no longer has them (tenant code never sees `__isolet`).
// A spare isolate takes them when it is made, so a cold start that takes the spare skips these
// dozen crossings of the isolate wall.

import type ivm from 'isolated-vm';

export type Entry = ivm.Reference<(...args: unknown[]) => unknown>;

export interface EntryPoints {
  dispatch: Entry;
  fireTimer: Entry;
  abort: Entry;
  end: Entry;
  register: Entry;
  settle: Entry;
  pullResponse: Entry;
  cancelResponse: Entry;
  receiveModule: Entry;
}

export interface SandboxEntries {
  /** Called once, with the host's operations, before the worker's code loads. */
  init: Entry;
  entries: EntryPoints;
}

/**
 * The context is new and idle, so these run synchronously on this thread: a dozen thread hops
 * to the isolate's pool thread cost more than the work (none of it is tenant code).
 */
export function takeSandboxEntries(context: ivm.Context): SandboxEntries {
  const global = context.global;
  const api = global.getSync('__isolet', { reference: true }) as ivm.Reference<Record<string, unknown>>;
  const get = (key: string) => api.getSync(key, { reference: true }) as Entry;
  const init = get('init');
  const entries: EntryPoints = {
    dispatch: get('dispatch'), fireTimer: get('fireTimer'), abort: get('abort'), end: get('end'),
    register: get('register'), settle: get('settle'), pullResponse: get('pullResponse'),
    cancelResponse: get('cancelResponse'), receiveModule: get('receiveModule'),
  };
  global.deleteSync('__isolet');
  api.release();
  return { init, entries };
}
