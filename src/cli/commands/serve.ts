// `isolet serve`: the data plane and the admin API over a data directory. Runs until SIGTERM
// or SIGINT, then shuts down gracefully (requests in flight finish) and exits 0.

import { once } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CliCommand, CliContext } from '../main.ts';
import { startServer, type RunningServer, type ServerOptions } from '../../server/server.ts';
import { DEFAULT_LIMIT_CAPS, DEFAULT_MAX_SCRIPT_BYTES, DEFAULT_QUOTAS } from '../../server/deployment.ts';
import { DEFAULT_MAX_ACCOUNT_DEPLOYS, DEFAULT_MAX_DEPLOYS } from '../../server/deploy-slots.ts';
import { DEFAULT_EXAMPLES_DIR, deployExamples } from '../examples.ts';
import { describeIsolatedVmBuild, isolatedVmBuild } from '../../runtime/native-build.ts';
import { defaultProcessCount } from '../../supervisor/process-pool.ts';
import { DEFAULT_ADMISSION } from '../../supervisor/admission.ts';
import { parseRunAs, type RunAs } from '../../supervisor/run-as.ts';
import { UNTRIED_REQUESTS } from '../../supervisor/placement.ts';
import { redact as redactUrl } from '../../store/postgres-store.ts';
import { jsonLinesSink, logProcessEvents, serverLog, SERVER_LOG_LEVELS, type ServerLog, type ServerLogLevel } from '../../server/logger.ts';
import { DEFAULT_METRICS_WORKERS } from '../../observability/worker-labels.ts';
import { configuredTracesUrl } from '../../observability/tracing.ts';

