// Secret values must not travel in error messages: a validation error may quote the code or a
// value it read from env (e.g. `TypeError: "hunter2" is not a function`), and such a message
// goes back to the client and into the server's log. Every occurrence of a value is replaced.

const REDACTED = '[redacted]';

/** The text with every occurrence of each (non-empty) value replaced, longest values first. */
export function scrub(text: string, values: Iterable<string>): string {
  const sorted = [...new Set(values)].filter((value) => value.length > 0).sort((a, b) => b.length - a.length);
  let out = text;
  for (const value of sorted) out = out.replaceAll(value, REDACTED);
  return out;
}

/** An error safe to pass on: the same message and stack, scrubbed (the original when nothing needed it). */
export function scrubError(error: unknown, values: Iterable<string>): unknown {
  const list = [...values];
  if (list.length === 0) return error;
  if (!(error instanceof Error)) return new Error(scrub(String(error), list));
  const message = scrub(error.message, list);
  const stack = error.stack === undefined ? undefined : scrub(error.stack, list);
  if (message === error.message && stack === error.stack) return error;
  const clean = new Error(message);
  clean.name = error.name;
  if (stack !== undefined) clean.stack = stack;
  return clean;
}
