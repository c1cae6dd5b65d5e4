// Every message between the control process and a runtime process, declared once: its code on
// the wire, which side sends it, the shape of its payload and the check that payload passes on
// arrival. Both sides encode and decode through this table (channel.ts), so a message cannot be
// sent in one shape and read in another.
//
// What a runtime process sends is checked as hostile: a process whose V8 a tenant has broken
// may write anything on its channel, and the control process holds the store, the secrets key
// and the admin API. A message that fails its check ends that process (see process-pool.ts).

import { BindingError, type EgressOptions, type JsonValue, type ScheduledResult, type WorkerDefinition, type WorkerLimits, type WorkerLogEntry } from '../runtime/types.ts';
import { BINDING_LIMITS, ENV_NAME } from '../bridge/bindings.ts';
import { jsonProblem } from '../api/bindings/checks.ts';
import { checkStatsBatch, type StatsBatch } from '../observability/worker-stats.ts';
import type { SubrequestSpan } from '../observability/tracing.ts';

/** How a message's payload is laid out: JSON, raw bytes, a byte count (credit), a JSON head then bytes, or nothing. */
type Layout = 'json' | 'bytes' | 'count' | 'head+bytes' | 'none';

/** What a runtime process's Runtime is made with (RuntimeOptions that are data). */
export interface InitPayload {
  limits?: Partial<WorkerLimits>;
  maxIsolates?: number;
  memoryBudgetMb?: number;
  egress?: EgressOptions;
  reduceIdleMemoryAfterMs?: number;
  /** Isolates made ahead of demand (RuntimeOptions.spareIsolates). */
  spareIsolates?: number;
  /** Whether the process reports its traced requests' subrequests (`span` messages); the control process exports them. */
  tracing?: boolean;
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
  /** For a service binding's request: the named entrypoint that answers, and the chain of calls it came through. */
  entrypoint?: string;
  chain?: string[];
  /** The W3C traceparent of the request's span, when it is traced. */
  traceparent?: string;
}

/**
 * A service-binding call a runtime process asks the control process to make: who calls, through
 * which of its bindings, and the chain the caller's request came through. The binding's target is
 * looked up by the control process in what it deployed, never taken from here.
 */
export interface ServiceCaller {
  worker: string;
  binding: string;
  chain: string[];
}

/** `env.NAME.fetch()` from a runtime process: the caller and the request's head; body frames follow when `body`. */
export interface ServiceRequestHead extends ServiceCaller {
  method: string;
  url: string;
  headers: [string, string][];
  body: boolean;
}

/** RPC from a runtime process; the arguments, serialized (rpc-values.ts), follow the head. */
export interface ServiceCallHead extends ServiceCaller {
  method: string;
}

/** RPC to a worker of the receiving runtime process; the arguments, serialized, follow the head. */
export interface CallHead {
  worker: string;
  /** '' for the default export. */
  entrypoint: string;
  method: string;
  chain: string[];
}

/** An RPC call's outcome: the result, serialized, follows an `ok` head; an error is its name and message. */
export type CallOutcomeHead = { ok: true } | { ok: false; name: string; message: string };

/** An RPC call's outcome as it crosses: its head, and the result as RPC bytes (rpc-values.ts). */
export interface CallOutcome {
  head: CallOutcomeHead;
  body: Uint8Array;
}

