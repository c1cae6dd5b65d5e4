// The sandbox runtime's entry points (src/bridge/protocol.ts SandboxEntries), taken off a new
// context's global: the host keeps references to them and the global no longer has them
// (tenant code never sees ENTRIES_GLOBAL). A spare isolate takes them when it is made, so a cold
// start that takes the spare skips these crossings of the isolate wall.

import type ivm from 'isolated-vm';
import { ENTRIES_GLOBAL, ENTRY_NAMES, type EntryName, type SandboxEntries } from '../bridge/protocol.ts';

/** The host's handles on the entry points, typed by the protocol. */
export type EntryPoints = { [K in EntryName]: ivm.Reference<SandboxEntries[K]> };

/**
 * The context is new and idle, so these run synchronously on this thread: a dozen thread hops
 * to the isolate's pool thread cost more than the work (none of it is tenant code).
 */
export function takeSandboxEntries(context: ivm.Context): EntryPoints {
  const global = context.global;
  const api = global.getSync(ENTRIES_GLOBAL, { reference: true }) as ivm.Reference<Record<string, unknown>>;
  const entries = {} as Record<EntryName, ivm.Reference<unknown>>;
  for (const name of ENTRY_NAMES) entries[name] = api.getSync(name, { reference: true }) as ivm.Reference<unknown>;
  global.deleteSync(ENTRIES_GLOBAL);
  api.release();
  if (hasDrainHook(entries as EntryPoints)) (entries.drained as DrainHookReference).setDrainHook!();
  return entries as EntryPoints;
}

/** isolet's isolated-vm build: a Reference to a function can become its isolate's drain hook. */
type DrainHookReference = ivm.Reference<unknown> & { setDrainHook?: () => void };

/**
 * Whether isolated-vm runs the sandbox's `drained` entry at the end of every task (isolet's
 * build does; the prebuilt binary has no such hook, and the sandbox then waits a fixed number of
 * microtask turns instead).
 */
export function hasDrainHook(entries: EntryPoints): boolean {
  return typeof (entries.drained as DrainHookReference).setDrainHook === 'function';
}
