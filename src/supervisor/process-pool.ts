// The supervisor: runtime processes per tier, each worker placed in one of its tier's
// processes (placement.ts), and what happens when one dies (crash-policy.ts). It is the
// WorkerHost `isolet serve` runs: the control process keeps every worker's definition, so a
// process that is restarted gets its workers' code again with their next request, and nothing
// deployed is lost.

import { availableParallelism } from 'node:os';
import { DEFAULT_MAX_ISOLATES, defaultMemoryBudgetMb, LEAST_ISOLATE_MB, machineMemoryBudgetMb, machineMemoryMb, UnknownWorkerError } from '../runtime/runtime.ts';
import { BindingError, type BindingHost, type RuntimeRequest, type RuntimeResponse, type ScheduledEvent, type ScheduledResult, type ServiceCall, type WorkerDefinition, type WorkerLogEntry } from '../runtime/types.ts';
import { chainOf, noSuchService, otherAccount } from '../runtime/service-calls.ts';
import type { Placement, WorkerHost } from '../server/worker-host.ts';
import { Admission, type AdmissionLimits } from './admission.ts';
import { endedByLimit } from './limit-penalties.ts';
import { CrashLedger, RestartBackoff } from './crash-policy.ts';
import { TriedCode } from './tried-code.ts';
import type { LivenessOptions } from './liveness.ts';
import type { RunAs } from './run-as.ts';
import type { CallOutcome, InitPayload } from './messages.ts';
import type { StatsBatch } from '../observability/worker-stats.ts';
import type { SubrequestSpan } from '../observability/tracing.ts';
import { homeAfterGrowth, homeIndex, TIERS, UNTRIED, UNTRIED_REQUESTS, type ProcessTier, type Tier } from './placement.ts';
import { Child, RuntimeProcess, type ChildOptions, type PlacedWorker, type ProcessEnd } from './runtime-process.ts';

/**
 * How full a tier's processes may be, on average, of their live isolate cap before the tier
 * gets another process. Rendezvous hashing spreads workers evenly but not exactly (10,000 over
 * 5 processes: 2,000 each, give or take 40), and a process past its cap disposes isolates that
 * a rotation over its tenants then starts again, one cold start per request.
 */
const PROCESS_FILL = 0.8;

/**
 * Processes a tier needs so that `workers` fit in them with an isolate each (V8 aborts a
 * process near 4,000 isolates, so a process holds at most `maxIsolates`), or, when the tier's
 * processes share a memory budget of `sharedBudgetMb`, so that as many isolates as that budget
 * can hold fit. Past that a process more holds no more live isolates, only its own memory (about
 * 145 MB of RSS: Node's and the runtime's), and each process's share of the budget gets smaller:
 * with 100,000 workers deployed the tier grew to 51 processes whose own memory matched the isolates'
 * (docs/BENCHMARKS.md, "Runtime processes the memory can fill, and a killed one seen at once").
 */
export function processesFor(workers: number, maxIsolates: number, sharedBudgetMb?: number): number {
  const live = sharedBudgetMb === undefined ? workers : Math.min(workers, Math.floor(sharedBudgetMb / LEAST_ISOLATE_MB));
  return Math.ceil(live / (Math.max(1, maxIsolates) * PROCESS_FILL));
}

/**
 * Runtime processes of the default tier unless told: one per core, at least 2, and enough for
 * `workers` (processesFor). A tier grows past it as workers are deployed (see #fit).
 */
export function defaultProcessCount(workers = 0, maxIsolates = DEFAULT_MAX_ISOLATES, sharedBudgetMb = machineMemoryBudgetMb()): number {
  return Math.max(2, availableParallelism(), processesFor(workers, maxIsolates, sharedBudgetMb));
}

