// One tenant worker's V8 isolate: its context, the host side of the wall (the host calls of
// src/bridge/protocol.ts: operations, timers, logs, the sandbox's answers), its requests in
// flight (each a RequestContext, request-context.ts) and the accounting that enforces its
// limits. The worker's own code is loaded by worker-script.ts.
//
// Security: only copies cross into the isolate. The host keeps isolated-vm References to the
// sandbox's entry points; the sandbox only ever holds Callbacks, which arrive there as plain
// functions of its own realm. Every argument a Callback receives is hostile and validated.

import ivm from 'isolated-vm';
import { STATUS_CODES } from 'node:http';
import type { RuntimeImage } from './runtime-image.ts';
import type { IsolateMemoryUsage, RuntimeRequest, RuntimeResponse, ScheduledResult, WorkerDefinition, WorkerLimits, WorkerLogEntry, LogLevel } from './types.ts';
import { BindingError, WorkerLoadError, type ServiceHost } from './types.ts';
import { serviceKey } from './service-calls.ts';
import { cpuTermination, describeTermination, terminationResponseBody, terminationStatus, type Termination } from './termination.ts';
import { CpuMeter, type CpuWatchdog } from './cpu-limit.ts';
import type { InlineRuns } from './inline-runs.ts';
import type { Spare } from './spare-isolates.ts';
import { newIsolate } from './new-isolate.ts';
import { hasDrainHook, takeSandboxEntries, type EntryPoints } from './sandbox-entries.ts';
import { operations, type AsyncOp, type OpContext, type SyncOp } from './host-ops.ts';
import { OPERATION_MODES, VALUE_OPERATIONS, type AsyncOperation } from '../bridge/operations.ts';
import { intoIsolate, RpcValue, unreadable } from './rpc-value.ts';
import { MAX_LOG_LINE_CHARS, type DispatchResult, type HostCalls } from '../bridge/protocol.ts';
import { hostCallbacks } from './host-callbacks.ts';
import { loadSandboxModule } from './sandbox-modules.ts';
import { runWorkerCode } from './worker-script.ts';
import { NEVER_RESPONDS_BODY, NEVER_RESPONDS_MESSAGE } from './never-responds.ts';
import { NEVER_RESPONDS, RequestContext } from './request-context.ts';
import { RequestBody } from './request-body.ts';
import { disposeIsolate } from './isolate-teardown.ts';
import type { EgressPolicy } from '../api/fetch/egress-policy.ts';
import type { WorkerBindings } from '../api/bindings/host.ts';

const LOG_LEVELS = new Set<LogLevel>(['debug', 'info', 'log', 'warn', 'error']);
const MAX_TIMERS = 10_000;
/**
 * Operations whose ArrayBuffer result is made for the call alone (a body's chunk, Node's answer
 * to a WebCrypto call, a slice of a hash's digest): moved into the isolate, never copied. An
 * operation whose buffer the host keeps using must not be here: moving it detaches it.
 */
const MOVED_RESULTS: ReadonlySet<string> = new Set([
  'body.read', 'body.readWhole', 'fetch.read',
  'crypto.digest', 'crypto.sign', 'crypto.encrypt', 'crypto.decrypt', 'crypto.exportKey', 'crypto.deriveBits', 'crypto.wrapKey',
]);
/** How long waitUntil work may go on after the response, as in Workers. */
const WAIT_UNTIL_MS = 30_000;
const MB = 1024 * 1024;
const MEMORY_CHECK_INTERVAL_MS = 1000;
/** How long heap statistics asked for with a request may take to come before the check asks the isolate for them. */
const HEAP_STATISTICS_WAIT_MS = 10_000;
/**
 * Growth past an isolate's floor (what it held once started, or after its last reduction) below
 * which an idle isolate is not collected: the collections cost a few milliseconds of CPU, and a
 * tenant served less often than the idle delay would otherwise pay them after every request
 * while getting back a few kilobytes (docs/BENCHMARKS.md, "Idle reductions that pay").
 */
const REDUCE_MIN_GAIN_BYTES = 512 * 1024;

const MAX_PENDING_CALLS = 10_000;

export interface WorkerIsolateOptions {
  name: string;
  definition: WorkerDefinition;
  limits: WorkerLimits;
  image: RuntimeImage;
  watchdog: CpuWatchdog;
  log: (entry: WorkerLogEntry) => void;
  onCatastrophicError: (worker: string, message: string) => void;
  /** An isolate made ahead of demand (same image and memory limit) to use instead of a new one. */
  spare?: Spare;
  /** Where the worker's fetch() may connect. */
  egress: EgressPolicy;
  /** What the definition binds, checked when it was loaded. */
  bindings: WorkerBindings;
  /** Where the worker's service-binding calls go. */
  services?: ServiceHost;
  /** The isolate was measured: `heldBytes` is new, and was `previous` before. */
  onMeasured?: (isolate: WorkerIsolate, previous: number) => void;
  /** Which requests may start on the calling thread (inline-runs.ts); none without it. */
  inline?: InlineRuns;
}

export class WorkerIsolate {
  readonly name: string;
  readonly limits: WorkerLimits;
  readonly isolate: ivm.Isolate;
  lastUsed = Date.now();
  /**
   * Memory the isolate held when last measured, in bytes: heap pages backed by memory and
   * ArrayBuffers outside the heap. Measured once it has started, after it gave memory back, and
   * by the throttled check after responses, never once per request.
   */
  heldBytes = 0;
  termination: Termination | undefined;
  readonly inFlight = new Map<number, RequestContext>();
  /** CPU the isolate has used up to the last accounting, in nanoseconds. */
  private readonly cpu: CpuMeter;
  /**
   * The host's calls into the isolate that have not returned yet, oldest first, by the request
   * they run for. The isolate runs them one at a time in this order, so the oldest is the one
   * running: CPU is charged to it (and to those that returned since the last charge), never to
   * requests that merely wait, so parked requests cannot dilute a loop's charge.
   */
  private readonly running: RequestContext[] = [];
  /** Whose call into the isolate last failed (STRAY and PLATFORM are ended): see killedRequest. */
  private failedCall: RequestContext | undefined;
  /** How many calls into the isolate have returned; tells whether the running call is the one the last tick saw. */
  private callsReturned = 0;
  private strayCallSeen = -1;
  /** Requests whose calls into the isolate returned since the last charge. */
  private readonly returned = new Set<RequestContext>();
  /**
   * CPU the running call used after its request was over (work a worker left behind its
   * response without waitUntil): limited like a request, and reset when that call returns.
   */
  private strayCpuNs = 0;
  /** isolet's isolated-vm build ends an isolate whose one run goes past a CPU budget, from a thread of its own. */
  private readonly nativeBudget: boolean;
  /** The gate of requests that may start on the calling thread (see mayRunInline); undefined: none may. */
  private readonly inline: InlineRuns | undefined;
  /** The last call into the isolate that went through `enter`: when it settles, the isolate has run all before it too. */
  private lastEntered: Promise<unknown> | undefined;
  /** While the worker's top-level code runs, the CPU it uses is charged here. */
  private loadingCpuNs: number | undefined;
  /** Sandbox modules being loaded, nested in one another (see hostCalls' loadModule). */
  private loadingModules = 0;
  /** V8's teardown of the isolate, once dispose() started it (off this thread: isolate-teardown.ts). */
  private teardown: Promise<void> | undefined;
  private context: ivm.Context | undefined;
  private entries!: EntryPoints;
  /** Per-isolate state of the API host halves (see OpContext.scope). */
  private readonly scope = new Map<string, unknown>();
  private pendingCalls = 0;
  /** Every host timer of the isolate's requests, by id, with the request that owns it. */
  private readonly timers = new Map<number, RequestContext>();
  private readonly options: WorkerIsolateOptions;
  private readonly onDisposed: Array<() => void> = [];
  private memoryCheckPending = false;
  private lastMemoryCheck = -Infinity;
  /** How many heap statistics the isolate had taken when askHeapStatistics asked for more, and when (performance.now()). */
  private heapStatisticsAsked: { taken: number; at: number } | undefined;
  /**
   * Set once the isolate's idle memory was dealt with: given back, or found too little over its
   * floor to be worth a collection. A request clears it.
   */
  private memoryReduced = false;
  /** What the isolate held once started, or just after it last gave memory back (see REDUCE_MIN_GAIN_BYTES). */
  private floorBytes: number | undefined;
  /** The next measurement sets `floorBytes`. */
  private floorPending = true;
  /** When `heldBytes` was last measured (Date.now()), and whether a measurement is under way. */
  private measuredAt = -Infinity;
  private measuring = false;
  /** The reduction running now: a request waits for it, so its CPU is not charged to the request. */
  private reducing: Promise<void> | undefined;
  /** A look for requests that can never be answered is due (see never-responds.ts). */
  private neverRespondsCheck: NodeJS.Immediate | undefined;
  /** Requests in a row that were quick (inline-runs.ts, InlineRuns.maxRunNs). */
  private quickRequests = 0;
  /** Timers that calls into the isolate still running started, to be armed once they return (see startTimer). */
  private readonly unarmed = new Map<number, { state: RequestContext; ms: number; startedAt: number; dueAt: number }>();
  /** The latest time a timer's callback was given (armTimer): the isolate's clock may be that far ahead of Date.now(). */
  private timerClock = 0;
  /** Inline runs so far (RequestContext.inlineRun). */
  private inlineRuns = 0;
  /** CPU credited for sandbox module loads so far (see hostCalls' loadModule). */
  private creditedNs = 0;

