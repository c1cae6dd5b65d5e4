// Who may hold outbound connections, and how many: each account (the owner of the workers,
// OpContext.account) has its own connection pools (a connection is never shared between
// accounts) and its own budget of connections in use, per destination and in all. One account
// holding many unread responses then fills only its own budget: another account's fetch to
// the same destination does not wait behind it.
//
// A fetch takes a slot before it sends and gives it back when its exchange is over (the
// response read to its end, cancelled or failed). Past a cap it waits in line, as workerd
// queues a request's subrequests beyond six open connections; the wait ends with the fetch's
// signal (the worker's abort, the request's end, the fetch's deadline). A request that holds
// responses it is not reading while it waits for another would wait forever, so, as workerd
// does, the least recently used of its own idle responses is cancelled to make room.

import { Agent as HttpAgent, type ClientRequestArgs } from 'node:http';
import { Agent as HttpsAgent, type RequestOptions } from 'node:https';
import type { OutboundLimits } from './egress-policy.ts';

/** A connection in use, counted against its account and destination until released. */
export interface Slot {
  readonly destination: string;
  /** Gives the slot back (once; later calls do nothing). */
  release(): void;
  /**
   * The connection waits on the worker (its response head delivered, no read in progress):
   * `evict` ends it if another fetch needs its place. undefined: it is busy again.
   */
  idle(evict: (() => void) | undefined): void;
}

interface PinnedOptions { pinned?: string }

// A pooled connection is only reused for the same vetted addresses: the pool key is Node's
// (host, port, TLS options) plus the addresses the policy let through (host.ts).
class PinnedHttpAgent extends HttpAgent {
  override getName(options?: ClientRequestArgs & PinnedOptions): string {
    return `${super.getName(options)}|${options?.pinned ?? ''}`;
  }
}
class PinnedHttpsAgent extends HttpsAgent {
  override getName(options?: RequestOptions & PinnedOptions): string {
    return `${super.getName(options)}|${options?.pinned ?? ''}`;
  }
}

interface Waiter {
  destination: string;
  owner: number | undefined;
  resolve: (slot: Slot) => void;
}

interface Held {
  destination: string;
  /** The request that made the fetch (undefined: none in flight). */
  owner: number | undefined;
  /** When the connection became idle, in the order slots went idle; undefined while busy. */
  idleSince: number | undefined;
  evict: (() => void) | undefined;
}

let idleOrder = 0;

class Account {
  readonly http: HttpAgent;
  readonly https: HttpsAgent;
  inUse = 0;
  readonly byDestination = new Map<string, number>();
  readonly waiting: Waiter[] = [];
  readonly held = new Set<Held>();
  /** Set while the account has nothing in use: then its pools are closed and it is forgotten. */
  idleTimer: NodeJS.Timeout | undefined;

  constructor(limits: OutboundLimits) {
    const options = {
      keepAlive: true,
      // A backstop: the slots keep an account below these, so the agent never queues for long.
      maxSockets: limits.connectionsPerDestination,
      maxFreeSockets: limits.connectionsPerDestination,
      // An idle pooled connection is closed after this (Agent: destroyed when free and timed out).
      timeout: FREE_SOCKET_MS,
      scheduling: 'lifo' as const,
    };
    this.http = new PinnedHttpAgent(options);
    this.https = new PinnedHttpsAgent(options);
  }

  destroy(): void {
    clearTimeout(this.idleTimer);
    this.http.destroy();
    this.https.destroy();
  }
}

/** How long a pooled connection is kept unused, and an account with nothing in use remembered. */
const FREE_SOCKET_MS = 4_000;
const IDLE_ACCOUNT_MS = 10_000;

export class ConnectionSlots {
  readonly #limits: OutboundLimits;
  readonly #accounts = new Map<string, Account>();

  constructor(limits: OutboundLimits) {
    this.#limits = limits;
  }

  /** The account's connection pools (its agents). */
  agents(account: string): { http: HttpAgent; https: HttpsAgent } {
    return this.#account(account);
  }

  /** Connections the account has in use (for tests and diagnostics). */
  inUse(account: string): number {
    return this.#accounts.get(account)?.inUse ?? 0;
  }