export interface ProcessPoolOptions {
  /**
   * Processes of the default tier at start (default: one per core, at least 2); trusted has as
   * many, quarantine 1. A tier gets more when its workers would not fit (processesFor).
   */
  processes?: number;
  /** Overrides per tier, and the untried processes' count (default 1). */
  tierProcesses?: Partial<Record<ProcessTier, number>>;
  /**
   * Requests a default-tier worker's new version must end cleanly (not at a limit, not crashing
   * its process) in the untried processes before it serves from its home (default
   * UNTRIED_REQUESTS; 0: no untried processes, new code goes home at once). Its upload is checked there too.
   */
  untriedRequests?: number;
  /**
   * What each runtime process's Runtime is made with. Its `memoryBudgetMb`, when set, is each
   * process's own; unset, the default tier's processes share `sharedMemoryBudgetMb`.
   */
  runtime?: InitPayload;
  /**
   * MB the default tier's live isolates may hold together, divided evenly among its processes
   * (default: 40% of the machine's memory). It also bounds how many processes a tier grows to
   * (processesFor). Not used when `runtime.memoryBudgetMb` sets each process's budget.
   */
  sharedMemoryBudgetMb?: number;
  /**
   * The machine's memory in MB (default: all of it, machineMemoryMb()). When `runtime.memoryBudgetMb`
   * sets each process's budget, a tier grows to no more processes than this holds budgets of:
   * past that, the budgets together promise isolates more memory than there is.
   */
  machineMemoryMb?: number;
  /** Where the workers' log lines go. */
  workerLog: (entry: WorkerLogEntry) => void;
  /** Where the supervisor's own lines go (restarts, crashes, quarantine). */
  log: (level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown>) => void;
  /** What each runtime process's workers did, in batches (`process` is its label, tier/index). */
  stats?: (process: string, batch: StatsBatch) => void;
  /** Subrequest spans the runtime processes report (tracing.ts), with the reporting process's label. */
  span?: (process: string, span: SubrequestSpan) => void;
  /** A runtime process ended while it was to keep running; it is being restarted. */
  onProcessEnded?: (process: { tier: ProcessTier; label: string }, end: ProcessEnd) => void;
  /** An account's code crashed processes often enough to be moved to the quarantine tier (the pool has moved its workers already). */
  onQuarantine?: (account: string, worker: string) => void;
  /** Window in which two crashes quarantine an account (default 10 minutes). */
  quarantineWindowMs?: number;
  /** Window in which a process's restarts past the first few back off (default RESTART_WINDOW_MS, 1 minute). */
  restartWindowMs?: number;
  /** Requests of one worker in flight and waiting (defaults DEFAULT_ADMISSION); past both, 503 with Retry-After. */
  admission?: Partial<AdmissionLimits>;
  /**
   * Keep one runtime process started and ready ahead of need (default true): a process that
   * dies is replaced by it at once instead of by a new one that first makes its runtime image.
   */
  spare?: boolean;
  /** Extra node arguments for the runtime processes. */
  execArgv?: string[];
  /** How often runtime processes are pinged, and how long one may stay silent before it is killed as hung (DEFAULT_LIVENESS). */
  liveness?: LivenessOptions;
  /** The OS user runtime processes run as (checked with checkRunAs first); default this process's. */
  runAs?: RunAs;
  /** Answers the workers' platform bindings, which their processes forward here (none: refused). */
  bindingHost?: BindingHost;
}

/**
 * Spare isolates each runtime process keeps made (RuntimeOptions.spareIsolates), where a Runtime
 * alone keeps 2. A process that takes over from one that died gets every request for that one's
 * tenants at once, each a cold start, while the machine is loaded: with 10,000 tenants over 4
 * processes, a dozen or more in flight, queued on two threads that make isolates (docs/BENCHMARKS.md,
 * "Runtime processes the memory can fill, and a killed one seen at once"). Made while the
 * process waits as the pool's spare, these skip most of that. About 1.4 MB each.
 */
export const RUNTIME_PROCESS_SPARE_ISOLATES = 16;

/** How long to wait before starting another spare when one ended on its own (it ran no tenant code). */
const SPARE_RETRY_MS = 1000;

