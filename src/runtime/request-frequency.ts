// How often each worker has been asked for lately: the count a Runtime weighs, when it is at its
// memory budget or isolate cap, before it lets a worker that has no isolate push out one that
// has (runtime.ts, makeRoom). Least recently used alone is the worst policy for a rotation over
// more tenants than fit, or a sweep that touches every tenant once (a health check, a crawler):
// each newcomer evicts the isolate asked for longest ago, which is the one asked for next, so
// every request becomes a cold start. Weighing how often each was asked for keeps the isolates
// that are used and lets one-off requests pass through, as TinyLFU does in front of a cache.
//
// The counts are exact per loaded worker (a Runtime knows them all) and halved every `period`
// requests, so that a tenant that was busy an hour ago does not outweigh one busy now.

export class RequestFrequency {
  readonly #period: number;
  readonly #counts = new Map<string, number>();
  #sinceHalving = 0;

  /** `period`: requests between halvings; a few times what the live isolates can hold. */
  constructor(period: number) {
    this.#period = Math.max(1, Math.floor(period));
  }

  /** One request for `name`. */
  add(name: string): void {
    this.#counts.set(name, (this.#counts.get(name) ?? 0) + 1);
    if (++this.#sinceHalving < this.#period) return;
    this.#sinceHalving = 0;
    // Linear in the workers counted, once every `period` requests.
    for (const [key, count] of this.#counts) {
      if (count <= 1) this.#counts.delete(key);
      else this.#counts.set(key, count >>> 1);
    }
  }

  of(name: string): number {
    return this.#counts.get(name) ?? 0;
  }

  /** The worker was unloaded: its count goes with it. */
  forget(name: string): void {
    this.#counts.delete(name);
  }
}