/** A cron trigger's event for a worker (Runtime.scheduled); answered by a scheduledResult, or a failed result. */
export interface ScheduledHead {
  worker: string;
  cron: string;
  scheduledTime: number;
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

/**
 * A worker's call of a platform binding, forwarded by its runtime process. Only names: the
 * control process resolves the spec and the account from what it deployed to that process.
 */
export interface BindingCallHead {
  worker: string;
  /** The binding's env name. */
  name: string;
  method: string;
  args: JsonValue[];
  /** Whether the frame's bytes are the call's binary payload (else there is none). */
  bytes: boolean;
}

/** The control process's answer to a bindingCall: a JSON value (and bytes), or an error as name and message. */
export type BindingAnswerHead =
  | { ok: true; value: JsonValue; bytes: boolean }
  | { ok: false; error: { name: string; message: string } };

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
  /** The process's new share of the isolate memory budget, in MB (the tier grew: Runtime.setMemoryBudget). */
  memoryBudget: number;
  scheduled: ScheduledHead;
  bindingAnswer: { head: BindingAnswerHead; body: Uint8Array };
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
  // Service bindings. control -> runtime: an RPC call to one of its workers; the answers to the
  // service calls it asked for (a response streamed as the front's are, an RPC result).
  call: { head: CallHead; body: Uint8Array };
  serviceResponse: ResponseHead;
  serviceResponseWhole: { head: ResponseHead; body: Uint8Array };
  serviceResponseBody: Uint8Array;
  serviceResponseEnd: undefined;
  serviceResponseError: { name: string; message: string };
  serviceRequestCredit: number;
  serviceCallResult: CallOutcome;
  // runtime -> control: an RPC call's outcome; service calls its workers make.
  callResult: CallOutcome;
  serviceRequest: ServiceRequestHead;
  serviceRequestBody: Uint8Array;
  serviceRequestEnd: undefined;
  serviceRequestAbort: undefined;
  serviceResponseCredit: number;
  serviceResponseCancel: undefined;
  serviceCall: { head: ServiceCallHead; body: Uint8Array };
  scheduledResult: ScheduledResult;
  bindingCall: { head: BindingCallHead; body: Uint8Array };
  /** What the process's workers did in the last second or so (src/observability/worker-stats.ts). */
  stats: StatsBatch;
  /** A subrequest of a traced request, for the control process to export (src/observability/tracing.ts). */
  span: SubrequestSpan;
}

export type MessageName = keyof Payloads;

interface Declaration<K extends MessageName> {
  code: number;
  from: 'control' | 'runtime';
  layout: Layout;
  /** Returns the payload when it has the declared shape; throws a ProtocolError otherwise. */
  check: (value: unknown) => Payloads[K];
  /** 'head+bytes': the longest JSON head, refused before it is parsed (default: the frame's). */
  maxHeadBytes?: number;
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
  if (value.entrypoint !== undefined) text(value.entrypoint, 'entrypoint', MAX_NAME);
  if (value.chain !== undefined) chain(value.chain);
  if (value.traceparent !== undefined) text(value.traceparent, 'traceparent', 55);
  return value as unknown as RequestHead;
}

/** Env names, entrypoints and methods are at most this long (BINDING_LIMITS.nameChars). */
const MAX_NAME = 128;
/** Longest chain of service calls a message may carry: past MAX_SERVICE_DEPTH the call is refused anyway. */
const MAX_CHAIN = 32;
/** The most bytes of serialized RPC arguments or result one message carries. */
export const MAX_RPC_BYTES = 32 * 1024 * 1024;
/**
 * The error of a call whose value (RPC arguments or result, a binding's bytes) was refused
 * because the channel it would cross holds too much already (Channel.hasRoomFor).
 */
export function queuedTooMuch(): BindingError {
  return new BindingError('RangeError', 'Values waiting to cross between runtime processes (RPC arguments and results, binding values) already hold as much as may wait: this call was refused. Retry shortly.');
}

/** An RPC head is names, a chain and at most an error's message. */
const MAX_RPC_HEAD_BYTES = 64 * 1024;

function chain(value: unknown): string[] {
  if (!Array.isArray(value) || value.length > MAX_CHAIN) fail('chain');
  for (const key of value) text(key, 'chain entry', 63 + 1 + MAX_NAME);
  return value as string[];
}

function checkCaller(value: Record<string, unknown>): void {
  text(value.worker, 'worker name', 63);
  text(value.binding, 'binding name', MAX_NAME);
  chain(value.chain);
}

function checkServiceRequest(value: unknown): ServiceRequestHead {
  if (!isObject(value) || typeof value.body !== 'boolean') fail('service request head');
  checkCaller(value);
  text(value.method, 'method', 32);
  text(value.url, 'url', 16 * 1024);
  headerPairs(value.headers);
  return value as unknown as ServiceRequestHead;
}

function rpcBytes(value: Record<string, unknown>): Uint8Array {
  if (!(value.body instanceof Uint8Array) || value.body.byteLength > MAX_RPC_BYTES) fail('RPC payload');
  return value.body;
}

function checkServiceCall(value: unknown): { head: ServiceCallHead; body: Uint8Array } {
  if (!isObject(value) || !isObject(value.head)) fail('service call');
  checkCaller(value.head);
  text(value.head.method, 'method', MAX_NAME);
  return { head: value.head as unknown as ServiceCallHead, body: rpcBytes(value) };
}