/**
 * How long after a spare is taken the next one starts. Starting a runtime process costs about a
 * second of CPU (Node, bundling and snapshotting its image); at once, that second is taken from
 * the process that just took over, whose tenants all start cold while requests for them queue,
 * and from the kernel tearing the dead one down. A process that dies meanwhile gets a new process
 * instead of a spare, as one that dies before the next spare is ready always did.
 */
const SPARE_AFTER_TAKEOVER_MS = 3000;

/** A worker with its home process, worked out once per placement (hashing is not for every request). */
interface HomedWorker extends PlacedWorker {
  home: RuntimeProcess;
  /** Where this version is tried (an untried process), while it is or was: none when it went home at once. */
  trial: RuntimeProcess | undefined;
  /** Clean requests still to end in `trial` before requests go home (0: they go home). */
  untried: number;
  /** Which code it runs (Placement.code), when told. */
  code: string | undefined;
}

export class ProcessPool implements WorkerHost {
  readonly #tiers = new Map<ProcessTier, RuntimeProcess[]>();
  readonly #workers = new Map<string, HomedWorker>();
  readonly #options: ProcessPoolOptions;
  /**
   * How every runtime process is started. `init` is what its Runtime is made with: its memory
   * budget follows the process count (#shareMemory), and a process started later gets the new one.
   */
  readonly #child: ChildOptions;
  readonly #crashes: CrashLedger;
  readonly #backoff: RestartBackoff;
  readonly #admission: Admission;
  #spare: Child | undefined;
  /** Uploads being validated, by worker name: whose code runs there. */
  readonly #validating = new Map<string, { account: string }>();
  #spareTimer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #maxIsolates: number;
  /** What the default tier's isolates share (ProcessPoolOptions.sharedMemoryBudgetMb); none when each process has its own. */
  readonly #sharedBudgetMb: number | undefined;
  /** The most processes a tier grows to when each process has its own budget (machineMemoryMb). */
  readonly #mostProcesses: number;
  /** Tiers whose growth that stopped, once logged. */
  readonly #growthStopped = new Set<Tier>();
  /** Workers per tier: what each tier's processes must fit. */
  readonly #placed = new Map<Tier, number>();
  readonly #untriedRequests: number;
  readonly #triedCode = new TriedCode();

