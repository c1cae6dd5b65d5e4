// What the control plane needs of whatever runs the workers: a Runtime in this process
// (InProcessHost, for embedders and tests) or runtime processes under a supervisor
// (ProcessPool, src/supervisor/process-pool.ts, what `isolet serve` runs).

import { Runtime } from '../runtime/runtime.ts';
import type { RuntimeOptions, RuntimeRequest, RuntimeResponse, ScheduledEvent, ScheduledResult, WorkerDefinition, WorkerLogEntry } from '../runtime/types.ts';
import type { Tier } from '../supervisor/placement.ts';

export interface Placement {
  /** The account's tier: tenants of different tiers never share a process (default 'default'). */
  tier?: Tier;
  /**
   * Which code this is (its version's content hash): loaded again with other secrets or another
   * tier it is not new code, and another worker's clean trial of the same code counts for it.
   */
  code?: string;
  /** The code served before this server started: it has run, it is not tried again (src/supervisor/placement.ts). */
  tried?: boolean;
}

export interface WorkerHost {
  /** Registers (or replaces, atomically) a worker; its isolate starts with its first request. */
  load(name: string, definition: WorkerDefinition, placement?: Placement): Promise<void>;
  unload(name: string): Promise<void>;
  has(name: string): boolean;
  /** Sends a request to a worker; UnknownWorkerError when it is not loaded. Faults are 5xx responses. */
  fetch(name: string, request: RuntimeRequest): Promise<RuntimeResponse>;
  /**
   * Runs a worker's scheduled handler for a cron trigger (Runtime.scheduled). Worker faults are
   * outcomes; rejects when the worker is not loaded or cannot be run now.
   */
  scheduled(name: string, event: ScheduledEvent): Promise<ScheduledResult>;
  /**
   * Loads an upload once, apart from what serves, and throws it away: a WorkerLoadError names
   * what is wrong with it. It runs the upload's top-level code, so where tenant code runs.
   */
  validate(name: string, definition: WorkerDefinition, placement?: Placement): Promise<void>;
  close(): Promise<void>;
}

/** A Runtime in this process, and another one apart for uploads: everything in one process. */
export class InProcessHost implements WorkerHost {
  readonly runtime: Runtime;
  readonly #validator: Runtime;

  constructor(options: RuntimeOptions = {}) {
    this.runtime = new Runtime(options);
    // Logs from validation (top-level console calls of an upload) are not the worker's live
    // logs: the upload may never serve.
    this.#validator = new Runtime({ log: discard, maxIsolates: 16, limits: options.limits });
  }

  load(name: string, definition: WorkerDefinition): Promise<void> {
    return this.runtime.load(name, definition, { validate: false });
  }

  unload(name: string): Promise<void> {
    return this.runtime.unload(name);
  }

  has(name: string): boolean {
    return this.runtime.has(name);
  }

  fetch(name: string, request: RuntimeRequest): Promise<RuntimeResponse> {
    return this.runtime.fetch(name, request);
  }

  scheduled(name: string, event: ScheduledEvent): Promise<ScheduledResult> {
    return this.runtime.scheduled(name, event);
  }

  async validate(name: string, definition: WorkerDefinition): Promise<void> {
    try {
      await this.#validator.load(name, definition);
    } finally {
      await this.#validator.unload(name);
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.runtime.close(), this.#validator.close()]);
  }
}

function discard(_entry: WorkerLogEntry): void {}
