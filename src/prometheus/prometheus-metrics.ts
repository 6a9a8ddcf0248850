import {
  Inject,
  Injectable,
  Optional,
  type OnModuleDestroy,
  type OnApplicationBootstrap,
  type OnModuleInit,
} from '@nestjs/common';
import {
  Counter,
  Gauge as PromGauge,
  register as defaultRegistry,
  type Metric,
  type OpenMetricsContentType,
  type PrometheusContentType,
  type Registry,
} from 'prom-client';
import { ModulesContainer } from '@nestjs/core';
import { describeValue } from '../core/config-value.util';
import { GaugeConfigError } from '../core/gauge.errors';
import { GAUGE_REGISTRY_REF } from '../backpressure-core.tokens';
import {
  DEFAULT_BUCKETS,
  GaugeTallies,
  OUTCOMES,
  QUEUE_RESULTS,
  REFUSAL_REASONS,
  type GaugeSource,
} from '../metrics/gauge-tallies';
import { whenBootstrapEnds } from '../bootstrap-end.hook';
import { assertOptionsObject, validateBuckets } from '../metrics/metrics-options.validation';
import { DurationSeries, TallyHistogram, type HistogramSeries } from './tally-histogram';

/** A prom-client registry of either content type (Prometheus text or OpenMetrics). */
export type PrometheusRegistry = Registry<PrometheusContentType> | Registry<OpenMetricsContentType>;

/** What `BackpressurePrometheusModule.forRoot()` takes; every option is optional. */
export interface BackpressurePrometheusOptions {
  /**
   * Where the metrics are registered: prom-client's default `register` unless given (the one
   * `@willsoto/nestjs-prometheus` serves by default; give it the same registry if you gave it one).
   */
  readonly registry?: PrometheusRegistry | undefined;
  /** Starts every metric name (default `'backpressure_'`): `[a-zA-Z_:][a-zA-Z0-9_:]*`. */
  readonly prefix?: string | undefined;
  /**
   * Upper bounds, in seconds, of both histograms' buckets (queue wait and held time); default
   * `0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10`.
   */
  readonly buckets?: readonly number[] | undefined;
}

/** The names of the metrics, as registered (with the prefix). */
export interface PrometheusMetricNames {
  /** Gauge `{gauge}`: slots held now. */
  readonly inFlight: string;
  /** Gauge `{gauge}`: the limit now (summed over the dynamic gauges). */
  readonly limit: string;
  /** Gauge `{gauge}`: callers waiting now. */
  readonly queued: string;
  /** Counter `{gauge}`: calls that got a slot. */
  readonly admitted: string;
  /** Counter `{gauge, reason}`: calls that got none (each of `REFUSAL_REASONS`). */
  readonly refused: string;
  /** Counter `{gauge}`: slots held longer than the gauge's `maxHoldMs`. */
  readonly overdue: string;
  /** Histogram `{gauge, result}`: seconds a queued caller waited (`admitted`, `timeout`, `aborted`). */
  readonly queueWait: string;
  /** Histogram `{gauge, outcome}`: seconds a slot was held, by how its work ended. */
  readonly held: string;
}

/** DI token of the options given to `BackpressurePrometheusModule.forRoot()`. */
export const PROMETHEUS_OPTIONS = Symbol('BackpressurePrometheusOptions');

const WHERE = 'BackpressurePrometheusModule';
const OPTION_KEYS = ['registry', 'prefix', 'buckets'];
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** Checks the options where they are declared, so a mistake fails the start, naming the option. */
export function validatePrometheusOptions(value: unknown): BackpressurePrometheusOptions {
  const options = assertOptionsObject(WHERE, value, OPTION_KEYS);
  const { registry, prefix } = options;
  if (
    registry !== undefined &&
    (registry === null ||
      typeof (registry as Partial<Registry>).registerMetric !== 'function' ||
      typeof (registry as Partial<Registry>).getSingleMetric !== 'function')
  ) {
    throw new GaugeConfigError(
      `${WHERE}: option "registry" must be a prom-client Registry, got ${describeValue(registry)}`,
    );
  }
  if (prefix !== undefined && (typeof prefix !== 'string' || !METRIC_NAME.test(`${prefix}x`))) {
    throw new GaugeConfigError(
      `${WHERE}: option "prefix" must start a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), got ${describeValue(prefix)}`,
    );
  }
  validateBuckets(WHERE, options.buckets);
  return options as BackpressurePrometheusOptions;
}

