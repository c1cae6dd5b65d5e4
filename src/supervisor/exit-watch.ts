// Whether a runtime process has been killed, seen before the kernel has torn it down. A process
// killed with SIGKILL (by an operator, the OOM killer, or the supervisor itself) frees all of its
// memory before the kernel closes its files and reports its exit: a runtime process holding 1,500
// isolates (2.3 GB of RSS in 14,000 mappings) was seen to end, by its channel's reset and its
// exit, 0.5 s after the signal on an idle machine and up to 1.2 s on a loaded one, while every
// request for its tenants waited for it (docs/BENCHMARKS.md, "Runtime processes the memory can
// fill, and a killed one seen at once").
// The kernel marks the process as exiting first: /proc/<pid>/stat shows its main thread a zombie
// or exiting, and the signal, within a millisecond of the kill. So while requests wait on a
// process, the supervisor looks there on a short beat and does not wait for the teardown.
//
// Only SIGKILL is taken early: a process that ends any other way (a fatal V8 error aborts it)
// may still have its last lines on their way through its stderr pipe, naming the worker that
// crashed it, and those decide who is charged for the crash.

import { readFileSync } from 'node:fs';
import { constants } from 'node:os';

/** How often a process with requests waiting on it is looked at. */
export const EXIT_WATCH_MS = 50;

/** A task's flag while it exits (include/linux/sched.h). */
const PF_EXITING = 0x4;

/**
 * The signal that is ending process `pid`, while the kernel tears it down (or once it is a
 * zombie); undefined while it runs, when it is gone, or where there is no /proc.
 */
export function exitingSignal(pid: number): NodeJS.Signals | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so fields count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const flags = Number(fields[6]);
  // exit_code (field 52, Linux 3.5 on) is a wait status: its low 7 bits are the signal.
  const exitCode = Number(fields[49]);
  if (!(state === 'Z' || state === 'X' || (flags & PF_EXITING) !== 0) || !Number.isInteger(exitCode)) return undefined;
  const signal = exitCode & 0x7f;
  return (Object.keys(constants.signals) as NodeJS.Signals[]).find((name) => constants.signals[name] === signal);
}

/**
 * Looks at a process every EXIT_WATCH_MS while `waiting()` says something waits on it, and calls
 * `killed` once, as soon as `signal()` (exitingSignal, or the signal its reaped exit reported)
 * says SIGKILL is ending it. Stopped when the process's end is handled the usual way.
 */
export class ExitWatch {
  readonly #timer: NodeJS.Timeout;

  constructor(signal: () => NodeJS.Signals | null | undefined, waiting: () => boolean, killed: () => void) {
    this.#timer = setInterval(() => {
      if (!waiting() || signal() !== 'SIGKILL') return;
      this.stop();
      killed();
    }, EXIT_WATCH_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
