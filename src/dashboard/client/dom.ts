// The only way the dashboard makes DOM: elements from a tag, attributes and children, where
// every string child becomes a text node. Nothing here parses HTML, so a tenant's string
// (a worker name, a log line, a version message) can only ever be shown as text; the page's
// Trusted Types policy (src/dashboard/assets.ts) makes any HTML sink throw besides.

export type Child = Node | string | number | null | undefined | false;
type Handler = (event: Event) => void;
export type Props = Record<string, string | number | boolean | null | undefined | Handler>;

const SVG_NS = 'http://www.w3.org/2000/svg';

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  return fill(document.createElement(tag), props, children);
}

export function svg<K extends keyof SVGElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): SVGElementTagNameMap[K] {
  return fill(document.createElementNS(SVG_NS, tag), props, children);
}

function fill<E extends Element>(element: E, props: Props, children: Child[]): E {
  for (const [name, value] of Object.entries(props)) {
    if (typeof value === 'function') {
      if (!name.startsWith('on')) throw new Error(`A handler goes on an on* property, not '${name}'.`);
      element.addEventListener(name.slice(2), value);
      continue;
    }
    if (name.startsWith('on') || name === 'style' || name === 'srcdoc') throw new Error(`The dashboard sets no '${name}' attribute.`);
    if (name === 'href' && typeof value === 'string' && !value.startsWith('#')) throw new Error('The dashboard links only within itself.');
    if (value === false || value === null || value === undefined) continue;
    element.setAttribute(name, value === true ? '' : String(value));
  }
  append(element, ...children);
  return element;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

/** Empties `parent` and fills it with `children`. */
export function replace(parent: Node, ...children: Child[]): void {
  parent.textContent = '';
  append(parent, ...children);
}

let ids = 0;
/** A fresh id, to tie a label to its field or a section to its heading. */
export function uid(prefix: string): string {
  return `${prefix}-${++ids}`;
}

/** A labelled form field: the label, then the control (and a hint tied to it, if given). */
export function field(label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  control.id ||= uid('field');
  const hintElement = hint === undefined ? undefined : h('p', { class: 'hint', id: uid('hint') }, hint);
  if (hintElement) control.setAttribute('aria-describedby', hintElement.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintElement);
}

/** A section with a heading that names it (a landmark for screen readers). */
export function section(title: string, ...children: Child[]): HTMLElement {
  const id = uid('section');
  return h('section', { 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

/** A table with a caption and column headers; `rows` are cells already made. */
export function table(caption: string, headers: string[], rows: Child[][], empty: string): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h(
    'table',
    {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, ...headers.map((header) => h('th', { scope: 'col' }, header)))),
    h('tbody', {}, ...rows.map((cells) => h('tr', {}, ...cells.map((cell, i) => (i === 0 ? h('th', { scope: 'row' }, cell) : h('td', {}, cell)))))),
  );
}

/** A moment as the page shows it everywhere: in the browser's time zone and locale. */
export function when(iso: string | null | undefined): HTMLElement | string {
  if (!iso) return '';
  const date = new Date(iso);
  return h('time', { datetime: iso }, Number.isNaN(date.getTime()) ? iso : date.toLocaleString());
}

/** The time of day of a moment to the millisecond, in the browser's time zone like when(); the whole date on hover. */
export function timeOfDay(iso: string): HTMLElement {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h('time', { datetime: iso }, iso);
  return h('time', { datetime: iso, title: date.toLocaleString() }, date.toLocaleTimeString([], TIME_OF_DAY));
}

const TIME_OF_DAY: Intl.DateTimeFormatOptions = { hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3 };
