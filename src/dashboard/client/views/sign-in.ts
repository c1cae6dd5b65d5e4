// Sign in with a token: the operator's admin token, or an account's token.

import { Api, ApiFailure } from '../api.ts';
import { showError, type Session } from '../context.ts';
import { field, h } from '../dom.ts';

export function signInView(onSignedIn: (session: Session) => void, reason?: string): HTMLElement {
  const token = h('input', { type: 'password', name: 'token', autocomplete: 'off', spellcheck: 'false', required: true });
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'sign-in-title' },
    field('Token', token, 'The admin token (ISOLET_ADMIN_TOKEN, or .isolet/admin-token), or a token the operator made for your account.'),
    button,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    button.disabled = true;
    signIn(token.value.trim())
      .then(onSignedIn)
      .catch((error: unknown) => {
        showError(form, error);
        token.focus();
      })
      .finally(() => (button.disabled = false));
  });
  return h('div', { class: 'sign-in' }, h('h1', { id: 'sign-in-title', tabindex: '-1' }, 'Sign in to isolet'), reason ? h('p', { class: 'notice' }, reason) : null, form);
}

/** Checks the token and learns what it may do: the accounts list is the operator's alone. */
async function signIn(token: string): Promise<Session> {
  if (token === '') throw new Error('Paste a token to sign in.');
  const api = new Api(token, () => {});
  try {
    await api.call('GET', '/v1/accounts');
    return { token, admin: true };
  } catch (error) {
    if (error instanceof ApiFailure && error.status === 403) return { token, admin: false };
    if (error instanceof ApiFailure && error.status === 401) throw new Error('This token is unknown or was revoked: check it, or ask the operator for a new one.');
    throw error;
  }
}
