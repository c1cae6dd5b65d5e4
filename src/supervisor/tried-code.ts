// Code seen to end its trial cleanly in the untried processes, by content hash (a version's
// `hash`: its modules, vars, limits and bindings; not its secrets or account). A platform that
// deploys one bundle for many tenants (one per customer) tries it once: another worker with the
// same content goes home at once, which spares it the second cold start the trial costs (its
// first request in the untried process, its next at home).
//
// This gives nothing away. The trial is one clean request, which code that crashes on its second
// request passes anyway; what stops repeat crashers is the crash ledger (crash-policy.ts), which
// counts by account wherever the crash happens. Code whose worker later crashes a process is
// forgotten here, so that its next deploys are tried again.

/** Hashes kept; the oldest go first past it (a hash is ~64 bytes: a few hundred KB at most). */
export const TRIED_CODE_MAX = 10_000;

export class TriedCode {
  /** Insertion order is age: re-adding a hash makes it the newest. */
  readonly #hashes = new Set<string>();
  readonly #max: number;

  constructor(max = TRIED_CODE_MAX) {
    this.#max = Math.max(1, Math.floor(max));
  }

  has(hash: string): boolean {
    return this.#hashes.has(hash);
  }

  /** `hash` ended its trial cleanly. */
  add(hash: string): void {
    this.#hashes.delete(hash);
    this.#hashes.add(hash);
    if (this.#hashes.size > this.#max) this.#hashes.delete(this.#hashes.values().next().value!);
  }

  /** A worker running `hash` crashed its process: its next deploys are tried again. */
  forget(hash: string): void {
    this.#hashes.delete(hash);
  }
}