  private constructor(options: WorkerIsolateOptions, isolate: ivm.Isolate) {
    this.options = options;
    this.name = options.name;
    this.limits = options.limits;
    this.isolate = isolate;
    const spare = options.spare;
    if (spare) {
      spare.owner.name = options.name;
      this.context = spare.context;
    }
    this.cpu = new CpuMeter(() => (isolate.isDisposed ? 0n : isolate.cpuTime));
    const native = isolate as NativeContainment;
    this.nativeBudget = typeof native.setCpuBudget === 'function';
    // An inline run must be stoppable on any thread (the native watchdog) and must not wait for the isolate's thread.
    this.inline = this.nativeBudget && typeof native.idle === 'boolean' ? options.inline : undefined;
    // A fatal V8 error names the worker in the process's last line (native/isolated-vm/watchdog.patch).
    if (typeof native.setFatalLabel === 'function') native.setFatalLabel(options.name);
  }

  /** Creates the isolate and runs the worker's top-level code under the startup CPU limit. */
  static async create(options: WorkerIsolateOptions): Promise<WorkerIsolate> {
    const isolate = options.spare?.isolate ?? await newIsolate({
      memoryLimit: Math.max(8, options.limits.memoryMb),
      snapshot: options.image.snapshot,
      onCatastrophicError: (message) => options.onCatastrophicError(options.name, message),
    });
    const worker = new WorkerIsolate(options, isolate);
    try {
      await worker.load();
      return worker;
    } catch (error) {
      const termination = worker.termination;
      worker.dispose();
      if (termination) throw new WorkerLoadError(describeTermination(termination));
      throw error;
    }
  }

  get alive(): boolean {
    return this.termination === undefined && !this.isolate.isDisposed;
  }

  /** Nothing in flight (a request's waitUntil work counts) and not loading: disposing it fails nobody. */
  get idle(): boolean {
    return this.inFlight.size === 0 && this.loadingCpuNs === undefined;
  }

  /**
   * Whether the isolate can serve; one that something else ended while nobody watched (the
   * native CPU watchdog stopping work that ran while the isolate was idle, such as a
   * FinalizationRegistry callback) is terminated here, so that its end is logged and it leaves
   * the pool.
   */
  usable(): boolean {
    if (this.termination === undefined && this.isolate.isDisposed) this.terminate(this.externalTermination());
    return this.alive;
  }

  whenDisposed(callback: () => void): void {
    this.onDisposed.push(callback);
  }

  private async load(): Promise<void> {
    const { definition } = this.options;
    this.context ??= await this.isolate.createContext();
    this.entries = this.options.spare?.entries ?? takeSandboxEntries(this.context);
    // On the isolate's thread: the sandbox's setup runs about 0.7 ms, which on this thread would
    // stall every warm request (one crossing costs far less).
    await this.entries.init.apply(undefined, [hasDrainHook(this.entries), ...hostCallbacks(this.hostCalls())] as never);
    this.entries.init.release();

    this.cpu.reset();
    this.loadingCpuNs = 0;
    this.options.watchdog.watch(this);
    // Top-level code may run as one long call: the native budget allows it the startup limit.
    this.setNativeBudget(Math.max(this.limits.startupCpuMs, this.limits.cpuMs));
    try {
      // env crosses as the vars and what to make the bindings from; the sandbox builds it once,
      // before the modules run when `cloudflare:workers` (which exports it) is imported.
      const envParts = (): [never, never] => [
        new ivm.ExternalCopy(definition.vars ?? {}).copyInto({ release: true }) as never,
        (this.options.bindings.size === 0 ? null : new ivm.ExternalCopy(this.options.bindings.forSandbox()).copyInto({ release: true })) as never,
      ];
      const namespace = await runWorkerCode(this.isolate, this.context!, definition, async (name) => {
        const problem = await this.entries.exposeBuiltinModule.apply(undefined, [name, ...envParts()], { result: { copy: true } });
        if (typeof problem === 'string') throw new WorkerLoadError(problem);
      });
      const [env, bindings] = envParts();
      const problem = await this.entries.register.apply(
        undefined,
        [namespace ? namespace.derefInto() : null, env, bindings, namespace === undefined, (definition.crons?.length ?? 0) > 0],
        { result: { copy: true } },
      );
      if (typeof problem === 'string') throw new WorkerLoadError(problem);
    } catch (error) {
      // The native watchdog may have ended the top-level code before this thread's watchdog did.
      if (!this.termination && this.isolate.isDisposed) this.terminate(this.externalTermination());
      if (this.termination) throw new WorkerLoadError(describeTermination(this.termination));
      if (error instanceof WorkerLoadError) throw error;
      throw new WorkerLoadError(`The worker threw while loading: ${cleanStack(error)}`);
    } finally {
      this.chargeCpu();
      this.loadingCpuNs = undefined;
      // Watched on until idle: top-level code may leave work running (see applyCpu).
      this.setNativeBudget(this.limits.cpuMs);
    }
  }

  /** The host's side of the host calls; host-callbacks.ts has checked every argument against the protocol. */
  private hostCalls(): HostCalls {
    const respondSimple: HostCalls['respondSimple'] = (requestId, status, statusText, headers, body, done) => {
      this.respond(requestId, { status, statusText, headers: headers === '' ? [] : headers.split('\n'), body, done });
    };
    return {
      log: (level, message) => this.consoleLog(level, message),
      uncaught: (requestId, text) => this.logException(requestId, text),
      sync: (op, args) => this.callSync(op, args),
      async: (callId, requestId, op, args) => this.callAsync(callId, requestId, op, args),
      asyncValues: (callId, requestId, op, args, ...values) => this.callAsync(callId, requestId, op, args, values.map(RpcValue.crossed)),
      startTimer: (requestId, timerId, delay) => this.startTimer(requestId, timerId, delay),
      clearTimer: (timerId) => this.clearTimer(timerId),
      // Synchronous: the module's script runs nested in this call (see sandbox-modules.ts). What
      // it costs is the platform's, not the request's that first touched the module: the CPU
      // meter is credited with it (the outermost load's, which holds any it nests), up to
      // MAX_MODULE_LOAD_CREDIT_NS, and the native budget still holds the span.
      loadModule: (name) => {
        const outermost = this.loadingModules++ === 0;
        const before = outermost ? this.isolate.cpuTime : 0n;
        try {
          loadSandboxModule(this.isolate, this.context!, this.options.image.modules, name, this.entries.receiveModule);
        } finally {
          this.loadingModules--;
          if (outermost && !this.isolate.isDisposed) {
            const credit = Math.min(Number(this.isolate.cpuTime - before), MAX_MODULE_LOAD_CREDIT_NS);
            this.cpu.credit(credit);
            this.creditedNs += credit;
          }
        }
      },
      respond: (requestId, result) => this.respond(requestId, result),
      respondSimple,
      // The same answer, taken inside an inline run rather than on a later turn.
      respondSimpleNow: respondSimple,
      respondCall: (requestId, ok, errorName, done, value) => {
        const result = RpcValue.crossed(value);
        const state = this.inFlight.get(requestId);
        if (!state?.awaitingResponse) return result.release();
        if (done) state.sandboxDone = true;
        if (!state.answer({ rpc: true, ok, value: result, errorName })) result.release();
      },
      requestDone: (requestId) => {
        const state = this.inFlight.get(requestId);
        if (!state) return;
        // The sandbox may say so before the host has its response in hand; then end after that.
        if (state.phase === 'waitUntil') this.endRequest(state);
        else state.sandboxDone = true;
      },
    };
  }

  /** The sandbox's answer to request `requestId`'s dispatch. */
  private respond(requestId: number, result: DispatchResult): void {
    const state = this.inFlight.get(requestId);
    if (!state?.awaitingResponse) return;
    if (result.done === true) state.sandboxDone = true;
    state.answer(result);
  }

  private consoleLog(level: string, message: string): void {
    this.log(LOG_LEVELS.has(level as LogLevel) ? (level as LogLevel) : 'log', 'console', message);
  }

  /** `text` is the isolate's (an unhandled rejection's reason copied out, the sandbox's report). */
  private logException(requestId: number, text: string): void {
    this.log('error', 'exception', `Uncaught ${String(text)}`, requestId ? { requestId } : {});
  }

