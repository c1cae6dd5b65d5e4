// The Runtime: the library face of isolet and the core that the HTTP front and the server use.
// It holds each loaded worker's definition and at most one live isolate per worker version,
// creates isolates on demand from the runtime image, and keeps the number of live isolates and
// the memory they hold under bounds by disposing the least recently used idle ones.

import { totalmem } from 'node:os';
import { runtimeImage, type RuntimeImage } from './runtime-image.ts';
import { WorkerIsolate } from './worker-isolate.ts';
import { RpcValue } from './rpc-value.ts';
import { CpuWatchdog } from './cpu-limit.ts';
import { catastrophicErrorHandler } from './catastrophe.ts';
import { SpareIsolates } from './spare-isolates.ts';
import { IdleMemoryReducer } from './idle-memory.ts';
import { teardownsOver } from './isolate-teardown.ts';
import { EgressPolicy } from '../api/fetch/egress-policy.ts';
import { closeFetchConnections } from '../api/fetch/host.ts';
import { WorkerBindings } from '../api/bindings/host.ts';
import { chainOf, noSuchService, otherAccount } from './service-calls.ts';
import { checkCrons, CronError } from '../cron/cron.ts';
import { endReason } from './termination.ts';
import { RequestFrequency } from './request-frequency.ts';
import { InlineRuns } from './inline-runs.ts';
import {
  BindingError,
  DEFAULT_LIMITS,
  WorkerLoadError,
  type BindingHost,
  type ServiceCall,
  type ServiceHost,
  type IsolateMemoryUsage,
  type IsolateEvents,
  type RuntimeOptions,
  type RuntimeRequest,
  type RuntimeResponse,
  type ScheduledEvent,
  type ScheduledResult,
  type WorkerDefinition,
  type WorkerLimits,
  type WorkerLogEntry,
} from './types.ts';

/**
 * V8 reserves address space per isolate and one process holds at most about 4,000 of them;
 * the pool stays well below that.
 */
export const DEFAULT_MAX_ISOLATES = 2500;

const MB = 1024 * 1024;

/**
 * The share of the machine's memory that live isolates' heaps may hold, across the processes
 * that share it. Heaps as V8 counts them are not all of an isolate's memory (with 10,000 tenants
 * in rotation a live isolate held about 1.45 MB of RSS against V8's 1.36 MB, docs/BENCHMARKS.md),
 * and the rest of each process needs room too: at this share the isolates' processes held 47%
 * of a 24 GB machine.
 */
const MEMORY_BUDGET_SHARE = 0.4;

/** This machine's memory, in MB. */
export function machineMemoryMb(): number {
  return totalmem() / MB;
}

/** The memory live isolates may hold on this machine, in MB, before it is divided among processes. */
export function machineMemoryBudgetMb(): number {
  return Math.floor(machineMemoryMb() * MEMORY_BUDGET_SHARE);
}

/** The default `memoryBudgetMb` of one of `processes` processes that share `sharedMb` (default: this machine's). */
export function defaultMemoryBudgetMb(processes = 1, sharedMb = machineMemoryBudgetMb()): number {
  return Math.max(64, Math.floor(sharedMb / Math.max(1, processes)));
}

/**
 * About the least memory a live isolate holds, as its memory budget counts it (heap pages and
 * external memory): a served hello-world isolate measures 1.36 MB, every one the same
 * (docs/BENCHMARKS.md, "Runtime processes the memory can fill, and a killed one seen at once").
 * So a budget of B MB never holds more than about B / LEAST_ISOLATE_MB isolates, however many
 * workers are deployed.
 */
export const LEAST_ISOLATE_MB = 1.4;

/** The longest `cron` a scheduled event may name (any text: `isolet dev --test-scheduled` takes what it is given, as wrangler does). */
const MAX_EVENT_CRON_CHARS = 1000;

/** Isolates kept ready ahead of demand for cold starts (about 1.5 MB each). */
export const DEFAULT_SPARE_ISOLATES = 2;

/**
 * Requests between halvings of the request counts (RequestFrequency), per isolate maxIsolates
 * allows: long enough that a tenant asked for once per rotation over all of them builds a count.
 */
