// Every message between the control process and a runtime process, declared once: its code on
// the wire, which side sends it, the shape of its payload and the check that payload passes on
// arrival. Both sides encode and decode through this table (channel.ts), so a message cannot be
// sent in one shape and read in another.
//
// What a runtime process sends is checked as hostile: a process whose V8 a tenant has broken
// may write anything on its channel, and the control process holds the store, the secrets key
// and the admin API. A message that fails its check ends that process (see process-pool.ts).

import type { EgressOptions, WorkerDefinition, WorkerLimits, WorkerLogEntry } from '../runtime/types.ts';
import { checkStatsBatch, type StatsBatch } from '../observability/worker-stats.ts';
import type { TracingOptions } from '../observability/tracing.ts';

/** How a message's payload is laid out: JSON, raw bytes, a byte count (credit), a JSON head then bytes, or nothing. */
type Layout = 'json' | 'bytes' | 'count' | 'head+bytes' | 'none';

/** What a runtime process's Runtime is made with (RuntimeOptions that are data). */
export interface InitPayload {
  limits?: Partial<WorkerLimits>;
  maxIsolates?: number;
  memoryBudgetMb?: number;
  egress?: EgressOptions;
  reduceIdleMemoryAfterMs?: number;
  /** Where the process sends the spans of its requests' subrequests (TracingOptions); none: tracing is off. */
  tracing?: Pick<TracingOptions, 'endpoint' | 'node' | 'batchDelayMs'>;
}

export interface LoadPayload {
  name: string;
  definition: WorkerDefinition;
}

export interface NamePayload {
  name: string;
}

export interface RequestHead {
  worker: string;
  method: string;
  url: string;
  headers: [string, string][];
  /** Whether body frames follow (then a requestEnd). */
  body: boolean;
  /** The W3C traceparent of the request's span, when it is traced. */
  traceparent?: string;
}

export interface ResponseHead {
  status: number;
  statusText: string;
  headers: [string, string][];
  /** Whether the body follows as frames (false: no body, or it came in the same frame). */
  stream: boolean;
}

/** A call's outcome: ok, or the error as the caller should see it. */
export type CallResult = { ok: true } | { ok: false; error: CallError };

export interface CallError {
  /** 'load': the worker's code is at fault (WorkerLoadError); 'unknown_worker'; 'internal'. */
  kind: 'load' | 'unknown_worker' | 'internal';
  message: string;
  location?: string;
}

export interface StreamError {
  message: string;
  /** The worker is not loaded in the process (unloaded while the request was on its way). */
  unknownWorker?: boolean;
}

/** Payload types by message name. */
export interface Payloads {
  // control process -> runtime process
  init: InitPayload;
  load: LoadPayload;
  unload: NamePayload;
  validate: LoadPayload;
  request: RequestHead;
  requestBody: Uint8Array;
  requestEnd: undefined;
  requestAbort: undefined;
  responseCredit: number;
  responseCancel: undefined;
  drain: undefined;
  /** Are you there? Answered by a pong (liveness.ts). */
  ping: undefined;
  // runtime process -> control process
  ready: undefined;
  result: CallResult;
  response: ResponseHead;
  responseWhole: { head: ResponseHead; body: Uint8Array };
  responseBody: Uint8Array;
  responseEnd: undefined;
  responseError: StreamError;
  requestCredit: number;
  log: WorkerLogEntry;
  pong: undefined;
  /** What the process's workers did in the last second or so (src/observability/worker-stats.ts). */
  stats: StatsBatch;
}

export type MessageName = keyof Payloads;

interface Declaration<K extends MessageName> {
  code: number;
  from: 'control' | 'runtime';
  layout: Layout;
  /** Returns the payload when it has the declared shape; throws a ProtocolError otherwise. */
  check: (value: unknown) => Payloads[K];
}

/** The largest frame either side accepts: a body chunk is at most CHUNK_BYTES, a head or a worker's code is JSON. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** Body bytes per frame. */
export const CHUNK_BYTES = 64 * 1024;

/** Body bytes a sender may have unacknowledged per stream: the receiver's buffer, and the backpressure window. */
export const STREAM_WINDOW_BYTES = 256 * 1024;

/** A response body this small or smaller travels in the head's frame. */
export const WHOLE_BODY_BYTES = CHUNK_BYTES;

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

const MAX_HEADERS = 1000;
const MAX_TEXT = 1024 * 1024;

