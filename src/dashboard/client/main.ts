// The dashboard: sign in with a token, then views chosen by the URL's fragment
// (#/workers/NAME/tail, ...), each drawn from the admin API.

import { Api } from './api.ts';
import { describe, notices, showError, type Context, type Session } from './context.ts';
import { h, replace } from './dom.ts';
import { clearSession, loadSession, saveSession } from './session-store.ts';
import { accountsView, accountView } from './views/accounts.ts';
import { signInView } from './views/sign-in.ts';
import { workersView } from './views/workers.ts';
import { WORKER_TABS, workerView, type WorkerTab } from './views/worker.ts';

const main = document.getElementById('main')!;
const nav = document.getElementById('nav')!;
const who = document.getElementById('who')!;
const notify = notices(document.getElementById('notices')!);
let leave: AbortController | undefined;

document.getElementById('skip-link')!.addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener('hashchange', () => void render());
// The first view of a page load is announced as any page is; later ones move focus themselves.
void render(false);

function signOut(reason?: string): void {
  clearSession();
  leave?.abort();
  replace(nav);
  replace(who);
  showSignIn(reason);
}

function showSignIn(reason?: string): void {
  replace(main, signInView((session) => {
    saveSession(session);
    if (location.hash === '' || location.hash === '#/') void render();
    else location.hash = '#/';
  }, reason));
  main.querySelector('input')?.focus();
}

async function render(moveFocus = true): Promise<void> {
  leave?.abort();
  const session = loadSession();
  if (session === undefined) return showSignIn();
  leave = new AbortController();
  const signal = leave.signal;
  const context: Context = {
    api: new Api(session.token, () => signOut('The token was refused (unknown, or revoked): sign in again.')),
    session,
    signal,
    notify,
    fail: (error, near) => showError(near ?? main, error),
    refresh: () => void render(),
  };
  drawChrome(session);
  const view = await routeTo(context, parseHash(location.hash)).catch((error: unknown) =>
    h('div', {}, h('h1', { tabindex: '-1' }, 'Something went wrong'), h('p', { class: 'error', role: 'alert' }, describe(error))),
  );
  if (signal.aborted) return;
  replace(main, view);
  markCurrent();
  // A new view is announced by moving to its heading, as a page load would.
  if (moveFocus) main.querySelector<HTMLElement>('h1')?.focus();
}

interface Route {
  parts: string[];
  query: URLSearchParams;
}

function parseHash(hash: string): Route {
  const [pathPart = '', queryPart = ''] = hash.replace(/^#\/?/, '').split('?');
  const parts = pathPart.split('/').filter((p) => p !== '').map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return { parts, query: new URLSearchParams(queryPart) };
}

function routeTo(context: Context, { parts, query }: Route): Promise<HTMLElement> {
  const [collection, name, tab] = parts;
  if (collection === 'accounts' && context.session.admin) return name === undefined ? accountsView(context) : accountView(context, name);
  if (collection === 'workers' && name !== undefined) {
    const chosen = (WORKER_TABS as readonly string[]).includes(tab ?? '') ? (tab as WorkerTab) : 'overview';
    return workerView(context, name, chosen);
  }
  return workersView(context, query.get('account') ?? undefined);
}

function drawChrome(session: Session): void {
  replace(
    nav,
    h('ul', {}, h('li', {}, h('a', { href: '#/workers' }, 'Workers')), session.admin ? h('li', {}, h('a', { href: '#/accounts' }, 'Accounts')) : null),
  );
  replace(
    who,
    h('span', {}, session.admin ? 'Signed in as the operator' : 'Signed in with an account token'),
    h('button', { type: 'button', class: 'secondary', onclick: () => signOut() }, 'Sign out'),
  );
}

/** aria-current on the navigation link of the section shown. */
function markCurrent(): void {
  const section = parseHash(location.hash).parts[0] ?? 'workers';
  for (const link of nav.querySelectorAll('a')) {
    if (link.getAttribute('href') === `#/${section}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}