const FREQUENCY_PERIOD_PER_ISOLATE = 8;

/**
 * Isolates on probation at once, at most: past it, the least recently used isolate makes room
 * as before, so a burst of requests for new tenants cannot take the process far past its bounds.
 */
const MAX_ON_PROBATION = 16;

/** How long an isolate is idle before it gives memory back (see idle-memory.ts). */
export const DEFAULT_REDUCE_IDLE_MEMORY_AFTER_MS = 10_000;

interface LoadedWorker {
  name: string;
  definition: WorkerDefinition;
  limits: WorkerLimits;
  bindings: WorkerBindings;
  version: number;
  isolate: WorkerIsolate | undefined;
  creating: Promise<WorkerIsolate> | undefined;
}

export interface LoadOptions {
  /**
   * false: only register the worker; its isolate starts with its first request (and a worker
   * that fails to start answers 503). For hosts that register many workers at boot.
   */
  validate?: boolean;
}

/** A worker's isolate could not be started; `message` says why. */
class WorkerStartError extends Error {}

export class UnknownWorkerError extends Error {
  readonly code = 'ERR_UNKNOWN_WORKER';
  constructor(name: string) {
    super(`No worker named '${name}' is loaded.`);
    this.name = 'UnknownWorkerError';
  }
}

function defaultLog(entry: WorkerLogEntry): void {
  process.stderr.write(JSON.stringify(entry) + '\n');
}

export class Runtime {
  private readonly workers = new Map<string, LoadedWorker>();
  /** Live isolates, least recently used first (Map keeps insertion order; a use re-inserts). */
  private readonly live = new Map<WorkerIsolate, LoadedWorker>();
  private readonly watchdog = new CpuWatchdog();
  /** Which requests start on this thread (undefined: none, RuntimeOptions.inlineRuns). */
  private readonly inline: InlineRuns | undefined;
  private readonly defaults: WorkerLimits;
  private readonly log: (entry: WorkerLogEntry) => void;
  private readonly maxIsolates: number;
  private memoryBudget: number;
  /** What the live isolates held at their last measurements, in bytes (WorkerIsolate.heldBytes). */
  private held = 0;
  private readonly onCatastrophicError = catastrophicErrorHandler();
  private image: Promise<RuntimeImage> | undefined;
  private spares: SpareIsolates | undefined;
  private readonly spareCount: number;
  private readonly egress: EgressPolicy;
  private readonly idleMemory: IdleMemoryReducer;
  private readonly bindingHost: BindingHost | undefined;
  /** Where service-binding calls go: RuntimeOptions.serviceHost, or this Runtime's own workers. */
  private readonly services: ServiceHost;
  private readonly bindingTimeoutMs: number | undefined;
  private closed = false;
  /** Isolates being created now: they count against maxIsolates before they are live. */
  private starting = 0;
  /** Requests per worker lately: who may push out whom when the bounds are reached (makeRoom). */
  private readonly frequency: RequestFrequency;
  /**
   * Isolates started past the bounds for a worker asked for no more often than the isolate it
   * would have pushed out: they serve, and are the first to go the next time room is needed,
   * unless their worker is asked for again first. Oldest first.
   */
  private readonly probation = new Set<WorkerIsolate>();
  private readonly isolateEvents: IsolateEvents | undefined;

