// Live tail: the worker's log entries as they happen (GET /v1/workers/:name/tail), shown as
// text, newest last, the last MAX_ENTRIES kept. Leaving the view ends the stream.

import { path, type LogEntry } from '../api.ts';
import { describe, type Context } from '../context.ts';
import { field, h, section, timeOfDay } from '../dom.ts';

const MAX_ENTRIES = 500;

export function tailView(context: Context, worker: string): HTMLElement {
  const log = h('ol', { class: 'tail', role: 'log', 'aria-label': `Log entries of ${worker}`, tabindex: '0' });
  const state = h('p', { class: 'tail-state', role: 'status' }, 'Not connected.');
  const search = h('input', { type: 'search', name: 'search', autocomplete: 'off' });
  // Applied by the server (GET .../tail?status=), so a busy worker's tail sends only these.
  const status = h(
    'select',
    { name: 'status' },
    h('option', { value: '' }, 'Everything'),
    h('option', { value: 'error' }, 'Errors: 5xx answers, exceptions, limits'),
    h('option', { value: 'ok' }, 'Requests answered below 500'),
  );
  const toggle = h('button', { type: 'button' }, 'Start');
  const clear = h('button', { type: 'button', class: 'secondary', onclick: () => log.replaceChildren() }, 'Clear');
  let running: AbortController | undefined;

  const show = (entry: LogEntry) => {
    const item = entryItem(entry);
    item.hidden = !matches(item, search.value);
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.append(item);
    while (log.childElementCount > MAX_ENTRIES) log.firstElementChild!.remove();
    if (atEnd) log.scrollTop = log.scrollHeight;
  };
  const stop = (message: string) => {
    running?.abort();
    running = undefined;
    toggle.textContent = 'Start';
    state.textContent = message;
  };
  const start = () => {
    const controller = new AbortController();
    running = controller;
    context.signal.addEventListener('abort', () => controller.abort(), { once: true });
    toggle.textContent = 'Stop';
    state.textContent = `Connected: entries of ${worker} appear as they happen.`;
    context.api
      .stream(path`/v1/workers/${worker}/tail` + (status.value === '' ? '' : `?status=${encodeURIComponent(status.value)}`), controller.signal, (value) => show(value as LogEntry))
      .then(() => {
        if (running === controller) stop('The server ended the tail. Start it again to go on.');
      })
      .catch((error: unknown) => {
        if (controller.signal.aborted) return;
        stop(`The tail stopped: ${describe(error)}`);
      });
  };
  toggle.addEventListener('click', () => (running === undefined ? start() : stop('Stopped.')));
  status.addEventListener('change', () => {
    if (running === undefined) return;
    stop('Reconnecting with the new choice.');
    start();
  });
  search.addEventListener('input', () => {
    for (const item of log.children) (item as HTMLElement).hidden = !matches(item as HTMLElement, search.value);
  });
  // The view opens connected: that is what it is for.
  start();
  return section(
    'Live tail',
    h('div', { class: 'inline' }, toggle, clear, field('Entries', status), field('Show only entries containing', search)),
    state,
    log,
  );
}

function entryItem(entry: LogEntry): HTMLElement {
  const level = typeof entry.level === 'string' ? entry.level : 'log';
  const time = typeof entry.time === 'string' ? entry.time : new Date().toISOString();
  const request = entry.type === 'request'
    ? [typeof entry.cpuMs === 'number' ? `cpu ${entry.cpuMs} ms` : '', typeof entry.wallMs === 'number' ? `wall ${entry.wallMs} ms` : ''].filter((x) => x !== '').join(' · ')
    : '';
  return h(
    'li',
    { class: `entry level-${/^[a-z]+$/.test(level) ? level : 'log'}` },
    // Local time, as every other moment on the page (an entry's time is UTC on the wire).
    timeOfDay(time),
    ' ',
    h('span', { class: 'level' }, level),
    ' ',
    h('span', { class: 'type' }, String(entry.type ?? '')),
    ' ',
    h('span', { class: 'message' }, String(entry.message ?? '')),
    request === '' ? null : h('span', { class: 'request' }, ` (${request})`),
  );
}

function matches(item: HTMLElement, search: string): boolean {
  return search === '' || (item.textContent ?? '').toLowerCase().includes(search.toLowerCase());
}