  private opContext(requestId: unknown, callId?: number, values?: readonly RpcValue[]): OpContext {
    const state = typeof requestId === 'number' ? this.inFlight.get(requestId) : undefined;
    return {
      worker: this.name,
      account: this.options.definition.account ?? this.name,
      limits: this.limits,
      request: state?.handle,
      requestById: (id) => this.inFlight.get(id)?.handle,
      scope: this.scope,
      egress: this.options.egress,
      bindings: this.options.bindings,
      services: this.options.services,
      chargeCpu: (ns) => this.chargeHostCpu(state, ns),
      takePayload: () => callId === undefined ? Promise.resolve(null) : this.takePayload(callId),
      ...(values === undefined ? {} : { values }),
    };
  }

  /**
   * The next piece of call `callId`'s large value, copied out by a call of its own that runs no
   * tenant code: what ran before it is charged as usual, the copy to no request (as for
   * takeResponseChunk), so a worker does not pay for the platform copying what it sends.
   */
  private async takePayload(callId: number): Promise<ArrayBuffer | string | null | false> {
    if (!this.alive) throw new Error('the worker stopped');
    // A turn of the event loop before each piece: the isolate copies the next piece while this
    // thread copies the last, and isolated-vm runs every answer that is ready in one callback, so
    // the pieces of 40 MiB could follow each other with no turn between them (118 ms measured,
    // bench/event-loop-hold.ts), and every other tenant's I/O and timers waited that long.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (!this.alive) throw new Error('the worker stopped');
    this.chargeCpu();
    const taken = await this.enter(PLATFORM, this.entries.takePayload.apply(undefined, [callId], {
      ...UNBUDGETED,
      ...NO_CALLER_STACK,
      arguments: { copy: true },
      result: { externalCopy: true },
    })) as ivm.ExternalCopy<ArrayBuffer | string | null | false>;
    this.chargeCpu();
    // Copied again here and the isolate's copy freed at once, so that the next piece's copy
    // there reuses its memory: fresh memory costs its page faults (5 ms a MiB on the test
    // machine).
    let piece: unknown;
    try {
      piece = taken.copy();
    } finally {
      taken.release();
    }
    // What the sandbox answers is checked as hostile, as every host call's arguments are.
    if (piece === null || piece === false || typeof piece === 'string' || piece instanceof ArrayBuffer) return piece;
    throw new TypeError('takePayload answered something other than a piece of the value.');
  }

  private callSync(op: string, args: unknown[]): unknown {
    const fn = operationOf(op, 'sync') as SyncOp | undefined;
    if (!fn) throw new TypeError(`Unknown host operation ${JSON.stringify(String(op)).slice(0, 100)}`);
    // The isolate waits while the host works, so its own clock does not see this time: it is
    // charged to the call running now, or a loop of synchronous calls would cost the host's
    // main thread without limit.
    const started = performance.now();
    try {
      return fn(this.opContext(undefined), args);
    } finally {
      this.chargeHostCpu(this.runningRequest(), (performance.now() - started) * 1e6);
    }
  }

