// The CPU watchdog. isolated-vm's `timeout` covers only synchronous work, so the CPU limit is
// enforced by looking at each busy isolate's CPU clock every few milliseconds and
// terminating the one over its budget. Only isolates with work in flight are looked at, so
// thousands of idle isolates cost nothing here.

export interface CpuAccounted {
  /** CPU used since the last measurement, in nanoseconds (bounded by the process's CPU). */
  measureCpu(): number;
  /**
   * Charges CPU to the work in flight and enforces the limits. `scale` also applies to what
   * was measured at requests' edges since the last tick (see CpuWatchdog.claim). Returns false
   * once the target is idle (nothing in flight and no CPU used): it is then no longer watched.
   */
  applyCpu(ns: number, scale: number): boolean | void;
}

export class CpuWatchdog {
  private readonly active = new Set<CpuAccounted>();
  private timer: NodeJS.Timeout | undefined;
  private readonly intervalMs: number;
  private lastProcess = 0;
  /** CPU measured at requests' edges since the last tick, held for the tick to bound. */
  private edgeClaims = 0;

  private readonly processClock: (fresh?: boolean) => number;

  constructor(intervalMs = 5, processClock: (fresh?: boolean) => number = processCpuNs) {
    this.intervalMs = intervalMs;
    this.processClock = processClock;
  }

  watch(target: CpuAccounted): void {
    this.active.add(target);
    if (!this.timer) {
      this.lastProcess = this.processClock(true);
      this.edgeClaims = 0;
      this.timer = setInterval(() => this.tick(), this.intervalMs);
      // Requests in flight keep the process alive on their own; the watchdog must not.
      this.timer.unref();
    }
  }

  /**
   * CPU an isolate measured at a request's edge (a request arriving or ending) between ticks.
   * It counts in the next tick's bound: the edges of a stall are where most of it is measured.
   */
  claim(ns: number): void {
    if (this.timer) this.edgeClaims += ns;
  }

  isWatching(target: CpuAccounted): boolean {
    return this.active.has(target);
  }

  unwatch(target: CpuAccounted): void {
    // The interval stops at its next tick with nothing to watch, not here: a busy runtime goes
    // from one request in flight to none and back thousands of times a second, and making and
    // clearing an interval each time would cost more than the ticks.
    this.active.delete(target);
  }

  /**
   * Measures every watched isolate, then charges them. The isolates' clocks together (with
   * what was measured at requests' edges since the last tick) cannot have used more CPU than
   * the whole process did over the same tick: when they claim more
   * (threads stalled while holding their isolates, e.g. a machine short of cores or a pause
   * that hits every isolate at once), each claim is scaled down in proportion. A lone runaway
   * isolate is charged in full, since the process did burn that CPU.
   */
  private tick(): void {
    if (this.active.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    const process = this.processClock(true);
    const processDelta = process - this.lastProcess;
    this.lastProcess = process;
    const targets = [...this.active];
    const deltas = targets.map((target) => target.measureCpu());
    let sum = this.edgeClaims;
    this.edgeClaims = 0;
    for (const delta of deltas) sum += delta;
    const scale = sum > processDelta && sum > 0 ? Math.max(0, processDelta) / sum : 1;
    for (let i = 0; i < targets.length; i++) {
      if (targets[i]!.applyCpu(deltas[i]! * scale, scale) === false) this.active.delete(targets[i]!);
    }
  }

  get watching(): number {
    return this.active.size;
  }
}

let lastProcessCpu = 0;
let lastProcessRead = -Infinity;

/**
 * CPU time of this whole process (all threads), in nanoseconds. getrusage sums over every
 * thread and, called per request, was a tenth of the main thread's time with a hundred busy
 * tenants, so unless `fresh`, a reading up to 1 ms old is reused. CpuMeter takes cached
 * readings only where that errs towards charging the isolate's own clock (the start of an
 * interval) and fresh ones where a cap is computed.
 */
export function processCpuNs(fresh = false): number {
  const now = performance.now();
  if (fresh || now - lastProcessRead >= 1) {
    const usage = process.cpuUsage();
    lastProcessCpu = (usage.user + usage.system) * 1000;
    lastProcessRead = now;
  }
  return lastProcessCpu;
}

/**
 * Measures the CPU an isolate used between two readings. isolet's isolated-vm build makes
 * `cpuTime` the isolate threads' CPU time (native/isolated-vm/cpu-time.patch); the prebuilt
 * binary, the fallback when that build could not be made, counts the time the isolate held its
 * thread on a steady clock, so on a machine short of cores it also counts the time the thread
 * waited to be scheduled, and a trivial request could be charged a CPU limit's worth. The
 * process's own CPU time over the same interval is a hard upper bound on what the isolate can
 * have used (its thread is one of the process's), so each reading is the smaller of the two.
 * The process clock is read only for intervals of a millisecond or more, where the difference
 * can matter; shorter ones cost one native read.
 */
export class CpuMeter {
  private lastIsolate = 0n;
  private lastProcess = 0;
  private readonly isolateClock: () => bigint;
  private readonly processClock: (fresh?: boolean) => number;

  constructor(isolateClock: () => bigint, processClock: (fresh?: boolean) => number = processCpuNs) {
    this.isolateClock = isolateClock;
    this.processClock = processClock;
  }

  /** CPU the platform used in this interval for itself (see credit), not yet taken off. */
  private credited = 0;

  /** Starts a new interval now. */
  reset(): void {
    this.lastIsolate = this.isolateClock();
    this.lastProcess = this.processClock();
    this.credited = 0;
  }

  /**
   * `ns` of the CPU used since the last reading was the platform's own work (a sandbox module
   * evaluated on first use), to be charged to no one: the next readings leave it out.
   */
  credit(ns: number): void {
    if (ns > 0) this.credited += ns;
  }

  /** CPU used since the last reading (or reset), in nanoseconds, less what was credited; starts the next interval. */
  take(): number {
    const now = this.isolateClock();
    let delta = Number(now - this.lastIsolate);
    this.lastIsolate = now;
    if (delta >= 1e6) {
      const process = this.processClock(true);
      delta = Math.min(delta, process - this.lastProcess);
      this.lastProcess = process;
    }
    if (this.credited > 0 && delta > 0) {
      const credit = Math.min(this.credited, delta);
      this.credited -= credit;
      delta -= credit;
    }
    return delta > 0 ? delta : 0;
  }
}
