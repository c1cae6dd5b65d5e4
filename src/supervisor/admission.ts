// Per-worker admission: at most `inFlight` requests of one worker run at once and `queued` more
// wait their turn; past that the worker's own clients get 503 with Retry-After, at once, while
// every other worker is admitted as before. A request counts until its response body is sent
// or dropped, so a worker that streams forever holds its slots, not anyone else's. A worker
// whose requests keep ending at its CPU or memory limit, or crashing its process, is refused
// for a while, without running (limit-penalties.ts).

import type { RuntimeResponse } from '../runtime/types.ts';
import { DEFAULT_PENALTIES, LimitPenalties, type PenaltyLimits } from './limit-penalties.ts';

export interface AdmissionLimits extends PenaltyLimits {
  /** Requests of one worker in flight at once (default 128). */
  inFlight: number;
  /** Requests of one worker waiting for a slot (default 512). */
  queued: number;
  /**
   * Requests in flight at once, over all workers whose requests hit a limit lately (or that are
   * on probation after a refusal); theirs beyond it wait their turn (default 1).
   */
  suspectsInFlight: number;
}

export const DEFAULT_ADMISSION: AdmissionLimits = Object.freeze({ inFlight: 128, queued: 512, suspectsInFlight: 1, ...DEFAULT_PENALTIES });

interface Gate {
  active: number;
  waiting: (() => void)[];
}

export class Admission {
  readonly #limits: AdmissionLimits;
  readonly #gates = new Map<string, Gate>();
  readonly #penalties: LimitPenalties;
  /** Requests of suspects (workers whose requests hit a limit lately) running now, and waiting to. */
  readonly #suspects: Gate = { active: 0, waiting: [] };

  constructor(limits: Partial<AdmissionLimits> = {}, now: () => number = Date.now) {
    this.#limits = { ...DEFAULT_ADMISSION, ...limits };
    this.#penalties = new LimitPenalties(this.#limits, now);
  }

  /** Runs `serve` when the worker has a slot (waiting for one if its queue has room), else answers 503. */
  async run(worker: string, serve: () => Promise<RuntimeResponse>): Promise<RuntimeResponse> {
    const refused = this.#penalties.refusal(worker);
    if (refused !== undefined) return refused;
    let gate = this.#gates.get(worker);
    if (gate === undefined) {
      gate = { active: 0, waiting: [] };
      this.#gates.set(worker, gate);
    }
    if (gate.active >= this.#limits.inFlight) {
      if (gate.waiting.length >= this.#limits.queued) return overloaded(this.#limits);
      await new Promise<void>((resolve) => gate.waiting.push(resolve));
    } else {
      gate.active++;
    }
    // A suspect's requests take turns in a narrow lane, so that many workers that loop or
    // allocate cannot take every thread that runs isolates before each is refused.
    const suspect = this.#penalties.suspect(worker);
    if (suspect) await take(this.#suspects, this.#limits.suspectsInFlight);
    // It may have been refused while this request waited.
    const refusedMeanwhile = this.#penalties.refusal(worker);
    let response: RuntimeResponse;
    try {
      response = refusedMeanwhile ?? (await serve());
    } catch (error) {
      this.#release(worker, gate);
      throw error;
    } finally {
      if (suspect) give(this.#suspects);
    }
    if (refusedMeanwhile === undefined) this.#penalties.record(worker, response);
    const body = response.body;
    if (body === null || body instanceof Uint8Array) {
      this.#release(worker, gate);
      return response;
    }
    return { ...response, body: releasing(body, () => this.#release(worker, gate)) };
  }

  /** A slot goes to the next waiting request, or is given back. */
  #release(worker: string, gate: Gate): void {
    give(gate);
    if (gate.active === 0) this.#gates.delete(worker);
  }
}

/** Takes one of the gate's `limit` slots, waiting in turn when none is free. */
async function take(gate: Gate, limit: number): Promise<void> {
  if (gate.active < limit) {
    gate.active++;
    return;
  }
  await new Promise<void>((resolve) => gate.waiting.push(resolve));
}

/** A slot goes to the next waiting request, or is given back. */
function give(gate: Gate): void {
  const next = gate.waiting.shift();
  if (next !== undefined) return next();
  gate.active--;
}

/** The body as it was, calling `done` once when it ends, fails or is dropped. */
function releasing(body: AsyncIterable<Uint8Array>, done: () => void): AsyncIterable<Uint8Array> {
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    done();
  };
  return {
    [Symbol.asyncIterator]() {
      const inner = body[Symbol.asyncIterator]();
      return {
        async next() {
          try {
            const result = await inner.next();
            if (result.done) release();
            return result;
          } catch (error) {
            release();
            throw error;
          }
        },
        async return() {
          release();
          return (await inner.return?.()) ?? { done: true, value: undefined };
        },
      };
    },
  };
}

function overloaded(limits: AdmissionLimits): RuntimeResponse {
  return {
    status: 503,
    statusText: 'Service Unavailable',
    headers: [['content-type', 'text/plain;charset=UTF-8'], ['retry-after', '1']],
    body: Buffer.from(
      `This worker has ${limits.inFlight} requests in flight and ${limits.queued} waiting, the most it may have: retry after 1 s, or send fewer at once.\n`,
    ),
  };
}
