// A row of a worker's hourly counts. Its own module, importing nothing, because the dashboard's
// browser code (checked against the DOM, not Node) reads the series built from it.

/** What a worker did in one minute (minutes since the epoch), as one server instance counted it, or summed. */
export interface WorkerMinute {
  worker: string;
  minute: number;
  requests: number;
  errors: number;
  cpuMs: number;
  coldStarts: number;
}