const USAGE = `Usage: isolet serve [--port 8787] [--ip 127.0.0.1] [--admin-port 8788] [--admin-ip 127.0.0.1]
                    [--data ./.isolet] [--domain localhost] [--max-script-mb 10] [--processes N]
                    [--runtime-user USER] [--database URL | --database-file PATH] [--node-id ID]
                    [--examples [dir]] [--egress-allow NET]...
                    [--max-connections N] [--max-connections-per-ip N]
                    [--admin-max-connections N] [--admin-max-connections-per-ip N]
                    [--headers-timeout S] [--idle-timeout S] [--keep-alive-timeout S]
                    [--fetch-connections-per-account N] [--fetch-connections-per-host N]
                    [--fetch-headers-timeout S] [--fetch-timeout S]
                    [--max-workers 100] [--max-cpu-ms 50] [--max-startup-cpu-ms 400]
                    [--max-memory-mb 128] [--max-deploys 4] [--max-account-deploys 2]
                    [--max-requests-per-worker 128] [--max-queued-per-worker 512]
                    [--limit-strikes 3] [--untried-requests 1] [--log-level info] [--log-request-sample-rate 1]
                    [--metrics-token T | --metrics-token-file PATH] [--metrics-workers 100]
                    [--otlp-endpoint URL] [--trace-sample-rate 1]

Serves every deployed worker: tenant traffic on --ip:--port, routed by Host
(<worker>.<domain>, or a custom route), and the admin API (docs/ADMIN_API.md) on
--admin-ip:--admin-port. State lives in --data: isolet.db (SQLite), secrets.key and
admin-token (unless ISOLET_SECRETS_KEY and ISOLET_ADMIN_TOKEN are set).

With --database (or ISOLET_DATABASE_URL) the store is that PostgreSQL database
instead, and this server is one node of a cluster: every node given the same
database serves what any node's admin API changed, within a second
(docs/CLUSTER.md). Every node then needs the same admin token and secrets key.

With --examples, a server whose store has no workers yet deploys each folder of
the examples dir (default: isolet's own examples/) as a worker of the account
'examples', read like 'isolet deploy' reads a project (wrangler.toml/json/jsonc,
else worker.ts or index.ts). A store that has workers gets none.

Options:
      --database <url>       PostgreSQL URL (postgres://user:password@host:port/db) shared by the
                             cluster's nodes (default: ISOLET_DATABASE_URL, else SQLite in --data).
                             A password in it is readable by every local user in the process
                             list: prefer ISOLET_DATABASE_URL or --database-file
      --database-file <path> A file holding the --database URL (one line)
      --node-id <id>         This node's name in logs and /healthz (default: host name:port)
  -p, --port <port>          Data plane port (default 8787; 0 picks a free one)
      --ip <address>         Data plane address (default 127.0.0.1)
      --admin-port <port>    Admin API port (default 8788; 0 picks a free one)
      --admin-ip <address>   Admin API address (default 127.0.0.1; keep it private)
      --data <dir>           Data directory (default ./.isolet)
      --domain <domain>      Workers answer on <worker>.<domain> (default localhost)
      --max-script-mb <MB>   Most code one version may have (default ${DEFAULT_MAX_SCRIPT_BYTES / 1024 / 1024})
      --processes <n>        Runtime processes that run workers, of the default tier (default: one
                             per core, at least 2; the trusted tier gets as many, quarantine 1);
                             0 runs workers in the server's own process, with no crash containment;
                             a tier gets more when its workers would not fit (80% of each process's
                             live isolate cap)
      --runtime-user <user>  OS user the runtime processes run as (a name, uid or uid:gid; needs
                             root): code that escapes V8 then cannot read --data or signal the
                             server. Recommended whenever isolet serve runs as root
      --isolate-memory-mb <MB>  Memory the live isolates of each runtime process may hold; past it
                             the least recently used idle ones are disposed for tenants asked for
                             more often (default: 40% of the machine's memory, shared among the
                             processes)
      --asset-cache-mb <MB>  Bytes of static assets kept in memory in front of the store (default 64)
      --max-requests-per-worker <n>  Requests of one worker in flight at once (default ${DEFAULT_ADMISSION.inFlight})
      --max-queued-per-worker <n>    ... and waiting for a slot (default ${DEFAULT_ADMISSION.queued}); past both the
                             worker's clients get 503 with Retry-After, and other workers are served as before
      --limit-strikes <n>    A worker's requests ending at its CPU or memory limit or crashing its process, in a
                             minute and most of its requests, before it is refused for a while (default
                             ${DEFAULT_ADMISSION.limitStrikes}; 0: never)
      --untried-requests <n> Requests a default-tier worker's new version must end cleanly (not at a
                             limit, not crashing its process) in the untried runtime process, which
                             runs at a lower CPU priority, before it is served from its home
                             (default ${UNTRIED_REQUESTS}; 0: new code goes home at once)
      --examples [dir]       Deploy the examples into an empty store (dir: one worker per folder)
      --egress-allow <net>   Let workers' fetch() reach this CIDR, address or host name (repeatable);
                             loopback, private, link-local and metadata addresses are refused otherwise

Quotas of every account, unless the operator sets its own (PUT /v1/accounts/:account/quotas):
      --max-workers <n>          Workers one account may have (default ${DEFAULT_QUOTAS.maxWorkers})
      --max-cpu-ms <ms>          Most limits.cpuMs a deployment may ask for (default ${DEFAULT_QUOTAS.cpuMs})
      --max-startup-cpu-ms <ms>  Most limits.startupCpuMs (default ${DEFAULT_QUOTAS.startupCpuMs})
      --max-memory-mb <MB>       Most limits.memoryMb (default ${DEFAULT_QUOTAS.memoryMb})
      --max-deploys <n>          Deployments validated at once, in all (default ${DEFAULT_MAX_DEPLOYS}; more get 429)
      --max-account-deploys <n>  Deployments validated at once per account (default ${DEFAULT_MAX_ACCOUNT_DEPLOYS})
  -h, --help                 Show this help

Logs, metrics and traces (docs/ADMIN_API.md, "Metrics"):
      --log-level <level>    Least level of the JSON log lines written: debug, info, warn or error
                             (default info; workers' console.log lines sit between info and warn).
                             The start-up lines (admin token, listening on, admin API on) are
                             written at any level
      --log-request-sample-rate <r>  Share of the workers' request lines written to the log, 0 to 1
                             (default 1); a request answered 500 or more is always written, and
                             tails and metrics see every request
      --metrics-token <token>  A token that opens GET /metrics on the admin listener and nothing
                             else, for a Prometheus server (default: ISOLET_METRICS_TOKEN; the admin
                             token opens it too). On the command line it is readable by every local
                             user in the process list: prefer ISOLET_METRICS_TOKEN or --metrics-token-file
      --metrics-token-file <path>  A file holding the scrape token (one line)
      --metrics-workers <n>  Workers with series of their own in /metrics: the busiest of each
                             minute; the others share worker="_other" (default ${DEFAULT_METRICS_WORKERS})
      --otlp-endpoint <url>  Send traces of requests and their subrequests to this OTLP/HTTP
                             collector, e.g. http://127.0.0.1:4318 (/v1/traces is added; default:
                             OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, the traces URL as it is, else
                             OTEL_EXPORTER_OTLP_ENDPOINT; none: tracing is off)
      --trace-sample-rate <r>  Share of requests traced, 0 to 1 (default 1)

Connections (each listener has its own budget; past a cap a connection is closed as accepted):
      --max-connections <n>            Data plane connections open at once (default 10000)
      --max-connections-per-ip <n>     ... from one client address, an IPv6 /64 (default 256)
      --admin-max-connections <n>      Admin API connections open at once (default 256)
      --admin-max-connections-per-ip <n>  ... from one client address (default 64)
      --headers-timeout <s>            Time a client has to send a request head (default 10)
      --idle-timeout <s>               Time a connection may stall while the client is to send
                                       or read (default 30)
      --keep-alive-timeout <s>         Time an idle keep-alive connection is kept (default 5)
  The total caps are lowered, with a warning, when they do not fit in 'ulimit -n'.

Workers' fetch():
      --fetch-connections-per-account <n>  Outbound connections one account may have in use (default 32)
      --fetch-connections-per-host <n>     ... to one destination (default 6); past a cap a fetch waits
      --fetch-headers-timeout <s>      Time a fetch has to get its response head, waiting included (default 30)
      --fetch-timeout <s>              Time a whole fetch may take, body included (default 300)

Environment:
  ISOLET_ADMIN_TOKEN   the operator's token (default: made at first start in <data>/admin-token;
                       with --database: this, or that file, the same on every node)
  ISOLET_SECRETS_KEY   base64 of 32 bytes that encrypts secrets (default: <data>/secrets.key;
                       with --database: this, or that file, the same on every node)
  ISOLET_DATABASE_URL  the --database URL
  ISOLET_METRICS_TOKEN the --metrics-token
  A secret is best given in the environment or a file (--database-file, --metrics-token-file):
  a command line is readable by every local user. Runtime processes get none of this
  environment (only PATH, TZ, the locale and TLS certificate settings).
  OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS
                       where traces go, as every OpenTelemetry exporter reads them

The log is JSON lines: debug, info and workers' console.log on stdout, warn and
error on stderr, the start-up lines (listening on ..., admin API on ...) included.
`;

