// Which requests start on the calling thread. A request's first call into its isolate (the
// dispatch that runs the handler up to its first wait) normally goes to a thread of isolated-vm's
// pool and its answer comes back as a task: two thread hand-offs, and the tenant's code runs on
// whichever pool thread took it, its caches cold. Run inline (isolated-vm's applySync from the
// serving thread), a request costs the process 10-35% less CPU with 100 or 1,000 tenants
// (BENCHMARKS.md, "Requests started on the serving thread"), but the handler's
// synchronous part holds the thread that serves every other tenant, as workerd's isolates hold
// theirs. So only workers that have shown they answer quickly run inline, only while the thread
// has room, and what one can take from the others is bounded:
//
// - a run is stopped at the worker's CPU limit by the native watchdog, as on any thread, and a
//   worker whose limit is above INLINE_MAX_LIMIT_MS never runs inline;
// - a worker whose inline run went past INLINE_MAX_RUN_NS runs on its thread again for
//   DEMOTED_MS (a slow request is the signal, whatever made it slow);
// - inline runs are for a thread with room: while the serving thread is busy most of the time
//   (event-loop utilisation over BUSY_ELU, until it falls under ROOM_ELU), requests go to the
//   isolates' threads, which then run tenants' code beside it on the machine's other cores
//   (with many tenants, inline runs on a saturated thread served 20-30% fewer requests);
// - an inline run past STALL_NS (one that held the other tenants noticeably) stops all inline
//   runs for a pause that doubles with each such run up to MAX_PAUSE_MS, so any number of
//   workers taking turns (one account's many, or many accounts) get one such run per pause
//   between them: a process under attack soon serves as if inline runs did not exist.

/** A request that used more CPU than this, in all, does not count as quick; an inline run past it demotes its worker. */
export const INLINE_MAX_RUN_NS = 2_000_000;
/** Quick requests in a row a worker's isolate must have served before it runs inline. */
export const INLINE_AFTER_QUICK = 3;
/** A worker whose CPU limit is above this never runs inline: the limit bounds the hold. */
export const INLINE_MAX_LIMIT_MS = 100;
/** An inline run past this (CPU) pauses all inline runs. */
export const STALL_NS = 10_000_000;
/** How long a demoted worker stays on its own thread. */
export const DEMOTED_MS = 10 * 60_000;
/** The first pause after a stall; see InlineRuns.ran for the next ones. */
export const FIRST_PAUSE_MS = 1_000;
export const MAX_PAUSE_MS = 10 * 60_000;
/** Event-loop utilisation over which the serving thread counts as busy, and under which it has room again. */
export const BUSY_ELU = 0.8;
export const ROOM_ELU = 0.6;
/** How often the serving thread's utilisation is looked at. */
const ELU_EVERY_MS = 250;
/** Demoted workers remembered at most (the oldest is forgotten first). */
const MAX_DEMOTED = 10_000;

export interface InlineRunsOptions {
  /** The clock (tests). */
  now?: () => number;
  /** The serving thread's event-loop utilisation since the last call (default: performance.eventLoopUtilization; tests). */
  utilization?: () => number;
  /** What counts as quick, in ns of CPU (default INLINE_MAX_RUN_NS). */
  maxRunNs?: number;
  /** Quick requests in a row before a worker runs inline (default INLINE_AFTER_QUICK). */
  afterQuick?: number;
  /** An inline run past this pauses all (default STALL_NS). */
  stallNs?: number;
}

/** One per Runtime: the inline runs of all its workers share one thread, so one gate. */
export class InlineRuns {
  private readonly now: () => number;
  readonly maxRunNs: number;
  private readonly afterQuick: number;
  private readonly stallNs: number;
  /** Demoted workers and when each may run inline again, oldest demotion first. */
  private readonly demoted = new Map<string, number>();
  private pausedUntil = 0;
  /** The last pause's length, and when the stall that began it happened (0: none yet). */
  private pauseMs = FIRST_PAUSE_MS;
  private lastStallAt = 0;
  /** Stalls so far and inline runs so far (for tests and metrics). */
  stalls = 0;
  runs = 0;
  /** The serving thread was busy at the last look (see BUSY_ELU). */
  busy = false;
  private readonly utilization: () => number;
  private nextLook = 0;

  constructor(options: InlineRunsOptions = {}) {
    this.now = options.now ?? Date.now;
    this.maxRunNs = options.maxRunNs ?? INLINE_MAX_RUN_NS;
    this.afterQuick = options.afterQuick ?? INLINE_AFTER_QUICK;
    this.stallNs = options.stallNs ?? STALL_NS;
    this.utilization = options.utilization ?? threadUtilization();
  }

  /** Whether `worker`, with `quick` quick requests in a row behind it and a CPU limit of `cpuLimitMs`, may start a request inline now. */
  allows(worker: string, quick: number, cpuLimitMs: number): boolean {
    if (quick < this.afterQuick || cpuLimitMs > INLINE_MAX_LIMIT_MS) return false;
    const now = this.now();
    if (now >= this.nextLook) {
      // Looked at when asked (no timer: an idle Runtime does nothing), over the span since the last look.
      this.nextLook = now + ELU_EVERY_MS;
      const utilization = this.utilization();
      this.busy = this.busy ? utilization > ROOM_ELU : utilization > BUSY_ELU;
    }
    if (this.busy) return false;
    if (this.pausedUntil !== 0) {
      if (now < this.pausedUntil) return false;
      this.pausedUntil = 0;
    }
    if (this.demoted.size === 0) return true;
    const until = this.demoted.get(worker);
    if (until === undefined) return true;
    if (now < until) return false;
    this.demoted.delete(worker);
    return true;
  }

  /** An inline run of `worker` ended after `cpuNs` of CPU. Returns whether the worker keeps running inline. */
  ran(worker: string, cpuNs: number): boolean {
    this.runs++;
    if (cpuNs <= this.maxRunNs) return true;
    const now = this.now();
    this.demoted.delete(worker);
    this.demoted.set(worker, now + DEMOTED_MS);
    if (this.demoted.size > MAX_DEMOTED) this.demoted.delete(this.demoted.keys().next().value!);
    if (cpuNs > this.stallNs) {
      this.stalls++;
      // Each stall doubles the pause; only a spell without one as long as the longest pause
      // starts over, so a worker (or many) waiting out each pause gets ever fewer turns.
      this.pauseMs = this.lastStallAt !== 0 && now - this.lastStallAt <= this.pauseMs + MAX_PAUSE_MS ? Math.min(this.pauseMs * 2, MAX_PAUSE_MS) : FIRST_PAUSE_MS;
      this.lastStallAt = now;
      this.pausedUntil = now + this.pauseMs;
    }
    return false;
  }
}

/** The serving thread's event-loop utilisation over each span between calls. */
function threadUtilization(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const span = performance.eventLoopUtilization(now, last);
    last = now;
    return span.utilization;
  };
}
