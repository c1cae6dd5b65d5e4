// `isolet tail <name>`: a worker's logs as they happen (console, exceptions, limits, one line
// per request), until Ctrl-C; filtered on the server (--status, --method, --search,
// --sampling-rate), and connected again, with back-off, when the server restarts.

import type { CliCommand, CliContext } from '../main.ts';
import type { WorkerLogEntry } from '../../runtime/types.ts';
import type { SourceMap } from 'node:module';
import { API_OPTIONS, API_OPTIONS_HELP, ApiError, ApiUnreachable, EXIT, EXIT_CODES_HELP, clientFrom, runApiCommand, type AdminClient } from '../api-client.ts';
import { parseTailFilter, tailQuery, type TailFilterOptions } from '../../observability/tail-filter.ts';
import { loadDeployedMap } from '../deployed-maps.ts';
import { mapBundlePlaces } from '../../bundle/source-map.ts';

const USAGE = `Usage: isolet tail <name> [--status S]... [--method M]... [--search TEXT]
                   [--sampling-rate R] [--api URL] [--token TOKEN] [--json]

Streams the logs of worker <name> as they happen: its console output, uncaught exceptions,
limits it hit, and one line per request, e.g.
  12:00:01.234  info   GET /path 200 cpu 0.3 ms wall 1.2 ms
With --json every entry is printed as it came, one JSON object per line (NDJSON).
Run in the project folder that deployed the active version, stack traces and messages point at
its source files (isolet deploy keeps the source map in .isolet/source-maps/).
When the server restarts or the connection drops, tail says so on stderr and connects
again (after 0.25 s, then twice as long each time, at most 10 s); lines logged meanwhile
are not shown. Ctrl-C ends it (exit 0).

Filters (applied by the server; each line is judged alone):
      --status <s>         Request lines with this outcome: ok (below 500), error (500 and
                           above, plus uncaught exceptions and limit lines), a class such as
                           4xx or 5xx, or a code such as 404; repeat or separate with commas
      --method <m>         Request lines of this method (GET, POST, ...); repeatable
      --search <text>      Lines whose message contains the text (any case)
      --sampling-rate <r>  Show this share of the lines, above 0 and at most 1 (e.g. 0.1)
  Console lines carry no request's status or method: --status and --method hide them.

Options:
${API_OPTIONS_HELP}

${EXIT_CODES_HELP}
`;

export const command: CliCommand = { usage: USAGE, run };

/** The first wait before connecting again, doubled after each failure up to the last. */
const RECONNECT_FIRST_MS = 250;
const RECONNECT_MOST_MS = 10_000;