export const command: CliCommand = {
  usage: USAGE,
  run,
};

async function run(_argv: string[], cli: CliContext): Promise<number> {
  const { values, positionals } = cli.parseArgs({
    options: {
      port: { type: 'string', short: 'p', default: '8787' },
      ip: { type: 'string', default: '127.0.0.1' },
      'admin-port': { type: 'string', default: '8788' },
      'admin-ip': { type: 'string', default: '127.0.0.1' },
      data: { type: 'string', default: './.isolet' },
      domain: { type: 'string', default: 'localhost' },
      'max-script-mb': { type: 'string', default: String(DEFAULT_MAX_SCRIPT_BYTES / 1024 / 1024) },
      processes: { type: 'string', default: String(defaultProcessCount()) },
      'runtime-user': { type: 'string' },
      'isolate-memory-mb': { type: 'string' },
      'asset-cache-mb': { type: 'string' },
      database: { type: 'string' },
      'node-id': { type: 'string' },
      'max-requests-per-worker': { type: 'string', default: String(DEFAULT_ADMISSION.inFlight) },
      'max-queued-per-worker': { type: 'string', default: String(DEFAULT_ADMISSION.queued) },
      'limit-strikes': { type: 'string', default: String(DEFAULT_ADMISSION.limitStrikes) },
      'untried-requests': { type: 'string', default: String(UNTRIED_REQUESTS) },
      // A flag with an optional value, which parseArgs cannot say: the dir is the positional.
      examples: { type: 'boolean', default: false },
      'egress-allow': { type: 'string', multiple: true, default: [] },
      'max-connections': { type: 'string' },
      'max-connections-per-ip': { type: 'string' },
      'admin-max-connections': { type: 'string' },
      'admin-max-connections-per-ip': { type: 'string' },
      'headers-timeout': { type: 'string' },
      'idle-timeout': { type: 'string' },
      'keep-alive-timeout': { type: 'string' },
      'fetch-connections-per-account': { type: 'string' },
      'fetch-connections-per-host': { type: 'string' },
      'fetch-headers-timeout': { type: 'string' },
      'fetch-timeout': { type: 'string' },
      'max-workers': { type: 'string', default: String(DEFAULT_QUOTAS.maxWorkers) },
      'max-cpu-ms': { type: 'string', default: String(DEFAULT_QUOTAS.cpuMs) },
      'max-startup-cpu-ms': { type: 'string', default: String(DEFAULT_QUOTAS.startupCpuMs) },
      'max-memory-mb': { type: 'string', default: String(DEFAULT_QUOTAS.memoryMb) },
      'max-deploys': { type: 'string', default: String(DEFAULT_MAX_DEPLOYS) },
      'max-account-deploys': { type: 'string', default: String(DEFAULT_MAX_ACCOUNT_DEPLOYS) },
      'log-level': { type: 'string', default: 'info' },
      'log-request-sample-rate': { type: 'string', default: '1' },
      'metrics-token': { type: 'string' },
      'metrics-token-file': { type: 'string' },
      'database-file': { type: 'string' },
      'metrics-workers': { type: 'string', default: String(DEFAULT_METRICS_WORKERS) },
      'otlp-endpoint': { type: 'string' },
      'trace-sample-rate': { type: 'string', default: '1' },
    },
    allowPositionals: true,
  });
  if (positionals.length > 0 && !values.examples) cli.usageError(`unexpected argument '${positionals[0]}'`);
  if (positionals.length > 1) cli.usageError(`unexpected argument '${positionals[1]}' (--examples takes one dir)`);
  const examplesDir = values.examples ? resolve(positionals[0] ?? DEFAULT_EXAMPLES_DIR) : undefined;
  if (examplesDir !== undefined && !isDirectory(examplesDir)) cli.usageError(`--examples: no such directory: ${examplesDir}`);
  const port = parsePort('--port', values.port, cli);
  const adminPort = parsePort('--admin-port', values['admin-port'], cli);
  const maxMb = Number(values['max-script-mb']);
  if (!Number.isFinite(maxMb) || maxMb <= 0) cli.usageError(`--max-script-mb must be a positive number, not '${values['max-script-mb']}'`);
  if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(values.domain)) cli.usageError(`--domain must be a domain name, not '${values.domain}'`);
  const count = (flag: keyof typeof values) => positiveNumber(flag, values[flag] as string | undefined, cli, 1);
  const ms = (flag: keyof typeof values) => positiveNumber(flag, values[flag] as string | undefined, cli, 1000);
  // The timeouts apply to both listeners; the caps are each listener's own.
  const timeouts = { headersTimeoutMs: ms('headers-timeout'), idleTimeoutMs: ms('idle-timeout'), keepAliveTimeoutMs: ms('keep-alive-timeout') };
  const connections = { ...timeouts, maxConnections: count('max-connections'), maxConnectionsPerAddress: count('max-connections-per-ip') };
  const adminConnections = {
    ...timeouts, maxConnections: count('admin-max-connections'), maxConnectionsPerAddress: count('admin-max-connections-per-ip'),
  };
  const egress = {
    allow: values['egress-allow'],
    connectionsPerAccount: count('fetch-connections-per-account'),
    connectionsPerDestination: count('fetch-connections-per-host'),
    headersTimeoutMs: ms('fetch-headers-timeout'),
    timeoutMs: ms('fetch-timeout'),
  };
  const quotas = {
    maxWorkers: parseCount('--max-workers', values['max-workers'], 0, 1_000_000, cli),
    cpuMs: parseCount('--max-cpu-ms', values['max-cpu-ms'], 1, DEFAULT_LIMIT_CAPS.cpuMs, cli),
    startupCpuMs: parseCount('--max-startup-cpu-ms', values['max-startup-cpu-ms'], 1, DEFAULT_LIMIT_CAPS.startupCpuMs, cli),
    memoryMb: parseCount('--max-memory-mb', values['max-memory-mb'], 1, DEFAULT_LIMIT_CAPS.memoryMb, cli),
  };
  const processes = parseCount('--processes', values.processes, 0, 256, cli);
  const untriedRequests = parseCount('--untried-requests', values['untried-requests'], 0, 1000, cli);
  let runAs: RunAs | undefined;
  if (values['runtime-user'] !== undefined) {
    if (processes === 0) cli.usageError('--runtime-user needs runtime processes (--processes 1 or more)');
    try {
      runAs = parseRunAs(values['runtime-user']);
    } catch (error) {
      cli.usageError((error as Error).message);
    }
  }
  const memoryBudgetMb = values['isolate-memory-mb'] === undefined ? undefined : parseCount('--isolate-memory-mb', values['isolate-memory-mb'], 16, 1_048_576, cli);
  const assetCacheMb = values['asset-cache-mb'] === undefined ? undefined : parseCount('--asset-cache-mb', values['asset-cache-mb'], 1, 1_048_576, cli);
  const admission = {
    inFlight: parseCount('--max-requests-per-worker', values['max-requests-per-worker'], 1, 1_000_000, cli),
    queued: parseCount('--max-queued-per-worker', values['max-queued-per-worker'], 0, 1_000_000, cli),
    limitStrikes: parseCount('--limit-strikes', values['limit-strikes'], 0, 1000, cli),
  };
  const database = secretFlag('--database', values.database, values['database-file'], cli) ?? (process.env.ISOLET_DATABASE_URL || undefined);
  if (database !== undefined && !/^postgres(ql)?:\/\//.test(database)) {
    cli.usageError(`--database must be a PostgreSQL URL (postgres://user:password@host:port/database), not '${redactUrl(database)}'`);
  }
  const nodeId = values['node-id'];
  if (nodeId !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$/.test(nodeId)) {
    cli.usageError(`--node-id must be 1-63 letters, digits, '.', '_', ':' or '-', not '${nodeId}'`);
  }
  const maxDeploys = parseCount('--max-deploys', values['max-deploys'], 1, 1000, cli);
  const maxAccountDeploys = parseCount('--max-account-deploys', values['max-account-deploys'], 1, 1000, cli);

  const logLevel = values['log-level'] as ServerLogLevel;
  if (!SERVER_LOG_LEVELS.includes(logLevel)) cli.usageError(`--log-level must be one of ${SERVER_LOG_LEVELS.join(', ')}, not '${values['log-level']}'`);
  const rate = (flag: 'log-request-sample-rate' | 'trace-sample-rate'): number => {
    const value = Number(values[flag]);
    if (values[flag].trim() === '' || !(value >= 0 && value <= 1)) cli.usageError(`--${flag} must be a number from 0 to 1, not '${values[flag]}'`);
    return value;
  };
  const sampleRate = rate('log-request-sample-rate');
  const traceSampleRate = rate('trace-sample-rate');
  const metricsWorkers = parseCount('--metrics-workers', values['metrics-workers'], 0, 100_000, cli);
  const otlpTracesUrl = configuredTracesUrl(values['otlp-endpoint'], process.env);
  if (otlpTracesUrl !== undefined && !/^https?:\/\//.test(otlpTracesUrl)) {
    const from = values['otlp-endpoint'] !== undefined ? '--otlp-endpoint' : process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT';
    cli.usageError(`${from} must be an http(s) URL, not '${otlpTracesUrl}'`);
  }

  const options: ServerOptions = {
    dataDir: resolve(values.data),
    port,
    ip: values.ip,
    adminPort,
    adminIp: values['admin-ip'],
    domain: values.domain,
    maxScriptBytes: Math.floor(maxMb * 1024 * 1024),
    processes,
    untriedRequests,
    runAs,
    memoryBudgetMb,
    assetCacheMb,
    admission,
    egress,
    connections,
    adminConnections,
    quotas,
    maxDeploys,
    maxAccountDeploys,
    database,
    nodeId,
    logRequestSampleRate: sampleRate,
    metricsToken: secretFlag('--metrics-token', values['metrics-token'], values['metrics-token-file'], cli),
    metricsWorkers,
    otlpTracesUrl,
    traceSampleRate,
  };
  const sink = jsonLinesSink({ level: logLevel });
  const log = serverLog(sink);
  // From here on every line the server writes is JSON, Node's warnings and a fatal error too.
  // Left in place until the process exits: a warning emitted while it shuts down goes to the log.
  logProcessEvents(log, () => sink.flush());
  try {
    return await serveUntilStopped({ ...options, logSink: sink }, log, serverLog(sink.announce), examplesDir);
  } catch (error) {
    log('error', 'server', `isolet serve failed: ${error instanceof Error ? error.message : String(error)}`, error instanceof Error ? { stack: error.stack } : {});
    return 1;
  } finally {
    sink.flush();
  }
}