  constructor(options: ProcessPoolOptions) {
    this.#options = options;
    this.#crashes = new CrashLedger(options.quarantineWindowMs);
    this.#backoff = new RestartBackoff(options.restartWindowMs);
    this.#admission = new Admission(options.admission);
    this.#child = {
      init: { spareIsolates: RUNTIME_PROCESS_SPARE_ISOLATES, ...options.runtime }, execArgv: options.execArgv, liveness: options.liveness, runAs: options.runAs,
      spareOutput: (pid, line) => options.log('warn', 'spare runtime process output', { pid, line }),
    };
    this.#maxIsolates = options.runtime?.maxIsolates ?? DEFAULT_MAX_ISOLATES;
    const ownBudgetMb = options.runtime?.memoryBudgetMb;
    this.#sharedBudgetMb = ownBudgetMb !== undefined ? undefined : options.sharedMemoryBudgetMb ?? machineMemoryBudgetMb();
    this.#mostProcesses = ownBudgetMb === undefined ? Infinity : Math.max(1, Math.floor((options.machineMemoryMb ?? machineMemoryMb()) / Math.max(1, ownBudgetMb)));
    this.#untriedRequests = Math.max(0, Math.floor(options.untriedRequests ?? UNTRIED_REQUESTS));
    const processes = Math.max(1, Math.floor(options.processes ?? defaultProcessCount()));
    const sizes: Record<ProcessTier, number> = { default: processes, trusted: processes, quarantine: 1, untried: 1, ...options.tierProcesses };
    for (const tier of [...TIERS, UNTRIED] as const) {
      if (tier === UNTRIED && this.#untriedRequests === 0) continue;
      const slots: RuntimeProcess[] = [];
      for (let index = 0; index < Math.max(1, sizes[tier]); index++) slots.push(this.#slot(tier, index));
      this.#tiers.set(tier, slots);
    }
    this.#shareMemory();
    // The default tier serves most tenants, and every new one is tried first: their processes
    // start now; the others with their first tenant.
    for (const slot of [...this.#tiers.get('default')!, ...this.#tiers.get(UNTRIED) ?? []]) slot.start();
    this.#startSpare();
  }

  #slot(tier: ProcessTier, index: number): RuntimeProcess {
    const slot: RuntimeProcess = new RuntimeProcess({
      tier,
      index,
      workerLog: this.#options.workerLog,
      stats: this.#options.stats,
      span: this.#options.span,
      log: this.#options.log,
      // A tried worker's last requests there may end after it went home: they still log.
      owns: (name) => {
        const worker = this.#workers.get(name);
        return worker !== undefined && (worker.home === slot || worker.trial === slot);
      },
      ended: (end) => this.#ended(slot, end),
      child: this.#child,
      spare: () => this.#takeSpare(),
      bindingHost: this.#options.bindingHost,
      services: {
        fetch: (call, request) => this.#serviceFetch(call, request),
        call: (call, method, args) => this.#serviceCall(call, method, args),
      },
    });
    return slot;
  }

  /**
   * Where a service call of a worker goes (its slot resolved the caller and the binding against
   * what it sent the worker's process): a worker deployed here, of the caller's account, with the
   * chain within the depth and without a cycle.
   */
  #serviceTarget(call: ServiceCall): { target: HomedWorker; chain: readonly string[] } {
    const target = this.#workers.get(call.service);
    if (target === undefined) throw noSuchService(call, `deploy a worker named '${call.service}' to this account (isolet deploy), or fix the binding's service.`);
    if (target.account !== call.account) throw otherAccount(call);
    return { target, chain: chainOf(call) };
  }

  async #serviceFetch(call: ServiceCall, request: RuntimeRequest): Promise<RuntimeResponse> {
    const { target, chain } = this.#serviceTarget(call);
    try {
      return await this.fetch(target.name, { ...request, chain, entrypoint: call.entrypoint });
    } catch (error) {
      if (error instanceof UnknownWorkerError) throw noSuchService(call, `deploy a worker named '${call.service}' to this account (isolet deploy).`);
      throw error;
    }
  }

