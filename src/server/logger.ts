// The server's own structured log: one JSON object per line, written by pino to stdout (debug,
// info and workers' console.log) and stderr (warnings and errors) through asynchronous
// destinations, so that journald or a log shipper can take it as it is and a burst of lines
// never blocks the event loop. Every line of `isolet serve` goes through it, its start-up
// announcements included.
//
// A destination whose reader stops taking lines (a paused pipe, a stuck log shipper) must not
// make the server hold them without end: tenants' console lines alone could fill its memory. Each
// destination holds at most `maxBufferedBytes`; past it lines are dropped and counted, and once
// the reader takes lines again one line says how many were lost. Flushing at exit gives up
// after FLUSH_TIMEOUT_MS rather than wait forever for such a reader.

import pino from 'pino';
import type { Writable } from 'node:stream';

export type ServerLogLevel = 'debug' | 'info' | 'warn' | 'error';

export const SERVER_LOG_LEVELS: readonly ServerLogLevel[] = ['debug', 'info', 'warn', 'error'];

export interface ServerLogEntry {
  time: string;
  level: ServerLogLevel;
  /** What the line is about: 'server', 'admin', 'http', or a worker log entry's own type. */
  type: string;
  message: string;
  [field: string]: unknown;
}

export type ServerLog = (level: ServerLogLevel, type: string, message: string, fields?: Record<string, unknown>) => void;

/** Any structured log line: the server's own, the HTTP front's, or a worker's. */
export interface LogLine {
  level: string;
}

/** Receives each entry; the default writes JSON lines to stdout/stderr. */
export type LogSink = (entry: LogLine) => void;

export interface JsonLinesOptions {
  /** The least level written (default info); workers' `console.log` lines are between info and warn. */
  level?: ServerLogLevel;
  /** Where lines below warn go, and warn and error (default: the file descriptors `fds`, written asynchronously). */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** The file descriptors of the default destinations (default 1 and 2). */
  fds?: { stdout: number; stderr: number };
  /** Bytes a default destination holds that its reader has not taken, past which lines are dropped (default 16 MiB). */
  maxBufferedBytes?: number;
}

/**
 * A sink that writes JSON lines, with `flush` to write out what is buffered before the process
 * exits (a destination whose reader takes nothing for FLUSH_TIMEOUT_MS is given up).
 */
export interface JsonLinesSink extends LogSink {
  flush(): void;
  /**
   * Writes the entry whatever the least level: the start-up lines (where the server listens,
   * where its admin token is), which an operator needs even with --log-level warn.
   */
  announce: LogSink;
}

/** Levels as the lines name them; a worker's console.log is `log`, between info and warn. */
const LEVELS = { debug: 20, info: 30, log: 31, warn: 40, error: 50 } as const;

export const DEFAULT_MAX_BUFFERED_LOG_BYTES = 16 * 1024 * 1024;
const FLUSH_TIMEOUT_MS = 2000;

/** What sonic-boom (pino's destination) offers beyond a Writable. */
interface Destination extends Writable {
  flushSync(): void;
}

/**
 * An asynchronous destination on `fd` that holds at most `maxBytes` unwritten, counts what it
 * drops, and writes one line about them once its reader takes lines again.
 */
function boundedDestination(fd: number, name: string, maxBytes: number, flushDeadline: () => number): Destination {
  let dropped = 0;
  let droppedBytes = 0;
  const destination = pino.destination({
    dest: fd,
    sync: false,
    maxLength: maxBytes,
    // A reader that is full: retry, except while flushing at exit past the deadline.
    retryEAGAIN: () => Date.now() < flushDeadline(),
  }) as unknown as Destination & { _len: number };
  destination.on('drop', (data: string | Uint8Array) => {
    dropped++;
    droppedBytes += typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
  });
  destination.on('write', () => {
    if (dropped === 0 || destination._len > maxBytes / 2) return;
    const line = JSON.stringify({
      level: 'warn', time: new Date().toISOString(), type: 'server',
      message: `${dropped} log lines (${droppedBytes} bytes) were dropped: ${name} did not take them fast enough. Give the log a faster reader.`,
      dropped, droppedBytes, destination: name,
    });
    dropped = 0;
    droppedBytes = 0;
    destination.write(line + '\n');
  });
  // A destination that fails (its reader gone, or given up on at exit) loses lines, never the server.
  destination.on('error', () => {});
  return destination;
}

