// OpenTelemetry traces of requests and their subrequests, off unless an OTLP endpoint is given
// (`isolet serve --otlp-endpoint`, OTEL_EXPORTER_OTLP_ENDPOINT), sent with the standard OTLP/HTTP
// exporter in batches.
//
// A request's span starts in the control process when it is routed to a worker and ends with
// its response head; each fetch() the worker makes is a client span under it. Only the control
// process talks to the collector: a runtime process runs tenant code, and must hold neither the
// collector's credentials (OTEL_EXPORTER_OTLP_HEADERS, client keys) nor a way to it. It gets the
// parent as a W3C traceparent with the request (the request message's `traceparent`) and
// reports each subrequest's method, URL without its query, times and outcome in a `span`
// message (relayedRequestTrace), which the control process checks and makes a span of
// (recordSubrequest). A client's own traceparent header is not followed: a tenant's client must
// not decide what the operator's collector receives, nor join its traces.

import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Span, type Tracer } from '@opentelemetry/api';
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { RequestTrace, RuntimeRequest } from '../runtime/types.ts';

export interface TracingOptions {
  /** The collector's traces URL, used as given (tracesUrl makes it of a base URL). */
  url: string;
  /** The share of requests traced, 0 to 1 (default 1); a runtime process follows its parent's choice. */
  sampleRate?: number;
  /** Resource attributes: the node and the process that made the spans. */
  node?: string;
  process?: string;
  /** How long spans wait to be sent in a batch (default 5000 ms, OpenTelemetry's). */
  batchDelayMs?: number;
  /** Says that spans were dropped because the collector did not take them: at most once per `dropReportMs`. */
  warn?: (message: string, fields: Record<string, unknown>) => void;
  /** Least time between two reports of dropped spans (default 60 s). */
  dropReportMs?: number;
}

/** A subrequest a runtime process made for a traced request, as it reports it (times in ms since the epoch). */
export interface SubrequestSpan {
  /** The request's traceparent, as the control process gave it. */
  traceparent: string;
  method: string;
  /** Its URL without the query. */
  url: string;
  startTime: number;
  endTime: number;
  status?: number;
  error?: string;
}

/** A request's span as the control process holds it. */
export interface RequestSpan {
  /** What the runtime makes subrequest spans under, undefined when the request is not sampled. */
  readonly trace: RequestTrace | undefined;
  end(status: number | undefined, error?: string): void;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The traces URL of an OTLP/HTTP endpoint's base URL (http://host:4318); one that already ends in /v1/traces is kept. */
export function tracesUrl(endpoint: string): string {
  const base = endpoint.replace(/\/+$/, '');
  return base.endsWith('/v1/traces') ? base : `${base}/v1/traces`;
}

/**
 * Where traces go, from `isolet serve --otlp-endpoint` (a base URL) or else OpenTelemetry's
 * variables as the specification reads them: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is the traces URL
 * itself, used as given, and wins over OTEL_EXPORTER_OTLP_ENDPOINT, a base URL that gets
 * /v1/traces. Undefined: tracing is off.
 */
export function configuredTracesUrl(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (flag !== undefined) return tracesUrl(flag);
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) return tracesUrl(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  return undefined;
}

/**
 * The OTLP exporter, counting the spans of every batch the collector did not take (it is down,
 * unreachable or refuses them: OpenTelemetry drops them and says nothing), and reporting them at
 * most once per `intervalMs`, with how many, so that an operator learns that traces are missing
 * without a line per batch. What is still unreported when it shuts down is reported then.
 */
class ReportingExporter implements SpanExporter {
  readonly #inner: SpanExporter;
  readonly #collector: string;
  readonly #intervalMs: number;
  readonly #warn: NonNullable<TracingOptions['warn']>;
  #dropped = 0;
  #lastError = '';
  #reportedAt = -Infinity;
  #timer: NodeJS.Timeout | undefined;

