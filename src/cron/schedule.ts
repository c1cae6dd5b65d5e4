// When a parsed cron trigger fires, by the rules of Cloudflare's parser (cloudflare/saffron,
// src/lib.rs): a minute fires when its minute, hour and month are listed and its day matches.
// The day: with both day fields `*`, any; with one `*`, the other; with both restricted, either
// (Unix cron's rule, and saffron's). Only a lone `*` counts as unrestricted: `*/1` restricts.
// All in UTC.

import type { CronFields, DayRule, WeekdayRule } from './grammar.ts';

export const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;
/** The Gregorian calendar repeats every 400 years: a schedule that fires in none of them never fires. */
const CALENDAR_CYCLE_YEARS = 400;

/** Whether the schedule fires at this minute (a time in ms; seconds are ignored). */
export function firesAt(fields: CronFields, time: number): boolean {
  const date = new Date(time);
  return fields.minutes[date.getUTCMinutes()] === true && fields.hours[date.getUTCHours()] === true && dayFires(fields, date);
}

/** The first minute at or after `from` (ms) at which the schedule fires, or null if it never does. */
export function nextRun(fields: CronFields, from: number): number | null {
  const start = Math.ceil(from / MINUTE_MS) * MINUTE_MS;
  const first = new Date(start);
  const last = Date.UTC(first.getUTCFullYear() + CALENDAR_CYCLE_YEARS, first.getUTCMonth(), first.getUTCDate());
  let day = Date.UTC(first.getUTCFullYear(), first.getUTCMonth(), first.getUTCDate());
  while (day <= last) {
    const date = new Date(day);
    if (fields.months[date.getUTCMonth() + 1] !== true) {
      day = Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
      continue;
    }
    if (dayFires(fields, date)) {
      const minute = firstMinute(fields, day === Date.UTC(first.getUTCFullYear(), first.getUTCMonth(), first.getUTCDate()) ? (start - day) / MINUTE_MS : 0);
      if (minute !== null) return day + minute * MINUTE_MS;
    }
    day += DAY_MS;
  }
  return null;
}

/** A key equal for two expressions exactly when they fire at the same minutes by the same rules (`*\/5` and `0/5`). */
export function scheduleKey(fields: CronFields): string {
  const bits = (values: readonly boolean[]) => values.map((on) => (on ? 1 : 0)).join('');
  const rule = (rule: DayRule | WeekdayRule) => (rule.kind === 'days' ? `days:${bits(rule.days)}` : JSON.stringify(rule));
  return [bits(fields.minutes), bits(fields.hours), rule(fields.days), bits(fields.months), rule(fields.weekdays)].join(' ');
}

/** The first minute of the day, from minute `from` (of 1440), whose hour and minute are listed. */
function firstMinute(fields: CronFields, from: number): number | null {
  for (let minute = from; minute < 24 * 60; minute++) {
    if (fields.hours[Math.floor(minute / 60)] === true && fields.minutes[minute % 60] === true) return minute;
  }
  return null;
}

function dayFires(fields: CronFields, date: Date): boolean {
  if (fields.months[date.getUTCMonth() + 1] !== true) return false;
  const { days, weekdays } = fields;
  if (days.kind === 'any') return weekdays.kind === 'any' || weekdayMatches(weekdays, date);
  if (weekdays.kind === 'any') return dayMatches(days, date);
  return dayMatches(days, date) || weekdayMatches(weekdays, date);
}

function dayMatches(rule: Exclude<DayRule, { kind: 'any' }>, date: Date): boolean {
  const day = date.getUTCDate();
  const length = daysInMonth(date);
  switch (rule.kind) {
    case 'days':
      return rule.days[day] === true;
    case 'last':
      return rule.weekday ? day === nearestWeekday(date, length - rule.offset) : day === length - rule.offset;
    case 'nearestWeekday':
      return day === nearestWeekday(date, rule.day);
  }
}

function weekdayMatches(rule: Exclude<WeekdayRule, { kind: 'any' }>, date: Date): boolean {
  // Cloudflare's weekdays are 1 (Sunday) to 7 (Saturday).
  const weekday = date.getUTCDay() + 1;
  const day = date.getUTCDate();
  switch (rule.kind) {
    case 'days':
      return rule.days[weekday] === true;
    case 'last':
      return weekday === rule.weekday && day + 7 > daysInMonth(date);
    case 'nth':
      return weekday === rule.weekday && Math.floor((day - 1) / 7) + 1 === rule.nth;
  }
}

/**
 * The weekday nearest the `target`th of the date's month, without leaving the month (Quartz's
 * `W`): a Saturday moves to the Friday before, or to Monday the 3rd when it is the 1st; a Sunday
 * to the Monday after, or to the Friday before when it is the month's last day. -1 when the month
 * has no such day.
 */
function nearestWeekday(date: Date, target: number): number {
  const length = daysInMonth(date);
  if (target < 1 || target > length) return -1;
  const weekday = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), target)).getUTCDay();
  if (weekday === 6) return target === 1 ? 3 : target - 1;
  if (weekday === 0) return target === length ? target - 2 : target + 1;
  return target;
}

function daysInMonth(date: Date): number {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 0)).getUTCDate();
}