  constructor(options: RuntimeOptions = {}) {
    this.defaults = { ...DEFAULT_LIMITS, ...options.limits };
    this.log = options.log ?? defaultLog;
    this.maxIsolates = Math.max(1, options.maxIsolates ?? DEFAULT_MAX_ISOLATES);
    this.memoryBudget = Math.max(1, options.memoryBudgetMb ?? defaultMemoryBudgetMb()) * MB;
    this.frequency = new RequestFrequency(FREQUENCY_PERIOD_PER_ISOLATE * this.maxIsolates);
    this.spareCount = Math.max(0, Math.floor(options.spareIsolates ?? DEFAULT_SPARE_ISOLATES));
    this.egress = new EgressPolicy(options.egress);
    this.inline = options.inlineRuns instanceof InlineRuns ? options.inlineRuns : options.inlineRuns === false ? undefined : new InlineRuns();
    this.bindingHost = options.bindingHost;
    this.services = options.serviceHost ?? {
      fetch: async (call, request) => this.fetch(this.serviceTarget(call), { ...request, chain: chainOf(call), entrypoint: call.entrypoint }),
      call: async (call, method, args) => this.callCarrying(this.serviceTarget(call), method, args, { entrypoint: call.entrypoint, chain: chainOf(call) }),
    };
    this.bindingTimeoutMs = options.bindingTimeoutMs;
    this.idleMemory = new IdleMemoryReducer(options.reduceIdleMemoryAfterMs ?? DEFAULT_REDUCE_IDLE_MEMORY_AFTER_MS, () => this.live.keys());
    this.isolateEvents = options.isolateEvents;
  }

  /**
   * Loads (or replaces) a worker. Its code is compiled and its top-level code run in a new
   * isolate before this resolves, so a broken worker is rejected here with a WorkerLoadError
   * and the version already loaded keeps serving. Requests in flight on a replaced version
   * finish on it; requests that arrive after this resolves see the new one.
   */
  async load(name: string, definition: WorkerDefinition, options: LoadOptions = {}): Promise<void> {
    this.assertOpen();
    validateName(name);
    const limits = resolveLimits(this.defaults, definition.limits);
    if (definition.crons !== undefined) {
      try {
        checkCrons(definition.crons);
      } catch (error) {
        throw error instanceof CronError ? new WorkerLoadError(error.message) : error;
      }
    }
    const bindings = new WorkerBindings(definition, this.bindingHost, this.bindingTimeoutMs);
    const previous = this.workers.get(name);
    const candidate: LoadedWorker = {
      name,
      definition,
      limits,
      bindings,
      version: (previous?.version ?? 0) + 1,
      isolate: undefined,
      creating: undefined,
    };
    if (options.validate === false) {
      this.workers.set(name, candidate);
      if (previous) this.retire(previous);
      return;
    }
    const isolate = await this.createIsolate(candidate);
    candidate.isolate = isolate;
    this.workers.set(name, candidate);
    this.track(isolate, candidate);
    if (previous) this.retire(previous);
  }

  async unload(name: string): Promise<void> {
    const worker = this.workers.get(name);
    if (!worker) return;
    this.workers.delete(name);
    this.frequency.forget(name);
    this.retire(worker);
  }

  has(name: string): boolean {
    return this.workers.has(name);
  }

  get workerNames(): string[] {
    return [...this.workers.keys()];
  }

  /** Number of isolates alive now (tenants' isolates; spares are counted apart). */
  get liveIsolates(): number {
    return this.live.size;
  }

  /** Memory the live isolates held when last measured, in bytes: what `memoryBudgetMb` bounds. */
  get isolateMemory(): number {
    return this.held;
  }

  /** What the live isolates may hold, in bytes (`memoryBudgetMb`, or what setMemoryBudget set since). */
  get isolateMemoryBudget(): number {
    return this.memoryBudget;
  }

  /**
   * Sets the memory budget of the live isolates from now on. A smaller one than they hold
   * disposes least recently used idle isolates at once, as the budget does when it is reached:
   * a server whose runtime processes grew in number gives each running one its new share.
   */
  setMemoryBudget(memoryBudgetMb: number): void {
    if (!(memoryBudgetMb > 0) || !Number.isFinite(memoryBudgetMb)) throw new RangeError(`memoryBudgetMb must be a positive number of MB, not ${memoryBudgetMb}`);
    this.memoryBudget = Math.max(1, memoryBudgetMb) * MB;
    if (this.held > this.memoryBudget) this.makeRoom(0, 0);
  }

  /** Isolates made ahead of demand and not yet given to a worker. */
  get spareIsolates(): number {
    return this.spares?.count ?? 0;
  }

