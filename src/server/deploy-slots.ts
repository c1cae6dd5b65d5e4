// Deployments in progress, bounded per account and in total. Each one holds its parsed upload
// in memory and runs it once in a validation isolate; past the bound the caller is told to
// come back (429 with Retry-After) instead of waiting in a queue that nothing bounds.

import { ApiError } from './api-error.ts';

export const DEFAULT_MAX_DEPLOYS = 4;
export const DEFAULT_MAX_ACCOUNT_DEPLOYS = 2;

export class DeploySlots {
  readonly #total: number;
  readonly #perAccount: number;
  readonly #byAccount = new Map<string, number>();
  #inUse = 0;

  constructor(total: number, perAccount: number) {
    this.#total = total;
    this.#perAccount = perAccount;
  }

  /** Takes a slot for the account, or throws a 'rate_limited' ApiError; call the result to give it back. */
  acquire(accountId: string): () => void {
    const mine = this.#byAccount.get(accountId) ?? 0;
    if (mine >= this.#perAccount) {
      throw new ApiError(
        'rate_limited',
        `This account has ${mine} deployments in progress, the most it may have at once: wait for them to finish, then try again.`,
        undefined,
        1,
      );
    }
    if (this.#inUse >= this.#total) {
      throw new ApiError('rate_limited', 'The server is validating as many deployments as it takes at once: try again in a moment.', undefined, 1);
    }
    this.#byAccount.set(accountId, mine + 1);
    this.#inUse++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inUse--;
      const left = (this.#byAccount.get(accountId) ?? 1) - 1;
      if (left === 0) this.#byAccount.delete(accountId);
      else this.#byAccount.set(accountId, left);
    };
  }
}