/**
 * Starts the server, says where it listens, and runs it until SIGTERM or SIGINT. `announce`
 * writes whatever --log-level says: the operator always learns the addresses and the token's place.
 */
async function serveUntilStopped(options: ServerOptions, log: ServerLog, announce: ServerLog, examplesDir: string | undefined): Promise<number> {
  // Signals that arrive while starting still stop the server once it is up.
  const stop = Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')]);
  let server;
  try {
    server = await startServer(options);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log('error', 'server', `isolet serve could not start: ${message}`);
    return 1;
  }
  if (server.adminTokenCreated) announce('info', 'server', `admin token written to ${server.adminTokenSource} (mode 0600)`);
  else announce('info', 'server', `admin token from ${server.adminTokenSource}`);
  announce('info', 'server', `listening on ${server.url}`, { url: server.url });
  announce('info', 'server', `admin API on ${server.adminUrl}`, { url: server.adminUrl });
  if (options.database !== undefined) announce('info', 'server', `node ${server.nodeId} of the cluster on ${redactUrl(options.database)}`, { node: server.nodeId });
  const build = isolatedVmBuild();
  if (!build.patched) {
    log('warn', 'server', `running on ${describeIsolatedVmBuild(build)}; each isolate holds more memory and CPU accounting counts time spent waiting for a core`);
  }
  if (examplesDir !== undefined) await serveExamples(server, examplesDir, log);
  await stop;
  await server.close();
  return 0;
}

