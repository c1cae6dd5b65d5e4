// The grammar of a cron trigger, as Cloudflare's parser (cloudflare/saffron, src/parse.rs) reads
// it; this is its one declaration in isolet. Five fields separated by spaces or tabs: minute
// (0-59), hour (0-23), day of month (1-31), month (1-12 or JAN-DEC) and day of week (1-7 or
// SUN-SAT, 1 being Sunday). Names are three letters in any case; `L` and `W` are capitals.
//
//   field     = "*" | list                     (a lone * is "any": it alone leaves the day
//                                              fields out of the day-of-month-or-weekday rule)
//   list      = first ("," item)*
//   first     = "*/" step | item               (the first item may not be a bare * or *-n)
//   item      = start ["-" value] ["/" step]
//   start     = value | "*"                    (after a comma, * is the field's lowest value)
//
// A range whose end is below its start wraps around (`22-2` is 22, 23, 0, 1, 2; `FRI-MON`), a
// step counts on across the wrap (`20-4/2` is 20, 22, 0, 2, 4), and `5/15` is `5-59/15`. A step
// is 1 to the field's span (59 for minutes, 23 hours, 30 days, 11 months, 6 weekdays).
// The day of month also takes, each alone: `L` (the last day), `LW` (the last weekday), `L-3`
// (3 days before the last, 1-30), `L-3W` (the weekday nearest that day) and `15W` (the weekday
// nearest the 15th). The day of week also takes, each alone: `L` (Saturday), `6L` (the month's
// last Friday) and `MON#2` (its second Monday, 1-5).

import type { CronError } from './cron.ts';