/**
 * The gauges' figures as Prometheus metrics, for every gauge of the application's
 * `GaugeRegistry`, the ones created later included. `BackpressurePrometheusModule` provides it;
 * inject it to read `names`.
 *
 * Per request it costs what a listener costs: plain counters bumped by the gauges' listeners (no
 * label lookup, no allocation); prom-client reads them, and the gauges' `inFlight`, `limit` and
 * `queued`, when the registry is scraped. Pinned gauges (configured, `@Limited`, `@InjectGauge`)
 * get their own `gauge` label; dynamic ones (names first seen after bootstrap) are counted
 * together as `gauge="(dynamic)"`, so clients cannot grow the set of series.
 */
@Injectable()
export class BackpressurePrometheusMetrics
  implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy
{
  /** The metric names, with the prefix. */
  readonly names: PrometheusMetricNames;
  private readonly registry: PrometheusRegistry;
  private readonly buckets: readonly number[];
  private readonly series = new Map<string, DurationSeries>();
  private readonly tallies: GaugeTallies;
  private metrics: Metric[] = [];
  /**
   * `starting`: registered by `onModuleInit`, the app's bootstrap (every module's
   * `onApplicationBootstrap`, not only this one's) not finished, or failed; `taken`: another app
   * took the metrics over meanwhile.
   */
  private state: 'idle' | 'starting' | 'running' | 'taken' = 'idle';

  /**
   * @param gauges the application's `GaugeRegistry` (any object with its `onGauge` and `list`)
   * @param options as `BackpressurePrometheusModule.forRoot()` takes them (validated here)
   * @param modules the application's modules, to learn when its whole bootstrap succeeded
   */
  constructor(
    @Inject(GAUGE_REGISTRY_REF) private readonly gauges: GaugeSource,
    @Optional() @Inject(PROMETHEUS_OPTIONS) options?: BackpressurePrometheusOptions,
    @Optional() private readonly modules?: ModulesContainer,
  ) {
    const valid = validatePrometheusOptions(options);
    this.registry = valid.registry ?? defaultRegistry;
    this.buckets = validateBuckets(WHERE, valid.buckets) ?? DEFAULT_BUCKETS;
    const prefix = valid.prefix ?? 'backpressure_';
    this.names = {
      inFlight: `${prefix}in_flight`,
      limit: `${prefix}limit`,
      queued: `${prefix}queued`,
      admitted: `${prefix}admitted_total`,
      refused: `${prefix}refused_total`,
      overdue: `${prefix}overdue_total`,
      queueWait: `${prefix}queue_wait_seconds`,
      held: `${prefix}held_seconds`,
    };
    this.tallies = new GaugeTallies((label) => {
      const series = new DurationSeries(this.buckets);
      this.series.set(label, series);
      return series;
    });
  }

  /** Nest calls it at start-up: registers the metrics and starts counting. */
  onModuleInit(): void {
    this.register();
    this.state = 'starting';
  }

  /**
   * Nest calls it once every module is initialised. Throws if another app took the metrics over
   * meanwhile (two apps starting at once on one registry). The metrics become this app's for good
   * only when the whole bootstrap succeeded (the last module's `onApplicationBootstrap`): until
   * then, an app whose start fails in a later module leaves them to the next app, as one whose
   * init failed does.
   */
  onApplicationBootstrap(): void {
    this.confirm();
    if (this.state === 'starting' && !whenBootstrapEnds(this.modules, () => this.confirm(true))) {
      this.state = 'running';
    }
  }

  /** Nest calls it at shutdown: stops counting and removes the metrics from the registry. */
  onModuleDestroy(): void {
    this.stop();
  }

  /**
   * Registers the metrics in the registry and subscribes to every gauge (what `onModuleInit`
   * does; for use without the module). Throws `GaugeConfigError` if a metric of the same name is
   * already registered there (two applications on one registry: give each its own, or a prefix).
   */
  start(): void {
    this.register();
    this.state = 'running';
  }

  /** Undoes `start()`: unsubscribes from the gauges and removes the metrics from the registry. */
  stop(): void {
    this.state = 'idle';
    if (this.metrics.length === 0) return;
    this.tallies.close();
    for (const metric of this.metrics) {
      const name = nameOf(metric);
      if (this.registry.getSingleMetric(name) === metric) this.registry.removeSingleMetric(name);
    }
    this.metrics = [];
  }