  /** Fetches of the account waiting for a slot. */
  waiting(account: string): number {
    return this.#accounts.get(account)?.waiting.length ?? 0;
  }

  /**
   * A slot for a connection of `account` to `destination`: at once when both caps allow it,
   * else when one is released, in arrival order. Rejects with the signal's reason on abort.
   */
  acquire(account: string, destination: string, signal: AbortSignal, owner?: number): Promise<Slot> {
    if (signal.aborted) return Promise.reject(signal.reason);
    const state = this.#account(account);
    if (this.#fits(state, destination)) return Promise.resolve(this.#take(account, state, destination, owner));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        destination,
        resolve: (slot) => {
          signal.removeEventListener('abort', onAbort);
          resolve(slot);
        },
        owner,
      };
      const onAbort = () => {
        const index = state.waiting.indexOf(waiter);
        if (index !== -1) state.waiting.splice(index, 1);
        this.#forgetIfIdle(account, state);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      state.waiting.push(waiter);
      if (owner !== undefined) this.#evictIdle(state, destination, owner);
    });
  }

  /** Closes every pooled connection (Runtime.close()); fetches in flight have their own. */
  close(): void {
    for (const state of this.#accounts.values()) state.destroy();
    this.#accounts.clear();
  }

  #account(account: string): Account {
    let state = this.#accounts.get(account);
    if (!state) {
      state = new Account(this.#limits);
      this.#accounts.set(account, state);
    }
    clearTimeout(state.idleTimer);
    state.idleTimer = undefined;
    return state;
  }

  #fits(state: Account, destination: string): boolean {
    return state.inUse < this.#limits.connectionsPerAccount &&
      (state.byDestination.get(destination) ?? 0) < this.#limits.connectionsPerDestination;
  }

  /**
   * Cancels the least recently idle response that holds the place a fetch to `destination`
   * waits for (one to that destination when it is the destination that is full), if any. Its
   * release wakes the waiter.
   */
  #evictIdle(state: Account, destination: string, owner: number): void {
    const destinationFull = (state.byDestination.get(destination) ?? 0) >= this.#limits.connectionsPerDestination;
    let oldest: Held | undefined;
    for (const held of state.held) {
      if (held.owner !== owner || held.idleSince === undefined || (destinationFull && held.destination !== destination)) continue;
      if (!oldest || held.idleSince < oldest.idleSince!) oldest = held;
    }
    oldest?.evict?.();
  }

  #take(account: string, state: Account, destination: string, owner: number | undefined): Slot {
    state.inUse++;
    state.byDestination.set(destination, (state.byDestination.get(destination) ?? 0) + 1);
    let released = false;
    const held: Held = { destination, owner, idleSince: undefined, evict: undefined };
    state.held.add(held);
    return {
      destination,
      idle: (evict) => {
        held.evict = evict;
        held.idleSince = evict === undefined ? undefined : idleOrder++;
      },
      release: () => {
        if (released) return;
        released = true;
        state.held.delete(held);
        state.inUse--;
        const left = state.byDestination.get(destination)! - 1;
        if (left === 0) state.byDestination.delete(destination);
        else state.byDestination.set(destination, left);
        this.#wake(account, state);
      },
    };
  }

  // The first waiter in line whose destination has room goes: one waiting on a full
  // destination does not hold up those behind it for others.
  #wake(account: string, state: Account): void {
    for (let i = 0; i < state.waiting.length && state.inUse < this.#limits.connectionsPerAccount; ) {
      const waiter = state.waiting[i]!;
      if (!this.#fits(state, waiter.destination)) {
        i++;
        continue;
      }
      state.waiting.splice(i, 1);
      waiter.resolve(this.#take(account, state, waiter.destination, waiter.owner));
    }
    this.#forgetIfIdle(account, state);
  }

  #forgetIfIdle(account: string, state: Account): void {
    if (state.inUse > 0 || state.waiting.length > 0 || state.idleTimer !== undefined) return;
    state.idleTimer = setTimeout(() => {
      if (this.#accounts.get(account) !== state || state.inUse > 0 || state.waiting.length > 0) return;
      this.#accounts.delete(account);
      state.destroy();
    }, IDLE_ACCOUNT_MS);
    state.idleTimer.unref();
  }
}
