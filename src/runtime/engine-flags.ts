// V8 settings for a process that runs many tenants' isolates. V8 has no per-isolate flags, so
// they hold for the whole process (the host's own code too); each one is here because a
// measurement showed it pays (docs/BENCHMARKS.md, "Cost per request and the number of tenants",
// "Maglev in every isolate", "Young generations collected at a tenth").

import v8 from 'node:v8';

/** The host's semi-space, in MB, that RUNTIME_HOST_FLAGS asks for; at and above it the young-generation trigger is lowered. */
const HOST_SEMI_SPACE_MB = 16;

/**
 * Node flags for a process that hosts a Runtime, which V8 reads only as the process starts:
 * runtime processes are started with them (src/supervisor/runtime-process.ts), and an embedder
 * may start Node with them. They give the host's own young generation 16 MB semi-spaces from the
 * start (the isolates keep theirs: a semi-space never exceeds an isolate's own maximum, 1 MB),
 * so that the young-generation trigger below stays as coarse for the host as V8's default.
 */
export const RUNTIME_HOST_FLAGS: readonly string[] = [`--min-semi-space-size=${HOST_SEMI_SPACE_MB}`];

/**
 * How full, in percent, a young generation gets before V8 collects it in a task of its own
 * (V8's default: 80). An isolate's semi-space is 1 MB; a hello-world request allocates about
 * 3 KB, so at V8's default an isolate served at a few requests a second spends its first half
 * minute touching fresh pages, a page fault each (about 12 µs apiece on this kind of VM, and the
 * request around it runs slower after), and once served long keeps both semi-spaces resident.
 * Collected at a tenth, it cycles through the first 100 KB of each: the faults end after a few
 * seconds and a serving isolate holds less. The cost is more scavenges of the same few live
 * objects. A host whose own young generation is small would scavenge every 100 KB too, hence
 * RUNTIME_HOST_FLAGS.
 */
const YOUNG_GENERATION_TRIGGER_PERCENT = 10;

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
 *
 * In a process started with RUNTIME_HOST_FLAGS, also collects young generations at a tenth
 * (YOUNG_GENERATION_TRIGGER_PERCENT).
 */
export function applyEngineFlags(execArgv: readonly string[] = process.execArgv): void {
  if (applied) return;
  applied = true;
  v8.setFlagsFromString('--no-sparkplug');
  v8.setFlagsFromString('--no-maglev');
  if (hasRuntimeHostFlags(execArgv)) v8.setFlagsFromString(`--minor-gc-task-trigger=${YOUNG_GENERATION_TRIGGER_PERCENT}`);
}

/** Whether Node was started with a host young generation at least as large as RUNTIME_HOST_FLAGS gives. */
export function hasRuntimeHostFlags(execArgv: readonly string[]): boolean {
  for (const arg of execArgv) {
    const match = /^--min[-_]semi[-_]space[-_]size=(\d+)$/.exec(arg);
    if (match !== null && Number(match[1]) >= HOST_SEMI_SPACE_MB) return true;
  }
  return false;
}