  async #serviceCall(call: ServiceCall, method: string, args: Uint8Array): Promise<CallOutcome> {
    const { target, chain } = this.#serviceTarget(call);
    // Admitted as a request of the target's: its slots and its queue bound calls too.
    let outcome: CallOutcome | undefined;
    const admitted = await this.#admission.run(target.name, async () => {
      outcome = await this.#serving(target).call(target, { entrypoint: call.entrypoint ?? '', method, chain: [...chain] }, args);
      return { status: 200, statusText: 'OK', headers: [], body: null };
    });
    if (outcome === undefined) throw new BindingError('Error', Buffer.from(admitted.body as Uint8Array).toString().trim());
    return outcome;
  }

  /**
   * Each runtime process's memory budget, unless the operator set one: its share of the
   * machine's, among the default tier's processes (the others mostly sit idle). When the tier
   * grows, every process gets the new share at once, the running ones and the spare too: were
   * the first processes to keep the share they started with, the tier's isolates together could
   * hold far more of the machine than the budget allows (with 5 processes grown from 2, 71%
   * where 40% is meant), while the newest process alone, with the smallest share, evicted its
   * tenants to start others (docs/BENCHMARKS.md, "One memory share per runtime process").
   */
  #shareMemory(): void {
    if (this.#sharedBudgetMb === undefined) return;
    const share = defaultMemoryBudgetMb(this.#tiers.get('default')!.length, this.#sharedBudgetMb);
    if (share === this.#child.init.memoryBudgetMb) return;
    this.#child.init.memoryBudgetMb = share;
    for (const slot of [...this.#tiers.values()].flat()) slot.setMemoryBudget(share);
    this.#spare?.setMemoryBudget(share);
  }

  #count(tier: Tier, delta: number): void {
    this.#placed.set(tier, (this.#placed.get(tier) ?? 0) + delta);
  }

  /**
   * Adds processes to a tier until its workers fit (processesFor), and moves to each new one
   * the workers that now score highest on it: rendezvous hashing moves no other. A moved
   * worker's old process finishes its requests in flight and forgets it; its next request
   * loads its code in the new one.
   */
  #fit(tier: Tier): void {
    const slots = this.#tiers.get(tier)!;
    const workers = this.#placed.get(tier) ?? 0;
    const fitting = processesFor(workers, this.#maxIsolates, this.#sharedBudgetMb);
    const needed = Math.min(fitting, this.#mostProcesses);
    if (fitting > needed && !this.#growthStopped.has(tier)) {
      this.#growthStopped.add(tier);
      this.#options.log('warn', "tier not grown: its processes' memory budgets would exceed the machine's memory; its least recently used isolates make room instead", {
        tier, processes: Math.max(slots.length, needed), wouldNeed: fitting, workers, memoryBudgetMb: this.#options.runtime?.memoryBudgetMb,
      });
    }
    if (slots.length >= needed) return;
    const before = slots.length;
    while (slots.length < needed) {
      const slot = this.#slot(tier, slots.length);
      slots.push(slot);
      // Started like the tier's others: the default tier's at once, the others with their first request.
      if (tier === 'default') slot.start();
    }
    if (tier === 'default') this.#shareMemory();
    let moved = 0;
    for (const worker of this.#workers.values()) {
      if (worker.tier !== tier) continue;
      // Its home is its tier's homeIndex over the processes before: the tier grows only here.
      const home = slots[homeAfterGrowth(worker.name, tier, worker.home.index, before, slots.length)]!;
      if (home === worker.home) continue;
      worker.home.forget(worker.name);
      worker.home = home;
      moved++;
    }
    this.#options.log('info', 'tier grew: its workers would not fit in its runtime processes', {
      tier, processes: slots.length, workers, maxIsolates: this.#maxIsolates, moved,
    });
  }

  async load(name: string, definition: WorkerDefinition, placement: Placement = {}): Promise<void> {
    this.#assertOpen();
    const previous = this.#workers.get(name);
    const tier = placement.tier ?? 'default';
    if (previous?.tier !== tier) {
      if (previous !== undefined) this.#count(previous.tier, -1);
      this.#count(tier, 1);
      this.#fit(tier);
    }
    const home = this.#home(name, tier);
    // Only new code is tried: the same code loaded again (other secrets, another tier) keeps
    // how far its trial got, and code that served before this server started, or that another
    // worker's trial saw end cleanly (tried-code.ts), is not tried.
    const sameCode = placement.code !== undefined && previous?.code === placement.code && previous.tier === tier;
    const tried = placement.tried === true || (placement.code !== undefined && this.#triedCode.has(placement.code));
    const trial = tried ? undefined : sameCode ? previous.trial : this.#trialFor(name, tier);
    const untried = trial === undefined ? 0 : sameCode ? previous.untried : this.#untriedRequests;
    const worker: HomedWorker = {
      name, definition, account: definition.account ?? name, tier, version: (previous?.version ?? 0) + 1, home,
      trial, untried, code: placement.code,
    };
    this.#workers.set(name, worker);
    if (previous !== undefined) {
      // Requests in flight there finish on the old version; the next ones go where this one is served.
      if (previous.home !== home || untried > 0) previous.home.forget(name);
      if (previous.trial !== undefined && (previous.trial !== trial || untried === 0)) previous.trial.forget(name);
    }
    // A process that holds the worker gets the new version before this returns: a request
    // after it sees the new version, one before it the old, none a mix (one process holds it).
    await this.#serving(worker).update(worker);
  }

  /** The untried process a new version of a worker of `tier` is tried in, if it is to be tried. */
  #trialFor(name: string, tier: Tier): RuntimeProcess | undefined {
    return tier === 'default' && this.#tiers.has(UNTRIED) ? this.#home(name, UNTRIED) : undefined;
  }

  /**
   * The process the worker's requests go to now: where it is tried, then its home. A worker
   * still to be tried whose code another worker's trial has since seen end cleanly (loaded
   * together, as a bulk deploy does) goes home now.
   */
  #serving(worker: HomedWorker): RuntimeProcess {
    if (worker.untried === 0 || worker.trial === undefined) return worker.home;
    if (worker.code === undefined || !this.#triedCode.has(worker.code)) return worker.trial;
    worker.untried = 0;
    worker.trial.forget(worker.name);
    return worker.home;
  }

  /**
   * A request tried in an untried process ended: one that ended cleanly counts toward going
   * home; one that hit a limit or crashed the process starts the count again (its worker's
   * penalties and its account's crashes are counted as anywhere, admission.ts and
   * crash-policy.ts). A 502 or 503 is not counted: the platform answers those when the
   * process is restarting, and a worker that sends them is not seen to serve.
   */
  #tried(worker: HomedWorker, response: RuntimeResponse): void {
    if (this.#workers.get(worker.name) !== worker || worker.untried === 0) return;
    if (endedByLimit(response)) {
      worker.untried = this.#untriedRequests;
      return;
    }
    if (response.status === 502 || response.status === 503) return;
    worker.untried--;
    if (worker.untried > 0) return;
    if (worker.code !== undefined) this.#triedCode.add(worker.code);
    // Its requests in flight there finish; the next ones start it at home.
    worker.trial!.forget(worker.name);
    this.#options.log('info', 'worker served cleanly in the untried processes: it is served from its home now', {
      worker: worker.name, account: worker.account, from: worker.trial!.label, to: worker.home.label,
    });
  }

  async unload(name: string): Promise<void> {
    const worker = this.#workers.get(name);
    if (worker === undefined) return;
    this.#workers.delete(name);
    this.#count(worker.tier, -1);
    worker.home.forget(name);
    worker.trial?.forget(name);
  }

  has(name: string): boolean {
    return this.#workers.has(name);
  }

  fetch(name: string, request: RuntimeRequest): Promise<RuntimeResponse> {
    const worker = this.#workers.get(name);
    if (worker === undefined) return Promise.reject(new UnknownWorkerError(name));
    return this.#admission.run(name, async () => {
      const serving = this.#serving(worker);
      const response = await serving.fetch(worker, request);
      if (serving !== worker.home) this.#tried(worker, response);
      return response;
    });
  }

  /** A cron trigger's event, in the worker's home process (outside admission: at most a few a minute per worker). */
  scheduled(name: string, event: ScheduledEvent): Promise<ScheduledResult> {
    const worker = this.#workers.get(name);
    if (worker === undefined) return Promise.reject(new UnknownWorkerError(name));
    return this.#serving(worker).scheduled(worker, { cron: event.cron, scheduledTime: event.scheduledTime ?? Date.now() });
  }

  async validate(name: string, definition: WorkerDefinition, placement: Placement = {}): Promise<void> {
    this.#assertOpen();
    // An upload whose top-level code crashes its process counts against its account like a request that does.
    const trial = { account: definition.account ?? name };
    this.#validating.set(name, trial);
    try {
      const tier = placement.tier ?? 'default';
      await (this.#trialFor(name, tier) ?? this.#home(name, tier)).validate(name, definition);
    } finally {
      if (this.#validating.get(name) === trial) this.#validating.delete(name);
    }
  }

  /** Where a worker's requests go now: the processes' tier (`untried` while it is tried), the process's index and pid (undefined while none runs). */
  placement(name: string): { tier: ProcessTier; index: number; pid: number | undefined } | undefined {
    const worker = this.#workers.get(name);
    if (worker === undefined) return undefined;
    const serving = this.#serving(worker);
    return { tier: serving.tier, index: serving.index, pid: serving.pid };
  }

  /** Every process of a tier (none for `untried` when new code is not tried), for operators and tests. */
  processes(tier: ProcessTier = 'default'): readonly RuntimeProcess[] {
    return this.#tiers.get(tier) ?? [];
  }

  /** Drains every runtime process (each finishes what is in flight, then exits). */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#spareTimer);
    const spare = this.#spare;
    this.#spare = undefined;
    spare?.process.kill('SIGKILL');
    await Promise.all([...[...this.#tiers.values()].flat().map((slot) => slot.stop()), spare?.ended]);
  }

  /** For tests and operators: the spare process, and whether it is ready to replace one that dies. */
  get spare(): { pid: number | undefined; ready: boolean } | undefined {
    const spare = this.#spare;
    return spare === undefined ? undefined : { pid: spare.process.pid, ready: spare.isReady && spare.alive };
  }

  /** The spare, if it is ready to serve; another is started in its place. */
  #takeSpare(): Child | undefined {
    const spare = this.#spare;
    if (spare === undefined || !spare.isReady || !spare.alive) return undefined;
    this.#spare = undefined;
    clearTimeout(this.#spareTimer);
    this.#spareTimer = setTimeout(() => this.#startSpare(), SPARE_AFTER_TAKEOVER_MS);
    return spare;
  }

  #startSpare(): void {
    if (this.#closed || this.#options.spare === false || this.#spare !== undefined) return;
    const spare = new Child(this.#child);
    this.#spare = spare;
    void spare.ended.then(() => {
      if (this.#spare !== spare || this.#closed) return;
      this.#spare = undefined;
      this.#options.log('warn', 'the spare runtime process ended before it was needed; starting another', {
        pid: spare.process.pid, code: spare.process.exitCode, signal: spare.process.signalCode, retryInMs: SPARE_RETRY_MS,
      });
      this.#spareTimer = setTimeout(() => this.#startSpare(), SPARE_RETRY_MS);
    });
  }

  #home(name: string, tier: ProcessTier): RuntimeProcess {
    const slots = this.#tiers.get(tier)!;
    return slots[homeIndex(name, tier, slots.length)]!;
  }

  /** A process ended on its own: count it against its culprit, and say how long before the restart. */
  #ended(slot: RuntimeProcess, end: ProcessEnd): number {
    const delay = this.#backoff.delay(slot.label);
    const culprit = end.culprit === undefined ? undefined : this.#workers.get(end.culprit);
    const account = end.culprit === undefined ? undefined : (culprit ?? this.#validating.get(end.culprit))?.account;
    if (culprit?.code !== undefined) this.#triedCode.forget(culprit.code);
    this.#options.log('error', 'runtime process ended; restarting', {
      process: slot.label,
      pid: end.pid,
      code: end.code,
      signal: end.signal,
      worker: end.culprit,
      account,
      fatal: end.fatal,
      requestsFailed: end.inFlight,
      restartInMs: delay,
    });
    if (delay > 0) {
      this.#options.log('warn', 'runtime process restarted too often: backing off', { process: slot.label, restartInMs: delay });
    }
    this.#options.onProcessEnded?.({ tier: slot.tier, label: slot.label }, end);
    if (account !== undefined && slot.tier !== 'quarantine' && this.#crashes.crashed(account)) this.#quarantine(account, end.culprit!);
    return delay;
  }

  /** Moves every worker of the account to the quarantine tier. */
  #quarantine(account: string, culprit: string): void {
    const moved: string[] = [];
    for (const worker of this.#workers.values()) {
      if (worker.account !== account || worker.tier === 'quarantine') continue;
      worker.home.forget(worker.name);
      worker.trial?.forget(worker.name);
      // Quarantine is its own trial: its processes are apart from everyone else's.
      worker.trial = undefined;
      worker.untried = 0;
      this.#count(worker.tier, -1);
      this.#count('quarantine', 1);
      worker.tier = 'quarantine';
      worker.home = this.#home(worker.name, 'quarantine');
      worker.version++;
      moved.push(worker.name);
    }
    this.#fit('quarantine');
    this.#options.log('warn', 'account quarantined: its code crashed runtime processes repeatedly', {
      account,
      worker: culprit,
      workers: moved,
    });
    this.#options.onQuarantine?.(account, culprit);
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('This ProcessPool is closed: create a new one.');
  }
}