  /**
   * Starts an asynchronous host operation and hands its outcome to the sandbox's settle().
   * `carried`: the values an operation of VALUE_OPERATIONS hands on (OpContext.values).
   */
  private callAsync(callId: number, requestId: number, op: string, args: unknown[], carried?: RpcValue[]): void {
    if (!this.alive) return carried?.forEach((value) => value.release());
    const fn = operationOf(op, 'async') as AsyncOp | undefined;
    const settle = (ok: boolean, value: unknown, errorName: string) => {
      this.pendingCalls--;
      // Whatever the operation did not hand on (it failed first) is freed now.
      carried?.forEach((value) => value.release());
      // A call of a request whose work is over: the sandbox dropped it, and an answer would be a
      // crossing (and CPU) for nothing.
      if (!this.alive || (requestId !== 0 && !this.inFlight.has(requestId))) {
        if (value instanceof ivm.ExternalCopy || value instanceof RpcValue) value.release();
        if (this.alive) this.checkNeverResponds();
        return;
      }
      this.checkNeverResponds();
      this.settleCall(callId, requestId, op, ok, value, errorName);
    };
    this.pendingCalls++;
    if (!fn) return settle(false, `Unknown host operation ${JSON.stringify(String(op)).slice(0, 100)}`, 'TypeError');
    if (VALUE_OPERATIONS.includes(op as AsyncOperation) !== (carried !== undefined)) {
      return settle(false, `Host operation ${op} ${carried === undefined ? 'carries values: it is called through asyncValues' : 'carries no values: it is called through async'}.`, 'TypeError');
    }
    if (this.pendingCalls > MAX_PENDING_CALLS) return settle(false, `Too many host operations pending at once (at most ${MAX_PENDING_CALLS}).`, 'RangeError');
    let promise: Promise<unknown>;
    try {
      promise = fn(this.opContext(requestId, callId, carried), args);
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then(
      (value) => settle(true, value, ''),
      (error: unknown) => {
        const name = error instanceof Error ? error.name : 'Error';
        const message = error instanceof Error ? error.message : String(error);
        settle(false, message, name);
      },
    );
  }

  /** Hands an async call's outcome to the sandbox's settle(). */
  private settleCall(callId: number, requestId: number, op: string, ok: boolean, value: unknown, errorName: string): void {
    // A buffer made for this call alone (MOVED_RESULTS) moves into the isolate: no copy on
    // this thread, which every tenant shares (a 40 MiB crypto.subtle.encrypt result held it
    // for 136 ms), and no garbage left on this side to wait for a GC. A value an operation
    // copied itself (a binding's result, whose copy may fail) goes in as it is, and the
    // buffers it was made to hand over move in with it; so does a value another isolate
    // sent (an RPC result), read only there. Everything else is copied.
    const arg = MOVED_RESULTS.has(op) && ok && value instanceof ArrayBuffer
      ? new ivm.ExternalCopy(value, { transferOut: true }).copyInto({ release: true, transferIn: true })
      : value instanceof ivm.ExternalCopy ? value.copyInto({ release: true, transferIn: true })
      : value instanceof RpcValue ? intoIsolate(value)
      : value !== null && typeof value === 'object' ? new ivm.ExternalCopy(value).copyInto({ release: true }) : value;
    this.enter(this.inFlight.get(requestId), this.entries.settle
      .apply(undefined, [callId, Date.now(), ok, arg as never, errorName], NO_CALLER_STACK))
      .catch((error) => {
        // A result another process sent that does not read: the call fails, not the worker.
        if (value instanceof RpcValue && unreadable(error) && this.alive && this.inFlight.has(requestId)) {
          this.settleCall(callId, requestId, op, false, `The result could not be read: ${(error as Error).message}`, 'DataCloneError');
        } else {
          this.onIsolateError(error);
        }
      });
  }

  private startTimer(requestId: number, timerId: number, delay: number): void {
    const state = this.inFlight.get(requestId);
    if (!state || state.ended || !this.alive) return;
    const owner = this.timers.get(timerId);
    if (!owner && this.timers.size >= MAX_TIMERS) return;
    owner?.clearTimer(timerId);
    this.unarmed.delete(timerId);
    const ms = Number.isFinite(delay) ? Math.min(Math.max(delay, 0), 2 ** 31 - 1) : 0;
    this.timers.set(timerId, state);
    // What one call into the isolate posts reaches this thread while the call runs, in batches
    // when this thread takes them as the isolate's thread still makes them: a 1 ms timer taken in
    // one batch could fire before a 0 ms timer of the same call taken in the next, which workerd
    // (and the clock the isolate saw) orders the other way. So they are armed together once the
    // call has returned, and its posts have all arrived.
    // The isolate's clock is never ahead of both this one and the last timer's (below), so a
    // callback that sees at least this much sees at least its delay pass.
    const dueAt = Math.max(Date.now(), this.timerClock) + ms;
    if (this.running.length > 0) this.unarmed.set(timerId, { state, ms, startedAt: performance.now(), dueAt });
    else this.armTimer(state, timerId, ms, dueAt);
  }

  private armTimer(state: RequestContext, timerId: number, ms: number, dueAt: number): void {
    state.startTimer(timerId, ms, () => {
      this.timers.delete(timerId);
      if (!this.alive) return;
      // Node may fire a timer up to a turn's length early: it counts from the time its event loop
      // read at the start of the turn that started it. The callback still sees the clock at its
      // due time at least, as in workerd.
      const now = Math.max(Date.now(), dueAt);
      if (now > this.timerClock) this.timerClock = now;
      this.enter(state, this.entries.fireTimer.apply(undefined, [state.id, timerId, now], COPYING_ARGUMENTS))
        .catch((error) => this.onIsolateError(error));
    });
  }

  /** Arms the timers calls that have returned started (see startTimer), in the order they were started. */
  private armTimers(): void {
    const now = performance.now();
    for (const [timerId, { state, ms, startedAt, dueAt }] of this.unarmed) {
      if (state.ended || !this.alive) {
        this.timers.delete(timerId);
        continue;
      }
      // The wait so far counts, but a timer with a delay stays behind those without one.
      this.armTimer(state, timerId, ms === 0 ? 0 : Math.max(1, ms - (now - startedAt)), dueAt);
    }
    this.unarmed.clear();
  }

  private clearTimer(timerId: number): void {
    this.timers.get(timerId)?.clearTimer(timerId);
    this.timers.delete(timerId);
    this.unarmed.delete(timerId);
  }

  /** Runs one request through the worker. Never rejects: every failure is a response. */
  async fetch(request: RuntimeRequest): Promise<RuntimeResponse> {
    this.lastUsed = Date.now();
    this.memoryReduced = false;
    if (this.reducing) await this.reducing;
    this.askHeapStatistics();
    // A worker that may run inline waits for the calls its isolate has queued (it would wait for
    // them there too) rather than queue behind them: under steady load some call is always queued.
    if (this.running.length > 0 && this.wantsInline()) await this.lastEntered!.then(ignore, ignore);
    if (!this.alive) return this.deadResponse();
    const body = request.body;
    const hasBody = body !== undefined && body !== null && request.method !== 'GET' && request.method !== 'HEAD';
    const requestBody = hasBody ? new RequestBody(toAsyncIterator(body)) : undefined;
    const state = new RequestContext(request.method, request.url, requestBody, [...(request.chain ?? []), serviceKey(this.name, request.entrypoint)], request.trace);
    const id = state.id;
    if (this.options.watchdog.isWatching(this)) this.chargeCpu();
    else this.cpu.reset();
    this.inFlight.set(id, state);
    this.options.watchdog.watch(this);
    if (!state.listenForClient(request.signal, () => this.abortRequest(state))) {
      this.endRequest(state);
      return { status: 499, statusText: 'Client Closed Request', headers: [], body: null };
    }
    let headers = '';
    for (const [name, value] of request.headers) {
      // '\n' separates the pairs on the way in; no valid header has one (RFC 9110 §5.5).
      if (name.includes('\n') || value.includes('\n')) {
        this.endRequest(state);
        return textResponse(400, `Invalid header ${JSON.stringify(name)}: header names and values cannot contain line breaks.\n`);
      }
      headers = headers === '' ? name + '\n' + value : headers + '\n' + name + '\n' + value;
      if (requestBody && name.length === 14 && name.toLowerCase() === 'content-length') requestBody.declare(value);
    }
    const dispatched = state.dispatched();
    const inline = this.mayRunInline();
    const args = [id, request.method, request.url, headers, hasBody, Date.now(), request.entrypoint ?? '', inline] as const;
    if (inline) {
      this.enterInline(state, () => this.entries.dispatch.applySync(undefined, args as never));
    } else {
      try {
        this.enter(state, this.entries.dispatch.apply(undefined, args as never, NO_CALLER_STACK)).catch((error) => this.onIsolateError(error));
      } catch (error) {
        this.onIsolateError(error);
      }
    }
    const result = this.alive ? await dispatched : null;
    if (result === null) {
      const response = this.deadResponse();
      if (state.status === 0) state.status = response.status;
      this.endRequest(state);
      return response;
    }
    if (result === NEVER_RESPONDS) {
      // Nothing in the isolate can run for it again: its work is over (as workerd cancels it).
      state.status = 500;
      this.log('error', 'exception', NEVER_RESPONDS_MESSAGE, { requestId: id });
      this.entries.end.apply(undefined, [id], COPYING_ARGUMENTS).catch(() => {});
      this.endRequest(state);
      return textResponse(500, NEVER_RESPONDS_BODY);
    }
    if ('rpc' in result) {
      // Only `invoke` answers with respondCall: a sandbox that does otherwise is broken.
      result.value.release();
      this.terminate({ kind: 'crashed', message: 'the sandbox answered a request as an RPC call' });
      return this.deadResponse();
    }
    if ('error' in result) {
      const memory = memoryErrorIn(result.error);
      if (memory) {
        // terminate() ends the request too, with the status deadResponse() gives.
        this.terminate({ kind: 'memory', limitMb: this.limits.memoryMb });
        return this.deadResponse();
      }
      state.status = 500;
      if (result.kind === 'exception') this.logException(id, result.error);
      else this.log('error', 'exception', result.error, { requestId: id });
      this.afterResponse(state);
      return textResponse(500, 'Error 1101: Worker threw exception.\n');
    }
    state.status = result.status;
    const pairs: [string, string][] = [];
    for (let i = 0; i < result.headers.length; i += 2) pairs.push([result.headers[i]!, result.headers[i + 1]!]);
    const out = result.body;
    if (out === null || typeof out === 'string' || out instanceof Uint8Array) {
      this.afterResponse(state);
      return { status: result.status, statusText: result.statusText, headers: pairs, body: typeof out === 'string' ? Buffer.from(out) : out };
    }
    // A streamed body: the request stays in flight (and under its CPU limit) until it is sent.
    if (typeof out.length === 'number' && !pairs.some(([name]) => name === 'content-length')) {
      pairs.push(['content-length', String(out.length)]);
    }
    state.startStreaming(!out.requestBody);
    return { status: result.status, statusText: result.statusText, headers: pairs, body: out.requestBody ? this.passThroughBody(state) : this.responseBody(state) };
  }

  /**
   * Runs one RPC call through the worker: method `method` of `entrypoint` ('' the default
   * export) with `args`, which are copied in. Resolves with the result (a copy); rejects with a
   * BindingError of the name and message the method threw, or one that says why there is no
   * result (the isolate was stopped, the method can never return). The call is a request of the
   * worker's: held to its limits, charged its CPU, logged.
   */
  async call(entrypoint: string, method: string, args: RpcValue, chain: readonly string[]): Promise<RpcValue> {
    this.lastUsed = Date.now();
    this.memoryReduced = false;
    if (this.reducing) await this.reducing;
    const what = `${entrypoint === '' ? 'default' : entrypoint}.${method}`;
    if (!this.alive) throw this.deadError(what);
    const state = new RequestContext('RPC', what, undefined, [...chain, serviceKey(this.name, entrypoint)]);
    if (this.options.watchdog.isWatching(this)) this.chargeCpu();
    else this.cpu.reset();
    this.inFlight.set(state.id, state);
    this.options.watchdog.watch(this);
    const dispatched = state.dispatched();
    let argsIn: ivm.Transferable;
    try {
      argsIn = intoIsolate(args);
    } catch (error) {
      state.status = 500;
      this.endRequest(state);
      throw new BindingError('DataCloneError', `The arguments of ${what}() could not be copied: ${error instanceof Error ? error.message : String(error)}`);
    }
    try {
      // Primitives and the arguments' copy are handed in as they are: no `arguments: { copy: true }`.
      this.enter(state, this.entries.invoke.apply(undefined, [state.id, entrypoint, method, argsIn as never, Date.now()], NO_CALLER_STACK))
        .catch((error) => {
          // Arguments another process sent that do not read: the call fails, not the worker.
          if (unreadable(error) && this.alive && state.awaitingResponse) {
            state.answer({ rpc: true, ok: false, value: RpcValue.of(`The arguments could not be read: ${(error as Error).message}`), errorName: 'DataCloneError' });
          } else {
            this.onIsolateError(error);
          }
        });
    } catch (error) {
      this.onIsolateError(error);
    }
    const result = this.alive ? await dispatched : null;
    if (result === null) {
      const error = this.deadError(what);
      if (state.status === 0) state.status = this.termination ? terminationStatus(this.termination) : 500;
      this.endRequest(state);
      throw error;
    }
    if (result === NEVER_RESPONDS) {
      state.status = 500;
      this.log('error', 'exception', `RPC ${what}: ${NEVER_RESPONDS_MESSAGE}`, { requestId: state.id });
      this.entries.end.apply(undefined, [state.id], COPYING_ARGUMENTS).catch(() => {});
      this.endRequest(state);
      throw new BindingError('Error', `${what}() will never return: it waits for something nothing can settle.`);
    }
    if (!('rpc' in result)) {
      this.terminate({ kind: 'crashed', message: 'the sandbox answered an RPC call as a request' });
      throw this.deadError(what);
    }
    if (result.ok) {
      state.status = 200;
      this.afterResponse(state);
      return result.value;
    }
    // An error crosses as its message, which the sandbox cut to a log line's length.
    const message = String(result.value.read()).slice(0, MAX_LOG_LINE_CHARS);
    if (memoryErrorIn(`${result.errorName}: ${message}`)) {
      this.terminate({ kind: 'memory', limitMb: this.limits.memoryMb });
      throw this.deadError(what);
    }
    state.status = 500;
    this.afterResponse(state);
    throw new BindingError(result.errorName, message);
  }

  /** Why a call found no isolate to run in, as the caller sees it. */
  private deadError(what: string): BindingError {
    const t = this.termination ?? { kind: 'crashed' as const, message: 'isolate is gone' };
    return new BindingError('Error', `${what}() did not complete: ${terminationResponseBody(t).trim()}`);
  }

  /**
   * Runs one scheduled event (a cron trigger) through the worker's scheduled handler, as a
   * request without a body or a response: the same CPU and memory limits, the same
   * run-to-completion and waitUntil rules, and a 'scheduled' log line when its work is over.
   * Resolves then, with the outcome. Never rejects.
   */
  async scheduled(cron: string, scheduledTime: number): Promise<ScheduledResult> {
    this.lastUsed = Date.now();
    this.memoryReduced = false;
    if (this.reducing) await this.reducing;
    const state = new RequestContext('SCHEDULED', cron, undefined, [serviceKey(this.name)], undefined, { cron, scheduledTime });
    const ended = state.whenEnded();
    const id = state.id;
    if (this.options.watchdog.isWatching(this)) this.chargeCpu();
    else this.cpu.reset();
    this.inFlight.set(id, state);
    if (!this.alive) {
      state.stopped(this.termination ?? { kind: 'crashed', message: 'isolate is gone' });
      this.endRequest(state);
      return state.scheduledResult();
    }
    this.options.watchdog.watch(this);
    const dispatched = state.dispatched();
    try {
      this.enter(state, this.entries.scheduled.apply(undefined, [id, cron, scheduledTime, Date.now()], NO_CALLER_STACK))
        .catch((error) => this.onIsolateError(error));
    } catch (error) {
      this.onIsolateError(error);
    }
    const result = this.alive ? await dispatched : null;
    const trigger = state.trigger!;
    if (result === null) {
      // The isolate stopped (dispose() gave the event its outcome); or it was gone already.
      if (trigger.outcome === undefined) state.stopped(this.termination ?? { kind: 'crashed', message: 'isolate is gone' });
      this.endRequest(state);
    } else if (result === NEVER_RESPONDS) {
      trigger.outcome = 'exception';
      trigger.error = NEVER_RESPONDS_MESSAGE;
      this.log('error', 'exception', NEVER_RESPONDS_MESSAGE, { requestId: id });
      this.entries.end.apply(undefined, [id], COPYING_ARGUMENTS).catch(() => {});
      this.endRequest(state);
    } else if ('rpc' in result) {
      // A scheduled event answered as an RPC call: the sandbox runtime is not itself.
      result.value.release();
      this.terminate({ kind: 'crashed', message: 'the sandbox answered a scheduled event as an RPC call' });
    } else {
      if (result.noRetry === true) trigger.noRetry = true;
      if ('error' in result) {
        if (memoryErrorIn(result.error)) {
          this.terminate({ kind: 'memory', limitMb: this.limits.memoryMb });
        } else {
          trigger.outcome = 'exception';
          trigger.error = result.error.slice(0, MAX_LOG_LINE_CHARS);
          if (result.kind === 'exception') this.logException(id, result.error);
          else this.log('error', 'exception', result.error, { requestId: id });
        }
      } else {
        trigger.outcome = 'ok';
      }
      this.afterResponse(state);
    }
    await ended;
    return state.scheduledResult();
  }

  /**
   * The worker answered with its request's body, unread (`new Response(request.body)`): the
   * host sends it on directly, as workerd does, without a crossing per chunk. The sandbox hears
   * of the end (cancelResponse), which ends the request's work there.
   */
  private passThroughBody(state: RequestContext): AsyncIterable<Uint8Array> {
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      if (this.alive && !state.ended) {
        this.entries.cancelResponse.apply(undefined, [state.id, Date.now()], COPYING_ARGUMENTS).catch(() => {});
      }
      this.afterResponse(state);
    };
    const iterator: AsyncIterator<Uint8Array> = {
      next: async () => {
        if (finished) return { done: true, value: undefined };
        let next: IteratorResult<Uint8Array>;
        try {
          next = await state.nextBodyChunk();
        } catch (error) {
          finish();
          throw error;
        }
        if (next.done) finish();
        return next;
      },
      return: async () => {
        finish();
        return { done: true, value: undefined };
      },
    };
    return { [Symbol.asyncIterator]: () => iterator };
  }

