// Deployments in progress, bounded per account and in total. A deployment holds its upload in
// memory from the first byte, and then runs it once in a validation isolate; past a bound the
// caller is told to come back (429 with Retry-After) instead of waiting in a queue that nothing
// bounds. The per-account bound counts uploads from their start, so one account cannot hold
// many bodies open; the total bound counts only validations, so bodies held open by a few
// accounts cannot stop everyone else's deployments.

import { ApiError } from './api-error.ts';

export const DEFAULT_MAX_DEPLOYS = 4;
export const DEFAULT_MAX_ACCOUNT_DEPLOYS = 2;

const RETRY_AFTER_SECONDS = 1;

export class DeploySlots {
  readonly #total: number;
  readonly #perAccount: number;
  readonly #byAccount = new Map<string, number>();
  #validating = 0;

  constructor(total: number, perAccount: number) {
    this.#total = total;
    this.#perAccount = perAccount;
  }

  /** Takes one of the account's slots for a deployment from its upload to its answer; call the result to give it back. */
  acquireAccount(accountId: string): () => void {
    const mine = this.#byAccount.get(accountId) ?? 0;
    if (mine >= this.#perAccount) {
      throw new ApiError(
        'rate_limited',
        `This account has ${mine} deployments in progress, the most it may have at once: wait for them to finish, then try again.`,
        undefined,
        RETRY_AFTER_SECONDS,
      );
    }
    this.#byAccount.set(accountId, mine + 1);
    return once(() => {
      const left = (this.#byAccount.get(accountId) ?? 1) - 1;
      if (left === 0) this.#byAccount.delete(accountId);
      else this.#byAccount.set(accountId, left);
    });
  }

  /** Takes one of the server's validation slots; call the result to give it back. */
  acquireValidation(): () => void {
    if (this.#validating >= this.#total) {
      throw new ApiError(
        'rate_limited',
        `The server is validating ${this.#validating} deployments, as many as it takes at once: try again in a moment.`,
        undefined,
        RETRY_AFTER_SECONDS,
      );
    }
    this.#validating++;
    return once(() => {
      this.#validating--;
    });
  }

  /** Deployments in progress: the account's (uploads and validations), and validations in all. */
  inUse(accountId?: string): number {
    return accountId === undefined ? this.#validating : (this.#byAccount.get(accountId) ?? 0);
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
