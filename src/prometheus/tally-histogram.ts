import type { Histogram, Metric, MetricObjectWithValues, MetricValueWithName } from 'prom-client';
import type { DurationSink, HeldIndex, WaitIndex } from '../metrics/gauge-tallies';

/**
 * One histogram series kept by hand: a count per bucket (not cumulative; the last one is `+Inf`),
 * their sum and count. `observe` is a short loop and three additions, no allocation: prom-client's
 * own `histogram.labels(...).observe()` re-hashes the labels and builds objects on every call
 * (~300 ns measured), far over what a gauge may add to a request.
 */
export class Durations {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(seconds: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > (bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += seconds;
    this.count++;
  }
}

/** A tally's durations as Prometheus histogram series: queue wait by result, held by outcome. */
export class DurationSeries implements DurationSink {
  /** Indexed as `QUEUE_RESULTS`. */
  readonly waits: readonly [Durations, Durations, Durations];
  /** Indexed as `OUTCOMES`. */
  readonly holds: readonly [Durations, Durations, Durations, Durations];

  constructor(bounds: readonly number[]) {
    const series = () => new Durations(bounds);
    this.waits = [series(), series(), series()];
    this.holds = [series(), series(), series(), series()];
  }

  waited(result: WaitIndex, seconds: number): void {
    this.waits[result].observe(seconds);
  }

  held(outcome: HeldIndex, seconds: number): void {
    this.holds[outcome].observe(seconds);
  }
}

/** One series of a `TallyHistogram` at scrape time: its labels (without `le`) and its counts. */
export interface HistogramSeries {
  readonly labels: Readonly<Record<string, string>>;
  readonly durations: Durations;
}

type Value = MetricValueWithName<string>;

/**
 * A Prometheus histogram whose series are `Durations` kept by the listeners, read at scrape time.
 * It is what a prom-client `Registry` asks of a metric (`name`, `help`, `type`, `aggregator`,
 * `get()`, `reset()`), so it registers in any registry, the default one included, and scrapes,
 * merges and aggregates (cluster) like prom-client's own histograms. prom-client has no way to
 * set a histogram's counts, hence not a `Histogram` instance.
 */
export class TallyHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
    private readonly series: () => Iterable<HistogramSeries>,
  ) {}

  /** The metric as a registry registers it (prom-client's types list only its own classes). */
  asMetric(): Metric {
    return this as unknown as Histogram;
  }

  get(): Promise<MetricObjectWithValues<Value>> {
    const values: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const { labels, durations } of this.series()) {
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += durations.counts[i] as number;
        values.push({ labels: { ...labels, le: bound }, value: cumulative, metricName: bucket });
      });
      values.push(
        { labels: { ...labels, le: '+Inf' }, value: durations.count, metricName: bucket },
        { labels: { ...labels }, value: durations.sum, metricName: `${this.name}_sum` },
        { labels: { ...labels }, value: durations.count, metricName: `${this.name}_count` },
      );
    }
    // prom-client's types call `type` an enum; at run time (and in the exposition) it is the string.
    const metric = { name: this.name, help: this.help, type: this.type, aggregator: 'sum', values };
    return Promise.resolve(metric as unknown as MetricObjectWithValues<Value>);
  }

  /** `registry.resetMetrics()`: the counts start again from zero. */
  reset(): void {
    for (const { durations } of this.series()) {
      durations.counts.fill(0);
      durations.sum = 0;
      durations.count = 0;
    }
  }
}
