// Which workers get series of their own in /metrics: a server may host tens of thousands, and
// each worker's series cost a Prometheus server memory for as long as it keeps them. The
// busiest `max` workers (by requests in the last window) have their own `worker` label; the
// rest share OTHER_WORKERS. A worker that falls out of the busiest loses its series (and counts
// into OTHER_WORKERS from then on) only when a busier one needs the place.

/** The `worker` label of workers without series of their own; no worker can be named so (names start with a letter or digit). */
export const OTHER_WORKERS = '_other';

/** Workers with series of their own by default (`isolet serve --metrics-workers`). */
export const DEFAULT_METRICS_WORKERS = 100;

export class WorkerLabels {
  readonly #max: number;
  readonly #own = new Set<string>();

  constructor(max = DEFAULT_METRICS_WORKERS) {
    this.#max = Math.max(0, Math.floor(max));
  }

  /** The worker's label: its name while it has its own series (given while there is room), else OTHER_WORKERS. */
  label(worker: string): string {
    if (this.#own.has(worker)) return worker;
    if (this.#own.size < this.#max) {
      this.#own.add(worker);
      return worker;
    }
    return OTHER_WORKERS;
  }

  /**
   * Gives the places to the busiest workers by `scores` (requests in the window that ended);
   * a worker that has a place keeps it against one no busier. Returns the workers that lost
   * their place, whose series are to be removed.
   */
  rebalance(scores: ReadonlyMap<string, number>): string[] {
    const ranked = [...scores].filter(([, score]) => score > 0).sort(([a, sa], [b, sb]) => sb - sa || Number(this.#own.has(b)) - Number(this.#own.has(a)));
    const wanted = new Set(ranked.slice(0, this.#max).map(([worker]) => worker));
    // Places left over go to those that hold one already, busiest first.
    const holders = [...this.#own].filter((worker) => !wanted.has(worker)).sort((a, b) => (scores.get(b) ?? 0) - (scores.get(a) ?? 0));
    for (const worker of holders) {
      if (wanted.size >= this.#max) break;
      wanted.add(worker);
    }
    const lost = [...this.#own].filter((worker) => !wanted.has(worker));
    this.#own.clear();
    for (const worker of wanted) this.#own.add(worker);
    return lost;
  }

  has(worker: string): boolean {
    return this.#own.has(worker);
  }
}
