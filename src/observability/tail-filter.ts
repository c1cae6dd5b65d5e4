// What a tail shows of a worker's log: `isolet tail --status --method --search --sampling-rate`,
// sent as the query of GET /v1/workers/:name/tail (status, method, search, sample) and applied
// on the server, so a filtered tail of a busy worker costs the wire only what it shows.
//
// Each line is judged alone: a console line carries no request's status or method (it is not
// tied to the request whose code logged it), so a status or method filter shows request lines,
// and for `error` also the worker's uncaught exceptions and limit lines.

import type { WorkerLogEntry } from '../runtime/types.ts';

export type TailFilter = (entry: WorkerLogEntry) => boolean;

/** The filters as `isolet tail` takes them, each optional. */
export interface TailFilterOptions {
  /** ok (below 500), error (500 and above, exceptions, limits), 2xx..5xx, or codes. */
  status?: string[];
  /** Request methods, any case. */
  method?: string[];
  /** Text the line's message contains, any case. */
  search?: string;
  /** The share of lines shown, more than 0 and at most 1. */
  sample?: number;
}

const MAX_SEARCH = 256;
const METHOD = /^[A-Za-z]{1,20}$/;

/** The query of a tail request with these filters (empty when none). */
export function tailQuery(options: TailFilterOptions): string {
  const query = new URLSearchParams();
  if (options.status?.length) query.set('status', options.status.join(','));
  if (options.method?.length) query.set('method', options.method.join(','));
  if (options.search !== undefined) query.set('search', options.search);
  if (options.sample !== undefined) query.set('sample', String(options.sample));
  const text = query.toString();
  return text === '' ? '' : `?${text}`;
}

/**
 * The filter a tail request's query asks for, undefined when it asks for none; throws an Error
 * that names the bad value and what is allowed.
 */
export function parseTailFilter(query: URLSearchParams, random: () => number = Math.random): TailFilter | undefined {
  const status = list(query, 'status').map(parseStatus);
  const methods = new Set(list(query, 'method').map((method) => {
    if (!METHOD.test(method)) throw new Error(`Invalid method filter '${method}': give request methods such as GET or POST.`);
    return method.toUpperCase();
  }));
  const search = query.get('search') ?? undefined;
  if (search !== undefined && (search === '' || search.length > MAX_SEARCH)) {
    throw new Error(`The search text must be 1 to ${MAX_SEARCH} characters.`);
  }
  const sampleText = query.get('sample');
  let sample = 1;
  if (sampleText !== null) {
    sample = Number(sampleText);
    if (sampleText.trim() === '' || !(sample > 0 && sample <= 1)) throw new Error(`Invalid sampling rate '${sampleText}': give a number above 0 and at most 1 (0.1 shows one line in ten).`);
  }
  if (status.length === 0 && methods.size === 0 && search === undefined && sample === 1) return undefined;
  const needle = search?.toLowerCase();
  return (entry) => {
    if (status.length > 0 && !status.some((matches) => matches(entry))) return false;
    if (methods.size > 0 && !(entry.type === 'request' && typeof entry.method === 'string' && methods.has(entry.method.toUpperCase()))) return false;
    if (needle !== undefined && !String(entry.message).toLowerCase().includes(needle)) return false;
    return sample === 1 || random() < sample;
  };
}

function list(query: URLSearchParams, name: string): string[] {
  return query.getAll(name).flatMap((value) => value.split(',')).map((value) => value.trim()).filter((value) => value !== '');
}

function parseStatus(token: string): TailFilter {
  const word = token.toLowerCase();
  const status = (entry: WorkerLogEntry): number | undefined => (entry.type === 'request' && typeof entry.status === 'number' ? entry.status : undefined);
  if (word === 'ok') return (entry) => (status(entry) ?? 500) < 500;
  if (word === 'error') return (entry) => entry.type === 'exception' || entry.type === 'limit' || (status(entry) ?? 0) >= 500;
  const range = /^([1-5])xx$/.exec(word);
  if (range !== null) return (entry) => Math.floor((status(entry) ?? 0) / 100) === Number(range[1]);
  if (/^[1-5]\d\d$/.test(word)) return (entry) => status(entry) === Number(word);
  throw new Error(`Invalid status filter '${token}': give ok, error, a class such as 4xx or 5xx, or a status code such as 404.`);
}
