// The server's own structured log: one JSON object per line, written by pino to stdout (debug,
// info and workers' console.log) and stderr (warnings and errors) through asynchronous
// destinations, so that journald or a log shipper can take it as it is and a burst of lines
// never blocks the event loop. Every line of `isolet serve` goes through it, its start-up
// announcements included.

import pino from 'pino';

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
  /** Where lines below warn go, and warn and error (default: file descriptors 1 and 2, written asynchronously). */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

/** A sink that writes JSON lines, with `flush` to write out what is buffered (before the process exits). */
export interface JsonLinesSink extends LogSink {
  flush(): void;
}

/** Levels as the lines name them; a worker's console.log is `log`, between info and warn. */
const LEVELS = { debug: 20, info: 30, log: 31, warn: 40, error: 50 } as const;

export function jsonLinesSink(options: JsonLinesOptions = {}): JsonLinesSink {
  const stdout = options.stdout ?? pino.destination({ dest: 1, sync: false });
  const stderr = options.stderr ?? pino.destination({ dest: 2, sync: false });
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
  const write = (entry: LogLine): void => {
    const { level, ...fields } = entry;
    // The message stays where the entry has it, before its fields, so a line reads in order.
    logger[level in LEVELS ? (level as keyof typeof LEVELS) : 'info'](fields);
  };
  return Object.assign(write, {
    flush() {
      for (const stream of [stdout, stderr]) (stream as { flushSync?: () => void }).flushSync?.();
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
 * Which workers' request lines go to the server's log: each with probability `rate` (0 to 1),
 * and always one whose status is 500 or more. The tail and the metrics see every request
 * either way.
 */
export function requestLineSampler(rate: number, random: () => number = Math.random): (entry: { type?: unknown; status?: unknown }) => boolean {
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`The request log sampling rate must be from 0 to 1, not ${rate}.`);
  if (rate === 1) return () => true;
  return (entry) => entry.type !== 'request' || (typeof entry.status === 'number' && entry.status >= 500) || random() < rate;
}