  /** Sends a request to a worker. Worker faults come back as 500/503 responses. */
  async fetch(name: string, request: RuntimeRequest): Promise<RuntimeResponse> {
    let isolate: WorkerIsolate;
    try {
      isolate = await this.isolateOf(name);
    } catch (error) {
      if (!(error instanceof WorkerStartError)) throw error;
      return {
        status: 503,
        statusText: 'Service Unavailable',
        headers: [['content-type', 'text/plain;charset=UTF-8']],
        body: Buffer.from(`Worker failed to start: ${error.message}\n`),
      };
    }
    return isolate.fetch(request);
  }

  /**
   * Runs a worker's scheduled handler for a cron trigger, as `isolet serve` does on schedule:
   * `scheduled(controller, env, ctx)` with `controller.cron` and `controller.scheduledTime`,
   * under the same limits as a request. Resolves when its work (waitUntil included) is over,
   * with the outcome; worker faults are outcomes, never rejections.
   */
  async scheduled(name: string, event: ScheduledEvent): Promise<ScheduledResult> {
    const cron = event?.cron;
    const scheduledTime = event?.scheduledTime ?? Date.now();
    if (typeof cron !== 'string' || cron.length > MAX_EVENT_CRON_CHARS) {
      throw new TypeError(`scheduled(name, { cron }): cron must be a string of at most ${MAX_EVENT_CRON_CHARS} characters.`);
    }
    if (typeof scheduledTime !== 'number' || !Number.isFinite(scheduledTime)) {
      throw new TypeError('scheduled(name, { scheduledTime }): scheduledTime must be a time in milliseconds since the epoch.');
    }
    const started = performance.now();
    let isolate: WorkerIsolate;
    try {
      isolate = await this.isolateOf(name);
    } catch (failure) {
      if (!(failure instanceof WorkerStartError)) throw failure;
      const error = `Worker failed to start: ${failure.message}`;
      this.log({ time: new Date().toISOString(), worker: name, level: 'error', type: 'scheduled', message: `scheduled "${cron}" exception`, cron, scheduledTime, outcome: 'exception', error });
      return { outcome: 'exception', noRetry: false, cpuMs: 0, wallMs: Math.round((performance.now() - started) * 100) / 100, error };
    }
    return isolate.scheduled(cron, scheduledTime);
  }

  /**
   * Calls method `method` of a worker's entrypoint (`options.entrypoint`, an exported
   * WorkerEntrypoint class; the default export otherwise) with `args`, as RPC through a service
   * binding does: arguments and result are structured-cloned, the call is held to the worker's
   * limits like a request. Rejects with an Error of the name and message the method threw (a
   * BindingError), or that says why there is no result.
   */
  async call(name: string, method: string, args: unknown[], options: { entrypoint?: string; chain?: readonly string[] } = {}): Promise<unknown> {
    // A result crosses as a list of one (see callCarrying).
    return ((await this.callCarrying(name, method, RpcValue.of(args), options)).read() as unknown[])[0];
  }

  /**
   * call(), with the arguments (a list) and the result (a list of one: a value of any kind then
   * crosses in the same form, which another process can take as bytes) as they are handed on
   * between isolates and processes, read nowhere on the way (RpcValue).
   */
  async callCarrying(name: string, method: string, args: RpcValue, options: { entrypoint?: string; chain?: readonly string[] } = {}): Promise<RpcValue> {
    let isolate: WorkerIsolate;
    try {
      isolate = await this.isolateOf(name);
    } catch (error) {
      if (!(error instanceof WorkerStartError)) throw error;
      throw new BindingError('Error', `The worker '${name}' failed to start: ${error.message}`);
    }
    return isolate.call(options.entrypoint ?? '', method, args, options.chain ?? []);
  }

  /** The worker's live isolate, made (or taken) if it has none: a WorkerStartError says why it could not start. */
  private async isolateOf(name: string): Promise<WorkerIsolate> {
    this.assertOpen();
    const worker = this.workers.get(name);
    if (!worker) throw new UnknownWorkerError(name);
    this.frequency.add(name);
    const isolate = worker.isolate;
    if (!isolate || !isolate.usable()) {
      try {
        return await this.isolateFor(worker);
      } catch (error) {
        throw new WorkerStartError(error instanceof WorkerLoadError ? error.message : String(error));
      }
    }
    // Asked for again while on probation: it is kept like the others, and room is made for it.
    if (this.probation.delete(isolate)) this.makeRoom(0, 0);
    // Most recently used goes last.
    this.live.delete(isolate);
    this.live.set(isolate, worker);
    return isolate;
  }