export function jsonLinesSink(options: JsonLinesOptions = {}): JsonLinesSink {
  const maxBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_LOG_BYTES;
  const fds = options.fds ?? { stdout: 1, stderr: 2 };
  let flushDeadline = Infinity;
  const stdout = options.stdout ?? boundedDestination(fds.stdout, 'stdout', maxBytes, () => flushDeadline);
  const stderr = options.stderr ?? boundedDestination(fds.stderr, 'stderr', maxBytes, () => flushDeadline);
  const logger = pino(
    {
      level: options.level ?? 'info',
      customLevels: { log: LEVELS.log },
      // The entries carry their own time, and name their level and message as they always have.
      base: undefined,
      timestamp: false,
      messageKey: 'message',
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.multistream(
      [
        { level: 'debug', stream: stdout },
        { level: 'warn', stream: stderr },
      ],
      { dedupe: true, levels: { ...pino.levels.values, log: LEVELS.log } },
    ),
  );
  const writer = (into: pino.Logger<'log'>) => (entry: LogLine): void => {
    const { level, ...fields } = entry;
    // The message stays where the entry has it, before its fields, so a line reads in order.
    into[level in LEVELS ? (level as keyof typeof LEVELS) : 'info'](fields);
  };
  const write = writer(logger);
  return Object.assign(write, {
    announce: writer(logger.child({}, { level: 'debug' })),
    flush() {
      flushDeadline = Date.now() + FLUSH_TIMEOUT_MS;
      for (const stream of [stdout, stderr] as Partial<Destination>[]) {
        try {
          stream.flushSync?.();
        } catch {
          // Its reader took nothing until the deadline: what is left is lost, and the exit goes
          // on. pino flushes its destinations again as the process exits; that must not wait
          // either, so the destination is given up for good.
          stream.flushSync = () => {};
          stream.write = () => true;
        }
      }
    },
  });
}

export function serverLog(sink: LogSink): ServerLog {
  return (level, type, message, fields) => {
    const entry: ServerLogEntry = { time: new Date().toISOString(), level, type, message, ...fields };
    sink(entry);
  };
}

/**
 * Routes into the JSON log what Node would otherwise print as plain text on stderr, where a log
 * shipper that parses each line as JSON would choke on it: Node's warnings (a dependency's
 * deprecation notice, such as pg's about pgpass files, a listener leak, an experimental feature)
 * become `warn` lines, and an error nothing caught (an exception, or a rejection, which Node
 * raises as one) becomes one `error` line, written out before the process exits 1, as Node's
 * own handling would exit. Returns what puts Node's handling back.
 */
export function logProcessEvents(log: ServerLog, flush: () => void, exit: (code: number) => void = (code) => process.exit(code)): () => void {
  // Node's printer of warnings (absent under --no-warnings); this one takes its place.
  const printers = process.listeners('warning');
  for (const printer of printers) process.off('warning', printer);
  const onWarning = (warning: Error & { code?: unknown }) => {
    const code = typeof warning.code === 'string' ? warning.code : undefined;
    log('warn', 'server', `${warning.name}${code === undefined ? '' : ` [${code}]`}: ${warning.message}`, { warning: warning.name, ...(code === undefined ? {} : { code }) });
  };
  const onFatal = (error: unknown, origin: string) => {
    const what = origin === 'unhandledRejection' ? 'a promise rejection nothing handled' : 'an exception nothing caught';
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    log('error', 'server', `isolet serve stopped on ${what}: ${message}. This is a bug; please report it with this line.`, {
      ...(error instanceof Error && error.stack !== undefined ? { stack: error.stack } : {}),
    });
    flush();
    exit(1);
  };
  process.on('warning', onWarning);
  process.on('uncaughtException', onFatal);
  return () => {
    process.off('warning', onWarning);
    process.off('uncaughtException', onFatal);
    for (const printer of printers) process.on('warning', printer);
  };
}

/**
 * Which workers' request lines go to the server's log: each with probability `rate` (0 to 1),
 * and always one whose status is 500 or more. The tail and the metrics see every request
 * either way.
 */
export function requestLineSampler(rate: number, random: () => number = Math.random): (entry: { type?: unknown; status?: unknown }) => boolean {
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`The request log sampling rate must be from 0 to 1, not ${rate}.`);
  if (rate === 1) return () => true;
  return (entry) => entry.type !== 'request' || (typeof entry.status === 'number' && entry.status >= 500) || random() < rate;
}
