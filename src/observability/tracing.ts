// OpenTelemetry traces of requests and their subrequests, off unless an OTLP endpoint is given
// (`isolet serve --otlp-endpoint`, OTEL_EXPORTER_OTLP_ENDPOINT), sent with the standard OTLP/HTTP
// exporter in batches.
//
// A request's span starts in the control process when it is routed to a worker and ends with
// its response head; each fetch() the worker makes is a client span under it, made where the
// worker runs. A runtime process exports its own spans: the control process hands it the
// parent as a W3C traceparent with the request (the request message's `traceparent`), so no
// span crosses the channel. A client's own traceparent header is not followed: a tenant's
// client must not decide what the operator's collector receives, nor join its traces.

import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Span, type Tracer } from '@opentelemetry/api';
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { RequestTrace, RuntimeRequest } from '../runtime/types.ts';

export interface TracingOptions {
  /** The collector: its base URL (http://host:4318), or the full traces URL ending in /v1/traces. */
  endpoint: string;
  /** The share of requests traced, 0 to 1 (default 1); a runtime process follows its parent's choice. */
  sampleRate?: number;
  /** Resource attributes: the node and the process that made the spans. */
  node?: string;
  process?: string;
  /** How long spans wait to be sent in a batch (default 5000 ms, OpenTelemetry's). */
  batchDelayMs?: number;
}

/** A request's span as the control process holds it. */
export interface RequestSpan {
  /** What the runtime makes subrequest spans under, undefined when the request is not sampled. */
  readonly trace: RequestTrace | undefined;
  end(status: number | undefined, error?: string): void;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The traces URL of an OTLP/HTTP endpoint. */
export function tracesUrl(endpoint: string): string {
  const base = endpoint.replace(/\/+$/, '');
  return base.endsWith('/v1/traces') ? base : `${base}/v1/traces`;
}

export class Tracing {
  readonly #provider: TracerProvider;
  readonly #tracer: Tracer;

  constructor(options: TracingOptions) {
    const rate = options.sampleRate ?? 1;
    if (!(rate >= 0 && rate <= 1)) throw new RangeError(`The trace sampling rate must be from 0 to 1, not ${rate}.`);
    this.#provider = new TracerProvider({
      resource: resourceFromAttributes({
        'service.name': 'isolet',
        ...(options.node === undefined ? {} : { 'service.instance.id': options.node }),
        ...(options.process === undefined ? {} : { 'isolet.process': options.process }),
      }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(rate) }),
      spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: tracesUrl(options.endpoint) }), scheduledDelayMillis: options.batchDelayMs })],
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
    const match = traceparent === undefined ? null : TRACEPARENT.exec(traceparent);
    if (match === null) return undefined;
    const flags = Number.parseInt(match[3]!, 16);
    if ((flags & TraceFlags.SAMPLED) === 0) return undefined;
    const parent = trace.wrapSpanContext({ traceId: match[1]!, spanId: match[2]!, traceFlags: flags, isRemote: true });
    return this.#requestTrace(parent, traceparent!);
  }

  #requestTrace(parent: Span, traceparent = formatTraceparent(parent)): RequestTrace {
    const context = trace.setSpan(ROOT_CONTEXT, parent);
    const tracer = this.#tracer;
    return {
      traceparent,
      subrequest(method, url) {
        const target = safeUrl(url);
        const span = tracer.startSpan(`${method}`, {
          kind: SpanKind.CLIENT,
          attributes: {
            'http.request.method': method,
            'server.address': target?.hostname ?? '',
            'server.port': Number(target?.port || (target?.protocol === 'https:' ? 443 : 80)),
            'url.scheme': target?.protocol.slice(0, -1) ?? '',
            'url.path': target?.pathname ?? '',
          },
        }, context);
        return { end: (status, error) => endSpan(span, status, error) };
      },
    };
  }

  /** Sends what is waiting and stops. */
  async shutdown(): Promise<void> {
    await this.#provider.shutdown();
  }
}

function formatTraceparent(span: Span): string {
  const { traceId, spanId, traceFlags } = span.spanContext();
  return `00-${traceId}-${spanId}-${traceFlags.toString(16).padStart(2, '0')}`;
}

function endSpan(span: Span, status: number | undefined, error: string | undefined): void {
  if (status !== undefined) span.setAttribute('http.response.status_code', status);
  if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
  else if (status !== undefined && status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

/** The URL's parts, without its query (which may hold a tenant's secrets); undefined when it does not parse. */
function safeUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}