/** Deploys the examples and says where each answers; one that fails is reported and skipped. */
async function serveExamples(server: RunningServer, dir: string, log: ServerLog): Promise<void> {
  const outcome = await deployExamples(server, dir);
  if (!outcome.deployed) {
    const workers = outcome.workers === 1 ? '1 worker' : `${outcome.workers} workers`;
    log('info', 'server', `examples not deployed: the store already has ${workers} (examples go only into an empty store)`);
    return;
  }
  for (const example of outcome.examples) {
    if ('error' in example) {
      log('error', 'server', `example ${example.folder} failed, not deployed (${join(dir, example.folder)}): ${example.error}`, { folder: example.folder });
      continue;
    }
    for (const note of example.notes) log('warn', 'server', `example ${example.name}: ${note}`, { worker: example.name });
    log('info', 'server', `example ${example.name} → ${example.url}`, { worker: example.name, url: example.url });
  }
  if (outcome.examples.length === 0) log('info', 'server', `examples: no folders in ${dir}`);
}

/**
 * A secret given on the command line, or read from the file `<flag>-file` names (its one line,
 * without the line's end): a file keeps it out of the process list, where every local user can
 * read a command line.
 */
function secretFlag(flag: string, value: string | undefined, file: string | undefined, cli: CliContext): string | undefined {
  if (file === undefined) return value;
  if (value !== undefined) cli.usageError(`${flag} and ${flag}-file both given: keep one (the file keeps the secret out of the process list)`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    cli.usageError(`${flag}-file: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}). Fix: give a file this user can read`);
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '' || /[\r\n]/.test(secret)) cli.usageError(`${flag}-file: ${file} must hold the value on one line, and nothing else`);
  return secret;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** A flag's positive number (whole after `scale`), scaled (seconds to ms); undefined when not given. */
function positiveNumber(flag: string, text: string | undefined, cli: CliContext, scale: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text) * scale;
  if (text.trim() === '' || !Number.isSafeInteger(value) || value < 1) {
    cli.usageError(`--${flag} must be a positive ${scale === 1 ? 'whole number' : 'number of seconds'}, not '${text}'`);
  }
  return value;
}

function parsePort(flag: string, text: string, cli: CliContext): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) cli.usageError(`${flag} must be a number from 0 to 65535, not '${text}'`);
  return port;
}

function parseCount(flag: string, text: string, least: number, most: number, cli: CliContext): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < least || n > most) cli.usageError(`${flag} must be a whole number from ${least} to ${most}, not '${text}'`);
  return n;
}
