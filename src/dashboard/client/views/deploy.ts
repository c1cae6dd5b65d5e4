// Deploy by uploading a script: one JavaScript file, as a module worker
// (`export default { fetch }`) or a service-worker script (`addEventListener('fetch', ...)`).
// Bigger projects (npm imports, TypeScript, many modules) are bundled by `isolet deploy`.

import { path, type Version } from '../api.ts';
import type { Context } from '../context.ts';
import { field, h } from '../dom.ts';

export interface DeployTarget {
  /** The worker, when the form deploys a new version of it; otherwise the form asks for a name. */
  worker?: string;
  /** Accounts the operator may deploy a new worker for (`?account=`). */
  accounts?: string[];
  /** Routes now, shown as the routes field's starting value. */
  routes?: string[];
  onDeployed(name: string, version: Version): void;
}

export function deployForm(context: Context, target: DeployTarget): HTMLFormElement {
  const name = target.worker === undefined
    ? h('input', { type: 'text', name: 'worker', required: true, pattern: '[a-z0-9]([a-z0-9\\-]{0,61}[a-z0-9])?', autocomplete: 'off' })
    : undefined;
  const account = target.accounts === undefined
    ? undefined
    : h('select', { name: 'account', required: true }, ...target.accounts.map((a) => h('option', { value: a }, a)));
  const file = h('input', { type: 'file', name: 'script', required: true, accept: '.js,.mjs,.cjs,text/javascript' });
  const format = h(
    'select',
    { name: 'format' },
    h('option', { value: 'module' }, 'ES module (export default { fetch })'),
    h('option', { value: 'script' }, "Service worker script (addEventListener('fetch'))"),
  );
  const message = h('input', { type: 'text', name: 'message', maxlength: '1000', autocomplete: 'off' });
  const routes = h('textarea', { name: 'routes', rows: '3', spellcheck: 'false' });
  routes.value = (target.routes ?? []).join('\n');
  const button = h('button', { type: 'submit' }, target.worker === undefined ? 'Deploy new worker' : 'Deploy new version');
  const form = h(
    'form',
    { class: 'card' },
    name ? field('Worker name', name, "Lowercase letters, digits and '-': it answers at <name>.<domain>.") : null,
    account ? field('Account', account) : null,
    field('Script', file, 'One JavaScript file. Bundle a project with imports first (isolet deploy does).'),
    field('Format', format),
    field('Message', message, 'Optional: what changed.'),
    field('Routes', routes, 'One route a line (example.com/api/*). Leave as it is to keep the routes; empty removes them.'),
    button,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const chosen = file.files?.[0];
    const worker = target.worker ?? name!.value;
    if (chosen === undefined) return context.fail(new Error('Choose the script to upload.'), form);
    button.disabled = true;
    void chosen
      .text()
      .then((source) => {
        const deployment: Record<string, unknown> = format.value === 'script'
          ? { script: source }
          : { modules: [{ name: chosen.name, source }], main: chosen.name };
        if (message.value.trim() !== '') deployment.message = message.value.trim();
        const wanted = routes.value.split('\n').map((r) => r.trim()).filter((r) => r !== '');
        if (wanted.join('\n') !== (target.routes ?? []).join('\n')) deployment.routes = wanted;
        const query = account === undefined ? '' : `?account=${encodeURIComponent(account.value)}`;
        return context.api.call<{ version: Version }>('PUT', path`/v1/workers/${worker}` + query, deployment);
      })
      .then(({ version }) => {
        context.notify(`Deployed ${worker}: version ${version.number} is active.`);
        target.onDeployed(worker, version);
      })
      .catch((error: unknown) => context.fail(error, form))
      .finally(() => (button.disabled = false));
  });
  return form;
}
