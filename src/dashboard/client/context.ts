// What every view is given: the API client, who signed in, and where to report.

import { ApiFailure, type Api } from './api.ts';
import { h, replace } from './dom.ts';

export interface Session {
  token: string;
  /** The operator's token: every account. Otherwise an account token, which sees only its account. */
  admin: boolean;
}

export interface Context {
  api: Api;
  session: Session;
  /** Aborted when the view is left (ends its tail, drops answers that come late). */
  signal: AbortSignal;
  /** Says something went well, politely (a status region). */
  notify(message: string): void;
  /** Shows an error where the person is working, and announces it. */
  fail(error: unknown, near?: HTMLElement): void;
  /** Renders the current view again (after a change). */
  refresh(): void;
}

export function notices(region: HTMLElement): (message: string) => void {
  return (message) => {
    // Emptied first, so the same message twice is announced twice.
    replace(region);
    requestAnimationFrame(() => replace(region, h('p', {}, message)));
  };
}

/** An error's text for a person: the API's message names the cause and the fix. */
export function describe(error: unknown): string {
  if (error instanceof ApiFailure) return error.message;
  if (error instanceof TypeError) return `The admin API could not be reached (${error.message}). Is isolet serve running?`;
  return error instanceof Error ? error.message : String(error);
}

/** An alert shown in `near` (or at the top of the view), replacing the one before. */
export function showError(container: HTMLElement, error: unknown): void {
  container.querySelector(':scope > .error')?.remove();
  const alert = h('p', { class: 'error', role: 'alert' }, describe(error));
  container.prepend(alert);
}