function checkCall(value: unknown): { head: CallHead; body: Uint8Array } {
  if (!isObject(value) || !isObject(value.head)) fail('call');
  const head = value.head;
  text(head.worker, 'worker name', 63);
  text(head.entrypoint, 'entrypoint', MAX_NAME);
  text(head.method, 'method', MAX_NAME);
  chain(head.chain);
  return { head: head as unknown as CallHead, body: rpcBytes(value) };
}

function checkOutcome(value: unknown): CallOutcome {
  if (!isObject(value) || !isObject(value.head)) fail('call outcome');
  const head = value.head;
  if (head.ok === true) return { head: { ok: true }, body: rpcBytes(value) };
  if (head.ok !== false) fail('call outcome');
  return { head: { ok: false, name: text(head.name, 'error name', MAX_NAME), message: text(head.message, 'error message') }, body: rpcBytes(value) };
}

function checkServiceError(value: unknown): { name: string; message: string } {
  if (!isObject(value)) fail('service error');
  return { name: text(value.name, 'error name', MAX_NAME), message: text(value.message, 'error message') };
}

function checkScheduled(value: unknown): ScheduledHead {
  if (!isObject(value) || typeof value.scheduledTime !== 'number' || !Number.isFinite(value.scheduledTime)) fail('scheduled event');
  text(value.worker, 'worker name', 63);
  text(value.cron, 'cron', 1000);
  return value as unknown as ScheduledHead;
}

const OUTCOMES = new Set(['ok', 'exception', 'exceededCpu', 'exceededMemory']);

function checkScheduledResult(value: unknown): ScheduledResult {
  if (!isObject(value) || !OUTCOMES.has(value.outcome as string) || typeof value.noRetry !== 'boolean') fail('scheduled result');
  for (const key of ['cpuMs', 'wallMs'] as const) {
    const number = value[key];
    if (typeof number !== 'number' || !Number.isFinite(number) || number < 0) fail('scheduled result time');
  }
  const error = value.error === undefined ? undefined : text(value.error, 'scheduled result error');
  return {
    outcome: value.outcome as ScheduledResult['outcome'],
    noRetry: value.noRetry,
    cpuMs: value.cpuMs as number,
    wallMs: value.wallMs as number,
    ...(error === undefined ? {} : { error }),
  };
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
const LOG_TYPES = new Set(['console', 'exception', 'limit', 'request', 'scheduled', 'lifecycle']);

function checkLog(value: unknown): WorkerLogEntry {
  if (!isObject(value)) fail('log entry');
  text(value.time, 'log time', 64);
  text(value.worker, 'log worker', 63);
  text(value.message, 'log message');
  if (!LEVELS.has(value.level as string) || !LOG_TYPES.has(value.type as string)) fail('log level or type');
  return value as WorkerLogEntry;
}

function time(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) fail(what);
  return value;
}

function checkSpan(value: unknown): SubrequestSpan {
  if (!isObject(value)) fail('span');
  const status = value.status;
  if (status !== undefined && (typeof status !== 'number' || !Number.isInteger(status) || status < 0 || status > 999)) fail('span status');
  const error = value.error === undefined ? undefined : text(value.error, 'span error', 1024);
  return {
    traceparent: text(value.traceparent, 'traceparent', 55),
    method: text(value.method, 'span method', 32),
    url: text(value.url, 'span url', 8192),
    startTime: time(value.startTime, 'span start'),
    endTime: time(value.endTime, 'span end'),
    ...(status === undefined ? {} : { status }),
    ...(error === undefined ? {} : { error }),
  };
}

function checkBindingCall(value: unknown): Payloads['bindingCall'] {
  if (!isObject(value) || !(value.body instanceof Uint8Array) || !isObject(value.head)) fail('binding call');
  const head = value.head;
  text(head.worker, 'worker name', 63);
  if (!ENV_NAME.test(text(head.name, 'binding name', BINDING_LIMITS.nameChars))) fail('binding name');
  text(head.method, 'binding method', BINDING_LIMITS.nameChars);
  if (!Array.isArray(head.args) || jsonProblem(head.args) !== undefined) fail('binding arguments');
  if (typeof head.bytes !== 'boolean' || value.body.byteLength > BINDING_LIMITS.bytes || (!head.bytes && value.body.byteLength > 0)) fail('binding bytes');
  return value as Payloads['bindingCall'];
}