  constructor(inner: SpanExporter, collector: string, intervalMs: number, warn: NonNullable<TracingOptions['warn']>) {
    this.#inner = inner;
    this.#collector = collector;
    this.#intervalMs = intervalMs;
    this.#warn = warn;
  }

  export(spans: ReadableSpan[], done: Parameters<SpanExporter['export']>[1]): void {
    this.#inner.export(spans, (result) => {
      // ExportResultCode.SUCCESS is 0 (@opentelemetry/core, not a dependency of isolet's own).
      if (result.code !== 0) this.#drop(spans.length, result.error);
      done(result);
    });
  }

  #drop(count: number, error: Error | undefined): void {
    this.#dropped += count;
    if (error !== undefined) this.#lastError = error.message;
    const wait = this.#reportedAt + this.#intervalMs - performance.now();
    if (wait <= 0) return this.#report();
    this.#timer ??= setTimeout(() => this.#report(), wait).unref();
  }

  #report(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#dropped === 0) return;
    const dropped = this.#dropped;
    this.#dropped = 0;
    this.#reportedAt = performance.now();
    this.#warn(
      `${dropped} trace spans were dropped: the collector at ${this.#collector} did not take them (${this.#lastError || 'no reason given'}). ` +
        'Check that it is up and reachable from this server; spans are not kept for later.',
      { dropped, collector: this.#collector },
    );
  }

  async shutdown(): Promise<void> {
    try {
      await this.#inner.shutdown();
    } finally {
      this.#report();
    }
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** A URL as a log line may show it: without credentials or query. */
function collectorName(url: string): string {
  const parsed = safeUrl(url);
  return parsed === undefined ? 'an unparsable URL' : `${parsed.origin}${parsed.pathname}`;
}

export class Tracing {
  readonly #provider: TracerProvider;
  readonly #tracer: Tracer;

  constructor(options: TracingOptions) {
    const rate = options.sampleRate ?? 1;
    if (!(rate >= 0 && rate <= 1)) throw new RangeError(`The trace sampling rate must be from 0 to 1, not ${rate}.`);
    const otlp = new OTLPTraceExporter({ url: options.url });
    const exporter = options.warn === undefined ? otlp : new ReportingExporter(otlp, collectorName(options.url), options.dropReportMs ?? 60_000, options.warn);
    this.#provider = new TracerProvider({
      resource: resourceFromAttributes({
        'service.name': 'isolet',
        ...(options.node === undefined ? {} : { 'service.instance.id': options.node }),
        ...(options.process === undefined ? {} : { 'isolet.process': options.process }),
      }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(rate) }),
      spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: options.batchDelayMs })],
    });
    this.#tracer = this.#provider.getTracer('isolet');
  }

  /** The span of a request routed to `worker`, begun now. */
  startRequest(worker: string, request: RuntimeRequest): RequestSpan {
    const url = safeUrl(request.url);
    const span = this.#tracer.startSpan(`${request.method} ${worker}`, {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': request.method,
        'url.scheme': url?.protocol.slice(0, -1) ?? '',
        'url.path': url?.pathname ?? '',
        'server.address': url?.hostname ?? '',
        'isolet.worker': worker,
      },
    }, ROOT_CONTEXT);
    return {
      trace: span.isRecording() ? this.#requestTrace(span) : undefined,
      end: (status, error) => endSpan(span, status, error),
    };
  }

  /** Subrequest spans under a request span of another process, known by its traceparent; undefined when it is malformed or not sampled. */
  continueRequest(traceparent: string | undefined): RequestTrace | undefined {
    const parent = remoteParent(traceparent);
    return parent === undefined ? undefined : this.#requestTrace(parent, traceparent!);
  }

  /**
   * A subrequest a runtime process reported (relayedRequestTrace), as a span under its request's;
   * `process` is the slot that reported it. One whose traceparent is malformed or not sampled is
   * dropped: the process may send anything.
   */
  recordSubrequest(reported: SubrequestSpan, process: string): void {
    const parent = remoteParent(reported.traceparent);
    if (parent === undefined) return;
    const span = this.#tracer.startSpan(reported.method, {
      kind: SpanKind.CLIENT,
      attributes: { ...subrequestAttributes(reported.method, reported.url), 'isolet.process': process },
      startTime: reported.startTime,
    }, trace.setSpan(ROOT_CONTEXT, parent));
    endSpan(span, reported.status, reported.error, Math.max(reported.startTime, reported.endTime));
  }

  #requestTrace(parent: Span, traceparent = formatTraceparent(parent)): RequestTrace {
    const context = trace.setSpan(ROOT_CONTEXT, parent);
    const tracer = this.#tracer;
    return {
      traceparent,
      subrequest(method, url) {
        const span = tracer.startSpan(`${method}`, { kind: SpanKind.CLIENT, attributes: subrequestAttributes(method, url) }, context);
        return { end: (status, error) => endSpan(span, status, error) };
      },
    };
  }

  /** Sends what is waiting, and resolves once the collector took it or it was dropped (and counted). */
  async flush(): Promise<void> {
    await this.#provider.forceFlush().catch(() => {});
  }

  /** Sends what is waiting and stops. */
  async shutdown(): Promise<void> {
    await this.#provider.shutdown();
  }
}