function fail(what: string): never {
  throw new ProtocolError(`malformed message: ${what}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown, what: string, max = MAX_TEXT): string {
  if (typeof value !== 'string' || value.length > max) fail(what);
  return value;
}

function headerPairs(value: unknown): [string, string][] {
  if (!Array.isArray(value) || value.length > MAX_HEADERS) fail('headers');
  for (const pair of value) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') fail('header pair');
  }
  return value as [string, string][];
}

function checkInit(value: unknown): InitPayload {
  if (!isObject(value)) fail('init');
  return value as InitPayload;
}

function checkLoad(value: unknown): LoadPayload {
  if (!isObject(value) || !isObject(value.definition)) fail('load');
  text(value.name, 'worker name', 63);
  return value as unknown as LoadPayload;
}

function checkName(value: unknown): NamePayload {
  if (!isObject(value)) fail('name');
  text(value.name, 'worker name', 63);
  return value as unknown as NamePayload;
}

function checkRequest(value: unknown): RequestHead {
  if (!isObject(value) || typeof value.body !== 'boolean') fail('request head');
  text(value.worker, 'worker name', 63);
  text(value.method, 'method');
  text(value.url, 'url');
  headerPairs(value.headers);
  if (value.traceparent !== undefined) text(value.traceparent, 'traceparent', 55);
  return value as unknown as RequestHead;
}

function checkResponse(value: unknown): ResponseHead {
  if (!isObject(value) || typeof value.stream !== 'boolean') fail('response head');
  const status = value.status;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) fail('response status');
  text(value.statusText, 'status text', 1024);
  headerPairs(value.headers);
  return value as unknown as ResponseHead;
}

function checkWhole(value: unknown): { head: ResponseHead; body: Uint8Array } {
  if (!isObject(value) || !(value.body instanceof Uint8Array)) fail('whole response');
  return { head: checkResponse(value.head), body: value.body };
}

function checkResult(value: unknown): CallResult {
  if (!isObject(value)) fail('result');
  if (value.ok === true) return { ok: true };
  const error = value.error;
  if (value.ok !== false || !isObject(error)) fail('result');
  if (error.kind !== 'load' && error.kind !== 'unknown_worker' && error.kind !== 'internal') fail('result kind');
  const message = text(error.message, 'error message');
  const location = error.location === undefined ? undefined : text(error.location, 'error location', 1024);
  return { ok: false, error: { kind: error.kind, message, location } };
}

function checkStreamError(value: unknown): StreamError {
  if (!isObject(value)) fail('stream error');
  return { message: text(value.message, 'stream error message'), unknownWorker: value.unknownWorker === true };
}

const LEVELS = new Set(['debug', 'info', 'log', 'warn', 'error']);
const LOG_TYPES = new Set(['console', 'exception', 'limit', 'request', 'lifecycle']);

function checkLog(value: unknown): WorkerLogEntry {
  if (!isObject(value)) fail('log entry');
  text(value.time, 'log time', 64);
  text(value.worker, 'log worker', 63);
  text(value.message, 'log message');
  if (!LEVELS.has(value.level as string) || !LOG_TYPES.has(value.type as string)) fail('log level or type');
  return value as WorkerLogEntry;
}

function checkCount(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > STREAM_WINDOW_BYTES) fail('credit');
  return value;
}

function checkBytes(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array) || value.byteLength > CHUNK_BYTES) fail('body chunk');
  return value;
}

function checkNone(value: unknown): undefined {
  if (value !== undefined) fail('unexpected payload');
  return undefined;
}

type Table = { [K in MessageName]: Declaration<K> };

export const MESSAGES: Table = {
  init: { code: 1, from: 'control', layout: 'json', check: checkInit },
  load: { code: 2, from: 'control', layout: 'json', check: checkLoad },
  unload: { code: 3, from: 'control', layout: 'json', check: checkName },
  validate: { code: 4, from: 'control', layout: 'json', check: checkLoad },
  request: { code: 5, from: 'control', layout: 'json', check: checkRequest },
  requestBody: { code: 6, from: 'control', layout: 'bytes', check: checkBytes },
  requestEnd: { code: 7, from: 'control', layout: 'none', check: checkNone },
  requestAbort: { code: 8, from: 'control', layout: 'none', check: checkNone },
  responseCredit: { code: 9, from: 'control', layout: 'count', check: checkCount },
  responseCancel: { code: 10, from: 'control', layout: 'none', check: checkNone },
  drain: { code: 11, from: 'control', layout: 'none', check: checkNone },
  ping: { code: 12, from: 'control', layout: 'none', check: checkNone },
  ready: { code: 20, from: 'runtime', layout: 'none', check: checkNone },
  result: { code: 21, from: 'runtime', layout: 'json', check: checkResult },
  response: { code: 22, from: 'runtime', layout: 'json', check: checkResponse },
  responseWhole: { code: 23, from: 'runtime', layout: 'head+bytes', check: checkWhole },
  responseBody: { code: 24, from: 'runtime', layout: 'bytes', check: checkBytes },
  responseEnd: { code: 25, from: 'runtime', layout: 'none', check: checkNone },
  responseError: { code: 26, from: 'runtime', layout: 'json', check: checkStreamError },
  requestCredit: { code: 27, from: 'runtime', layout: 'count', check: checkCount },
  log: { code: 28, from: 'runtime', layout: 'json', check: checkLog },
  pong: { code: 29, from: 'runtime', layout: 'none', check: checkNone },
  stats: { code: 30, from: 'runtime', layout: 'json', check: checkStatsBatch },
};

/** One decoded message, its payload typed by its name. */
export type Message = { [K in MessageName]: { name: K; id: number; payload: Payloads[K] } }[MessageName];

export type Side = 'control' | 'runtime';

const BY_CODE = new Map<number, MessageName>();
for (const name of Object.keys(MESSAGES) as MessageName[]) BY_CODE.set(MESSAGES[name].code, name);

/** The message a code names, if the other side may send it to `receiver`. */
export function messageOf(code: number, receiver: Side): MessageName | undefined {
  const name = BY_CODE.get(code);
  return name !== undefined && MESSAGES[name].from !== receiver ? name : undefined;
}
