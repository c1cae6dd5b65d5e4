// V8 settings for a process that runs many tenants' isolates. V8 has no per-isolate flags, so
// they hold for the whole process (the host's own code too); each one is here because a
// measurement showed it pays (docs/BENCHMARKS.md, "Cost per request and the number of tenants").

import v8 from 'node:v8';

let applied = false;

/**
 * Turns off Sparkplug and Maglev, V8's baseline and mid-tier compilers. Each compiles a function
 * once it has run a while; with many tenants every isolate runs the runtime's request path often
 * enough for that, so each one compiled it anew: a fresh code page per isolate (mmap, page
 * faults) and an mprotect on the isolate's thread at every install, charged to its requests,
 * plus the compiling on V8's background threads. Maglev's turn came about 40 s into serving
 * 1,000 tenants in rotation, in all of them at once: throughput fell to a third for ten seconds,
 * RSS went from 2.7 to 5.6 GB, and a hello-world request now and then was charged over 50 ms
 * and answered 503 (docs/BENCHMARKS.md, "Maglev in every isolate"). Hot code still reaches
 * TurboFan, whose peak is what a compute-heavy worker runs on.
 */
export function applyEngineFlags(): void {
  if (applied) return;
  applied = true;
  v8.setFlagsFromString('--no-sparkplug');
  v8.setFlagsFromString('--no-maglev');
}
