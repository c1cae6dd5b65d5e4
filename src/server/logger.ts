// The server's own structured log: one JSON object per line, info on stdout and warnings and
// errors on stderr, so that journald or a log shipper can take it as it is.

export type ServerLogLevel = 'debug' | 'info' | 'warn' | 'error';

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

export function jsonLinesSink(stdout: NodeJS.WritableStream = process.stdout, stderr: NodeJS.WritableStream = process.stderr): LogSink {
  return (entry) => {
    const line = JSON.stringify(entry) + '\n';
    if (entry.level === 'warn' || entry.level === 'error') stderr.write(line);
    else stdout.write(line);
  };
}

export function serverLog(sink: LogSink): ServerLog {
  return (level, type, message, fields) => {
    const entry: ServerLogEntry = { time: new Date().toISOString(), level, type, message, ...fields };
    sink(entry);
  };
}