/**
 * A runtime process's side of tracing: the subrequests of the request whose traceparent the
 * control process sent, each handed to `send` when it ends; undefined when that request is not
 * traced. No URL query leaves the process.
 */
export function relayedRequestTrace(traceparent: string | undefined, send: (span: SubrequestSpan) => void): RequestTrace | undefined {
  if (remoteParent(traceparent) === undefined) return undefined;
  return {
    traceparent: traceparent!,
    subrequest(method, url) {
      const startTime = epochMs();
      const target = safeUrl(url);
      const bare = target === undefined ? '' : `${target.protocol}//${target.host}${target.pathname}`;
      return {
        end(status, error) {
          send({
            traceparent: traceparent!, method: method.slice(0, 32), url: bare.slice(0, 8192), startTime, endTime: epochMs(),
            ...(status === undefined ? {} : { status }), ...(error === undefined ? {} : { error: error.slice(0, 1024) }),
          });
        },
      };
    },
  };
}

function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The span a W3C traceparent names, when it is well-formed and sampled. */
function remoteParent(traceparent: string | undefined): Span | undefined {
  const match = traceparent === undefined ? null : TRACEPARENT.exec(traceparent);
  if (match === null) return undefined;
  const flags = Number.parseInt(match[3]!, 16);
  if ((flags & TraceFlags.SAMPLED) === 0) return undefined;
  return trace.wrapSpanContext({ traceId: match[1]!, spanId: match[2]!, traceFlags: flags, isRemote: true });
}

function subrequestAttributes(method: string, url: string): Record<string, string | number> {
  const target = safeUrl(url);
  return {
    'http.request.method': method,
    'server.address': target?.hostname ?? '',
    'server.port': Number(target?.port || (target?.protocol === 'https:' ? 443 : 80)),
    'url.scheme': target?.protocol.slice(0, -1) ?? '',
    'url.path': target?.pathname ?? '',
  };
}

function formatTraceparent(span: Span): string {
  const { traceId, spanId, traceFlags } = span.spanContext();
  return `00-${traceId}-${spanId}-${traceFlags.toString(16).padStart(2, '0')}`;
}

function endSpan(span: Span, status: number | undefined, error: string | undefined, endTime?: number): void {
  if (status !== undefined) span.setAttribute('http.response.status_code', status);
  if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
  else if (status !== undefined && status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end(endTime);
}

/** The URL's parts, without its query (which may hold a tenant's secrets); undefined when it does not parse. */
function safeUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}
