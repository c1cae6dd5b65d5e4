// `isolet tail <name>`: a worker's logs as they happen (console, exceptions, limits, one line
// per request), until Ctrl-C.

import type { CliCommand, CliContext } from '../main.ts';
import type { WorkerLogEntry } from '../../runtime/types.ts';
import type { SourceMap } from 'node:module';
import { API_OPTIONS, API_OPTIONS_HELP, EXIT, EXIT_CODES_HELP, clientFrom, runApiCommand, type AdminClient } from '../api-client.ts';
import { loadDeployedMap } from '../deployed-maps.ts';
import { mapBundlePlaces } from '../../bundle/source-map.ts';

const USAGE = `Usage: isolet tail <name> [--api URL] [--token TOKEN] [--json]

Streams the logs of worker <name> as they happen: its console output, uncaught exceptions,
limits it hit, and one line per request, e.g.
  12:00:01.234  info   GET /path 200 cpu 0.3 ms wall 1.2 ms
With --json every entry is printed as it came, one JSON object per line (NDJSON).
Run in the project folder that deployed the active version, stack traces and messages point at
its source files (isolet deploy keeps the source map in .isolet/source-maps/).
Ctrl-C ends it (exit 0).

Options:
${API_OPTIONS_HELP}

${EXIT_CODES_HELP}
`;

export const command: CliCommand = { usage: USAGE, run };

async function run(_argv: string[], cli: CliContext): Promise<number> {
  const { values, positionals } = cli.parseArgs({ options: { ...API_OPTIONS }, allowPositionals: true });
  if (positionals.length === 0) cli.usageError('missing <name>, the worker whose logs to show');
  if (positionals.length > 1) cli.usageError(`unexpected argument '${positionals[1]}'`);
  const name = positionals[0]!;

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await runApiCommand(cli, 'tail', async () => {
      const client = clientFrom(values);
      const entries = await client.openTail(name, stop.signal);
      const map = await sourceMapOf(client, name);
      // On stderr, so that stdout holds only entries (and only JSON with --json).
      cli.stderr.write(`Tailing ${name}: waiting for logs (Ctrl-C to stop)\n`);
      for await (const logged of entries) {
        const entry = map && logged.type !== 'request' && typeof logged.message === 'string' ? { ...logged, message: mapBundlePlaces(logged.message, map, process.cwd()) } : logged;
        cli.stdout.write(values.json ? JSON.stringify(entry) + '\n' : formatEntry(entry) + '\n');
      }
      if (stop.signal.aborted) return EXIT.ok;
      cli.stderr.write(`isolet tail: the server ended the log stream of ${name}\n`);
      return EXIT.ok;
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

/** One entry as a line: local time, level, and the message (requests with method, path, status, CPU and wall time). */
export function formatEntry(entry: WorkerLogEntry): string {
  const time = formatTime(entry.time);
  const level = String(entry.level ?? 'log').padEnd(5);
  let message: string;
  if (entry.type === 'request') {
    const method = typeof entry.method === 'string' ? entry.method : '';
    const path = typeof entry.url === 'string' ? pathOf(entry.url) : '';
    const parts = method !== '' ? [`${method} ${path} ${entry.status ?? ''}`.trimEnd()] : [entry.message];
    if (typeof entry.cpuMs === 'number') parts.push(`cpu ${entry.cpuMs} ms`);
    if (typeof entry.wallMs === 'number') parts.push(`wall ${entry.wallMs} ms`);
    message = parts.join(' ');
  } else if (entry.type === 'console' || entry.type === undefined) {
    message = entry.message;
  } else {
    message = `${entry.type}: ${entry.message}`;
  }
  return `${time}  ${level}  ${message}`;
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
