// Where the signed-in token lives: this tab's sessionStorage, gone when the tab closes.
//
// Not a cookie: a browser sends a cookie by itself with every request to the host, on any
// port. A tenant's worker may be served from the same site (same registrable domain, or the
// same host on the data-plane port), where SameSite=Strict does not stop a request, and the
// data plane hands request headers, cookies included, to tenant code. A token that only this
// page's script puts in an Authorization header goes nowhere else. What sessionStorage gives
// up (script in the page could read it) is closed by the page's policy: no inline script, no
// eval, no other origin's script, and Trusted Types with no policy, so no string becomes HTML.

import type { Session } from './context.ts';

const KEY = 'isolet.dashboard.session';

export function loadSession(): Session | undefined {
  try {
    const value = JSON.parse(sessionStorage.getItem(KEY) ?? 'null') as Partial<Session> | null;
    if (typeof value?.token === 'string' && typeof value.admin === 'boolean') return { token: value.token, admin: value.admin };
  } catch {
    // A damaged entry is no session.
  }
  return undefined;
}

export function saveSession(session: Session): void {
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.removeItem(KEY);
}