  /**
   * A streamed response body: each `next()` pulls one chunk from the isolate, so the isolate
   * produces only as fast as the consumer (the HTTP front waits for the socket to drain before
   * asking again). Ending early (`return()`) cancels the worker's stream. Iterable once.
   */
  private responseBody(state: RequestContext): AsyncIterable<Uint8Array> {
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      this.afterResponse(state);
      this.checkNeverResponds();
    };
    const iterator: AsyncIterator<Uint8Array> = {
      next: async () => {
        if (finished) return { done: true, value: undefined };
        if (!this.alive || state.ended) {
          finish();
          throw new Error('The worker stopped before its response body was complete.');
        }
        let chunk: unknown;
        // Its promise settles when the worker's stream has a chunk, not when the call returns, so
        // it does not join `running`: it is charged like a call that returned.
        this.returned.add(state);
        try {
          chunk = await this.entries.pullResponse.apply(undefined, [state.id, Date.now()], {
            ...NO_CALLER_STACK,
            arguments: { copy: true },
            result: { promise: true, copy: true },
          });
          if (typeof chunk === 'number') {
            // A large chunk, copied out by a call of its own: what ran so far is the worker's
            // (its stream's work), the copy is the platform's and charged to no request.
            this.chargeCpu();
            const taken = await this.enter(PLATFORM, this.entries.takeResponseChunk.apply(undefined, [state.id], {
              ...UNBUDGETED,
              ...NO_CALLER_STACK,
              arguments: { copy: true },
              result: { externalCopy: true },
            })) as ivm.ExternalCopy<ArrayBuffer | string | null>;
            this.chargeCpu();
            // The copy made in the isolate becomes this side's buffer as it is: copied again here,
            // this thread (the one every isolate's traffic goes through) paid a second copy into
            // fresh memory per chunk (bench/bodies.ts).
            chunk = taken.copy({ release: true, transferIn: true });
            // Cancelled in between: what was sent is not the whole body.
            if (chunk === null) throw new Error('the response was cancelled');
          }
        } catch (error) {
          finish();
          this.onIsolateError(error);
          throw new Error(`The worker's response body failed: ${error instanceof Error ? error.message : String(error)}`);
        }
        if (chunk === null || chunk === undefined) {
          finish();
          return { done: true, value: undefined };
        }
        if (typeof chunk === 'object' && 'error' in chunk) {
          const text = String((chunk as { error: unknown }).error);
          if (memoryErrorIn(text)) this.terminate({ kind: 'memory', limitMb: this.limits.memoryMb });
          else this.logException(state.id, text);
          finish();
          throw new Error('The worker\'s response body stream failed.');
        }
        if (typeof chunk === 'string') return { done: false, value: Buffer.from(chunk) };
        const bytes = chunk instanceof Uint8Array ? chunk : ArrayBuffer.isView(chunk) ? new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength) : new Uint8Array(chunk as ArrayBuffer);
        return { done: false, value: bytes };
      },
      return: async () => {
        if (!finished && this.alive && !state.ended) {
          this.entries.cancelResponse.apply(undefined, [state.id, Date.now()], COPYING_ARGUMENTS).catch(() => {});
        }
        finish();
        return { done: true, value: undefined };
      },
    };
    return { [Symbol.asyncIterator]: () => iterator };
  }

  private afterResponse(state: RequestContext): void {
    if (state.ended) return;
    this.checkMemory();
    const over = state.responded(WAIT_UNTIL_MS, () => {
      if (!this.alive) return;
      this.log('warn', 'limit', `waitUntil() work was still running ${WAIT_UNTIL_MS / 1000} s after the response and was cancelled.`, { requestId: state.id });
      this.entries.end.apply(undefined, [state.id], COPYING_ARGUMENTS).catch(() => {});
      this.endRequest(state);
    });
    if (over) this.endRequest(state);
  }

  /**
   * The client went away: the worker's request.signal fires. Its work may go on (to log, or in
   * waitUntil) for as long as waitUntil work may after a response, then the request is ended.
   */
  private abortRequest(state: RequestContext): void {
    if (state.ended || !this.alive) return;
    state.clientLeft(WAIT_UNTIL_MS, () => {
      if (!this.alive) return;
      this.entries.end.apply(undefined, [state.id], COPYING_ARGUMENTS).catch(() => {});
      this.endRequest(state);
    });
    this.entries.abort.apply(undefined, [state.id, Date.now()], COPYING_ARGUMENTS).catch(() => {});
  }

  /** A request's work is over: final CPU charge, timers cancelled, summary logged. */
  private endRequest(state: RequestContext): void {
    if (state.ended) return;
    if (this.alive) this.chargeCpu(state);
    if (this.inline) {
      if (state.cpuNs + state.pendingCpuNs <= this.inline.maxRunNs) this.quickRequests++;
      else this.quickRequests = 0;
    }
    const timerIds = state.finish()!;
    for (const timerId of timerIds) this.timers.delete(timerId);
    this.inFlight.delete(state.id);
    this.checkNeverResponds();
    // Heap statistics that had not come when the response was checked are there by now (see checkMemory).
    if (this.heapStatisticsAsked !== undefined) this.checkMemory();
    const { level, type, message, fields } = state.summary();
    this.log(level, type, message, fields);
  }

  /**
   * A call into the isolate for `state` (undefined: for no request in flight) begins; it is
   * `running` until its promise settles, which isolated-vm does once the call and the microtasks
   * it queued have run.
   */
  private enter<T>(state: RequestContext | undefined, call: Promise<T>): Promise<T> {
    const entry = state ?? STRAY;
    this.running.push(entry);
    this.lastEntered = call;
    call.then(() => this.leave(entry), () => {
      this.failedCall = entry;
      this.leave(entry);
    });
    return call;
  }

  /** A call into the isolate for `entry` returned (enter's, or an inline run's). */
  private leave(entry: RequestContext): void {
    const at = this.running.indexOf(entry);
    if (at === 0) this.running.shift();
    else if (at > 0) this.running.splice(at, 1);
    if (this.running.length === 0) this.lastEntered = undefined;
    if (this.unarmed.size > 0) this.armTimers();
    this.callsReturned++;
    this.returned.add(entry);
    this.checkNeverResponds();
  }

  /**
   * Whether the next request may start on this thread (inline-runs.ts): the gate allows the
   * worker, and the isolate has nothing running or queued (its thread would hold its lock, and
   * this thread would wait for it, holding up every other tenant).
   */
  private mayRunInline(): boolean {
    return this.running.length === 0 && this.wantsInline() && (this.isolate as NativeContainment).idle === true;
  }

  /** Whether the gate would let the worker's next request start inline, if the isolate were idle. */
  private wantsInline(): boolean {
    return this.inline !== undefined && this.loadingCpuNs === undefined && this.inline.allows(this.name, this.quickRequests, this.limits.cpuMs);
  }

  /**
   * `run` calls into the isolate on this thread for `state` and returns once the call and the
   * microtasks it queued have run (enter's bookkeeping, at once); the CPU it used tells the gate
   * whether the worker keeps running inline.
   */
  private enterInline(state: RequestContext, run: () => void): void {
    this.running.push(state);
    state.inlineRun = ++this.inlineRuns;
    // The isolate is idle: its clock is cheap to read (0.2 µs, against 2 µs while another thread runs it).
    const before = this.isolate.cpuTime;
    const credited = this.creditedNs;
    let failure: { error: unknown } | undefined;
    try {
      run();
    } catch (error) {
      failure = { error };
      this.failedCall = state;
    }
    // A run the native watchdog ended used the whole limit, whatever the clock of a disposed
    // isolate says; a module's first use is the platform's, as for the request's charge.
    const used = this.isolate.isDisposed ? this.limits.cpuMs * 1e6 : Number(this.isolate.cpuTime - before) - (this.creditedNs - credited);
    if (!this.inline!.ran(this.name, used)) this.quickRequests = 0;
    this.leave(state);
    if (failure) this.onIsolateError(failure.error);
  }

  /**
   * Who pays for CPU measured now: the requests whose calls returned since the last charge and
   * the request of the call running now. Requests that only wait (queued calls, parked
   * promises) pay nothing. PLATFORM among them takes its share, which nobody pays. Empty when
   * what ran belongs to no request in flight.
   */
  private chargeTargets(): RequestContext[] {
    const targets: RequestContext[] = [];
    for (const state of this.returned) if (!state.ended || state === PLATFORM) targets.push(state);
    this.returned.clear();
    const running = this.running[0] === PLATFORM ? PLATFORM : this.runningRequest();
    if (running && !targets.includes(running)) targets.push(running);
    return targets;
  }

  /**
   * The request whose call the native watchdog ended: that call has failed by the time its error
   * is handled, so it is no longer `running`, but the request is still in flight.
   */
  private killedRequest(): RequestContext | undefined {
    const entry = this.failedCall;
    return entry !== undefined && !entry.ended ? entry : undefined;
  }

  /** The request whose call into the isolate runs now, if that request is still in flight (STRAY counts as ended). */
  private runningRequest(): RequestContext | undefined {
    const head = this.running[0];
    return head !== undefined && !head.ended ? head : undefined;
  }

  /**
   * CPU that ran for no request in flight. The stray budget is per call: CPU of calls that
   * returned meanwhile starts it afresh, so only a call that runs on (a loop nobody awaits) can
   * use it up.
   */
  private chargeStray(ns: number): void {
    if (this.strayCallSeen !== this.callsReturned) this.strayCpuNs = 0;
    this.strayCallSeen = this.callsReturned;
    this.strayCpuNs += ns;
  }

  /**
   * Charges the CPU the isolate used since the last measurement, at a request's edge (see
   * chargeTargets for who pays). The watchdog measures and applies in two steps every few
   * milliseconds (see CpuWatchdog.tick), so that it can bound all isolates' claims together;
   * only the tick stops an isolate.
   */
  chargeCpu(final?: RequestContext): void {
    const delta = this.measureCpu();
    if (delta <= 0) return;
    this.options.watchdog.claim(delta);
    if (this.loadingCpuNs !== undefined) {
      this.loadingCpuNs += delta;
      return;
    }
    const targets = this.chargeTargets();
    if (final && !final.ended && !targets.includes(final)) targets.push(final);
    if (targets.length === 0) return this.chargeStray(delta);
    const share = delta / targets.length;
    for (const state of targets) if (state !== PLATFORM) state.pendingCpuNs += share;
    if (final && final.cpuNs + final.pendingCpuNs > this.limits.cpuMs * 1e6) {
      // The request's work is already over (this is its closing charge): stopping the isolate
      // now could not stop that work, only fail others. The watchdog stops work that runs on
      // past the limit within one tick; what is left is at most a tick's overrun.
      const usedMs = (final.cpuNs + final.pendingCpuNs) / 1e6;
      this.log('warn', 'limit', `Request went over its CPU time limit by its end (${usedMs.toFixed(1)} ms of ${this.limits.cpuMs} ms, unbounded edge measurement); its response was already complete.`, { requestId: final.id, limit: 'cpu', usedMs, limitMs: this.limits.cpuMs });
    }
  }

  /**
   * Host CPU spent for the worker: charged to its request, to the top-level code while it
   * loads, or to the stray budget. The watchdog's next tick enforces the limit (not this call,
   * which may run inside a call from the isolate).
   */
  private chargeHostCpu(state: RequestContext | undefined, ns: number): void {
    if (!(ns > 0) || !this.alive) return;
    if (this.loadingCpuNs !== undefined) this.loadingCpuNs += ns;
    else if (state && !state.ended) state.cpuNs += ns;
    else this.strayCpuNs += ns;
    this.options.watchdog.watch(this);
  }

  /**
   * Looks, once the host has handled what the isolate's last call sent it (an event-loop turn
   * later, twice: workerd waits for its thread to be idle too), for requests that can never be
   * answered: no response yet and nothing pending that could run the isolate again.
   */
  private checkNeverResponds(): void {
    if (this.neverRespondsCheck || this.inFlight.size === 0) return;
    const look = (again: boolean, seen: number) => {
      this.neverRespondsCheck = undefined;
      if (!this.alive || this.mayRunAgain()) return;
      const waiting = [...this.inFlight.values()].filter((state) => state.awaitingResponse);
      if (waiting.length === 0) return;
      if (again) {
        const runs = this.inlineRuns;
        this.neverRespondsCheck = setImmediate(() => look(false, runs));
        return;
      }
      // What an inline run posts to this thread arrives with the next turn's I/O: a request
      // whose inline run came after the first look may not have had its answer delivered yet.
      let recent = false;
      for (const state of waiting) {
        if (state.inlineRun > seen) recent = true;
        else state.answer(NEVER_RESPONDS);
      }
      if (recent) this.checkNeverResponds();
    };
    this.neverRespondsCheck = setImmediate(() => look(true, 0));
  }

  /** Whether anything pending could run code in the isolate again (see never-responds.ts). */
  private mayRunAgain(): boolean {
    if (this.running.length > 0 || this.pendingCalls > 0 || this.timers.size > 0 || this.loadingCpuNs !== undefined) return true;
    for (const state of this.inFlight.values()) if (state.keepsIsolateBusy) return true;
    return false;
  }

  measureCpu(): number {
    return this.isolate.isDisposed ? 0 : this.cpu.take();
  }

  /**
   * The watchdog's tick: `delta` is this isolate's bounded share; `scale` bounds the pending
   * edge charges too. Returns false once the isolate is idle (nothing in flight, nothing
   * loading, no call running and no CPU used since the last tick), to be watched no more.
   */
  applyCpu(delta: number, scale: number): boolean {
    if (this.isolate.isDisposed) {
      if (!this.termination) this.terminate(this.externalTermination());
      return false;
    }
    if (this.loadingCpuNs !== undefined) {
      this.loadingCpuNs += delta;
      if (this.loadingCpuNs > this.limits.startupCpuMs * 1e6) {
        this.terminate(cpuTermination(this.loadingCpuNs, this.limits, 'startup'));
        return false;
      }
      return true;
    }
    const limitNs = this.limits.cpuMs * 1e6;
    for (const state of this.inFlight.values()) {
      if (state.pendingCpuNs > 0) {
        state.cpuNs += state.pendingCpuNs * scale;
        state.pendingCpuNs = 0;
      }
    }
    const targets = this.chargeTargets();
    if (targets.length === 0) this.chargeStray(delta);
    else for (const state of targets) if (state !== PLATFORM) state.cpuNs += delta / targets.length;
    for (const state of this.inFlight.values()) {
      if (state.cpuNs > limitNs) {
        this.terminate(cpuTermination(state.cpuNs, this.limits, 'request'));
        return false;
      }
    }
    if (this.strayCpuNs > limitNs) {
      this.terminate(cpuTermination(this.strayCpuNs, this.limits, 'stray'));
      return false;
    }
    if (delta === 0 && this.inFlight.size === 0 && this.running.length === 0) {
      // Idle: no longer watched from here; the native budget still holds for any code V8 runs
      // on its own (FinalizationRegistry callbacks).
      this.strayCpuNs = 0;
      return false;
    }
    return true;
  }

  /**
   * Arms the native watchdog (native/isolated-vm/watchdog.patch): no single run of the isolate,
   * a call into it or a task V8 posted, may use more than `ms` of CPU (plus a tick, so that
   * when the event loop runs, the watchdog here acts first and logs exactly what was used).
   * It is the backstop that needs no event loop: it holds while a flood of calls starves the
   * loop, and for code that runs with no request to charge. The precise accounting per request,
   * across calls, is the event loop's watchdog's (applyCpu). 0 disarms it.
   */
  private setNativeBudget(ms: number): void {
    if (this.nativeBudget && !this.isolate.isDisposed) (this.isolate as NativeContainment).setCpuBudget!(ms > 0 ? ms * 1e6 + NATIVE_BUDGET_SLACK_NS : 0);
  }

  /** Why the isolate was disposed when nothing here disposed it: the native CPU watchdog, or V8's heap limit. */
  private externalTermination(): Termination {
    if ((this.isolate as NativeContainment).cpuLimitHit === true) {
      const running = this.runningRequest() ?? this.killedRequest();
      const phase = this.loadingCpuNs !== undefined ? 'startup' : running ? 'request' : 'stray';
      const used = phase === 'startup' ? this.loadingCpuNs! : running ? running.cpuNs + running.pendingCpuNs : this.strayCpuNs;
      const limit = phase === 'startup' ? this.limits.startupCpuMs * 1e6 : this.limits.cpuMs * 1e6;
      // The native watchdog stopped a run that went past the limit, before this event loop's
      // watchdog could charge all of it: the request is charged what its limit line says, so
      // its own line and the CPU metrics do not show less than it was killed for.
      if (running && used < limit) running.cpuNs += limit - used;
      return cpuTermination(Math.max(used, limit), this.limits, phase);
    }
    // isolated-vm disposes an isolate that hits its heap limit itself, and a request dispatched
    // without a promise result would never hear of it.
    return { kind: 'memory', limitMb: this.limits.memoryMb };
  }

  /**
   * Gives back the heap an idle isolate no longer needs: full collections that also shrink the
   * young generation, which otherwise keeps every page a busy period touched (an isolate that
   * served a burst holds about 3 MB, against 1.2 MB for a fresh one). Needs isolet's isolated-vm
   * build (native/isolated-vm/reduce-memory.patch); undefined when there is nothing to do.
   */
  reduceMemory(): Promise<void> | undefined {
    if (this.memoryReduced || this.reducing || !this.alive || this.inFlight.size > 0 || this.loadingCpuNs !== undefined) return undefined;
    const isolate = this.isolate as ivm.Isolate & { reduceMemory?: () => Promise<void> };
    if (typeof isolate.reduceMemory !== 'function') return undefined;
    // Decide on a measurement taken since the isolate was last used; the next sweep comes back.
    if (this.measuredAt < this.lastUsed) {
      this.measure();
      return undefined;
    }
    this.memoryReduced = true;
    if (this.floorBytes !== undefined && this.heldBytes - this.floorBytes < REDUCE_MIN_GAIN_BYTES) return undefined;
    // A failed reduction (the isolate disposed meanwhile) is nothing to report.
    this.reducing = isolate.reduceMemory().then(
      () => {
        this.reducing = undefined;
        this.floorPending = true;
        this.measure();
      },
      () => void (this.reducing = undefined),
    );
    return this.reducing;
  }

  /** The isolate's heap as V8 reports it, in bytes. */
  async memoryUsage(): Promise<IsolateMemoryUsage> {
    const stats = await this.isolate.getHeapStatistics();
    return {
      heapTotal: stats.total_heap_size,
      heapPhysical: stats.total_physical_size,
      heapUsed: stats.used_heap_size,
      external: stats.externally_allocated_size,
    };
  }

  /** Updates `heldBytes`: from statistics a request's task took (see checkMemory), or with one heap-statistics task on the isolate's thread. */
  measure(): void {
    if (!this.alive || this.measuring) return;
    // Statistics a request asked for that came after its check (see checkMemory) are a check too.
    const now = performance.now();
    const taken = this.takenHeapStatistics(now);
    if (taken !== undefined && taken !== 'pending') {
      this.lastMemoryCheck = now;
      return this.checkedMemory(taken);
    }
    this.measuring = true;
    this.isolate.getHeapStatistics().then(
      (stats) => {
        this.measuring = false;
        this.measured(stats);
      },
      () => void (this.measuring = false),
    );
  }

  private measured(stats: HeapReading): void {
    if (!this.alive) return;
    const previous = this.heldBytes;
    this.heldBytes = stats.total_physical_size + stats.externally_allocated_size;
    this.measuredAt = Date.now();
    if (this.floorPending) {
      this.floorPending = false;
      this.floorBytes = this.heldBytes;
    }
    this.options.onMeasured?.(this, previous);
  }

  /**
   * The heap limit is enforced by V8 as code runs; what this adds is ArrayBuffer memory kept
   * across requests. Throttled: a heap-statistics task per request would cost throughput. With
   * isolet's isolated-vm build the statistics come with the request's own task (askHeapStatistics),
   * so the check is no task of its own: for a tenant served every few seconds that task was a
   * second hop to an isolate thread and back after every request (docs/BENCHMARKS.md, "A memory
   * check that comes with the request").
   */
  private checkMemory(): void {
    if (this.memoryCheckPending || !this.alive) return;
    const now = performance.now();
    if (now - this.lastMemoryCheck < MEMORY_CHECK_INTERVAL_MS) return;
    const taken = this.takenHeapStatistics(now);
    // The response can come back (a call from the isolate) while its task is still running: the
    // statistics asked for come with that task's end, before the request's end is reported, which
    // checks again (endRequest); failing that, the next request's check reads them.
    if (taken === 'pending') return;
    this.lastMemoryCheck = now;
    if (taken !== undefined) return this.checkedMemory(taken);
    this.memoryCheckPending = true;
    this.isolate.getHeapStatistics().then(
      (stats) => {
        this.memoryCheckPending = false;
        this.checkedMemory(stats);
      },
      () => {
        this.memoryCheckPending = false;
      },
    );
  }

  private checkedMemory(stats: HeapReading): void {
    this.measured(stats);
    const used = stats.used_heap_size + stats.externally_allocated_size;
    if (used > this.limits.memoryMb * MB) {
      this.terminate({ kind: 'memory', usedMb: used / MB, limitMb: this.limits.memoryMb });
    }
  }

  /**
   * As a request starts, when a memory check will be due once it has answered, asks for the
   * isolate's heap statistics to be taken at the end of its next task (isolet's isolated-vm build:
   * native/isolated-vm/zzzzzzz-taken-heap-statistics.patch).
   */
  private askHeapStatistics(): void {
    if (this.heapStatisticsAsked !== undefined) return;
    const now = performance.now();
    if (now - this.lastMemoryCheck < MEMORY_CHECK_INTERVAL_MS) return;
    const native = this.isolate as NativeContainment;
    if (typeof native.wantHeapStatistics !== 'function') return;
    this.heapStatisticsAsked = { taken: native.takenHeapStatistics?.taken ?? 0, at: now };
    native.wantHeapStatistics();
  }

  /**
   * The heap statistics taken since askHeapStatistics asked for them; 'pending' while they may
   * still come (HEAP_STATISTICS_WAIT_MS); undefined when they were not asked for or did not come
   * (the check then asks the isolate).
   */
  private takenHeapStatistics(now: number): HeapReading | 'pending' | undefined {
    const asked = this.heapStatisticsAsked;
    if (asked === undefined) return undefined;
    const taken = (this.isolate as NativeContainment).takenHeapStatistics;
    if (taken !== undefined && taken.taken > asked.taken) {
      this.heapStatisticsAsked = undefined;
      return taken;
    }
    if (now - asked.at < HEAP_STATISTICS_WAIT_MS) return 'pending';
    this.heapStatisticsAsked = undefined;
    return undefined;
  }

  /** Stops the isolate for good; requests in flight get the termination's response. */
  terminate(termination: Termination): void {
    if (this.termination) return;
    this.termination = termination;
    if (termination.kind === 'cpu' || termination.kind === 'memory' || termination.kind === 'crashed') {
      this.log('error', 'limit', describeTermination(termination), { limit: termination.kind, ...termination });
    }
    this.dispose();
  }

  dispose(): void {
    this.options.watchdog.unwatch(this);
    this.setNativeBudget(0);
    // Also when isolated-vm disposed it (its memory limit): its teardown is waited for all the same.
    this.teardown ??= disposeIsolate(this.isolate);
    for (const state of [...this.inFlight.values()]) {
      // A request with no response yet gets the termination's (see deadResponse): its log line
      // says what the client got, not 0.
      if (state.status === 0) state.status = this.termination ? terminationStatus(this.termination) : 500;
      if (this.termination) state.stopped(this.termination);
      this.endRequest(state);
    }
    for (const callback of this.onDisposed.splice(0)) callback();
  }

  /** Terminates once the requests in flight are done (a new version replaced this one). */
  retire(): void {
    if (this.inFlight.size === 0) return this.terminate({ kind: 'replaced' });
    const check = setInterval(() => {
      if (this.inFlight.size === 0 || !this.alive) {
        clearInterval(check);
        this.terminate({ kind: 'replaced' });
      }
    }, 50);
    check.unref();
  }

  private onIsolateError(error: unknown): void {
    if (this.termination) return;
    const message = error instanceof Error ? error.message : String(error);
    if ((this.isolate as NativeContainment).cpuLimitHit === true) {
      this.terminate(this.externalTermination());
    } else if (this.isolate.isDisposed) {
      // Only a disposed isolate was stopped: a live one's error may be any value of the tenant's
      // (an unhandled rejection's reason), whose message says whatever the tenant wrote.
      this.terminate(/memory limit/i.test(message) ? { kind: 'memory', limitMb: this.limits.memoryMb } : { kind: 'crashed', message });
    } else {
      // A call's error that stopped nothing: a promise rejection left unhandled (isolated-vm
      // reports one as the error of the task it was left in), logged as workerd logs it, for
      // the request whose call it was.
      const request = this.failedCall;
      this.logException(request !== undefined && request !== STRAY && request !== PLATFORM ? request.id : 0, `(in promise) ${isolateSide(error)}`);
    }
  }

  private deadResponse(): RuntimeResponse {
    const t = this.termination ?? { kind: 'crashed' as const, message: 'isolate is gone' };
    return textResponse(terminationStatus(t), terminationResponseBody(t));
  }

  /** Every entry of the worker's: messages that come out of the isolate (console lines, errors) are cut to one line. */
  private log(level: LogLevel, type: WorkerLogEntry['type'], message: string, fields: Record<string, unknown> = {}): void {
    this.options.log({ time: new Date().toISOString(), worker: this.name, level, type, message: String(message).slice(0, MAX_LOG_LINE_CHARS), ...fields });
  }
}

