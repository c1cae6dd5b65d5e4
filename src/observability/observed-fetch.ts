// The data plane's fetch with its request counted (and traced, when tracing is on): what
// `isolet serve` puts between the HTTP front and the workers' host, and what the throughput
// bench measures the cost of (bench/support/isolet-server.ts --metrics).

import type { RuntimeRequest, RuntimeResponse } from '../runtime/types.ts';
import type { ServerMetrics } from './server-metrics.ts';
import type { Tracing } from './tracing.ts';

type Fetch = (name: string, request: RuntimeRequest) => Promise<RuntimeResponse>;

export function observedFetch(fetch: Fetch, metrics: ServerMetrics, tracing?: Tracing): Fetch {
  return (name, request) => {
    const started = performance.now();
    const span = tracing?.startRequest(name, request);
    return fetch(name, span?.trace === undefined ? request : { ...request, trace: span.trace }).then(
      (response) => {
        metrics.request(name, response.status, (performance.now() - started) / 1000);
        span?.end(response.status);
        return response;
      },
      (error: unknown) => {
        // The front answers a worker that is gone with its 404 for no worker; anything else is its 500.
        const status = (error as { code?: unknown } | null)?.code === 'ERR_UNKNOWN_WORKER' ? 404 : 500;
        if (status === 500) metrics.request(name, status, (performance.now() - started) / 1000);
        span?.end(status, error instanceof Error ? error.message : String(error));
        throw error;
      },
    );
  };
}
