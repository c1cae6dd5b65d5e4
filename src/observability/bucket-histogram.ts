// A Prometheus histogram fed with bucket counts rather than one observation at a time, for
// prom-client's Registry: runtime processes count their workers' observations in buckets and
// send the counts (worker-stats.ts), and the control process adds them here. prom-client's own
// Histogram takes only single observations.

import type { Metric, MetricValueWithName } from 'prom-client';

interface Series {
  labels: Record<string, string>;
  /** Per bucket, not cumulative; the last is +Inf. */
  counts: number[];
  sum: number;
}

export interface BucketHistogramOptions {
  name: string;
  help: string;
  labelNames: readonly string[];
  /** Upper bounds in the unit exposed (seconds), ascending. */
  buckets: readonly number[];
}

export class BucketHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #labelNames: readonly string[];
  readonly #buckets: readonly number[];
  readonly #series = new Map<string, Series>();

  constructor(options: BucketHistogramOptions) {
    this.name = options.name;
    this.help = options.help;
    this.#labelNames = options.labelNames;
    this.#buckets = options.buckets;
  }

  /** Adds observations: `counts` per bucket (bucket order, +Inf last) and their `sum` in the exposed unit. */
  add(labels: Record<string, string>, counts: readonly number[], sum: number): void {
    const key = this.#key(labels);
    let series = this.#series.get(key);
    if (series === undefined) {
      series = { labels: { ...labels }, counts: new Array<number>(this.#buckets.length + 1).fill(0), sum: 0 };
      this.#series.set(key, series);
    }
    for (let i = 0; i < series.counts.length; i++) series.counts[i]! += counts[i] ?? 0;
    series.sum += sum;
  }

  /** Drops a series (its worker lost its own label). */
  remove(labels: Record<string, string>): void {
    this.#series.delete(this.#key(labels));
  }

  reset(): void {
    this.#series.clear();
  }

  get(): { name: string; help: string; type: 'histogram'; values: MetricValueWithName<string>[]; aggregator: 'sum' } {
    const values: MetricValueWithName<string>[] = [];
    for (const { labels, counts, sum } of this.#series.values()) {
      let cumulative = 0;
      for (let i = 0; i < counts.length; i++) {
        cumulative += counts[i]!;
        const le = i < this.#buckets.length ? this.#buckets[i]! : '+Inf';
        values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_sum`, labels, value: sum });
      values.push({ metricName: `${this.name}_count`, labels, value: cumulative });
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }

  /** For Registry.registerMetric, which is typed for prom-client's own classes and calls only get, reset and name. */
  asMetric(): Metric {
    return this as unknown as Metric;
  }

  #key(labels: Record<string, string>): string {
    return this.#labelNames.map((name) => labels[name] ?? '').join('\u0000');
  }
}