/**
 * What a value thrown in the isolate says of itself, as the isolate saw it: an Error's stack up
 * to where isolated-vm joined the host's frames to it, or the value as text.
 */
function isolateSide(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const stack = typeof error.stack === 'string' ? error.stack : '';
  if (stack === '') return `${error.name}: ${error.message}`;
  const boundary = stack.indexOf('\n    at (<isolated-vm boundary>)');
  return boundary === -1 ? stack : stack.slice(0, boundary);
}

/** What isolet's isolated-vm build adds to an isolate (native/isolated-vm/watchdog.patch); absent on the prebuilt binary. */
interface NativeContainment {
  setCpuBudget?(ns: number): void;
  readonly cpuLimitHit?: boolean;
  setFatalLabel?(label: string): void;
  /** Nothing queued for the isolate and no thread running it (native/isolated-vm/zzzz-idle.patch). */
  readonly idle?: boolean;
  /** Asks for heap statistics to be taken at the end of the isolate's next task (native/isolated-vm/zzzzzzz-taken-heap-statistics.patch). */
  wantHeapStatistics?(): void;
  /** The heap statistics last taken so, and how many takings there have been. */
  readonly takenHeapStatistics?: HeapReading & { taken: number };
}

/** What the memory check and the isolate's held bytes read of its heap statistics. */
type HeapReading = Pick<ivm.HeapStatistics, 'used_heap_size' | 'total_physical_size' | 'externally_allocated_size'>;