  /**
   * The worker a service call of this Runtime's own goes to: loaded here and of the caller's
   * account (workers that both have none may call each other: the embedder wrote both bindings).
   */
  private serviceTarget(call: ServiceCall): string {
    const target = this.workers.get(call.service);
    if (target === undefined) {
      throw noSuchService(call, `load it in the same Runtime (runtime.load('${call.service}', ...)). In isolet dev, run it beside this one: ` +
        `isolet dev -c wrangler.toml -c <the config of '${call.service}'> (the first config is the worker served).`);
    }
    if (target.definition.account !== this.workers.get(call.worker)?.definition.account) throw otherAccount(call);
    return call.service;
  }

  /** The heap of a worker's live isolate, in bytes, or undefined when it has none now. */
  async memoryUsage(name: string): Promise<IsolateMemoryUsage | undefined> {
    const isolate = this.workers.get(name)?.isolate;
    if (!isolate || !isolate.alive) return undefined;
    try {
      return await isolate.memoryUsage();
    } catch {
      return undefined; // disposed meanwhile
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.idleMemory.stop();
    const spares = this.spares?.close();
    const creating = [...this.workers.values()].map((worker) => worker.creating);
    const live = [...this.live.keys()];
    this.live.clear();
    this.workers.clear();
    closeFetchConnections(this.egress);
    for (const isolate of live) isolate.terminate({ kind: 'evicted' });
    // Isolates still being made on another thread are waited for too; each is retired once made
    // (isolateFor: the runtime is closed).
    await Promise.allSettled([spares, ...creating]);
    // V8 crashes a process that exits while another thread makes or tears down an isolate: once
    // this resolves, none is (isolate-teardown.ts). The retirements above, on setImmediate, have
    // started their teardowns by now.
    await new Promise((resolve) => setImmediate(resolve));
    await teardownsOver();
  }

  private async isolateFor(worker: LoadedWorker): Promise<WorkerIsolate> {
    const started = performance.now();
    worker.creating ??= this.createIsolate(worker).then(
      (isolate) => {
        worker.creating = undefined;
        this.isolateEvents?.started(worker.name, performance.now() - started);
        if (this.workers.get(worker.name) !== worker || this.closed) {
          // Replaced or unloaded while starting: serve the requests that were waiting for it,
          // then go. retire() ends an isolate with nothing in flight at once, and those
          // requests enter it only as their awaits resume, so retire after they have.
          setImmediate(() => isolate.retire());
          return isolate;
        }
        worker.isolate = isolate;
        this.track(isolate, worker);
        return isolate;
      },
      (error) => {
        worker.creating = undefined;
        throw error;
      },
    );
    return worker.creating;
  }

  /**
   * Makes the runtime image and starts the spare isolates now rather than with the first
   * request, so that a process made to replace another serves at once.
   */
  async prepare(): Promise<void> {
    this.assertOpen();
    await this.preparedImage();
    this.spares?.fill();
  }

  private async preparedImage(): Promise<RuntimeImage> {
    this.image ??= runtimeImage();
    const image = await this.image;
    if (this.spareCount > 0 && !this.closed) {
      this.spares ??= new SpareIsolates(image, this.spareCount, this.defaults.memoryMb, this.onCatastrophicError, () => this.starting > 0);
    }
    return image;
  }

  private async createIsolate(worker: LoadedWorker): Promise<WorkerIsolate> {
    const image = await this.preparedImage();
    // Room for one more, of the size the live ones hold on average, if this worker is asked for
    // more often than the isolate that would make it; else it starts on probation.
    const admitted = this.makeRoom(1, this.live.size > 0 ? this.held / this.live.size : 0, worker.name);
    this.starting++;
    try {
      const isolate = await WorkerIsolate.create({
        spare: this.spares?.take(worker.limits.memoryMb),
        name: worker.name,
        definition: worker.definition,
        limits: worker.limits,
        image,
        watchdog: this.watchdog,
        log: this.log,
        onCatastrophicError: this.onCatastrophicError,
        egress: this.egress,
        bindings: worker.bindings,
        services: this.services,
        onMeasured: (isolate, previous) => this.measured(isolate, previous),
        inline: this.inline,
      });
      if (!admitted) this.probation.add(isolate);
      return isolate;
    } finally {
      this.starting--;
    }
  }

  private track(isolate: WorkerIsolate, worker: LoadedWorker): void {
    this.live.set(isolate, worker);
    this.held += isolate.heldBytes;
    this.idleMemory.start();
    isolate.measure();
    isolate.whenDisposed(() => {
      this.isolateEvents?.ended(worker.name, endReason(isolate.termination));
      if (this.live.delete(isolate)) this.held -= isolate.heldBytes;
      this.probation.delete(isolate);
      if (worker.isolate === isolate) worker.isolate = undefined;
    });
  }

  private measured(isolate: WorkerIsolate, previous: number): void {
    if (!this.live.has(isolate)) return;
    this.held += isolate.heldBytes - previous;
    if (this.held > this.memoryBudget) this.makeRoom(0, 0);
  }

  private retire(worker: LoadedWorker): void {
    const isolate = worker.isolate;
    worker.isolate = undefined;
    isolate?.retire();
  }

  /**
   * Disposes idle isolates until `isolates` more fit under maxIsolates and `bytes` more under the
   * memory budget: those on probation first, then the least recently used. For a worker that
   * has no isolate (`newcomer`), the least recently used one goes for the memory budget only if
   * the newcomer was asked for more often lately (RequestFrequency); otherwise nothing more goes,
   * and false says the newcomer's isolate is to start on probation, past the budget by one. An
   * isolate with a request in flight (or its waitUntil work) is never disposed: when only those
   * are left, the bounds wait for them.
   */
  private makeRoom(isolates: number, bytes: number, newcomer?: string): boolean {
    // Isolates on probation that are serving go once they are idle, the next time room is
    // needed: no other isolate is pushed out for the memory they hold meanwhile.
    let leaving = 0;
    const over = (): 'isolates' | 'memory' | undefined =>
      this.live.size + this.starting + (this.spares?.count ?? 0) + isolates > this.maxIsolates ? 'isolates'
        : this.held - leaving + bytes > this.memoryBudget ? 'memory' : undefined;
    if (over() === undefined) return true;
    for (const isolate of this.probation) {
      const cause = over();
      if (cause === undefined) return true;
      if (isolate.idle) isolate.terminate({ kind: 'evicted', cause });
      else leaving += isolate.heldBytes;
    }
    for (const [isolate, worker] of this.live) {
      const cause = over();
      if (cause === undefined) break;
      if (!isolate.idle || this.probation.has(isolate)) continue;
      // The isolate cap stays exact (V8 aborts a process past about 4,000 isolates); the memory
      // budget is an estimate anyway, and one isolate past it is what lets a sweep pass through.
      if (newcomer !== undefined && cause === 'memory' && this.probation.size < MAX_ON_PROBATION && this.frequency.of(newcomer) <= this.frequency.of(worker.name)) return false;
      newcomer = undefined;
      isolate.terminate({ kind: 'evicted', cause });
    }
    return true;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('This Runtime is closed: create a new one.');
  }
}

const NAME = /^[a-z0-9]([a-z0-9-_]{0,61}[a-z0-9])?$/i;

function validateName(name: string): void {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new WorkerLoadError(
      `Invalid worker name ${JSON.stringify(name)}: use 1-63 letters, digits, '-' or '_', starting and ending with a letter or digit.`,
    );
  }
}

function resolveLimits(defaults: WorkerLimits, overrides: Partial<WorkerLimits> | undefined): WorkerLimits {
  const limits = { ...defaults };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof WorkerLimits)[]) {
    const value = overrides?.[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new WorkerLoadError(`Invalid limit ${key}: ${JSON.stringify(value)}; it must be a positive number.`);
    }
    limits[key] = value;
  }
  return limits;
}

