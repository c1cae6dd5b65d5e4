// `isolet serve` as a library: the data plane (tenant traffic, routed by Host and path to the
// workers' isolates) and the control plane (the admin API) on two separate listeners, over
// one store. The data plane only ever calls the Runtime: nothing on it reaches the admin API.

import { chmodSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { createHttpFront, type RuntimeFetcher } from '../http/front.ts';
import {
  ADMIN_CONNECTION_LIMITS, connectionLimits, DATA_PLANE_CONNECTION_LIMITS, limitConnections, type ConnectionLimits,
} from '../http/connection-limits.ts';
import type { RuntimeOptions, RuntimeRequest, RuntimeResponse, WorkerLimits, WorkerLogEntry } from '../runtime/types.ts';
import type { AdmissionLimits } from '../supervisor/admission.ts';
import { ProcessPool } from '../supervisor/process-pool.ts';
import { SecretBox, loadSecretsKey } from '../store/secret-box.ts';
import { SqliteStore } from '../store/sqlite-store.ts';
import { PostgresStore } from '../store/postgres-store.ts';
import { isSharedStore, type AccountQuotas, type Store } from '../store/store.ts';
import { ChangeFollower } from './change-follower.ts';
import { ClusterTail } from './cluster-tail.ts';
import { startKvSweeper } from './kv-sweeper.ts';
import { createAdminServer } from './admin-api.ts';
import { DEFAULT_LIMIT_CAPS, DEFAULT_MAX_SCRIPT_BYTES, type DeploymentRules } from './deployment.ts';
import { LogBus } from './log-bus.ts';
import { jsonLinesSink, requestLineSampler, serverLog, type LogSink, type ServerLog, type ServerLogLevel } from './logger.ts';
import { fitConnectionCaps, openFileLimit } from './fd-limit.ts';
import { Platform } from './platform.ts';
import { CronScheduler } from './cron-scheduler.ts';
import { loadAdminToken } from './tokens.ts';
import { InProcessHost, type WorkerHost } from './worker-host.ts';
import { AssetServer } from './assets/asset-server.ts';
import { serveAssetsBinding } from './assets/asset-binding.ts';
import { serverBindingHost } from './binding-handlers.ts';
// Registers the handler of KV bindings.
import './kv-binding-handler.ts';
// Registers the service binding type's deploy check.
import './service-bindings.ts';
import { checkRunAs, type RunAs } from '../supervisor/run-as.ts';
import { ServerMetrics } from '../observability/server-metrics.ts';
import { checkScrapeToken, MetricsEndpoint } from '../observability/metrics-endpoint.ts';
import { SeriesSync } from '../observability/series-sync.ts';
import { timedStore } from '../observability/timed-store.ts';
import { Tracing, tracesUrl } from '../observability/tracing.ts';
import { observedFetch } from '../observability/observed-fetch.ts';
import { WorkerStats } from '../observability/worker-stats.ts';

export interface ServerOptions {
  /** Directory for isolet.db, secrets.key and admin-token (created if missing). */
  dataDir: string;
  port?: number;
  ip?: string;
  adminPort?: number;
  adminIp?: string;
  /** Workers answer on `<worker>.<domain>` (default localhost). */
  domain?: string;
  /** Most bytes of code per version (default 10 MiB); more is a 413. */
  maxScriptBytes?: number;
  /** Defaults for workers' limits (where a deployment says nothing). */
  limits?: Partial<WorkerLimits>;
  /** Where workers' fetch() may connect, and its per-account connection caps and deadlines (RuntimeOptions.egress). */
  egress?: RuntimeOptions['egress'];
  /** The most any deployment may ask for, and the ceiling of what the operator may grant an account (default DEFAULT_LIMIT_CAPS). */
  limitCaps?: Partial<WorkerLimits>;
  /** Each account's quotas unless the operator overrides them per account (default DEFAULT_QUOTAS). */
  quotas?: Partial<AccountQuotas>;
  /** Deployments validated at once, in total (default 4) and per account (default 2); more is a 429. */
  maxDeploys?: number;
  maxAccountDeploys?: number;
  /** Most live isolates per runtime process. */
  maxIsolates?: number;
  /**
   * MB the live isolates of each runtime process may hold (RuntimeOptions.memoryBudgetMb);
   * default: its share of 40% of the machine's memory (defaultMemoryBudgetMb).
   */
  memoryBudgetMb?: number;
  /**
   * Runtime processes of the default tier (default: one per core, at least 2; the trusted tier
   * has as many, quarantine one). 0 runs every worker in this process, with no supervisor: for
   * embedders and tests that do not need crash containment.
   */
  processes?: number;
  /**
   * Requests a default-tier worker's new version must end cleanly in the untried runtime
   * process, at a lower CPU priority, before it is served from its home (default
   * UNTRIED_REQUESTS; 0: new code goes home at once). Runtime processes only.
   */
  untriedRequests?: number;
  /** Requests of one worker in flight at once and waiting for a slot (runtime processes only; defaults DEFAULT_ADMISSION); past both, 503 with Retry-After. */
  admission?: Partial<AdmissionLimits>;
  /** The OS user runtime processes run as (parseRunAs); checked at start. Default: this process's user. */
  runAs?: RunAs;
  /** Environment for ISOLET_ADMIN_TOKEN and ISOLET_SECRETS_KEY (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** The store (default: PostgresStore at `database`, else SqliteStore in dataDir). */
  store?: Store;
  /**
   * A PostgreSQL URL: this server is one node of a cluster over that database, and follows the
   * changes made through every node (change-follower.ts). The admin token and secrets key must
   * then be given (ISOLET_ADMIN_TOKEN / ISOLET_SECRETS_KEY or their files), the same on every node.
   */
  database?: string;
  /** This node's name in logs, /healthz and the database's connection list (default: the host name and port). */
  nodeId?: string;
  /** How often a node reads the change counter besides the notifications (default 1 s). */
  reconcileMs?: number;
  /** Where the server's and the workers' JSON log lines go (default: JSON lines on stdout/stderr, jsonLinesSink). */
  logSink?: LogSink;
  /** The least level the default sink writes (default info). */
  logLevel?: ServerLogLevel;
  /** Share of the workers' request lines that go to logSink, 0 to 1 (default 1); 5xx ones always do (requestLineSampler). */
  logRequestSampleRate?: number;
  /** Whether worker log entries also go to logSink (default true); the tail gets them either way. */
  logWorkers?: boolean;
  /** Bytes a tail client may leave unread before it is dropped (default 1 MiB). */
  tailBufferBytes?: number;
  /**
   * Whether this node fires its workers' cron triggers on the clock (default true). false: only
   * when `scheduler.tick()` is called (tests; a node kept out of cron duty).
   */
  cronTimer?: boolean;
  /** How long a graceful shutdown waits for requests in flight before cutting them (default 30 s). */
  shutdownGraceMs?: number;
  /** The data plane's connection caps and timeouts (defaults: DATA_PLANE_CONNECTION_LIMITS). */
  connections?: Partial<ConnectionLimits>;
  /** The admin API's, a budget apart (defaults: ADMIN_CONNECTION_LIMITS). */
  adminConnections?: Partial<ConnectionLimits>;
  /** Open files the process may have, which the two caps must fit in (default: its own, `ulimit -n`). */
  openFileLimit?: number;
  /** MB of static assets' bytes kept in memory in front of the store (default 64). */
  assetCacheMb?: number;
  /**
   * A second token that opens GET /metrics on the admin listener, and nothing else (default:
   * ISOLET_METRICS_TOKEN; the admin token opens it too).
   */
  metricsToken?: string;
  /** Workers with series of their own in /metrics; the others share `worker="_other"` (default 100). */
  metricsWorkers?: number;
  /** How often each worker's counts of the hour are written to the store (default 15 s; tests). */
  seriesSyncMs?: number;
  /**
   * An OTLP/HTTP collector's base URL (http://host:4318; /v1/traces is added unless it ends so):
   * requests and their subrequests are traced there (src/observability/tracing.ts). Default: no tracing.
   */
  otlpEndpoint?: string;
  /** The collector's traces URL, used as given (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); wins over otlpEndpoint. */
  otlpTracesUrl?: string;
  /** The share of requests traced, 0 to 1 (default 1). */
  traceSampleRate?: number;
  /** How long spans wait to be sent in a batch (default 5000 ms). */
  traceBatchDelayMs?: number;
}

export interface RunningServer {
  /** e.g. http://127.0.0.1:8787 */
  url: string;
  adminUrl: string;
  port: number;
  adminPort: number;
  adminToken: string;
  /** Where the admin token came from (ISOLET_ADMIN_TOKEN or a file), and whether it was made now. */
  adminTokenSource: string;
  adminTokenCreated: boolean;
  /** This node's name (--node-id). */
  nodeId: string;
  platform: Platform;
  /** What a deployment is checked against (parseDeployment), as the admin API does. */
  rules: DeploymentRules;
  /** Where a worker answers on the data plane: `http://<name>.<domain>:<port>/`. */
  workerUrl(name: string): string;
  bus: LogBus;
  log: ServerLog;
  /** Fires the workers' cron triggers (once per cluster per tick). */
  scheduler: CronScheduler;
  metrics: ServerMetrics;
  /** Stops accepting, lets requests in flight finish (up to the grace period), then releases everything. */
  close(): Promise<void>;
}

/** A worker name no worker can have (names start with a letter or digit): the data plane's own /healthz. */
const HEALTH = '_healthz';

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const env = options.env ?? process.env;
  const domain = (options.domain ?? 'localhost').toLowerCase();
  const ownSink = options.logSink === undefined ? jsonLinesSink({ level: options.logLevel }) : undefined;
  const sink = options.logSink ?? ownSink!;
  const sampled = requestLineSampler(options.logRequestSampleRate ?? 1);
  const log = serverLog(sink);
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const { data: dataLimits, admin: adminLimits } = listenerLimits(options, log);
  // It holds the database, the secrets key and the admin token: the server's user's only.
  chmodSync(options.dataDir, 0o700);

  const shared = options.database !== undefined;
  const admin = loadAdminToken(options.dataDir, env, shared);
  const nodeId = options.nodeId ?? `${hostname()}:${options.port ?? 8787}`;
  const secretsKey = options.store === undefined ? loadSecretsKey(options.dataDir, env, shared).key : undefined;
  const scrapeToken = options.metricsToken ?? (env.ISOLET_METRICS_TOKEN || undefined);
  if (scrapeToken !== undefined) checkScrapeToken(scrapeToken);
  const metrics = new ServerMetrics({ workers: options.metricsWorkers });
  // Only this process talks to the collector; runtime processes report their spans to it (tracing.ts).
  const tracesTo = options.otlpTracesUrl ?? (options.otlpEndpoint === undefined ? undefined : tracesUrl(options.otlpEndpoint));
  const tracing = tracesTo === undefined
    ? undefined
    : new Tracing({
      url: tracesTo, node: nodeId, batchDelayMs: options.traceBatchDelayMs, sampleRate: options.traceSampleRate, process: 'control',
      warn: (message, fields) => log('warn', 'server', message, fields),
    });
  // A node of a cluster may start while the database is away (it serves its snapshot): the
  // store migrates and checks the key on first use.
  const store = timedStore(options.store ?? (shared
    ? PostgresStore.create({ url: options.database!, secretsKey: secretsKey!, nodeId })
    : new SqliteStore({ dataDir: options.dataDir, secretsKey: secretsKey! })), (operation, seconds, ok) => metrics.storeOperation(operation, seconds, ok));
  /** This run of the server, among every node's runs. */
  const instance = randomUUID();
  // In a cluster a tail here also gets what the other nodes served for its worker.
  let clusterTail: ClusterTail | undefined;
  const bus = new LogBus({ watched: (worker) => clusterTail?.watched(worker) });
  if (isSharedStore(store)) clusterTail = new ClusterTail({ store, bus, node: nodeId, instance, log });
  const logWorkers = options.logWorkers ?? true;
  const workerLog = (entry: WorkerLogEntry) => {
    bus.publish(entry);
    clusterTail?.local(entry);
    if (logWorkers && sampled(entry)) sink(entry);
  };
  let platform: Platform | undefined;
  if (options.processes !== 0) {
    if (options.runAs !== undefined) checkRunAs(options.runAs);
    else if (process.getuid?.() === 0) {
      log('warn', 'supervisor', 'runtime processes run as root, like this server: code that escapes V8 could read the data directory; start with --runtime-user (e.g. nobody)', {});
    }
  }
  const bindingHost = serverBindingHost({ store, log });
  // Without runtime processes the Runtime here counts what they would have sent.
  const stats = options.processes === 0 ? new WorkerStats() : undefined;
  const host: WorkerHost = stats !== undefined
    ? new InProcessHost({
      limits: options.limits, maxIsolates: options.maxIsolates, memoryBudgetMb: options.memoryBudgetMb, egress: options.egress, isolateEvents: stats, bindingHost,
      log: (entry) => {
        stats.log(entry);
        workerLog(entry);
      },
    })
    : new ProcessPool({
      bindingHost,
      processes: options.processes,
      untriedRequests: options.untriedRequests,
      admission: options.admission,
      runAs: options.runAs,
      runtime: { limits: options.limits, maxIsolates: options.maxIsolates, memoryBudgetMb: options.memoryBudgetMb, egress: options.egress, tracing: tracing !== undefined },
      workerLog,
      stats: (process, batch) => metrics.merge(process, batch),
      span: (process, span) => tracing?.recordSubrequest(span, process),
      log: (level, message, fields) => log(level, 'supervisor', message, fields),
      onProcessEnded: ({ tier, label }, end) => metrics.processEnded(tier, label, end.fatal !== undefined ? 'fatal' : end.signal !== null ? 'signal' : 'exit'),
      onQuarantine: (account, worker) => {
        metrics.quarantined();
        void platform?.quarantine(account, worker);
      },
    });
  const assets = new AssetServer({ store, log, cacheBytes: options.assetCacheMb === undefined ? undefined : options.assetCacheMb * 1024 * 1024 });
  serveAssetsBinding(store, assets);
  if (stats !== undefined) {
    const runtime = (host as InProcessHost).runtime;
    metrics.pull('main', () => stats.take(runtime));
  }
  platform = new Platform({
    store,
    host,
    assets,
    domain,
    log,
    bus,
    events: metrics,
    maxDeploys: options.maxDeploys,
    maxAccountDeploys: options.maxAccountDeploys,
  });

  const follower = isSharedStore(store) ? new ChangeFollower({
      store, platform, bus, log, node: nodeId, reconcileMs: options.reconcileMs,
      snapshot: secretsKey === undefined ? undefined : { path: join(options.dataDir, 'cluster-snapshot'), box: new SecretBox(secretsKey) },
    }) : undefined;
  const started = performance.now();
  const loaded = await (follower?.start() ?? platform.boot());
  log('info', 'server', 'workers registered', { workers: loaded, ms: Math.round(performance.now() - started), node: follower === undefined ? undefined : nodeId });
  const scheduler = new CronScheduler({ store, host, node: nodeId, workers: () => platform.scheduledWorkers(), log, workerLog });
  const health = (): Record<string, unknown> => (follower === undefined ? { ok: true } : { ok: true, ...follower.health() });
  const kvSweeper = startKvSweeper(store.kv, log);
  // Each worker's last hour, written to the store so it adds up every node's and outlives a restart.
  const seriesSync = new SeriesSync({ store, series: metrics.series, instance, log, everyMs: options.seriesSyncMs });

  // A request that matches a static asset is answered here, without entering the isolate.
  const observed = observedFetch((name, request) => (assets.has(name) ? assets.fetch(name, request, host) : host.fetch(name, request)), metrics, tracing);
  const fetcher: RuntimeFetcher = {
    fetch(name: string, request: RuntimeRequest): Promise<RuntimeResponse> {
      if (name === HEALTH) return Promise.resolve(healthResponse(health()));
      return observed(name, request);
    },
  };
  const data = createHttpFront(fetcher, {
    worker: (req, host) => {
      const name = platform.route(host, req.url ?? '/');
      if (name === undefined && req.url === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) return HEALTH;
      return name;
    },
    log: (entry) => sink(entry),
    connections: dataLimits,
  });
  const rules: DeploymentRules = {
    domain,
    maxScriptBytes: options.maxScriptBytes ?? DEFAULT_MAX_SCRIPT_BYTES,
    limitCaps: { ...DEFAULT_LIMIT_CAPS, ...options.limitCaps },
  };
  const workerUrl = (name: string): string => {
    const { port } = data.address() as AddressInfo;
    return `http://${name}.${domain}${port === 80 ? '' : `:${port}`}/`;
  };
  const adminServer = createAdminServer({
    platform,
    bus,
    adminToken: admin.token,
    rules,
    defaultLimits: options.limits,
    log,
    tailBufferBytes: options.tailBufferBytes,
    workerUrl,
    quotas: options.quotas,
    health,
    metrics: new MetricsEndpoint(metrics, admin.token, scrapeToken, seriesSync),
    runCron: (worker, cron) => scheduler.runNow(worker, cron),
  });
  limitConnections(adminServer, adminLimits, ({ reason, address, count }) => {
    const cap = reason === 'total' ? `${adminLimits.maxConnections} are open, the most the admin API takes (adminConnections.maxConnections)`
      : `${adminLimits.maxConnectionsPerAddress} are open from one client address, the most it may have (adminConnections.maxConnectionsPerAddress)`;
    log('warn', 'admin', `connections refused: ${cap}`, { address, refused: count });
  });

  try {
    await listen(data, options.port ?? 8787, options.ip ?? '127.0.0.1');
    await listen(adminServer, options.adminPort ?? 8788, options.adminIp ?? '127.0.0.1');
  } catch (error) {
    data.close();
    adminServer.close();
    await kvSweeper.stop();
    clusterTail?.close();
    await seriesSync.close();
    await follower?.close();
    await host.close();
    metrics.close();
    await tracing?.shutdown().catch(() => {});
    await store.close();
    throw error;
  }
  const dataAddress = data.address() as AddressInfo;
  const adminAddress = adminServer.address() as AddressInfo;
  if (options.cronTimer !== false) scheduler.start();

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      log('info', 'server', 'shutting down: no new connections; waiting for requests in flight');
      bus.close(); // ends every tail stream, so the admin listener can close
      await Promise.all([drain(data, options.shutdownGraceMs ?? 30_000), drain(adminServer, options.shutdownGraceMs ?? 30_000), scheduler.close()]);
      await kvSweeper.stop();
      clusterTail?.close();
      // The requests are over: their counts are written, so a restart keeps them.
      metrics.fold();
      await seriesSync.close();
      await follower?.close();
      await host.close();
      metrics.close();
      await tracing?.shutdown().catch((error: unknown) => log('warn', 'server', `could not send the last traces: ${String(error)}`));
      await store.close();
      log('info', 'server', 'stopped');
      ownSink?.flush();
    })();
    return closing;
  };

  return {
    url: `http://${hostOf(dataAddress)}:${dataAddress.port}`,
    adminUrl: `http://${hostOf(adminAddress)}:${adminAddress.port}`,
    port: dataAddress.port,
    adminPort: adminAddress.port,
    adminToken: admin.token,
    adminTokenSource: admin.source,
    adminTokenCreated: admin.created,
    nodeId,
    platform,
    rules,
    workerUrl,
    bus,
    log,
    scheduler,
    metrics,
    close,
  };
}

