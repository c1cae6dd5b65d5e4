// A runtime process: one Runtime serving the workers the control process sends it, over the
// channel on fd 3. It holds no store, no secrets key and no admin API; it knows a worker only
// from the definition it was sent. It ignores SIGINT and SIGTERM (the control process drains it
// with a message, after the front has let requests in flight finish) and exits when the channel
// closes, so it never outlives the control process.

import { Socket } from 'node:net';
import { stop as stopEsbuild } from 'esbuild';
import { Runtime, UnknownWorkerError } from '../runtime/runtime.ts';
import { BindingError, WorkerLoadError, type BindingAnswer, type BindingHost, type RuntimeResponse, type WorkerLogEntry } from '../runtime/types.ts';
import { IncomingBody, OutgoingBody } from './body-stream.ts';
import { Channel } from './channel.ts';
import { reportStats, WorkerStats } from '../observability/worker-stats.ts';
import { relayedRequestTrace } from '../observability/tracing.ts';
import { queuedTooMuch, WHOLE_BODY_BYTES, type CallError, type CallHead, type CallOutcomeHead, type Message, type RequestHead, type ScheduledHead } from './messages.ts';
import { decodeRpcValue, encodeRpcValue } from './rpc-values.ts';
import { ServiceClient } from './service-client.ts';

interface Served {
  controller: AbortController;
  body: IncomingBody | null;
  response: OutgoingBody | undefined;
}

const served = new Map<number, Served>();
/** RPC calls to this process's workers in flight. */
let calls = 0;
let runtime: Runtime | undefined;
let validator: Runtime | undefined;
let draining = false;
/** Stops the stats timer and sends what it has counted since its last batch. */
let flushStats: (() => void) | undefined;
/** Whether the requests' subrequests are reported to the control process as spans. */
let tracing = false;

/** Binding calls forwarded to the control process and not yet answered, by the id this process gave them. */
const bindingCalls = new Map<number, { resolve: (answer: BindingAnswer) => void; reject: (error: Error) => void }>();
let nextBindingCall = 1;
const NO_BYTES = new Uint8Array(0);

/**
 * Platform bindings are answered by the control process (src/server/binding-handlers.ts): this
 * process sends only the names, and the control process resolves them against what it deployed
 * here, so a process that lies gets no more than its own workers' bindings.
 */
const forwardBindings: BindingHost = {
  call(call) {
    return new Promise((resolve, reject) => {
      const id = nextBindingCall;
      nextBindingCall = id >= 0xffffffff ? 1 : id + 1;
      bindingCalls.set(id, { resolve, reject });
      // The worker stopped waiting: the answer, when it comes, is dropped.
      call.signal.addEventListener('abort', () => {
        if (bindingCalls.delete(id)) reject(new BindingError('Error', 'The binding call was cancelled.'));
      }, { once: true });
      const { worker, name, method, args, bytes } = call;
      if (bytes !== undefined && !channel.hasRoomFor(bytes.byteLength)) {
        bindingCalls.delete(id);
        return reject(queuedTooMuch());
      }
      channel.send('bindingCall', id, { head: { worker, name, method, args, bytes: bytes !== undefined }, body: bytes ?? NO_BYTES });
    });
  },
};

const channel = new Channel(new Socket({ fd: 3, readable: true, writable: true }), 'runtime', {
  message: onMessage,
  error(error) {
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', type: 'runtime-process', message: `channel to the control process failed: ${error.message}` }) + '\n');
    exitClosed(1);
  },
  close: () => exitClosed(0),
});

/** How long a process whose channel is gone waits for its isolates to be torn down before it exits anyway. */
const CLOSE_GRACE_MS = 2000;

/**
 * Exits once the isolates are torn down (or after CLOSE_GRACE_MS): a process that exits while
 * an isolate's thread runs ends in a segmentation fault, which the control process would count
 * as a crash of the requests in flight (their tenants' toward quarantine) rather than a channel
 * that went away.
 */
function exitClosed(code: number): void {
  const timer = setTimeout(() => process.exit(code), CLOSE_GRACE_MS);
  timer.unref();
  void closeRuntimes().finally(() => process.exit(code));
}