/**
 * The most a sandbox module's first use is credited (see hostCalls' loadModule). One measures
 * 1-3 ms here (a first request using ten lazy APIs: 13-18 ms in all), several times that on a
 * busy machine. Tenant code can run inside the span (an accessor it added to a prototype, read
 * by a library's top-level code), so what it is credited is bounded: at most this per module,
 * each loaded once per isolate.
 */
const MAX_MODULE_LOAD_CREDIT_NS = 20e6;

/** The native budget is this much past the limit, so that the event loop's watchdog normally acts first and logs precisely. */
const NATIVE_BUDGET_SLACK_NS = 5e6;

/**
 * Apply options of a PLATFORM call: isolet's isolated-vm build does not hold it to the native
 * CPU budget (the `cpuBudget` option, native/isolated-vm/watchdog.patch). It copies a piece of a
 * body into fresh memory, 5 ms a MiB in page faults on a VM and many times that on a busy host,
 * and runs no tenant code: a worker must not be ended for it. The run's other calls stay held to
 * the budget. A stock build ignores the option.
 */
const UNBUDGETED = { cpuBudget: false } as const;

/**
 * Apply options of the calls into the sandbox a request makes: the call keeps none of this
 * thread's stack (the `callerStack` option of isolet's isolated-vm build,
 * native/isolated-vm/zzzzzz-caller-stack.patch). isolated-vm takes 10 frames of it to decorate
 * the call's error, which isolet never shows (isolateSide cuts at the isolate's boundary), and
 * taking it was about 7% of the serving thread's CPU per request (docs/BENCHMARKS.md, "A call's
 * caller stack"). A stock build ignores the option.
 */
