// The CPU watchdog. isolated-vm's `timeout` covers only synchronous work, so the CPU limit is
// enforced by looking at each busy isolate's CPU clock every few milliseconds and
// terminating the one over its budget. Only isolates with work in flight are looked at, so
// thousands of idle isolates cost nothing here.

export interface CpuAccounted {
  chargeCpu(): void;
}

export class CpuWatchdog {
  private readonly active = new Set<CpuAccounted>();
  private timer: NodeJS.Timeout | undefined;
  private readonly intervalMs: number;

  constructor(intervalMs = 5) {
    this.intervalMs = intervalMs;
  }

  watch(target: CpuAccounted): void {
    this.active.add(target);
    if (!this.timer) {
      this.timer = setInterval(() => this.tick(), this.intervalMs);
      // Requests in flight keep the process alive on their own; the watchdog must not.
      this.timer.unref();
    }
  }

  unwatch(target: CpuAccounted): void {
    this.active.delete(target);
    if (this.active.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private tick(): void {
    for (const target of this.active) target.chargeCpu();
  }

  get watching(): number {
    return this.active.size;
  }
}