/** Tears down both Runtimes' isolates (resolves once every teardown is over). */
function closeRuntimes(): Promise<unknown> {
  return Promise.all([runtime?.close(), validator?.close()]);
}

/** Where this process's workers' service-binding calls go: the control process. */
const services = new ServiceClient(channel);

process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});

function onMessage(message: Message): void {
  switch (message.name) {
    case 'init': {
      const { limits, maxIsolates, memoryBudgetMb, egress, reduceIdleMemoryAfterMs, spareIsolates } = message.payload;
      tracing = message.payload.tracing === true;
      const stats = new WorkerStats();
      const log = (entry: WorkerLogEntry) => {
        stats.log(entry);
        channel.send('log', 0, entry);
      };
      runtime = new Runtime({ limits, maxIsolates, memoryBudgetMb, egress, reduceIdleMemoryAfterMs, spareIsolates, bindingHost: forwardBindings, serviceHost: services, log, isolateEvents: stats });
      flushStats = reportStats(stats, runtime, (batch) => channel.send('stats', 0, batch));
      // Uploads are tried apart from the serving Runtime, and their top-level logs go nowhere: the upload may never serve.
      validator = new Runtime({ limits, maxIsolates: 16, log: () => {} });
      // Ready means ready to serve: the runtime image is made before, not with the first request.
      // esbuild bundled the image's sources and is needed for nothing else here: its service
      // process (about 30 MB) is stopped rather than kept beside every runtime process for good.
      void runtime
        .prepare()
        .then(() => stopEsbuild())
        .catch((error: unknown) => process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'warn', type: 'runtime-process', message: `could not prepare the runtime ahead of requests: ${String(error)}` }) + '\n'))
        .finally(() => channel.send('ready', 0, undefined));
      return;
    }
    case 'load':
      return void call(message.id, () => serving().load(message.payload.name, message.payload.definition, { validate: false }));
    case 'unload':
      return void call(message.id, () => serving().unload(message.payload.name));
    case 'validate':
      return void call(message.id, async () => {
        const { name, definition } = message.payload;
        const trial = validator!;
        try {
          await trial.load(name, definition);
        } finally {
          await trial.unload(name);
        }
      });
    case 'request':
      return serve(message.id, message.payload);
    case 'requestBody':
      return served.get(message.id)?.body?.push(message.payload);
    case 'requestEnd':
      return served.get(message.id)?.body?.end();
    case 'requestAbort': {
      const request = served.get(message.id);
      request?.controller.abort();
      request?.response?.cancel();
      return;
    }
    case 'responseCredit':
      return served.get(message.id)?.response?.credit(message.payload);
    case 'responseCancel':
      return served.get(message.id)?.response?.cancel();
    case 'drain':
      draining = true;
      return drainWhenIdle();
    case 'ping':
      return channel.send('pong', 0, undefined);
    case 'memoryBudget':
      return serving().setMemoryBudget(message.payload);
    case 'scheduled':
      return runScheduled(message.id, message.payload);
    case 'call':
      return void invoke(message.id, message.payload.head, message.payload.body);
    case 'serviceResponse':
    case 'serviceResponseWhole':
    case 'serviceResponseBody':
    case 'serviceResponseEnd':
    case 'serviceResponseError':
    case 'serviceRequestCredit':
    case 'serviceCallResult':
      return services.receive(message);
    case 'bindingAnswer': {
      const call = bindingCalls.get(message.id);
      if (call === undefined) return;
      bindingCalls.delete(message.id);
      const { head, body } = message.payload;
      if (head.ok) call.resolve(head.bytes ? { value: head.value, bytes: body } : { value: head.value });
      else call.reject(new BindingError(head.error.name, head.error.message));
      return;
    }
  }
}

