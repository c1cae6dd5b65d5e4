// Accounts and their tokens: the operator's alone (the API refuses them to account tokens).

import { path, type AccountSummary, type TokenSummary } from '../api.ts';
import type { Context } from '../context.ts';
import { field, h, section, table, when } from '../dom.ts';

export async function accountsView(context: Context): Promise<HTMLElement> {
  const accounts = await context.api.call<AccountSummary[]>('GET', '/v1/accounts');
  const name = h('input', { type: 'text', name: 'name', required: true, pattern: '[a-z0-9][a-z0-9_\\-]{0,61}[a-z0-9]|[a-z0-9]', autocomplete: 'off' });
  const form = h('form', { class: 'inline' }, field('Name', name, "Lowercase letters, digits, '-' and '_'."), h('button', { type: 'submit' }, 'Create account'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    context.api
      .call('POST', '/v1/accounts', { name: name.value })
      .then(() => {
        context.notify(`Account ${name.value} created.`);
        context.refresh();
      })
      .catch((error: unknown) => context.fail(error, form));
  });
  return h(
    'div',
    {},
    h('h1', { tabindex: '-1' }, 'Accounts'),
    table(
      'Every account on this server',
      ['Name', 'Id', 'Created', 'Workers'],
      accounts.map((a) => [h('a', { href: `#/accounts/${encodeURIComponent(a.name)}` }, a.name), h('code', {}, a.id), when(a.createdAt), h('a', { href: `#/workers?account=${encodeURIComponent(a.name)}` }, `Workers of ${a.name}`)]),
      'No accounts yet.',
    ),
    section('New account', form),
  );
}

export async function accountView(context: Context, name: string): Promise<HTMLElement> {
  const tokens = await context.api.call<TokenSummary[]>('GET', path`/v1/accounts/${name}/tokens`);
  const description = h('input', { type: 'text', name: 'description', maxlength: '200', autocomplete: 'off' });
  const shown = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'inline' }, field('Description', description, 'Optional: who or what uses it.'), h('button', { type: 'submit' }, 'Create token'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    context.api
      .call<{ token: string }>('POST', path`/v1/accounts/${name}/tokens`, { description: description.value })
      .then(({ token }) => {
        const value = h('input', { type: 'text', readonly: true, value: token, class: 'secret-value' });
        shown.replaceChildren(h('div', { class: 'card' }, field('New token (shown once: copy it now)', value)));
        value.select();
      })
      .catch((error: unknown) => context.fail(error, form));
  });
  const revoke = (token: TokenSummary) =>
    h('button', {
      type: 'button',
      class: 'danger',
      'aria-label': `Revoke token ${token.description || token.id}`,
      onclick: () =>
        void context.api
          .call('DELETE', path`/v1/accounts/${name}/tokens/${token.id}`)
          .then(() => {
            context.notify('Token revoked: its tails have ended.');
            context.refresh();
          })
          .catch((error: unknown) => context.fail(error)),
    }, 'Revoke');
  return h(
    'div',
    {},
    h('h1', { tabindex: '-1' }, `Account ${name}`),
    h('p', {}, h('a', { href: `#/workers?account=${encodeURIComponent(name)}` }, `Workers of ${name}`)),
    section(
      'Tokens',
      table('Tokens of this account (their values are never shown again)', ['Id', 'Description', 'Created', ''], tokens.map((t) => [h('code', {}, t.id), t.description, when(t.createdAt), revoke(t)]), 'No tokens.'),
      form,
      shown,
    ),
  );
}
