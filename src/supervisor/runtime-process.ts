// One runtime process as the control process sees it: a slot (tier and index) that outlives
// the child it runs. It starts the child (runtime-main.ts), sends it workers' code and
// requests, and, when the child dies, fails only what was in flight on it, says why, and
// starts a new one (at once, or after a back-off when it restarts too often). The new child
// knows no worker: each is sent again with its first request.

import { spawn, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import { UnknownWorkerError } from '../runtime/runtime.ts';
import { BindingError, WorkerLoadError, type BindingHost, type BindingSpec, type ServiceCall, type RuntimeRequest, type RuntimeResponse, type ScheduledResult, type WorkerDefinition, type WorkerLogEntry } from '../runtime/types.ts';
import { CATASTROPHIC_EXIT_CODE } from '../runtime/catastrophe.ts';
import { withMallocTunables } from '../runtime/malloc-tunables.ts';
import { RUNTIME_HOST_FLAGS } from '../runtime/engine-flags.ts';
import { BINDING_LIMITS } from '../bridge/bindings.ts';
import { IncomingBody, OutgoingBody } from './body-stream.ts';
import { Channel } from './channel.ts';
import { DEFAULT_LIVENESS, Liveness, type LivenessOptions } from './liveness.ts';
import { ExitWatch, exitingSignal } from './exit-watch.ts';
import type { RunAs } from './run-as.ts';
import { queuedTooMuch, type BindingAnswerHead, type CallHead, type CallOutcome, type CallResult, type InitPayload, type Message, type Payloads, type ServiceCaller } from './messages.ts';
import { ServiceExchanges, type ServiceRouter } from './service-exchanges.ts';
import type { StatsBatch } from '../observability/worker-stats.ts';
import type { SubrequestSpan } from '../observability/tracing.ts';
import { UNTRIED, UNTRIED_NICE, type ProcessTier, type Tier } from './placement.ts';

/** A worker as the pool places it: `version` counts its loads, so a process knows when it holds an old one. */
export interface PlacedWorker {
  name: string;
  definition: WorkerDefinition;
  account: string;
  tier: Tier;
  version: number;
}

/** Why a child ended, as the supervisor tells it. */
export interface ProcessEnd {
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The worker named by a fatal V8 error's last line, when that is how it ended. */
  culprit: string | undefined;
  /** That line's message. */
  fatal: string | undefined;
  /** Requests that were in flight on it and failed (not those sent again to its replacement). */
  inFlight: number;
}

export interface RuntimeProcessOptions {
  tier: ProcessTier;
  index: number;
  /** The workers' log lines (console, requests), checked to name a worker this process holds. */
  workerLog: (entry: WorkerLogEntry) => void;
  /** The supervisor's own lines. */
  log: (level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown>) => void;
  /** What the process's workers did (every second or so), only of workers whose home it is; `process` is its label. */
  stats?: (process: string, batch: StatsBatch) => void;
  /** A subrequest span the process reported, for the control process to export; `process` is its label. */
  span?: (process: string, span: SubrequestSpan) => void;
  /** Whether `worker` has its home here (a process may log only for its own workers). */
  owns: (worker: string) => boolean;
  /** A child ended while the slot was to keep running; returns how long to wait before the next (ms). */
  ended: (end: ProcessEnd) => number;
  /** How each process is started. */
  child: ChildOptions;
  /** A spare process that is ready to serve, if the pool has one. */
  spare?: () => Child | undefined;
  /** Where the service calls of this process's workers go (the pool checks each against what it deployed). */
  services?: ServiceRouter;
  /** Answers the platform bindings of the workers deployed here (src/server/binding-handlers.ts); none: refused. */
  bindingHost?: BindingHost;
}

/** A worker as it was sent to a child: what the child's calls are resolved against. */
interface HeldWorker {
  version: number;
  account: string;
  bindings: WorkerDefinition['bindings'];
}

/** How a runtime process is started and watched. */
export interface ChildOptions {
  init: InitPayload;
  /** Extra arguments for node (before the entry). */
  execArgv?: string[];
  /** How often it is pinged, and how long it may stay silent before it is killed as hung (default DEFAULT_LIVENESS). */
  liveness?: LivenessOptions;
  /** The OS user it runs as (default: this process's). */
  runAs?: RunAs;
  /** A line a spare (a child with no slot yet) wrote on stderr; a slot's children tell their slot. */
  spareOutput?: (pid: number | undefined, line: string) => void;
}

const NO_BYTES = new Uint8Array(0);

/** How long an upload's check waits for a process that backs off before it restarts (longer than the longest back-off). */
const VALIDATE_BACKOFF_WAIT_MS = 35_000;

const ENTRY = fileURLToPath(new URL(`./runtime-main.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));

/** How the answer (a 502) to a request whose worker's code crashed its runtime process begins. */
export const CRASHED_ITS_PROCESS = "The worker's code caused a fatal error that ended its runtime process: ";

/** Binding calls one runtime process may have unanswered; a call past it is refused. */
export const MAX_BINDING_CALLS_PER_PROCESS = 10_000;

/** How long a stopping process may take to finish before it is killed. */
const STOP_GRACE_MS = 10_000;

interface Call {
  /** With undefined for a `result`, the payload for an answer that carries one (a scheduledResult). */
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

interface Exchange {
  worker: string;
  /** Sends the request again, to the process that replaces this one: set for a request that may be (see retryable). */
  retry: (() => Promise<RuntimeResponse>) | undefined;
  resolve: (response: RuntimeResponse) => void;
  reject: (error: Error) => void;
  /** The response body, once its head came with one to stream. */
  body: IncomingBody | undefined;
  answered: boolean;
  requestBody: OutgoingBody | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** What a child reports to the slot that runs it. */
interface ChildOwner {
  message(child: Child, message: Message): void;
  broken(child: Child, error: Error): void;
  closed(child: Child, code: number | null, signal: NodeJS.Signals | null): void;
  /** A line the process wrote on stderr (Node's warnings, V8's report of a fatal error). */
  output(child: Child, line: string): void;
  /** The process left a ping unanswered past the timeout; it has been killed. */
  hung(child: Child, silentMs: number): void;
}

/**
 * One runtime process: its channel and what is in flight on it. It is started before it has
 * a slot when it is a spare (process-pool.ts): a slot whose process died adopts a spare that
 * is ready, rather than waiting for a new one to make its runtime image.
 */
export class Child {
  readonly process: ChildProcess;
  readonly channel: Channel;
  readonly ready: Promise<void>;
  /** Resolves when the child has ended and its output is read. */
  readonly ended: Promise<void>;
  isReady = false;
  /** The slot it serves; undefined while it is a spare. */
  owner: ChildOwner | undefined;
  /** Workers this child holds, as they were sent to it, and loads on their way to it. */
  readonly loaded = new Map<string, HeldWorker>();
  readonly loading = new Map<string, { version: number; done: Promise<void> }>();
  readonly calls = new Map<number, Call>();
  readonly exchanges = new Map<number, Exchange>();
  /** RPC calls to this child's workers, waiting for their results. */
  readonly rpcs = new Map<number, { resolve: (outcome: CallOutcome) => void; reject: (error: Error) => void }>();
  /** The service calls this child's workers made, while they are answered (made with the first). */
  services: ServiceExchanges | undefined;
  /** Its binding calls being answered, by the id it gave them. */
  readonly bindingCalls = new Map<number, AbortController>();
  culprit: { worker: string; message: string } | undefined;
  /** Killed for leaving pings unanswered: one of the requests in flight may be why. */
  hung = false;
  #nextId = 1;
  #readyResolve!: () => void;
  readonly #liveness: Liveness;
  readonly #spareOutput: ChildOptions['spareOutput'];

  constructor(options: ChildOptions) {
    this.#spareOutput = options.spareOutput;
    this.process = spawn(process.execPath, [...RUNTIME_HOST_FLAGS, ...(options.execArgv ?? []), '--no-node-snapshot', ENTRY], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      env: runtimeEnvironment(),
      // libuv drops supplementary groups too when it switches user.
      ...(options.runAs === undefined ? {} : { uid: options.runAs.uid, gid: options.runAs.gid, cwd: '/' }),
    });
    this.ready = new Promise((resolve) => (this.#readyResolve = resolve));
    this.ended = new Promise((resolve) => this.process.once('close', () => resolve()));
    this.#liveness = new Liveness(
      options.liveness ?? DEFAULT_LIVENESS,
      () => this.channel.send('ping', 0, undefined),
      (silentMs) => {
        this.hung = true;
        this.process.kill('SIGKILL');
        if (this.owner !== undefined) this.owner.hung(this, silentMs);
      },
    );
    this.process.once('close', () => this.#liveness.stop());
    const pid = this.process.pid;
    const exitWatch = new ExitWatch(
      () => this.process.signalCode ?? (pid === undefined ? undefined : exitingSignal(pid)),
      () => this.owner !== undefined && (this.exchanges.size > 0 || this.calls.size > 0 || this.rpcs.size > 0),
      () => this.owner?.closed(this, null, 'SIGKILL'),
    );
    this.process.once('close', () => exitWatch.stop());
    this.channel = new Channel(this.process.stdio[3] as Duplex, 'control', {
      message: (message) => {
        this.#liveness.heard();
        if (message.name === 'pong') return;
        if (message.name !== 'ready') return this.owner?.message(this, message);
        this.isReady = true;
        // Watched from ready on: making the runtime image before it may hold the thread a while.
        this.#liveness.start();
        this.#readyResolve();
      },
      error: (error) => {
        if (this.owner !== undefined) this.owner.broken(this, error);
        else this.process.kill('SIGKILL');
      },
      close: () => {},
    });
    createInterface({ input: this.process.stderr!, crlfDelay: Infinity }).on('line', (line) => this.#onStderr(line));
    // A spawn that fails ('error') is followed by 'close', which the owner handles like any end.
    this.process.on('error', () => {});
    this.process.on('close', (code, signal) => this.owner?.closed(this, code, signal));
    this.channel.send('init', 0, options.init);
  }

  get alive(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** The process's new share of the isolate memory budget (Runtime.setMemoryBudget there). */
  setMemoryBudget(memoryBudgetMb: number): void {
    this.channel.send('memoryBudget', 0, memoryBudgetMb);
  }

  id(): number {
    const id = this.#nextId;
    this.#nextId = id >= 0xffffffff ? 1 : id + 1;
    return id;
  }

  call<T = void>(send: (id: number) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const id = this.id();
      this.calls.set(id, { resolve: resolve as (value: unknown) => void, reject });
      send(id);
    });
  }

  /** The fatal line a V8 error leaves names the worker; other lines go to the owner's log. */
  #onStderr(line: string): void {
    if (line.startsWith('{') && line.includes('"catastrophic"')) {
      try {
        const fatal = JSON.parse(line) as { type?: unknown; worker?: unknown; message?: unknown };
        if (fatal.type === 'catastrophic' && typeof fatal.worker === 'string') {
          this.culprit = { worker: fatal.worker, message: typeof fatal.message === 'string' ? fatal.message : 'a fatal V8 error' };
          return;
        }
      } catch {}
    }
    if (this.owner !== undefined) return this.owner.output(this, line);
    this.#spareOutput?.(this.process.pid, line);
  }
}

export class RuntimeProcess {
  readonly tier: ProcessTier;
  readonly index: number;
  readonly #options: RuntimeProcessOptions;
  #child: Child | undefined;
  /** Set while a restart waits out its back-off: when it will start. */
  #backoffUntil = 0;
  #backoffTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** Children started so far (restarts + 1). */
  starts = 0;

  constructor(options: RuntimeProcessOptions) {
    this.tier = options.tier;
    this.index = options.index;
    this.#options = options;
  }

  /** `tier/index`, as logs name the process. */
  get label(): string {
    return `${this.tier}/${this.index}`;
  }

  get pid(): number | undefined {
    return this.#child?.process.pid;
  }

  /** Starts the child unless one runs (or a back-off holds it): a spare that is ready, or a new one. */
  start(): void {
    if (this.#stopped || this.#child !== undefined || this.#backoffTimer !== undefined) return;
    this.starts++;
    // The spare is kept for processes of tenants not known to crash them: a quarantined
    // tenant's crash loop, or untried code's, would take every spare, and leave none for the
    // processes of tenants that are serving.
    const spare = this.tier === 'quarantine' || this.tier === UNTRIED ? undefined : this.#options.spare?.();
    const child = spare ?? new Child(this.#options.child);
    child.owner = this.#owner;
    this.#child = child;
    this.#options.log('info', 'runtime process started', { process: this.label, pid: child.process.pid, starts: this.starts, spare: spare !== undefined });
    // Before it holds any code: set at once, the priority is the process's from its first request on.
    if (this.tier === UNTRIED) this.#lowerPriority(child);
    // A spare that ended just before it was adopted reports to no one: report it now.
    if (!child.alive) queueMicrotask(() => this.#onClose(child, child.process.exitCode, child.process.signalCode));
  }

  /** Untried code gets the CPU only when proven code leaves it some (UNTRIED_NICE). */
  #lowerPriority(child: Child): void {
    const pid = child.process.pid;
    if (pid === undefined) return;
    try {
      setPriority(pid, UNTRIED_NICE);
    } catch (error) {
      this.#options.log('warn', 'could not lower the CPU priority of the untried runtime process: untried code competes for the CPU on equal terms', {
        process: this.label, pid, error: (error as Error).message,
      });
    }
  }

  readonly #owner: ChildOwner = {
    message: (child, message) => this.#onMessage(child, message),
    broken: (child, error) => this.#broken(child, error),
    closed: (child, code, signal) => this.#onClose(child, code, signal),
    output: (child, line) => this.#options.log('warn', 'runtime process output', { process: this.label, pid: child.process.pid, line }),
    hung: (child, silentMs) => this.#options.log('error', 'runtime process stopped answering; killed', { process: this.label, pid: child.process.pid, silentMs, inFlight: child.exchanges.size }),
  };

  /** Sends a worker's code now if this child already holds an older version (a deploy reaches it before the caller hears back). */
  async update(worker: PlacedWorker): Promise<void> {
    const child = this.#child;
    if (child === undefined || !child.loaded.has(worker.name)) return;
    await this.#ensureLoaded(child, worker).catch(() => {});
  }

  /** Gives the running child its new share of the isolate memory budget (the tier grew). */
  setMemoryBudget(memoryBudgetMb: number): void {
    this.#child?.setMemoryBudget(memoryBudgetMb);
  }

  /** Tells the child to forget a worker (deleted, or moved to another process). */
  forget(name: string): void {
    const child = this.#child;
    if (child === undefined || !(child.loaded.has(name) || child.loading.has(name))) return;
    child.loaded.delete(name);
    child.loading.delete(name);
    void child.call((id) => child.channel.send('unload', id, { name })).catch(() => {});
  }

  async validate(name: string, definition: WorkerDefinition): Promise<void> {
    try {
      // An upload waits out a restart's back-off rather than failing: the process (the untried
      // one, most often) may be backing off for someone else's crashes.
      for (const deadline = Date.now() + VALIDATE_BACKOFF_WAIT_MS; this.#backoffTimer !== undefined && !this.#stopped && Date.now() < deadline;) {
        await new Promise((resolve) => setTimeout(resolve, Math.max(10, Math.min(deadline, this.#backoffUntil) - Date.now())));
      }
      const child = await this.#running();
      await child.call((id) => child.channel.send('validate', id, { name, definition }));
    } catch (error) {
      if (error instanceof WorkerLoadError) throw error;
      throw new WorkerLoadError(`The upload could not be checked: ${(error as Error).message}. Top-level code that crashes V8 cannot be deployed.`);
    }
  }

  /**
   * Runs a cron trigger's event in the worker's process. Worker faults (and a worker that does
   * not start) are outcomes; rejects when the process cannot run it now (restarting, or it
   * ended during the event: never sent again, as a tick is not replayed).
   */
  async scheduled(worker: PlacedWorker, event: { cron: string; scheduledTime: number }): Promise<ScheduledResult> {
    if (this.#unavailable() !== undefined) throw new Error(this.#stopped ? 'the server is shutting down' : 'its runtime process is waiting to restart');
    const child = await this.#running();
    try {
      await this.#ensureLoaded(child, worker);
    } catch (error) {
      if (!(error instanceof WorkerLoadError)) throw error;
      return { outcome: 'exception', noRetry: false, cpuMs: 0, wallMs: 0, error: `Worker failed to start: ${error.message}` };
    }
    const result = await child.call<ScheduledResult | undefined>((id) => child.channel.send('scheduled', id, { worker: worker.name, ...event }));
    if (result === undefined) throw new Error('the runtime process answered a scheduled event without its outcome');
    return result;
  }

  async fetch(worker: PlacedWorker, request: RuntimeRequest, retried = false): Promise<RuntimeResponse> {
    const refused = this.#unavailable();
    if (refused !== undefined) return refused;
    let child: Child;
    try {
      child = await this.#running();
      await this.#ensureLoaded(child, worker);
    } catch (error) {
      if (error instanceof WorkerLoadError) return failure(503, `Worker failed to start: ${error.message}\n`);
      // The process died before the request was sent to it: once, try the one that replaced it.
      if (!retried && this.#child !== undefined && this.#child.alive) return this.fetch(worker, request, true);
      return this.#unavailable() ?? failure(503, `The worker's runtime process is restarting (${(error as Error).message}); retry shortly.\n`, 1);
    }
    return this.#exchange(child, worker, request, retried);
  }

  /**
   * An RPC call to one of this process's workers (`args` as RPC bytes, see rpc-values.ts):
   * resolves with its outcome; a BindingError when the worker cannot be reached (it does not
   * start, its process is restarting or ends during the call).
   */
  async call(worker: PlacedWorker, call: Omit<CallHead, 'worker'>, args: Uint8Array): Promise<CallOutcome> {
    const refused = this.#unavailable();
    if (refused !== undefined) throw new BindingError('Error', Buffer.from(refused.body as Uint8Array).toString().trim());
    let child: Child;
    try {
      child = await this.#running();
      await this.#ensureLoaded(child, worker);
    } catch (error) {
      if (error instanceof WorkerLoadError) throw new BindingError('Error', `The worker '${worker.name}' failed to start: ${error.message}`);
      throw new BindingError('Error', `The worker '${worker.name}' could not be reached: its runtime process is restarting (${(error as Error).message}); retry shortly.`);
    }
    if (!child.channel.hasRoomFor(args.byteLength)) throw queuedTooMuch();
    return new Promise((resolve, reject) => {
      const id = child.id();
      child.rpcs.set(id, { resolve, reject });
      child.channel.send('call', id, { head: { worker: worker.name, ...call }, body: args });
    });
  }

  /** Drains the child: it finishes what is in flight and exits; past the grace period it is killed. */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#backoffTimer);
    this.#backoffTimer = undefined;
    const child = this.#child;
    if (child === undefined) return;
    child.channel.send('drain', 0, undefined);
    const deadline = setTimeout(() => child.process.kill('SIGKILL'), graceMs);
    await child.ended;
    clearTimeout(deadline);
  }

  /** For tests and operators: ends the child as a crash would. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.#child?.process.kill(signal);
  }

  /** The current child, started if none runs; rejects when it dies before it is ready. */
  async #running(): Promise<Child> {
    if (this.#stopped) throw new Error('the server is shutting down');
    this.start();
    const child = this.#child;
    if (child === undefined) throw new Error('it is waiting to restart');
    if (!child.isReady) await Promise.race([child.ready, child.ended]);
    if (this.#child !== child) throw new Error('it ended while starting');
    return child;
  }

  async #ensureLoaded(child: Child, worker: PlacedWorker): Promise<void> {
    if (child.loaded.get(worker.name)?.version === worker.version) return;
    const pending = child.loading.get(worker.name);
    if (pending !== undefined && pending.version === worker.version) return pending.done;
    const done = child.call((id) => child.channel.send('load', id, { name: worker.name, definition: worker.definition }));
    const entry = { version: worker.version, done };
    child.loading.set(worker.name, entry);
    try {
      await done;
      if (child.loading.get(worker.name) === entry) {
        child.loaded.set(worker.name, { version: worker.version, account: worker.account, bindings: worker.definition.bindings });
      }
    } finally {
      if (child.loading.get(worker.name) === entry) child.loading.delete(worker.name);
    }
  }

  #exchange(child: Child, placed: PlacedWorker, request: RuntimeRequest, retried: boolean): Promise<RuntimeResponse> {
    const worker = placed.name;
    return new Promise((resolve, reject) => {
      const id = child.id();
      const body = request.body ?? null;
      const retry = !retried && retryable(request) ? () => this.fetch(placed, request, true) : undefined;
      const exchange: Exchange = { worker, retry, resolve, reject, body: undefined, answered: false, requestBody: undefined, signal: request.signal, onAbort: undefined };
      child.exchanges.set(id, exchange);
      const headers = Array.isArray(request.headers) ? (request.headers as [string, string][]) : [...request.headers];
      child.channel.send('request', id, {
        worker, method: request.method, url: request.url, headers, body: body !== null, traceparent: request.trace?.traceparent,
        // A service binding's request: the entrypoint it names and the chain it came through.
        ...(request.entrypoint === undefined ? {} : { entrypoint: request.entrypoint }),
        ...(request.chain === undefined ? {} : { chain: [...request.chain] }),
      });
      if (request.signal !== undefined) {
        if (request.signal.aborted) child.channel.send('requestAbort', id, undefined);
        else {
          exchange.onAbort = () => {
            child.channel.send('requestAbort', id, undefined);
            exchange.requestBody?.cancel();
          };
          request.signal.addEventListener('abort', exchange.onAbort, { once: true });
        }
      }
      if (body !== null) {
        const outgoing = new OutgoingBody((chunk) => child.channel.send('requestBody', id, chunk));
        exchange.requestBody = outgoing;
        outgoing.pump(body).then(
          (whole) => {
            if (whole) child.channel.send('requestEnd', id, undefined);
          },
          // The client's upload failed (it went away): the worker's read fails the same way.
          () => child.channel.send('requestAbort', id, undefined),
        );
      }
    });
  }

  #onMessage(child: Child, message: Message): void {
    if (this.#options.services !== undefined) {
      child.services ??= new ServiceExchanges(child.channel, (caller) => this.#serviceCall(child, caller), this.#options.services);
      if (child.services.receive(message)) return;
    }
    switch (message.name) {
      case 'callResult': {
        const rpc = child.rpcs.get(message.id);
        child.rpcs.delete(message.id);
        rpc?.resolve(message.payload);
        return;
      }
      case 'result': {
        const call = child.calls.get(message.id);
        child.calls.delete(message.id);
        if (message.payload.ok) call?.resolve(undefined);
        else call?.reject(callError(message.payload));
        return;
      }
      case 'scheduledResult': {
        const call = child.calls.get(message.id);
        child.calls.delete(message.id);
        call?.resolve(message.payload);
        return;
      }
      case 'response':
      case 'responseWhole': {
        const exchange = child.exchanges.get(message.id);
        if (exchange === undefined || exchange.answered) return;
        exchange.answered = true;
        const head = message.name === 'response' ? message.payload : message.payload.head;
        let body: RuntimeResponse['body'] = null;
        if (message.name === 'responseWhole') body = message.payload.body;
        else if (head.stream) {
          const id = message.id;
          exchange.body = new IncomingBody(
            (bytes) => child.channel.send('responseCredit', id, bytes),
            () => {
              child.channel.send('responseCancel', id, undefined);
              this.#finish(child, id);
            },
          );
          body = exchange.body;
        }
        if (body === null || body instanceof Uint8Array) this.#finish(child, message.id);
        exchange.resolve({ status: head.status, statusText: head.statusText, headers: head.headers, body });
        return;
      }
      case 'responseBody':
        child.exchanges.get(message.id)?.body?.push(message.payload);
        return;
      case 'responseEnd':
        child.exchanges.get(message.id)?.body?.end();
        this.#finish(child, message.id);
        return;
      case 'responseError': {
        const exchange = child.exchanges.get(message.id);
        if (exchange === undefined) return;
        this.#finish(child, message.id);
        if (exchange.answered) exchange.body?.fail(new Error(message.payload.message));
        else if (message.payload.unknownWorker) exchange.reject(new UnknownWorkerError(exchange.worker));
        else exchange.resolve(failure(500, 'internal error\n'));
        return;
      }
      case 'requestCredit':
        child.exchanges.get(message.id)?.requestBody?.credit(message.payload);
        return;
      case 'log':
        if (this.#options.owns(message.payload.worker)) this.#options.workerLog(message.payload);
        return;
      case 'bindingCall':
        return this.#bindingCall(child, message.id, message.payload);
      case 'stats': {
        const batch = message.payload;
        for (const worker of Object.keys(batch.workers)) if (!this.#options.owns(worker)) delete batch.workers[worker];
        this.#options.stats?.(this.label, batch);
        return;
      }
      case 'span':
        this.#options.span?.(this.label, message.payload);
        return;
    }
  }

  /**
   * A worker's call of a platform binding, as its process forwards it: resolved against what
   * this slot sent that process (a worker homed here, as loaded, and a spec of its definition),
   * never against what the message claims. A well-formed call that resolves to nothing is
   * refused, that call alone: a request in flight may outlive its worker's move or deletion, and
   * a process that forges calls reaches nothing it was not given. (A malformed one never gets
   * here: it breaks the protocol, and the process is killed like any other that does.)
   */
  #bindingCall(child: Child, id: number, { head, body }: Payloads['bindingCall']): void {
    const send = (result: BindingAnswerHead, bytes?: Uint8Array) => child.channel.send('bindingAnswer', id, { head: result, body: bytes ?? NO_BYTES });
    const refuse = (name: string, message: string) => send({ ok: false, error: { name, message } });
    // Once: a call the process's end aborted is answered by no one.
    const answer = (result: BindingAnswerHead, bytes?: Uint8Array) => {
      if (child.bindingCalls.delete(id)) send(result, bytes);
    };
    const what = `env.${head.name}.${head.method}()`;
    const held = this.#options.owns(head.worker) ? child.loaded.get(head.worker) : undefined;
    if (held === undefined) return refuse('Error', `${what} was refused: the worker ${head.worker} is not served by this runtime process.`);
    const spec = held.bindings !== undefined && Object.hasOwn(held.bindings, head.name) ? held.bindings[head.name] : undefined;
    if (spec === undefined || typeof (spec as { type?: unknown }).type !== 'string') return refuse('TypeError', `${what}: the worker has no binding of that name.`);
    const host = this.#options.bindingHost;
    if (host === undefined) return refuse('Error', `${what}: platform bindings are not available on this server.`);
    if (child.bindingCalls.has(id) || child.bindingCalls.size >= MAX_BINDING_CALLS_PER_PROCESS) {
      return refuse('RangeError', `${what}: too many binding calls in flight in this runtime process (at most ${MAX_BINDING_CALLS_PER_PROCESS}).`);
    }
    const controller = new AbortController();
    child.bindingCalls.set(id, controller);
    host.call({
      worker: head.worker,
      account: held.account,
      name: head.name,
      binding: spec as BindingSpec,
      method: head.method,
      args: head.args,
      ...(head.bytes ? { bytes: body } : {}),
      signal: controller.signal,
    }).then(
      (result) => {
        if (result.bytes !== undefined && result.bytes.byteLength > BINDING_LIMITS.bytes) {
          return answer({ ok: false, error: { name: 'RangeError', message: `${what}: its answer of ${result.bytes.byteLength} bytes is over the ${BINDING_LIMITS.bytes} a binding call may carry.` } });
        }
        if (result.bytes !== undefined && !child.channel.hasRoomFor(result.bytes.byteLength)) {
          const { name, message } = queuedTooMuch();
          return answer({ ok: false, error: { name, message } });
        }
        answer({ ok: true, value: result.value, bytes: result.bytes !== undefined }, result.bytes);
      },
      (error: unknown) => {
        const known = error instanceof BindingError;
        answer({ ok: false, error: { name: known ? error.name : 'Error', message: known ? error.message : `${what} failed on the server.` } });
      },
    );
  }

  /**
   * A service call as a child's message describes it, resolved as binding calls are: against
   * what this slot sent that child (a worker homed here, as loaded, and a service binding of its
   * definition), with the chain ending at that worker. Where the binding leads is the pool's.
   */
  #serviceCall(child: Child, caller: ServiceCaller): ServiceCall {
    const what = `env.${caller.binding}`;
    const held = this.#options.owns(caller.worker) ? child.loaded.get(caller.worker) : undefined;
    if (held === undefined) throw new BindingError('Error', `${what} was refused: the worker ${caller.worker} is not served by this runtime process.`);
    const spec = held.bindings !== undefined && Object.hasOwn(held.bindings, caller.binding) ? held.bindings[caller.binding] : undefined;
    if (spec === undefined || (spec as { type?: unknown }).type !== 'service') throw new BindingError('TypeError', `${what} is not a service binding of this worker.`);
    const last = caller.chain[caller.chain.length - 1];
    if (last === undefined || (last !== caller.worker && !last.startsWith(`${caller.worker}#`))) throw new BindingError('Error', `${what} was refused: the call does not come from the worker it names.`);
    const { service, entrypoint } = spec as Extract<BindingSpec, { type: 'service' }>;
    return { worker: caller.worker, account: held.account, name: caller.binding, service, ...(entrypoint === undefined ? {} : { entrypoint }), chain: caller.chain };
  }

  /** An exchange is over on the wire: stop sending its request body and forget it. */
  #finish(child: Child, id: number): void {
    const exchange = child.exchanges.get(id);
    if (exchange === undefined) return;
    child.exchanges.delete(id);
    exchange.requestBody?.cancel();
    if (exchange.onAbort !== undefined) exchange.signal?.removeEventListener('abort', exchange.onAbort);
  }

  /** A child that breaks the protocol is treated as compromised: it is killed, and restarted like any crash. */
  #broken(child: Child, error: Error): void {
    this.#options.log('error', 'runtime process broke the protocol; killed', { process: this.label, pid: child.process.pid, error: error.message });
    child.process.kill('SIGKILL');
  }

  #onClose(child: Child, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    child.channel.close();
    const ownWorker = child.culprit?.worker;
    const reason = describeEnd(code, signal, child.culprit !== undefined);
    let inFlight = 0;
    const retries: Exchange[] = [];
    for (const [id, exchange] of child.exchanges) {
      this.#finish(child, id);
      // Another tenant's request that had no answer yet goes to the replacement, once, as a
      // reverse proxy retries an idempotent request whose upstream failed; not from a process
      // that hung, which any request in flight may have caused.
      if (!child.hung && !exchange.answered && exchange.retry !== undefined && exchange.worker !== ownWorker && exchange.signal?.aborted !== true) {
        retries.push(exchange);
        continue;
      }
      inFlight++;
      const text = exchange.worker === ownWorker
        ? `${CRASHED_ITS_PROCESS}${child.culprit!.message}\n`
        : `The runtime process serving this worker ended while the request was in flight (${reason}); the request did not complete. It is being restarted: retry shortly.\n`;
      if (exchange.answered) exchange.body?.fail(new Error(text.trim()));
      else exchange.resolve(failure(502, text));
    }
    for (const call of child.calls.values()) call.reject(new Error(`the runtime process ended (${reason})`));
    child.calls.clear();
    for (const rpc of child.rpcs.values()) rpc.reject(new BindingError('Error', `The called worker's runtime process ended while the call was in flight (${reason}); the call did not complete.`));
    child.rpcs.clear();
    child.services?.close();
    for (const controller of child.bindingCalls.values()) controller.abort();
    child.bindingCalls.clear();
    if (this.#stopped) {
      for (const exchange of retries) exchange.resolve(failure(503, 'The server is shutting down.\n'));
      return;
    }
    const wait = this.#options.ended({ pid: child.process.pid, code, signal, culprit: ownWorker, fatal: child.culprit?.message, inFlight });
    if (wait <= 0) this.start();
    else {
      this.#backoffUntil = Date.now() + wait;
      this.#backoffTimer = setTimeout(() => {
        this.#backoffTimer = undefined;
        this.start();
      }, wait);
    }
    // Only now: a retry waits for the replacement, or is told of the back-off.
    for (const exchange of retries) exchange.retry!().then(exchange.resolve, exchange.reject);
  }

  /** A 503 while a restart waits out its back-off. */
  #unavailable(): RuntimeResponse | undefined {
    if (this.#stopped) return failure(503, 'The server is shutting down.\n');
    if (this.#backoffTimer === undefined) return undefined;
    const seconds = Math.max(1, Math.ceil((this.#backoffUntil - Date.now()) / 1000));
    return failure(503, `The worker's runtime process crashed repeatedly and restarts in ${seconds} s; retry then.\n`, seconds);
  }
}

/**
 * Whether a request may be sent again when its process died before answering: a GET or HEAD
 * without a body, which HTTP defines as safe to repeat. Its worker may see it twice.
 */
function retryable(request: RuntimeRequest): boolean {
  const method = request.method.toUpperCase();
  return (method === 'GET' || method === 'HEAD') && (request.body === undefined || request.body === null);
}

/**
 * What a runtime process gets of the control process's environment: only what Node, OpenSSL and
 * ICU read to behave as the operator set them up (the time zone and locale of workers' Date and
 * Intl, the certificates workers' fetch() trusts). The control process's environment holds its
 * secrets (tokens, the database URL, PG* passwords, a collector's headers), and a runtime process
 * runs tenant code, which must find none of them should it escape V8: an allow-list, so that a
 * secret nobody listed stays out too. NODE_OPTIONS stays out as well: a runtime process runs with
 * the flags the pool gives it (ChildOptions.execArgv), not with what was meant for the server.
 * Its malloc keeps what it frees (src/runtime/malloc-tunables.ts), unless the operator set
 * GLIBC_TUNABLES.
 */
export function runtimeEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const kept: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && (RUNTIME_VARIABLES.has(name) || name.startsWith('LC_'))) kept[name] = value;
  }
  return withMallocTunables(kept);
}

