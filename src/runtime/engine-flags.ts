// V8 settings for a process that runs many tenants' isolates. V8 has no per-isolate flags, so
// they hold for the whole process (the host's own code too); each one is here because a
// measurement showed it pays (docs/BENCHMARKS.md, "Cost per request and the number of tenants").

import v8 from 'node:v8';

let applied = false;

/**
 * Turns off Sparkplug, V8's baseline compiler. It compiles a function once it has run a little;
 * with many tenants every isolate runs the runtime's request path often enough for that but
 * not much more, so each one compiled it anew: a fresh code page per isolate (mmap, page
 * faults) and an mprotect on the isolate's thread at every install, charged to its requests,
 * plus the compiling itself on V8's background threads. Hot code still reaches Maglev and
 * TurboFan, which compile on the same signals later.
 */
export function applyEngineFlags(): void {
  if (applied) return;
  applied = true;
  v8.setFlagsFromString('--no-sparkplug');
}
