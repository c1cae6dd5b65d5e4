// Uploads known to load, by what decides whether they load: the code, the configuration its
// top-level code sees (vars with the secrets merged in, limits, compatibility date) and the
// account. Validation starts the worker in an isolate, which costs far more than the rest of a
// deployment; an operator who deploys one bundle to many workers pays it once. Only successes
// are remembered: a rejected upload is run (and its error reported) every time, since its
// error may name the worker or depend on the moment. The account is part of the key so that
// no tenant can learn, from how fast a deployment answers, what another tenant deployed.
// Nothing here outlives the process, so a new runtime never trusts an old result.

import type { ServedDefinition } from './platform.ts';
import { canonicalContent, sha256Hex } from '../store/store.ts';

/** Upload keys remembered (32 bytes of hash each, as hex): plenty for a server's distinct bundles. */
export const DEFAULT_VALIDATED_UPLOADS = 10_000;

export class ValidatedUploads {
  /** Keys in least to most recently used order (a Map keeps insertion order). */
  readonly #keys = new Map<string, true>();
  readonly #capacity: number;

  constructor(capacity = DEFAULT_VALIDATED_UPLOADS) {
    this.#capacity = Math.max(0, Math.floor(capacity));
  }

  /** What decides whether a definition loads; the worker's name is not part of it (validation does not depend on it). */
  static key(definition: ServedDefinition): string {
    return sha256Hex(JSON.stringify([definition.account ?? null, canonicalContent(definition)]));
  }

  /** Whether an identical upload of the same account loaded; a hit counts as a use. */
  has(key: string): boolean {
    if (!this.#keys.delete(key)) return false;
    this.#keys.set(key, true);
    return true;
  }

  /** Remembers that an upload loaded; the least recently used key goes past the capacity. */
  add(key: string): void {
    if (this.#capacity === 0) return;
    this.#keys.delete(key);
    this.#keys.set(key, true);
    if (this.#keys.size > this.#capacity) this.#keys.delete(this.#keys.keys().next().value!);
  }

  get size(): number {
    return this.#keys.size;
  }
}