function checkBindingAnswer(value: unknown): Payloads['bindingAnswer'] {
  if (!isObject(value) || !(value.body instanceof Uint8Array) || !isObject(value.head)) fail('binding answer');
  const head = value.head;
  if (head.ok === true) {
    if (typeof head.bytes !== 'boolean' || !Object.hasOwn(head, 'value')) fail('binding answer');
  } else if (head.ok !== false || !isObject(head.error) || typeof head.error.name !== 'string' || typeof head.error.message !== 'string') {
    fail('binding answer');
  }
  return value as Payloads['bindingAnswer'];
}

function checkCount(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > STREAM_WINDOW_BYTES) fail('credit');
  return value;
}

function checkMegabytes(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) fail('memory budget');
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
  memoryBudget: { code: 14, from: 'control', layout: 'json', check: checkMegabytes },
  scheduled: { code: 16, from: 'control', layout: 'json', check: checkScheduled },
  bindingAnswer: { code: 13, from: 'control', layout: 'head+bytes', check: checkBindingAnswer },
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
  call: { code: 40, from: 'control', layout: 'head+bytes', check: checkCall },
  serviceResponse: { code: 41, from: 'control', layout: 'json', check: checkResponse },
  serviceResponseWhole: { code: 42, from: 'control', layout: 'head+bytes', check: checkWhole },
  serviceResponseBody: { code: 43, from: 'control', layout: 'bytes', check: checkBytes },
  serviceResponseEnd: { code: 44, from: 'control', layout: 'none', check: checkNone },
  serviceResponseError: { code: 45, from: 'control', layout: 'json', check: checkServiceError },
  serviceRequestCredit: { code: 46, from: 'control', layout: 'count', check: checkCount },
  serviceCallResult: { code: 47, from: 'control', layout: 'head+bytes', check: checkOutcome },
  callResult: { code: 50, from: 'runtime', layout: 'head+bytes', check: checkOutcome, maxHeadBytes: MAX_RPC_HEAD_BYTES },
  serviceRequest: { code: 51, from: 'runtime', layout: 'json', check: checkServiceRequest },
  serviceRequestBody: { code: 52, from: 'runtime', layout: 'bytes', check: checkBytes },
  serviceRequestEnd: { code: 53, from: 'runtime', layout: 'none', check: checkNone },
  serviceRequestAbort: { code: 54, from: 'runtime', layout: 'none', check: checkNone },
  serviceResponseCredit: { code: 55, from: 'runtime', layout: 'count', check: checkCount },
  serviceResponseCancel: { code: 56, from: 'runtime', layout: 'none', check: checkNone },
  serviceCall: { code: 57, from: 'runtime', layout: 'head+bytes', check: checkServiceCall, maxHeadBytes: MAX_RPC_HEAD_BYTES },
  scheduledResult: { code: 36, from: 'runtime', layout: 'json', check: checkScheduledResult },
  bindingCall: { code: 30, from: 'runtime', layout: 'head+bytes', check: checkBindingCall, maxHeadBytes: BINDING_LIMITS.argsBytes + 4096 },
  stats: { code: 31, from: 'runtime', layout: 'json', check: checkStatsBatch },
  span: { code: 32, from: 'runtime', layout: 'json', check: checkSpan },
};

/** One decoded message, its payload typed by its name. */
export type Message = { [K in MessageName]: { name: K; id: number; payload: Payloads[K] } }[MessageName];

export type Side = 'control' | 'runtime';

const BY_CODE = new Map<number, MessageName>();
for (const name of Object.keys(MESSAGES) as MessageName[]) {
  // Two messages on one code would read one as the other: caught when the module loads.
  const taken = BY_CODE.get(MESSAGES[name].code);
  if (taken !== undefined) throw new Error(`messages ${taken} and ${name} share the code ${MESSAGES[name].code}`);
  BY_CODE.set(MESSAGES[name].code, name);
}

/** The message a code names, if the other side may send it to `receiver`. */
export function messageOf(code: number, receiver: Side): MessageName | undefined {
  const name = BY_CODE.get(code);
  return name !== undefined && MESSAGES[name].from !== receiver ? name : undefined;
}