interface FieldRule {
  /** As messages name it: "the day of month field". */
  readonly name: string;
  readonly min: number;
  readonly max: number;
  /** Three-letter names of min, min+1, ... (months and weekdays). */
  readonly names?: readonly string[];
  /** The characters it may hold at all (names are letters). */
  readonly chars: RegExp;
  /** What a value there is, for messages. */
  readonly values: string;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

const FIELDS = {
  minute: { name: 'minute', min: 0, max: 59, chars: /^[0-9*,/-]+$/, values: 'minutes are 0 to 59' },
  hour: { name: 'hour', min: 0, max: 23, chars: /^[0-9*,/-]+$/, values: 'hours are 0 to 23' },
  day: { name: 'day of month', min: 1, max: 31, chars: /^[0-9*,/LW-]+$/, values: 'days of the month are 1 to 31' },
  month: { name: 'month', min: 1, max: 12, names: MONTHS, chars: /^[0-9A-Za-z*,/-]+$/, values: 'months are 1 to 12, or JAN to DEC' },
  weekday: {
    name: 'day of week', min: 1, max: 7, names: WEEKDAYS, chars: /^[0-9A-Za-z*,/L#-]+$/,
    values: 'Cloudflare numbers weekdays from 1 (Sunday) to 7 (Saturday), or names them SUN-SAT',
  },
} as const satisfies Record<string, FieldRule>;

const ORDER = [FIELDS.minute, FIELDS.hour, FIELDS.day, FIELDS.month, FIELDS.weekday] as const;

/** A field's values, as flags indexed by value (index 0 unused where the field starts at 1). */
export type Values = readonly boolean[];

export type DayRule =
  | { readonly kind: 'any' }
  | { readonly kind: 'days'; readonly days: Values }
  /** `L` (offset 0) and `L-n`; `LW` and `L-nW` with weekday. */
  | { readonly kind: 'last'; readonly offset: number; readonly weekday: boolean }
  /** `nW`: the weekday nearest the nth. */
  | { readonly kind: 'nearestWeekday'; readonly day: number };

export type WeekdayRule =
  | { readonly kind: 'any' }
  | { readonly kind: 'days'; readonly days: Values }
  /** `6L`: the month's last such weekday (1-7). */
  | { readonly kind: 'last'; readonly weekday: number }
  /** `MON#2`: the month's nth such weekday. */
  | { readonly kind: 'nth'; readonly weekday: number; readonly nth: number };

/** What an expression says, field by field. */
export interface CronFields {
  readonly minutes: Values;
  readonly hours: Values;
  readonly months: Values;
  readonly days: DayRule;
  readonly weekdays: WeekdayRule;
}

const EXAMPLE = 'five fields, minute hour day-of-month month day-of-week, in UTC, e.g. "*/5 * * * *" or "0 18 * * FRI"';

/** Reads an expression; a CronError, naming the field and the fix, when Cloudflare's parser would refuse it. */
export function parseCron(expression: string, invalid: (why: string) => CronError): CronFields {
  // saffron separates fields by spaces and tabs only; the ends were trimmed by the caller.
  if (/[^\S \t]/.test(expression)) throw invalid(`its fields are separated by something other than spaces or tabs; a cron trigger has ${EXAMPLE}.`);
  const fields = expression === '' ? [] : expression.split(/[ \t]+/);
  if (fields.length !== 5) throw invalid(`it has ${fields.length} field${fields.length === 1 ? '' : 's'}; a cron trigger has ${EXAMPLE}.`);
  for (const [index, text] of fields.entries()) {
    const rule = ORDER[index]!;
    if (!rule.chars.test(text)) {
      const bad = [...text].find((char) => !rule.chars.test(char)) ?? text;
      const fix = bad === '?' ? 'write * for "any"' : /[lw]/.test(bad) ? 'write L and W as capitals' : 'use digits, names, * , - / (and L W in the day of month, L # in the day of week)';
      throw invalid(`the ${rule.name} field '${text}' has '${bad}', which Cloudflare does not accept there. Fix: ${fix}.`);
    }
  }
  const [minute, hour, day, month, weekday] = fields as [string, string, string, string, string];
  return {
    minutes: values(new Field(FIELDS.minute, minute, invalid)),
    hours: values(new Field(FIELDS.hour, hour, invalid)),
    days: dayRule(new Field(FIELDS.day, day, invalid)),
    months: values(new Field(FIELDS.month, month, invalid)),
    weekdays: weekdayRule(new Field(FIELDS.weekday, weekday, invalid)),
  };
}

/** One field's text read left to right, saffron's way: each form is recognised by its first characters. */
class Field {
  readonly rule: FieldRule;
  readonly text: string;
  readonly #invalid: (why: string) => CronError;
  at = 0;

  constructor(rule: FieldRule, text: string, invalid: (why: string) => CronError) {
    this.rule = rule;
    this.text = text;
    this.#invalid = invalid;
  }

  get done(): boolean { return this.at === this.text.length; }
  get next(): string { return this.text[this.at] ?? ''; }
  rest(): string { return this.text.slice(this.at); }
  take(char: string): boolean {
    if (this.next !== char) return false;
    this.at += 1;
    return true;
  }

  fail(problem: string, fix: string): CronError {
    return this.#invalid(`the ${this.rule.name} field '${this.text}' ${problem}. Fix: ${fix}.`);
  }

  /** A number or (months, weekdays) a name, within the field's values. */
  value(): number {
    const digits = /^\d+/.exec(this.rest())?.[0];
    if (digits !== undefined) {
      this.at += digits.length;
      return this.inRange(Number(digits), digits);
    }
    const { names } = this.rule;
    const word = /^[A-Za-z]+/.exec(this.rest())?.[0];
    if (names !== undefined && word !== undefined) {
      const index = names.indexOf(word.slice(0, 3).toUpperCase());
      // A weekday's name may be followed by L (friL); nothing else runs on from a name.
      const after = word.slice(3);
      if (index >= 0 && (after === '' || (this.rule === FIELDS.weekday && after === 'L'))) {
        this.at += 3;
        return this.rule.min + index;
      }
      const fix = index >= 0 ? `names are three letters: write ${names[index]}` : `write one of ${names.join(' ')}, or a number (${this.rule.values})`;
      throw this.fail(`has '${word}', which is not a ${this.rule.name} name`, fix);
    }
    if (this.next === 'L' || this.next === 'W' || this.next === '#') throw this.leftover();
    const found = this.next === '' ? 'ends where a value is due' : `has '${this.next}' where a value is due`;
    throw this.fail(found, `write ${names === undefined ? 'a number' : 'a number or a name'} there (${this.rule.values})`);
  }

  inRange(number: number, written: string): number {
    const { min, max } = this.rule;
    if (number >= min && number <= max) return number;
    if (this.rule === FIELDS.weekday) {
      throw this.fail(`has the day of week ${written}, which is out of range: ${this.rule.values}`, number === 0 ? 'write 1 or SUN for Sunday' : 'write a day from 1 to 7, or its name');
    }
    throw this.fail(`has ${written}, which is out of range: ${this.rule.values}`, `write a value from ${min} to ${max}`);
  }

  /** A step after `/`: 1 to the field's span. */
  step(): number {
    const digits = /^\d+/.exec(this.rest())?.[0];
    const span = this.rule.max - this.rule.min;
    if (digits === undefined) throw this.fail(`has a '/' without a step after it`, `write a step from 1 to ${span} after the /, e.g. */5`);
    this.at += digits.length;
    const step = Number(digits);
    if (step < 1 || step > span) throw this.fail(`has the step /${digits}: a step in the ${this.rule.name} field is 1 to ${span}`, `write a step from 1 to ${span}`);
    return step;
  }

  /** What an unexpected character means, for the error of a field that should have ended. */
  leftover(): CronError {
    const next = this.next;
    if (next === 'L' || next === 'W' || next === '#') return this.alone(next);
    const read = this.text.slice(0, this.at);
    return this.fail(`has '${this.rest()}' after '${read}'`, 'separate values with commas, write ranges as a-b and steps as a/n, a-b/n or */n');
  }

  /** L, W or # written with other values, which saffron reads only as the whole field. */
  alone(special: string): CronError {
    const forms = this.rule === FIELDS.weekday ? 'L, nL and n#k each stand alone in the day of week' : 'L, LW, L-n, L-nW and nW each stand alone in the day of month';
    return this.fail(`uses ${special} with other values`, `${forms}; use another cron trigger for other days`);
  }
}

/** minute, hour and month: `*` or a list. */
function values(field: Field): Values {
  if (field.text === '*') return all(field.rule);
  return list(field);
}

function dayRule(field: Field): DayRule {
  if (field.text === '*') return { kind: 'any' };
  if (field.take('L')) {
    let offset = 0;
    if (field.take('-')) {
      const digits = /^\d+/.exec(field.rest())?.[0];
      if (digits === undefined) throw field.fail(`has 'L-' without a number of days`, 'write L-n, n days before the last day, n from 1 to 30');
      field.at += digits.length;
      offset = Number(digits);
      if (offset < 1 || offset > 30) throw field.fail(`has L-${digits}: L-n counts 1 to 30 days back from the last day`, 'write L-1 to L-30, or L for the last day');
    }
    const weekday = field.take('W');
    if (!field.done) throw field.alone('L');
    return { kind: 'last', offset, weekday };
  }
  if (/^\d+W$/.test(field.text)) return { kind: 'nearestWeekday', day: field.value() };
  return { kind: 'days', days: list(field) };
}

function weekdayRule(field: Field): WeekdayRule {
  if (field.text === '*') return { kind: 'any' };
  // A lone L is the last day of the week, Saturday.
  if (field.text === 'L') return { kind: 'days', days: only(field.rule, 7) };
  if (field.next === 'L') throw field.alone('L');
  const single = /^([0-9]+|[A-Za-z]{3})(L|#)/.exec(field.text);
  if (single !== null) {
    const weekday = field.value();
    if (field.take('L')) {
      if (!field.done) throw field.alone('L');
      return { kind: 'last', weekday };
    }
    field.take('#');
    const digits = /^\d+/.exec(field.rest())?.[0];
    if (digits === undefined || Number(digits) < 1 || Number(digits) > 5) {
      throw field.fail(`has '${field.text}': after # comes which of the month's weekdays, 1 to 5`, `write e.g. ${field.text.slice(0, field.at)}2 for the second`);
    }
    field.at += digits.length;
    if (!field.done) throw field.alone('#');
    return { kind: 'nth', weekday, nth: Number(digits) };
  }
  return { kind: 'days', days: list(field) };
}

/** A list of values, ranges and steps, its first item `*\/n` or one that starts with a value. */
function list(field: Field): Values {
  const { rule } = field;
  const flags = new Array<boolean>(rule.max + 1).fill(false);
  if (field.take('*')) {
    // A lone * was read as "any" before: here it must be */n.
    if (!field.take('/')) throw field.fail(`has '${field.text}': * stands alone, or as */n at the start`, 'write * alone for "any", or the values themselves (0-5, not *-5)');
    mark(rule, flags, rule.min, rule.max, field.step());
  } else {
    item(field, flags, true);
  }
  while (!field.done) {
    if (!field.take(',')) throw field.leftover();
    item(field, flags, false);
  }
  return flags;
}

/** `a`, `a-b`, `a/n`, `a-b/n`; after a comma `a` may be `*`, the field's lowest value (saffron reads it so). */
function item(field: Field, flags: boolean[], first: boolean): void {
  const { rule } = field;
  let start: number;
  if (!first && field.take('*')) start = rule.min;
  else start = field.value();
  if (field.take('/')) {
    mark(rule, flags, start, rule.max, field.step());
  } else if (field.take('-')) {
    const end = field.value();
    mark(rule, flags, start, end, field.take('/') ? field.step() : 1);
  } else {
    flags[start] = true;
  }
  if (!field.done && field.next !== ',') throw field.leftover();
}

/** Every step-th value from start to end, counting on past the field's top when end is below start. */
function mark(rule: FieldRule, flags: boolean[], start: number, end: number, step: number): void {
  const span = rule.max - rule.min + 1;
  const count = (end - start + span) % span;
  for (let offset = 0; offset <= count; offset += step) {
    flags[rule.min + ((start - rule.min + offset) % span)] = true;
  }
}

function all(rule: FieldRule): Values {
  return Array.from({ length: rule.max + 1 }, (_, value) => value >= rule.min);
}

function only(rule: FieldRule, value: number): Values {
  return Array.from({ length: rule.max + 1 }, (_, index) => index === value);
}