  /**
   * Registers the metrics, after taking back those of an app that registered them but never
   * finished starting (its init failed after this module's `onModuleInit`, and Nest calls no
   * shutdown hook then); a clash with a running app's, or anything else's, throws.
   */
  private register(): void {
    if (this.metrics.length > 0) return;
    const stale = new Set<BackpressurePrometheusMetrics>();
    for (const name of Object.values(this.names)) {
      const found = this.registry.getSingleMetric(name);
      if (found === undefined) continue;
      const owner = owners.get(found);
      if (owner === undefined || owner === this || owner.state !== 'starting') {
        throw this.clash(name);
      }
      stale.add(owner);
    }
    for (const owner of stale) {
      owner.stop();
      owner.state = 'taken';
    }
    const metrics = this.create();
    const registered: Metric[] = [];
    try {
      for (const metric of metrics) {
        this.registry.registerMetric(metric);
        registered.push(metric);
        owners.set(metric, this);
      }
    } catch (error) {
      for (const metric of registered) this.registry.removeSingleMetric(nameOf(metric));
      throw error;
    }
    this.metrics = metrics;
    this.tallies.watch(this.gauges);
  }

  /** Fails the start if the metrics were taken over; at the bootstrap's end, keeps them. */
  private confirm(ended = false): void {
    if (this.state === 'taken') {
      this.state = 'idle';
      throw this.clash(this.names.inFlight);
    }
    if (ended && this.state === 'starting') this.state = 'running';
  }

  private clash(name: string): GaugeConfigError {
    return new GaugeConfigError(
      `${WHERE}: a metric "${name}" is already registered in this registry (another application's? give each its own registry or prefix)`,
    );
  }

  private create(): Metric[] {
    const { names, tallies } = this;
    const none: Registry[] = [];
    const gauge = (name: string, help: string, read: (row: RowFigures) => number) =>
      new PromGauge({
        name,
        help,
        labelNames: ['gauge'],
        registers: none,
        collect() {
          this.reset();
          for (const row of tallies.rows()) this.set({ gauge: row.tally.label }, read(row));
        },
      });
    const admitted = new Counter({
      name: names.admitted,
      help: 'Calls that got a slot of the gauge, at once or after waiting.',
      labelNames: ['gauge'],
      registers: none,
      collect() {
        this.reset();
        for (const { tally } of tallies.rows()) this.inc({ gauge: tally.label }, tally.admitted);
      },
    });
    const refused = new Counter({
      name: names.refused,
      help: 'Calls that got no slot: full (no queue), queue-full, shed-priority (room kept for higher priorities), key-over-share (a key over its fair share), shed-pressure (event loop under pressure), unavailable (store down), timeout (waited too long), shed-delay (shed by a standing CoDel queue), aborted (caller left the queue).',
      labelNames: ['gauge', 'reason'],
      registers: none,
      collect() {
        this.reset();
        for (const { tally } of tallies.rows()) {
          for (const reason of REFUSAL_REASONS) {
            this.inc({ gauge: tally.label, reason }, tally.refused(reason));
          }
        }
      },
    });
    const overdue = new Counter({
      name: names.overdue,
      help: "Slots held longer than the gauge's maxHoldMs (their work was signalled to stop).",
      labelNames: ['gauge'],
      registers: none,
      collect() {
        this.reset();
        for (const { tally } of tallies.rows()) this.inc({ gauge: tally.label }, tally.overdue);
      },
    });
    const waits = new TallyHistogram(
      names.queueWait,
      'Seconds a caller waited in the queue, by how it left: admitted, timeout, aborted.',
      this.buckets,
      () => this.histogramSeries('result', QUEUE_RESULTS, (series) => series.waits),
    );
    const holds = new TallyHistogram(
      names.held,
      'Seconds a slot was held, by how its work ended: succeeded, failed, dropped, ignored.',
      this.buckets,
      () => this.histogramSeries('outcome', OUTCOMES, (series) => series.holds),
    );
    return [
      gauge(names.inFlight, 'Slots of the gauge held now (in this process).', (r) => r.inFlight),
      gauge(names.limit, 'Slots the gauge hands out at most at once, now.', (r) => r.limit),
      gauge(names.queued, 'Callers waiting for a slot of the gauge now.', (r) => r.queued),
      admitted,
      refused,
      overdue,
      waits.asMetric(),
      holds.asMetric(),
    ];
  }

  private *histogramSeries(
    label: string,
    values: readonly string[],
    pick: (series: DurationSeries) => readonly HistogramSeries['durations'][],
  ): Iterable<HistogramSeries> {
    for (const [gauge, series] of this.series) {
      const all = pick(series);
      for (let i = 0; i < values.length; i++) {
        const durations = all[i];
        if (durations !== undefined) {
          yield { labels: { gauge, [label]: values[i] as string }, durations };
        }
      }
    }
  }
}

/** Which instance registered each metric: an app that never finished starting gives them up. */
const owners = new WeakMap<Metric, BackpressurePrometheusMetrics>();

function nameOf(metric: Metric): string {
  return (metric as unknown as { name: string }).name;
}

/** What a scrape-time gauge reads of one row. */
interface RowFigures {
  readonly inFlight: number;
  readonly queued: number;
  readonly limit: number;
}