const NO_CALLER_STACK: ivm.ReferenceApplyOptions = { callerStack: false } as ivm.ReferenceApplyOptions & { callerStack: boolean };
const COPYING_ARGUMENTS: ivm.ReferenceApplyOptions = { ...NO_CALLER_STACK, arguments: { copy: true } };

/** Stands for calls into the isolate that run for no request in flight (a response stream's end, top-level work). */
const STRAY = Object.freeze({ ended: true }) as unknown as RequestContext;
/**
 * Stands for calls into the isolate that do the platform's work and run no tenant code (copying
 * a response chunk out): their CPU is charged to no request and not to the stray budget.
 */
const PLATFORM = Object.freeze({ ended: true }) as unknown as RequestContext;

/** The implementation of host operation `op` if it is one of the `mode` the call asked for. */
function operationOf(op: string, mode: 'sync' | 'async'): SyncOp | AsyncOp | undefined {
  return Object.hasOwn(OPERATION_MODES, op) && OPERATION_MODES[op as keyof typeof OPERATION_MODES] === mode
    ? operations[op as keyof typeof operations]
    : undefined;
}

function textResponse(status: number, text: string): RuntimeResponse {
  return {
    status,
    statusText: STATUS_CODES[status] ?? '',
    headers: [['content-type', 'text/plain;charset=UTF-8']],
    body: Buffer.from(text),
  };
}

/** Out-of-memory conditions V8 reports as catchable errors rather than by killing the isolate. */
function memoryErrorIn(text: string): boolean {
  return /^RangeError: (Array buffer allocation failed|Invalid string length|Invalid array buffer length)/.test(text);
}

function toAsyncIterator(body: AsyncIterable<Uint8Array> | Uint8Array | string): AsyncIterator<Uint8Array> {
  if (typeof body === 'string') body = Buffer.from(body);
  if (body instanceof Uint8Array) {
    const bytes = body;
    let done = false;
    return {
      async next() {
        if (done || bytes.byteLength === 0) return { done: true, value: undefined };
        done = true;
        return { done: false, value: bytes };
      },
    };
  }
  return body[Symbol.asyncIterator]();
}

/** An error's stack without isolated-vm's own frames. */
export function cleanStack(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const stack = error.stack ?? `${error.name}: ${error.message}`;
  // The first line is the message, whatever it names (a 'node:fs' import, say); the frames
  // after it lose the host's own.
  const [first, ...frames] = stack.split('\n');
  return [first, ...frames.filter((line) => !line.includes('<isolated-vm') && !line.includes('file://') && !line.includes('node:'))].join('\n');
}

const ignore = (): void => {};