/** An RPC call the control process sends to one of this process's workers. */
async function invoke(id: number, head: CallHead, args: Uint8Array): Promise<void> {
  calls++;
  let outcome: { head: CallOutcomeHead; body: Uint8Array };
  try {
    // Handed to the worker's isolate unread, whose sandbox finds out whether they are a list.
    const value = await serving().callCarrying(head.worker, head.method, decodeRpcValue(args), { entrypoint: head.entrypoint, chain: head.chain });
    outcome = { head: { ok: true }, body: encodeRpcValue(value) };
  } catch (error) {
    const { name, message } = error instanceof Error ? error : { name: 'Error', message: String(error) };
    outcome = { head: { ok: false, name: name.slice(0, 128), message: message.slice(0, 16 * 1024) }, body: new Uint8Array(0) };
  } finally {
    calls--;
  }
  if (!channel.hasRoomFor(outcome.body.byteLength)) {
    const { name, message } = queuedTooMuch();
    outcome = { head: { ok: false, name, message }, body: new Uint8Array(0) };
  }
  channel.send('callResult', id, outcome);
  if (draining) drainWhenIdle();
}

function serving(): Runtime {
  if (runtime === undefined) throw new Error('the runtime process was sent work before init');
  return runtime;
}

async function call(id: number, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
    channel.send('result', id, { ok: true });
  } catch (error) {
    channel.send('result', id, { ok: false, error: callError(error) });
  }
}

function callError(error: unknown): CallError {
  if (error instanceof WorkerLoadError) return { kind: 'load', message: error.message, location: error.location };
  if (error instanceof UnknownWorkerError) return { kind: 'unknown_worker', message: error.message };
  return { kind: 'internal', message: error instanceof Error ? error.message : String(error) };
}

/** A cron trigger's event: counts as work in flight for the drain, like a request. */
function runScheduled(id: number, head: ScheduledHead): void {
  const work: Served = { controller: new AbortController(), body: null, response: undefined };
  served.set(id, work);
  serving()
    .scheduled(head.worker, { cron: head.cron, scheduledTime: head.scheduledTime })
    .then(
      (result) => channel.send('scheduledResult', id, result),
      (error: unknown) => channel.send('result', id, { ok: false, error: callError(error) }),
    )
    .finally(() => {
      served.delete(id);
      if (draining) drainWhenIdle();
    });
}

function serve(id: number, head: RequestHead): void {
  const controller = new AbortController();
  const body = head.body
    ? new IncomingBody((bytes) => channel.send('requestCredit', id, bytes), () => {})
    : null;
  const request: Served = { controller, body, response: undefined };
  served.set(id, request);
  serving()
    .fetch(head.worker, { method: head.method, url: head.url, headers: head.headers, body, signal: controller.signal, entrypoint: head.entrypoint, chain: head.chain, trace: tracing ? relayedRequestTrace(head.traceparent, (span) => channel.send('span', 0, span)) : undefined })
    .then((response) => respond(id, request, response))
    .catch((error: unknown) => {
      channel.send('responseError', id, {
        message: error instanceof Error ? error.message : String(error),
        unknownWorker: error instanceof UnknownWorkerError,
      });
    })
    .finally(() => {
      served.delete(id);
      if (draining) drainWhenIdle();
    });
}

async function respond(id: number, request: Served, response: RuntimeResponse): Promise<void> {
  const { status, statusText, headers, body } = response;
  if (body === null || (body instanceof Uint8Array && body.byteLength === 0)) {
    channel.send('response', id, { status, statusText, headers, stream: false });
    return;
  }
  if (body instanceof Uint8Array && body.byteLength <= WHOLE_BODY_BYTES) {
    channel.send('responseWhole', id, { head: { status, statusText, headers, stream: false }, body });
    return;
  }
  channel.send('response', id, { status, statusText, headers, stream: true });
  const outgoing = new OutgoingBody((chunk) => channel.send('responseBody', id, chunk));
  request.response = outgoing;
  if (await outgoing.pump(body)) channel.send('responseEnd', id, undefined);
}

function drainWhenIdle(): void {
  if (served.size > 0 || calls > 0) return;
  // The last answers may still be in the socket's buffer: exit once it has flushed them.
  void closeRuntimes().finally(() => {
    flushStats?.();
    channel.end(() => process.exit(0));
  });
}
