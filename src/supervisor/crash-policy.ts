// The supervisor's two memories of crashes: which tenants crashed a process lately (twice in
// the window moves the account to quarantine), and how often each process was restarted lately
// (past a few restarts a minute, restarts back off so a crash loop cannot eat the machine).

/** A tenant that crashes a process this many times within the window is quarantined. */
export const QUARANTINE_CRASHES = 2;
export const QUARANTINE_WINDOW_MS = 10 * 60_000;

/** Restarts in RESTART_WINDOW_MS beyond this many are delayed, doubling from 1 s to 30 s. */
export const FREE_RESTARTS = 3;
export const RESTART_WINDOW_MS = 60_000;
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;

/** Crash times per key, forgotten after the window. */
class RecentEvents {
  readonly #times = new Map<string, number[]>();
  readonly #windowMs: number;

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** Records one at `now`; returns how many fall within the window. */
  add(key: string, now: number): number {
    const recent = (this.#times.get(key) ?? []).filter((time) => now - time < this.#windowMs);
    recent.push(now);
    this.#times.set(key, recent);
    return recent.length;
  }

  forget(key: string): void {
    this.#times.delete(key);
  }
}

export class CrashLedger {
  readonly #crashes: RecentEvents;

  constructor(windowMs = QUARANTINE_WINDOW_MS) {
    this.#crashes = new RecentEvents(windowMs);
  }

  /** Records a crash caused by the account's code; true when it is now to be quarantined. */
  crashed(account: string, now = Date.now()): boolean {
    if (this.#crashes.add(account, now) < QUARANTINE_CRASHES) return false;
    this.#crashes.forget(account);
    return true;
  }
}

export class RestartBackoff {
  readonly #restarts: RecentEvents;

  constructor(windowMs = RESTART_WINDOW_MS) {
    this.#restarts = new RecentEvents(windowMs);
  }

  /** Records a restart of `process`; returns how long to wait before it (0: at once). */
  delay(process: string, now = Date.now()): number {
    const count = this.#restarts.add(process, now);
    if (count <= FREE_RESTARTS) return 0;
    return Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (count - FREE_RESTARTS - 1));
  }
}
