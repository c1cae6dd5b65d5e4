// The workers a token may see: all of them for the operator (or one account's), else its own.

import type { AccountSummary, WorkerSummary } from '../api.ts';
import type { Context } from '../context.ts';
import { field, h, section, table, when } from '../dom.ts';
import { deployForm } from './deploy.ts';

export async function workersView(context: Context, account?: string): Promise<HTMLElement> {
  const query = account === undefined ? '' : `?account=${encodeURIComponent(account)}`;
  const [workers, accounts] = await Promise.all([
    context.api.call<WorkerSummary[]>('GET', `/v1/workers${query}`),
    context.session.admin ? context.api.call<AccountSummary[]>('GET', '/v1/accounts') : Promise.resolve(undefined),
  ]);
  const rows = workers.map((w) => [
    h('a', { href: `#/workers/${encodeURIComponent(w.name)}` }, w.name),
    w.account,
    w.activeVersion === null ? 'none' : `${w.activeVersion.number}`,
    w.routes.length === 0 ? '' : h('ul', { class: 'plain' }, ...w.routes.map((r) => h('li', {}, h('code', {}, r)))),
    when(w.updatedAt),
  ]);
  return h(
    'div',
    {},
    h('h1', { tabindex: '-1' }, account === undefined ? 'Workers' : `Workers of ${account}`),
    accounts === undefined ? null : accountFilter(accounts, account),
    table(account === undefined ? 'Workers' : `Workers of the account ${account}`, ['Name', 'Account', 'Active version', 'Routes', 'Updated'], rows, 'No workers yet: deploy one below.'),
    accounts !== undefined && accounts.length === 0
      ? section('Deploy a worker', h('p', {}, 'Create an account first: a worker belongs to one.'))
      : section(
        'Deploy a worker',
        deployForm(context, {
          accounts: accounts === undefined ? undefined : orderFirst(accounts.map((a) => a.name), account),
          onDeployed: (name) => (location.hash = `#/workers/${encodeURIComponent(name)}`),
        }),
      ),
  );
}

function accountFilter(accounts: AccountSummary[], chosen: string | undefined): HTMLElement {
  const select = h(
    'select',
    { name: 'account' },
    h('option', { value: '' }, 'Every account'),
    ...accounts.map((a) => h('option', { value: a.name, selected: a.name === chosen || a.id === chosen }, a.name)),
  );
  // Applied with a button, not on change: arrow keys through a select must not navigate.
  const form = h('form', { class: 'inline filters' }, field('Show the workers of', select), h('button', { type: 'submit', class: 'secondary' }, 'Show'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = select.value === '' ? '#/workers' : `#/workers?account=${encodeURIComponent(select.value)}`;
  });
  return form;
}

function orderFirst(names: string[], first: string | undefined): string[] {
  return first !== undefined && names.includes(first) ? [first, ...names.filter((n) => n !== first)] : names;
}
