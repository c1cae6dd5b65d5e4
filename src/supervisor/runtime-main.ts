// A runtime process: one Runtime serving the workers the control process sends it, over the
// channel on fd 3. It holds no store, no secrets key and no admin API; it knows a worker only
// from the definition it was sent. It ignores SIGINT and SIGTERM (the control process drains it
// with a message, after the front has let requests in flight finish) and exits when the channel
// closes, so it never outlives the control process.

import { Socket } from 'node:net';
import { Runtime, UnknownWorkerError } from '../runtime/runtime.ts';
import { WorkerLoadError, type RuntimeResponse, type WorkerLogEntry } from '../runtime/types.ts';
import { IncomingBody, OutgoingBody } from './body-stream.ts';
import { Channel } from './channel.ts';
import { reportStats, WorkerStats } from '../observability/worker-stats.ts';
import { Tracing } from '../observability/tracing.ts';
import { WHOLE_BODY_BYTES, type CallError, type Message, type RequestHead } from './messages.ts';

interface Served {
  controller: AbortController;
  body: IncomingBody | null;
  response: OutgoingBody | undefined;
}

const served = new Map<number, Served>();
let runtime: Runtime | undefined;
let validator: Runtime | undefined;
let draining = false;
/** Stops the stats timer and sends what it has counted since its last batch. */
let flushStats: (() => void) | undefined;
let tracing: Tracing | undefined;

const channel = new Channel(new Socket({ fd: 3, readable: true, writable: true }), 'runtime', {
  message: onMessage,
  error(error) {
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', type: 'runtime-process', message: `channel to the control process failed: ${error.message}` }) + '\n');
    process.exit(1);
  },
  close: () => process.exit(0),
});

process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});

function onMessage(message: Message): void {
  switch (message.name) {
    case 'init': {
      const { limits, maxIsolates, memoryBudgetMb, egress, reduceIdleMemoryAfterMs } = message.payload;
      if (message.payload.tracing !== undefined) tracing = new Tracing({ ...message.payload.tracing, process: `runtime:${process.pid}` });
      const stats = new WorkerStats();
      const log = (entry: WorkerLogEntry) => {
        stats.log(entry);
        channel.send('log', 0, entry);
      };
      runtime = new Runtime({ limits, maxIsolates, memoryBudgetMb, egress, reduceIdleMemoryAfterMs, log, isolateEvents: stats });
      flushStats = reportStats(stats, runtime, (batch) => channel.send('stats', 0, batch));
      // Uploads are tried apart from the serving Runtime, and their top-level logs go nowhere: the upload may never serve.
      validator = new Runtime({ limits, maxIsolates: 16, log: () => {} });
      // Ready means ready to serve: the runtime image is made before, not with the first request.
      void runtime
        .prepare()
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
  }
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

function serve(id: number, head: RequestHead): void {
  const controller = new AbortController();
  const body = head.body
    ? new IncomingBody((bytes) => channel.send('requestCredit', id, bytes), () => {})
    : null;
  const request: Served = { controller, body, response: undefined };
  served.set(id, request);
  serving()
    .fetch(head.worker, { method: head.method, url: head.url, headers: head.headers, body, signal: controller.signal, trace: tracing?.continueRequest(head.traceparent) })
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
  if (served.size > 0) return;
  // The last answers may still be in the socket's buffer: exit once it has flushed them.
  void Promise.all([runtime?.close(), validator?.close(), tracing?.shutdown().catch(() => {})]).finally(() => {
    flushStats?.();
    channel.end(() => process.exit(0));
  });
}