async function run(_argv: string[], cli: CliContext): Promise<number> {
  const { values, positionals } = cli.parseArgs({
    options: {
      ...API_OPTIONS,
      status: { type: 'string', multiple: true, default: [] },
      method: { type: 'string', multiple: true, default: [] },
      search: { type: 'string' },
      'sampling-rate': { type: 'string' },
    },
    allowPositionals: true,
  });
  if (positionals.length === 0) cli.usageError('missing <name>, the worker whose logs to show');
  if (positionals.length > 1) cli.usageError(`unexpected argument '${positionals[1]}'`);
  const name = positionals[0]!;
  const filter: TailFilterOptions = {
    status: values.status,
    method: values.method,
    search: values.search,
    sample: values['sampling-rate'] === undefined ? undefined : Number(values['sampling-rate']),
  };
  const rate = values['sampling-rate'];
  if (rate !== undefined && !(Number(rate) > 0 && Number(rate) <= 1)) {
    cli.usageError(`--sampling-rate must be a number above 0 and at most 1 (0.1 shows one line in ten), not '${rate}'`);
  }
  try {
    // The server checks them too; wrong ones are a usage error before anything is sent.
    parseTailFilter(new URLSearchParams(tailQuery(filter)));
  } catch (error) {
    cli.usageError((error as Error).message);
  }

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await runApiCommand(cli, 'tail', async () => {
      const client = clientFrom(values);
      return follow(client, name, filter, values.json, stop.signal, cli, await sourceMapOf(client, name));
    });
  } catch (error) {
    if (stop.signal.aborted) return EXIT.ok;
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The source map deploy kept in this folder, if it belongs to the version active now. */
async function sourceMapOf(client: AdminClient, name: string): Promise<SourceMap | undefined> {
  const saved = loadDeployedMap(process.cwd(), name);
  if (!saved) return undefined;
  try {
    const active = (await client.getWorker(name)).activeVersion;
    return typeof active === 'object' && active !== null && active.hash === saved.hash ? saved.map : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Shows the worker's lines until `stop`, the server ends the tail for good (the worker deleted,
 * the token revoked), or it refuses to open one. A first connection that fails is an error as
 * for any command; after that, a lost stream is opened again.
 */
async function follow(client: AdminClient, name: string, filter: TailFilterOptions, json: boolean, stop: AbortSignal, cli: CliContext, map: SourceMap | undefined): Promise<number> {
  let connected = false;
  let failures = 0;
  for (;;) {
    let entries: AsyncIterable<WorkerLogEntry>;
    try {
      entries = await client.openTail(name, stop, filter);
    } catch (error) {
      if (stop.aborted) return EXIT.ok;
      if (!connected || !retryable(error)) throw error;
      const wait = backoff(failures++);
      cli.stderr.write(`isolet tail: cannot open the log stream of ${name} (${reason(error)}); trying again in ${seconds(wait)}\n`);
      await sleep(wait, stop);
      if (stop.aborted) return EXIT.ok;
      continue;
    }
    // On stderr, so that stdout holds only entries (and only JSON with --json).
    cli.stderr.write(connected ? `isolet tail: connected again; tailing ${name}\n` : `Tailing ${name}: waiting for logs (Ctrl-C to stop)\n`);
    connected = true;
    failures = 0;
    let ended: WorkerLogEntry | undefined;
    let cut = 'the server closed it';
    try {
      for await (const logged of entries) {
        const entry = shownEntry(logged, map, process.cwd());
        cli.stdout.write(json ? JSON.stringify(entry) + '\n' : formatEntry(entry) + '\n');
        if (entry.type === ('tail' as WorkerLogEntry['type'])) ended = entry;
      }
    } catch (error) {
      cut = reason(error);
    }
    if (stop.aborted) return EXIT.ok;
    // The server's last line says it ended this tail for good (the worker deleted, the token revoked).
    if (ended !== undefined) {
      cli.stderr.write(`isolet tail: the server ended the log stream of ${name}\n`);
      return EXIT.ok;
    }
    const wait = backoff(failures++);
    cli.stderr.write(`isolet tail: the log stream of ${name} was cut (${cut}; the server may be restarting); connecting again in ${seconds(wait)}\n`);
    await sleep(wait, stop);
    if (stop.aborted) return EXIT.ok;
  }
}

/** Worth trying again: the server is away or restarting; not a refusal (no such worker, a revoked token). */
function retryable(error: unknown): boolean {
  return error instanceof ApiUnreachable || (error instanceof ApiError && (error.status === 502 || error.status === 503 || error.status === 504));
}

function reason(error: unknown): string {
  if (error instanceof ApiUnreachable) return error.reason;
  return error instanceof Error ? error.message : String(error);
}

function backoff(failures: number): number {
  return Math.min(RECONNECT_MOST_MS, RECONNECT_FIRST_MS * 2 ** failures);
}

function seconds(ms: number): string {
  return `${ms / 1000} s`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * An entry as the tenant is shown it: stack traces without the platform's own frames, and places
 * in the bundle as places in the project's sources when its map is here (src/bundle/source-map.ts).
 */
export function shownEntry(entry: WorkerLogEntry, map: SourceMap | undefined, cwd: string): WorkerLogEntry {
  if (entry.type === 'request' || typeof entry.message !== 'string') return entry;
  return { ...entry, message: mapBundlePlaces(entry.message, map, cwd) };
}

/** One entry as a line: local time, level, the node that made it if another one, and the message (requests with method, path, status, CPU and wall time; scheduled events with cron, outcome and times). */
export function formatEntry(entry: WorkerLogEntry): string {
  const time = formatTime(entry.time);
  const level = String(entry.level ?? 'log').padEnd(5);
  let message: string;
  if (entry.type === 'request' || entry.type === 'scheduled') {
    const method = typeof entry.method === 'string' ? entry.method : '';
    const path = typeof entry.url === 'string' ? pathOf(entry.url) : '';
    // A scheduled event's message is already `scheduled "<cron>" <outcome>`.
    const parts = method !== '' ? [`${method} ${path} ${entry.status ?? ''}`.trimEnd()] : [entry.message];
    if (typeof entry.cpuMs === 'number') parts.push(`cpu ${entry.cpuMs} ms`);
    if (typeof entry.wallMs === 'number') parts.push(`wall ${entry.wallMs} ms`);
    message = parts.join(' ');
  } else if (entry.type === 'console' || entry.type === undefined) {
    message = entry.message;
  } else {
    message = `${entry.type}: ${entry.message}`;
  }
  // In a cluster, a line another node made names it (docs/CLUSTER.md).
  const node = typeof entry.node === 'string' ? `[${entry.node}] ` : '';
  return `${time}  ${level}  ${node}${message}`;
}

function pathOf(url: string): string {
  try {
    const parsed = new URL(url);
    return parsed.pathname + parsed.search;
  } catch {
    return url;
  }
}

/** `HH:MM:SS.mmm` in local time for a timestamp of today, else the full ISO time. */
function formatTime(iso: unknown): string {
  if (typeof iso !== 'string') return '-';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const clock = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
  const now = new Date();
  if (date.toDateString() === now.toDateString()) return clock;
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${clock}`;
}
