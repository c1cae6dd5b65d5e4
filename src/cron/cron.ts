// Cron triggers' schedules in Cloudflare's syntax: five fields (minute, hour, day of month,
// month, day of week), month and day names, `L` and `W` in the day of month, `L` and `#` in the
// day of week, weekdays numbered 1 (Sunday) to 7 (Saturday) as in Quartz, and every time in UTC.
// croner does the parsing and the calendar; what Cloudflare refuses and croner would take (a
// sixth field, `?`, `@hourly`, weekday 0 or 8) is refused here first, so that a schedule isolet
// accepts is one Cloudflare accepts and fires at the same minutes.

import { Cron } from 'croner';

/** Cron triggers one worker (one version) may have. */
export const MAX_CRONS = 10;
/** The longest expression accepted: far past any real one, short enough to log and store whole. */
const MAX_CRON_CHARS = 100;

const FIELDS = ['minute', 'hour', 'day of month', 'month', 'day of week'] as const;
/** The characters each field may hold, as Cloudflare's table lists them (names are letters). */
const FIELD_CHARS = [/^[0-9*,/-]+$/, /^[0-9*,/-]+$/, /^[0-9*,/LW-]+$/i, /^[0-9A-Z*,/-]+$/i, /^[0-9A-Z*,/L#-]+$/i];

const EXAMPLE = 'five fields, minute hour day-of-month month day-of-week, in UTC, e.g. "*/5 * * * *" or "0 18 * * FRI"';

/** A schedule that is not one: the message names the expression, the problem and the fix. */
export class CronError extends Error {
  override name = 'CronError';
}

/**
 * A worker's cron triggers, checked: a list of at most MAX_CRONS distinct expressions, each
 * one Cloudflare accepts and that fires at least once. Returns them trimmed.
 */
export function checkCrons(value: unknown): string[] {
  if (!Array.isArray(value)) throw new CronError(`crons must be a list of cron expressions (${EXAMPLE}).`);
  if (value.length > MAX_CRONS) throw new CronError(`A worker may have at most ${MAX_CRONS} cron triggers, not ${value.length}: combine schedules (e.g. "0 8,20 * * *").`);
  const crons: string[] = [];
  for (const item of value) {
    if (typeof item !== 'string') throw new CronError(`Each cron trigger must be a string (${EXAMPLE}), not ${JSON.stringify(item) ?? String(item)}.`);
    const cron = item.trim();
    cronSchedule(cron);
    if (crons.includes(cron)) throw new CronError(`The cron trigger "${cron}" is listed twice: list each schedule once.`);
    crons.push(cron);
  }
  return crons;
}

/** The schedule of one expression, in UTC; a CronError when Cloudflare would refuse it or it never fires. */
export function cronSchedule(expression: string): Cron {
  const invalid = (why: string): CronError => new CronError(`Invalid cron "${expression.slice(0, MAX_CRON_CHARS)}": ${why}`);
  if (expression.length > MAX_CRON_CHARS) throw invalid(`it is over ${MAX_CRON_CHARS} characters.`);
  const fields = expression.trim().split(/\s+/);
  const count = fields[0] === '' ? 0 : fields.length;
  if (count !== 5) throw invalid(`it has ${count} field${count === 1 ? '' : 's'}; a cron trigger has ${EXAMPLE}.`);
  for (const [index, field] of fields.entries()) {
    if (!FIELD_CHARS[index]!.test(field)) {
      throw invalid(`the ${FIELDS[index]} field '${field}' has a character Cloudflare does not accept there (its fields take digits, names, * , - / and L W in the day of month, L # in the day of week).`);
    }
  }
  checkWeekdays(fields[4]!, invalid);
  let cron: Cron;
  try {
    cron = new Cron(fields.join(' '), { mode: '5-part', alternativeWeekdays: true, timezone: 'Etc/UTC', paused: true });
  } catch (error) {
    throw invalid(`${(error as Error).message.replace(/^CronPattern: /, '')}; a cron trigger has ${EXAMPLE}.`);
  }
  if (cron.nextRun(new Date()) === null) throw invalid('it never fires (no date matches it, e.g. February 31st).');
  return cron;
}

/** Whether the schedule fires at this minute (a time in ms; seconds are ignored). */
export function firesAt(schedule: Cron, time: number): boolean {
  return schedule.match(new Date(Math.floor(time / MINUTE_MS) * MINUTE_MS));
}

export const MINUTE_MS = 60_000;

/** Weekdays by number are Cloudflare's (and Quartz's) 1-7; Unix's 0 for Sunday is refused, as Cloudflare does. */
function checkWeekdays(field: string, invalid: (why: string) => CronError): void {
  for (const item of field.split(',')) {
    const range = item.split('/')[0]!;
    const numbers = /^(\d+)(?:L|#\d+)?$/i.exec(range)?.slice(1) ?? /^(\d+)-(\d+)$/.exec(range)?.slice(1) ?? [];
    for (const number of numbers) {
      const day = Number(number);
      if (day < 1 || day > 7) {
        throw invalid(`the day of week ${number} is out of range: Cloudflare numbers weekdays from 1 (Sunday) to 7 (Saturday), or names them SUN-SAT. Fix: write ${day === 0 ? '1 or SUN for Sunday' : 'a day from 1 to 7, or its name'}.`);
      }
    }
  }
}