/**
 * Both listeners' limits, their total caps lowered to fit the process's open-file limit (with a
 * warning that names the fix) rather than left to fail at accept when descriptors run out.
 */
function listenerLimits(options: ServerOptions, log: ServerLog): { data: ConnectionLimits; admin: ConnectionLimits } {
  const data = connectionLimits(options.connections, DATA_PLANE_CONNECTION_LIMITS, 'connections');
  const admin = connectionLimits(options.adminConnections, ADMIN_CONNECTION_LIMITS, 'adminConnections');
  const limit = options.openFileLimit ?? openFileLimit();
  if (limit === undefined || limit === Infinity) return { data, admin };
  const fitted = fitConnectionCaps(data.maxConnections, admin.maxConnections, limit);
  if (fitted.data !== data.maxConnections || fitted.admin !== admin.maxConnections) {
    log(
      'warn',
      'server',
      `the process may open ${limit} files (ulimit -n), fewer than the connection caps need ` +
        `(${data.maxConnections} data plane + ${admin.maxConnections} admin API + ${fitted.reserve} for the rest); ` +
        `lowered to ${fitted.data} and ${fitted.admin}. Raise the limit (ulimit -n ${data.maxConnections + admin.maxConnections + 1024}) ` +
        'or lower --max-connections and --admin-max-connections.',
      { openFileLimit: limit, maxConnections: fitted.data, adminMaxConnections: fitted.admin },
    );
    data.maxConnections = fitted.data;
    admin.maxConnections = fitted.admin;
    data.maxConnectionsPerAddress = Math.min(data.maxConnectionsPerAddress, fitted.data);
    admin.maxConnectionsPerAddress = Math.min(admin.maxConnectionsPerAddress, fitted.admin);
  }
  return { data, admin };
}

async function listen(server: NetServer, port: number, ip: string): Promise<void> {
  server.listen(port, ip);
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([error]) => Promise.reject(error))]);
}

/**
 * Graceful close: stop accepting, close connections as soon as they are idle (a keep-alive
 * connection would otherwise linger until its timeout), and past the grace period cut the rest.
 */
interface HttpListener {
  close(callback: () => void): unknown;
  closeIdleConnections(): void;
  closeAllConnections(): void;
}

async function drain(server: HttpListener, graceMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const sweep = setInterval(() => server.closeIdleConnections(), 50);
  const deadline = setTimeout(() => server.closeAllConnections(), graceMs);
  try {
    await closed;
  } finally {
    clearInterval(sweep);
    clearTimeout(deadline);
  }
}

function hostOf(address: AddressInfo): string {
  return address.family === 'IPv6' ? `[${address.address}]` : address.address;
}

function healthResponse(health: Record<string, unknown>): RuntimeResponse {
  return {
    status: 200,
    statusText: 'OK',
    headers: [['content-type', 'application/json']],
    body: Buffer.from(JSON.stringify(health)),
  };
}
