// Per-worker charts of the last hour, a bar a minute: requests, errors, CPU and cold starts.
// Each chart is an SVG with its numbers in a caption and, for screen readers and anyone who
// wants the figures, a table of the same data.

import { path } from '../api.ts';
import type { Context } from '../context.ts';
import { h, section, svg } from '../dom.ts';
import type { SeriesPoint } from '../../../observability/worker-series.ts';

/** The answer of GET /v1/workers/:name/metrics. */
interface WorkerMetrics {
  worker: string;
  intervalSeconds: number;
  points: SeriesPoint[];
}

interface Series {
  key: 'requests' | 'errors' | 'cpuMs' | 'coldStarts';
  title: string;
  /** Appended to a number: '' for counts. */
  unit: string;
  color: string;
}

const SERIES: Series[] = [
  { key: 'requests', title: 'Requests', unit: '', color: 'series-requests' },
  { key: 'errors', title: 'Errors (5xx answers)', unit: '', color: 'series-errors' },
  { key: 'cpuMs', title: 'CPU time', unit: ' ms', color: 'series-cpu' },
  { key: 'coldStarts', title: 'Cold starts', unit: '', color: 'series-cold' },
];

const WIDTH = 600;
const HEIGHT = 120;
const AXIS = 24;

export async function workerCharts(context: Context, worker: string): Promise<HTMLElement> {
  const metrics = await context.api.call<WorkerMetrics>('GET', path`/v1/workers/${worker}/metrics`);
  const refresh = h('button', { type: 'button', class: 'secondary', onclick: () => context.refresh() }, 'Refresh');
  return section(
    'The last hour',
    h('p', { class: 'hint' }, `A bar every ${metrics.intervalSeconds} s, oldest on the left, as this server counted them since it started.`),
    refresh,
    h('div', { class: 'charts' }, ...SERIES.map((series) => chart(series, metrics.points))),
  );
}

function chart(series: Series, minutes: SeriesPoint[]): HTMLElement {
  const values = minutes.map((m) => m[series.key]);
  const total = values.reduce((a, b) => a + b, 0);
  const peak = Math.max(0, ...values);
  const captionId = `chart-${series.key}`;
  const caption = `${series.title}: ${round(total)}${series.unit} in the last hour, at most ${round(peak)}${series.unit} in a minute.`;
  const slot = (WIDTH - AXIS) / Math.max(1, minutes.length);
  const bars = minutes.map((minute, i) => {
    const value = minute[series.key];
    const height = peak === 0 ? 0 : Math.max(value > 0 ? 1 : 0, (value / peak) * (HEIGHT - 16));
    return svg(
      'rect',
      { x: (AXIS + i * slot + 1).toFixed(1), y: (HEIGHT - height).toFixed(1), width: Math.max(1, slot - 2).toFixed(1), height: height.toFixed(1), class: `bar ${series.color}` },
      svg('title', {}, `${clock(minute.time)}: ${round(value)}${series.unit}`),
    );
  });
  return h(
    'figure',
    { class: 'chart', 'data-series': series.key },
    h('figcaption', { id: captionId }, caption),
    svg(
      'svg',
      { viewBox: `0 0 ${WIDTH} ${HEIGHT + 14}`, role: 'img', 'aria-labelledby': captionId, class: 'chart-svg' },
      svg('line', { x1: AXIS, y1: HEIGHT, x2: WIDTH, y2: HEIGHT, class: 'axis' }),
      svg('text', { x: 0, y: 10, class: 'axis-label' }, `${round(peak)}`),
      svg('text', { x: 0, y: HEIGHT, class: 'axis-label' }, '0'),
      svg('text', { x: AXIS, y: HEIGHT + 12, class: 'axis-label' }, minutes.length > 0 ? clock(minutes[0]!.time) : ''),
      svg('text', { x: WIDTH, y: HEIGHT + 12, class: 'axis-label end' }, 'now'),
      ...bars,
    ),
    h(
      'details',
      {},
      h('summary', {}, `${series.title}, minute by minute`),
      h(
        'table',
        {},
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Minute'), h('th', { scope: 'col' }, series.title))),
        h('tbody', {}, ...minutes.filter((m) => m[series.key] > 0).map((m) => h('tr', {}, h('th', { scope: 'row' }, clock(m.time)), h('td', {}, `${round(m[series.key])}`)))),
      ),
    ),
  );
}

function clock(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
