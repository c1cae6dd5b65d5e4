// Cron triggers' schedules in Cloudflare's syntax, in UTC: what Cloudflare's own parser
// (cloudflare/saffron) accepts, with the same meaning, and nothing it refuses. The grammar is
// src/cron/grammar.ts, when a schedule fires src/cron/schedule.ts; both follow saffron rather
// than a general cron library, because Cloudflare's dialect has forms none of them reads alike
// (steps from a number, ranges that wrap, `L-3W`, `L` alone as Saturday, weekdays 1-7, and
// the day-of-month-or-weekday rule keyed on a literal `*`). Where saffron's compiled matcher
// departs from what an expression says (docs/COMPATIBILITY.md, "Cron triggers"), isolet fires
// as the expression says.

import { parseCron, type CronFields } from './grammar.ts';
import { firesAt as fieldsFireAt, nextRun as fieldsNextRun, scheduleKey, MINUTE_MS } from './schedule.ts';

export { MINUTE_MS };

/** Cron triggers one worker (one version) may have. */
export const MAX_CRONS = 10;
/** The longest expression accepted: far past any real one, short enough to log and store whole. */
const MAX_CRON_CHARS = 100;

const EXAMPLE = 'five fields, minute hour day-of-month month day-of-week, in UTC, e.g. "*/5 * * * *" or "0 18 * * FRI"';

/** A schedule that is not one: the message names the expression, the problem and the fix. */
export class CronError extends Error {
  override name = 'CronError';
}

/** One checked expression. */
export interface CronSchedule {
  readonly expression: string;
  readonly fields: CronFields;
}

/**
 * A worker's cron triggers, checked: a list of at most MAX_CRONS expressions, each one Cloudflare
 * accepts and that fires at least once, no two the same schedule (Cloudflare's API refuses
 * `0/5 * * * *` next to `*\/5 * * * *`). Returns them trimmed.
 */
export function checkCrons(value: unknown): string[] {
  if (!Array.isArray(value)) throw new CronError(`crons must be a list of cron expressions (${EXAMPLE}).`);
  if (value.length > MAX_CRONS) throw new CronError(`A worker may have at most ${MAX_CRONS} cron triggers, not ${value.length}: combine schedules (e.g. "0 8,20 * * *").`);
  const seen = new Map<string, string>();
  for (const item of value) {
    if (typeof item !== 'string') throw new CronError(`Each cron trigger must be a string (${EXAMPLE}), not ${JSON.stringify(item) ?? String(item)}.`);
    const cron = item.trim();
    const key = scheduleKey(cronSchedule(cron).fields);
    const earlier = seen.get(key);
    if (earlier === cron) throw new CronError(`The cron trigger "${cron}" is listed twice: list each schedule once.`);
    if (earlier !== undefined) throw new CronError(`The cron triggers "${earlier}" and "${cron}" are the same schedule: list it once.`);
    seen.set(key, cron);
  }
  return [...seen.values()];
}

/** The schedule of one expression; a CronError when Cloudflare would refuse it or it never fires. */
export function cronSchedule(expression: string): CronSchedule {
  const invalid = (why: string): CronError => new CronError(`Invalid cron "${expression.slice(0, MAX_CRON_CHARS)}": ${why}`);
  if (expression.length > MAX_CRON_CHARS) throw invalid(`it is over ${MAX_CRON_CHARS} characters.`);
  const fields = parseCron(expression.trim(), invalid);
  if (fieldsNextRun(fields, Date.now()) === null) throw invalid('it never fires (no date matches it, e.g. February 31st).');
  return { expression, fields };
}

/** Whether the schedule fires at this minute (a time in ms; seconds are ignored). */
export function firesAt(schedule: CronSchedule, time: number): boolean {
  return fieldsFireAt(schedule.fields, Math.floor(time / MINUTE_MS) * MINUTE_MS);
}

/** The first minute at or after `from` (ms) at which the schedule fires; null when it never does. */
export function nextRun(schedule: CronSchedule, from: number): number | null {
  return fieldsNextRun(schedule.fields, from);
}
