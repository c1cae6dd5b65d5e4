// GET /metrics on the admin listener, for a Prometheus server: the operator's admin token or
// the scrape token (`isolet serve --metrics-token`, ISOLET_METRICS_TOKEN), which opens this
// endpoint and nothing else. An account's token never does: the metrics name every tenant.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from '../server/api-error.ts';
import { bearerHash, hashToken, sameToken } from '../server/tokens.ts';
import type { ServerMetrics } from './server-metrics.ts';
import type { SeriesSync } from './series-sync.ts';

export class MetricsEndpoint {
  readonly metrics: ServerMetrics;
  /** The other instances' counts of each worker's last hour, from the store. */
  readonly sync: SeriesSync | undefined;
  readonly #allowed: Buffer[];

  constructor(metrics: ServerMetrics, adminToken: string, scrapeToken: string | undefined, sync?: SeriesSync) {
    this.metrics = metrics;
    this.sync = sync;
    this.#allowed = [hashToken(adminToken), ...(scrapeToken === undefined ? [] : [hashToken(scrapeToken)])];
  }

  async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const hash = bearerHash(req.headers.authorization);
    // Every allowed hash is compared, so the time taken says nothing about which one matched.
    const allowed = hash !== undefined && this.#allowed.map((expected) => sameToken(hash, expected)).includes(true);
    if (!allowed) {
      throw new ApiError('unauthorized', '/metrics takes the admin token or the scrape token (isolet serve --metrics-token) as `Authorization: Bearer <token>`; account tokens do not open it.');
    }
    const { contentType, body } = await this.metrics.render();
    res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

/** A scrape token must be as hard to guess as the admin token. */
export function checkScrapeToken(token: string): void {
  if (token.length < 16) throw new Error('The metrics scrape token is too short: use at least 16 random characters (e.g. openssl rand -hex 24).');
}
