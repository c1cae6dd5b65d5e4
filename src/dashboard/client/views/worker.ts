// One worker: its overview and charts, versions (deploy and rollback), routes, secrets and
// live tail, each a view of its own under #/workers/NAME/...

import { path, type SecretSummary, type Version, type WorkerDetails } from '../api.ts';
import type { Context } from '../context.ts';
import { field, h, section, table, when, type Child } from '../dom.ts';
import { workerCharts } from './charts.ts';
import { deployForm } from './deploy.ts';
import { tailView } from './tail.ts';

export const WORKER_TABS = ['overview', 'versions', 'routes', 'secrets', 'tail'] as const;
export type WorkerTab = (typeof WORKER_TABS)[number];

const TAB_LABELS: Record<WorkerTab, string> = {
  overview: 'Overview',
  versions: 'Versions and deploy',
  routes: 'Routes',
  secrets: 'Secrets',
  tail: 'Live tail',
};

export async function workerView(context: Context, name: string, tab: WorkerTab): Promise<HTMLElement> {
  const worker = await context.api.call<WorkerDetails>('GET', path`/v1/workers/${name}`);
  const base = `#/workers/${encodeURIComponent(name)}`;
  const tabs = h(
    'nav',
    { 'aria-label': `Worker ${name}`, class: 'tabs' },
    h('ul', {}, ...WORKER_TABS.map((t) => h('li', {}, h('a', { href: t === 'overview' ? base : `${base}/${t}`, 'aria-current': t === tab ? 'page' : false }, TAB_LABELS[t])))),
  );
  const body = await TAB_VIEWS[tab](context, worker);
  return h(
    'div',
    {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/workers' }, 'Workers'), ' / ', name),
    h('h1', { tabindex: '-1' }, `${name}: ${TAB_LABELS[tab]}`),
    h('p', { class: 'meta' }, `Account ${worker.account}; active version ${worker.activeVersion?.number ?? 'none'}.`),
    tabs,
    body,
  );
}

const TAB_VIEWS: Record<WorkerTab, (context: Context, worker: WorkerDetails) => Promise<Child> | Child> = {
  overview: overview,
  versions: versions,
  routes: routes,
  secrets: secrets,
  tail: (context, worker) => tailView(context, worker.name),
};

async function overview(context: Context, worker: WorkerDetails): Promise<Child> {
  const details: [string, Child][] = [
    ['Account', worker.account],
    ['Active version', worker.activeVersion === null ? 'none' : `${worker.activeVersion.number} (${worker.activeVersion.message || 'no message'})`],
    ['Updated', when(worker.updatedAt)],
    ['Compatibility date', worker.compatibilityDate ?? 'none'],
    ['Limits', Object.entries(worker.limits).map(([k, v]) => `${k} ${v}`).join(', ')],
    ['Routes', worker.routes.length === 0 ? 'none' : worker.routes.join(', ')],
    ['Secrets', worker.secrets.length === 0 ? 'none' : worker.secrets.join(', ')],
    ['Vars', Object.keys(worker.vars).length === 0 ? 'none' : h('pre', {}, JSON.stringify(worker.vars, null, 2))],
  ];
  return h(
    'div',
    {},
    section('Details', h('dl', { class: 'details' }, ...details.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]))),
    await workerCharts(context, worker.name),
  );
}

async function versions(context: Context, worker: WorkerDetails): Promise<Child> {
  const list = await context.api.call<Version[]>('GET', path`/v1/workers/${worker.name}/versions`);
  const active = worker.activeVersion?.number ?? 0;
  const container = h('div', {});
  const activate = (version: Version) => {
    const verb = version.number < active ? 'Roll back to' : 'Activate';
    return h('button', {
      type: 'button',
      class: 'secondary',
      onclick: (event: Event) => {
        const button = event.currentTarget as HTMLButtonElement;
        button.disabled = true;
        context.api
          .call<{ activeVersion: Version }>('POST', path`/v1/workers/${worker.name}/rollback`, { version: version.id })
          .then(({ activeVersion }) => {
            context.notify(`Version ${activeVersion.number} of ${worker.name} is active.`);
            context.refresh();
          })
          .catch((error: unknown) => {
            button.disabled = false;
            context.fail(error, container);
          });
      },
    }, `${verb} version ${version.number}`);
  };
  const rows = list.map((v) => [
    `${v.number}`,
    v.active ? h('strong', {}, 'active') : activate(v),
    when(v.createdAt),
    v.author,
    v.message ?? '',
    h('code', { title: v.hash }, v.hash.slice(0, 12)),
  ]);
  container.append(
    section('Versions', table(`Versions of ${worker.name}, newest first`, ['Version', 'State', 'Created', 'Author', 'Message', 'Hash'], rows, 'No versions yet.')),
    section('Deploy a new version', deployForm(context, { worker: worker.name, routes: worker.routes, onDeployed: () => context.refresh() })),
  );
  return container;
}

function routes(_context: Context, worker: WorkerDetails): Child {
  return section(
    'Routes',
    worker.routes.length === 0
      ? h('p', { class: 'empty' }, `No routes: ${worker.name} answers only on its own host.`)
      : h('ul', {}, ...worker.routes.map((r) => h('li', {}, h('code', {}, r)))),
    h('p', { class: 'hint' }, 'Routes belong to the worker and change with a deploy: set them in ', h('a', { href: `#/workers/${encodeURIComponent(worker.name)}/versions` }, 'Versions and deploy'), '. A rollback keeps them.'),
  );
}

async function secrets(context: Context, worker: WorkerDetails): Promise<Child> {
  const list = await context.api.call<SecretSummary[]>('GET', path`/v1/workers/${worker.name}/secrets`);
  const container = h('div', {});
  const remove = (secret: SecretSummary) =>
    h('button', {
      type: 'button',
      class: 'danger',
      'aria-label': `Delete secret ${secret.name}`,
      onclick: () =>
        void context.api
          .call('DELETE', path`/v1/workers/${worker.name}/secrets/${secret.name}`)
          .then(() => {
            context.notify(`Secret ${secret.name} deleted.`);
            context.refresh();
          })
          .catch((error: unknown) => context.fail(error, container)),
    }, 'Delete');
  const name = h('input', { type: 'text', name: 'name', required: true, pattern: '[A-Za-z_][A-Za-z0-9_]*', autocomplete: 'off', spellcheck: 'false' });
  const value = h('input', { type: 'password', name: 'value', required: true, autocomplete: 'off' });
  const form = h('form', { class: 'card' }, field('Name', name, 'The worker reads it as env.NAME.'), field('Value', value, 'Write-only: no one can read it back here.'), h('button', { type: 'submit' }, 'Set secret'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    context.api
      .call('PUT', path`/v1/workers/${worker.name}/secrets/${name.value}`, { value: value.value })
      .then(() => {
        value.value = '';
        context.notify(`Secret ${name.value} set: the worker has it now.`);
        context.refresh();
      })
      .catch((error: unknown) => context.fail(error, form));
  });
  container.append(
    section('Secrets', table('Secret names (values are never shown)', ['Name', 'Updated', ''], list.map((s) => [h('code', {}, s.name), when(s.updatedAt), remove(s)]), 'No secrets.')),
    section('Set a secret', form),
  );
  return container;
}