const RUNTIME_VARIABLES = new Set([
  'PATH', 'TZ', 'LANG', 'LANGUAGE', 'NODE_ICU_DATA', 'GLIBC_TUNABLES',
  'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'SSL_CERT_DIR',
  // How many threads run isolates in each process (native/isolated-vm/thread-pool.patch).
  'ISOLET_ISOLATE_THREADS',
  // Where a test run with coverage collects it from every process.
  'NODE_V8_COVERAGE',
]);

function describeEnd(code: number | null, signal: NodeJS.Signals | null, fatal: boolean): string {
  if (fatal) return "a fatal error in a worker's code";
  if (signal !== null) return `killed by ${signal}`;
  if (code === CATASTROPHIC_EXIT_CODE) return 'a fatal V8 error';
  return `exited with status ${code}`;
}

function callError(result: CallResult): Error {
  if (result.ok) return new Error('not an error');
  const { kind, message, location } = result.error;
  if (kind === 'load') return new WorkerLoadError(message, location);
  return new Error(message);
}

function failure(status: 500 | 502 | 503, text: string, retryAfter?: number): RuntimeResponse {
  const headers: [string, string][] = [['content-type', 'text/plain;charset=UTF-8']];
  if (retryAfter !== undefined) headers.push(['retry-after', String(retryAfter)]);
  return { status, statusText: status === 500 ? 'Internal Server Error' : status === 502 ? 'Bad Gateway' : 'Service Unavailable', headers, body: Buffer.from(text) };
}
