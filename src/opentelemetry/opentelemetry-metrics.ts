import {
  Inject,
  Injectable,
  Optional,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import {
  createNoopMeter,
  metrics,
  ValueType,
  type Attributes,
  type BatchObservableCallback,
  type Histogram,
  type Meter,
  type MeterProvider,
  type Observable,
} from '@opentelemetry/api';
import { ModulesContainer } from '@nestjs/core';
import { describeValue } from '../core/config-value.util';
import { GaugeConfigError } from '../core/gauge.errors';
import { GAUGE_REGISTRY_REF } from '../backpressure-core.tokens';
import { whenBootstrapEnds } from '../bootstrap-end.hook';
import {
  DEFAULT_BUCKETS,
  GaugeTallies,
  OUTCOMES,
  QUEUE_RESULTS,
  REFUSAL_REASONS,
  type DurationSink,
  type GaugeSource,
} from '../metrics/gauge-tallies';
import { assertOptionsObject, validateBuckets } from '../metrics/metrics-options.validation';

/** What `BackpressureOpenTelemetryModule.forRoot()` takes; every option is optional. */
export interface BackpressureOpenTelemetryOptions {
  /**
   * Where the meter comes from: the global one (`metrics.getMeterProvider()` of
   * `@opentelemetry/api`, read when the app starts, so start the SDK before the app) unless given.
   */
  readonly meterProvider?: MeterProvider | undefined;
  /** The meter's (instrumentation scope's) name; default `'nestjs-backpressure'`. */
  readonly meterName?: string | undefined;
  /**
   * Advised bucket bounds, in seconds, of both histograms; default
   * `0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10`. A view in the SDK
   * overrides them.
   */
  readonly buckets?: readonly number[] | undefined;
  /**
   * `false`: leave out the two histograms (`backpressure.request_lease.duration`,
   * `backpressure.request.time_in_queue`). They are the only instruments recorded per event, and
   * the SDK's `record()` costs ~1 µs a call (docs/benchmarks.md § 10); everything else is read at
   * collection time. Default `true`.
   */
  readonly histograms?: boolean | undefined;
}

/** The instruments' names, after ASP.NET Core's `aspnetcore.rate_limiting.*`. */
export const OPENTELEMETRY_INSTRUMENTS = {
  /** UpDownCounter (observable) `{request}`: slots held now. */
  activeLeases: 'backpressure.active_request_leases',
  /** UpDownCounter (observable) `{request}`: callers waiting now. */
  queued: 'backpressure.queued_requests',
  /** Gauge (observable) `{request}`: the limit now (summed over the dynamic gauges). */
  limit: 'backpressure.limit',
  /** Counter (observable) `{request}`, by `backpressure.result`: every call, admitted or not. */
  requests: 'backpressure.requests',
  /** Counter (observable) `{request}`: slots held longer than the gauge's `maxHoldMs`. */
  overdue: 'backpressure.request_lease.overdue',
  /** Histogram `s`, by `backpressure.outcome`: how long a slot was held. */
  leaseDuration: 'backpressure.request_lease.duration',
  /** Histogram `s`, by `backpressure.result`: how long a queued caller waited. */
  timeInQueue: 'backpressure.request.time_in_queue',
} as const;

/** Attribute names: the gauge (its name, or `(dynamic)`), a call's result, a release's outcome. */
export const OPENTELEMETRY_ATTRIBUTES = {
  /** The gauge's name, or `(dynamic)` for every gauge created at run time. */
  gauge: 'backpressure.gauge',
  /** `admitted` or one of `REFUSAL_REASONS` (queue wait: `admitted`, `timeout`, `aborted`). */
  result: 'backpressure.result',
  /** `succeeded`, `failed`, `dropped`, `ignored`. */
  outcome: 'backpressure.outcome',
} as const;

/** DI token of the options given to `BackpressureOpenTelemetryModule.forRoot()`. */
export const OPENTELEMETRY_OPTIONS = Symbol('BackpressureOpenTelemetryOptions');

const WHERE = 'BackpressureOpenTelemetryModule';
const OPTION_KEYS = ['meterProvider', 'meterName', 'buckets', 'histograms'];

/** Checks the options where they are declared, so a mistake fails the start, naming the option. */
export function validateOpenTelemetryOptions(value: unknown): BackpressureOpenTelemetryOptions {
  const options = assertOptionsObject(WHERE, value, OPTION_KEYS);
  const { meterProvider, meterName } = options;
  if (
    meterProvider !== undefined &&
    (meterProvider === null ||
      typeof (meterProvider as Partial<MeterProvider>).getMeter !== 'function')
  ) {
    throw new GaugeConfigError(
      `${WHERE}: option "meterProvider" must be an OpenTelemetry MeterProvider, got ${describeValue(meterProvider)}`,
    );
  }
  if (meterName !== undefined && (typeof meterName !== 'string' || meterName.trim() === '')) {
    throw new GaugeConfigError(
      `${WHERE}: option "meterName" must be a non-blank string, got ${describeValue(meterName)}`,
    );
  }
  if (options.histograms !== undefined && typeof options.histograms !== 'boolean') {
    throw new GaugeConfigError(
      `${WHERE}: option "histograms" must be a boolean, got ${describeValue(options.histograms)}`,
    );
  }
  validateBuckets(WHERE, options.buckets);
  return options as BackpressureOpenTelemetryOptions;
}

/** The app reporting on each meter (one a meter: see `claim`). */
const meterUsers = new WeakMap<Meter, BackpressureOpenTelemetryMetrics>();

/** A second app on one meter: its figures and the first's would replace each other. */
function clash(meterName: string): GaugeConfigError {
  return new GaugeConfigError(
    `${WHERE}: meter "${meterName}" of this MeterProvider already reports another application's gauges, and one app's figures would replace the other's at each collection: give each application its own "meterName" (or "meterProvider"), or close the other first`,
  );
}

/** Durations nobody records (option `histograms: false`). */
const NO_DURATIONS: DurationSink = { waited: () => undefined, held: () => undefined };

/** One label's attribute sets, built once. */
interface LabelAttributes {
  readonly gauge: Attributes;
  readonly admitted: Attributes;
  /** Indexed as `REFUSAL_REASONS`. */
  readonly refused: readonly Attributes[];
}

/**
 * The gauges' figures as OpenTelemetry instruments, through `@opentelemetry/api` only, for every
 * gauge of the application's `GaugeRegistry`, the ones created later included.
 * `BackpressureOpenTelemetryModule` provides it.
 *
 * Counts and current figures are observable instruments, read at collection time from counters
 * the gauges' listeners bump (no per-request call into the SDK). The two histograms are recorded
 * as events happen (OpenTelemetry has no observable histogram), with attribute objects built once
 * per gauge: that is the SDK's `record()` per released slot and per waiter, which option
 * `histograms: false` leaves out. Pinned gauges get their own `backpressure.gauge`; dynamic ones (names first seen
 * after bootstrap) share `(dynamic)`, so clients cannot grow the set of series.
 */
@Injectable()
export class BackpressureOpenTelemetryMetrics
  implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy
{
  private readonly options: BackpressureOpenTelemetryOptions;
  private readonly buckets: readonly number[];
  private readonly attributes = new Map<string, LabelAttributes>();
  private tallies: GaugeTallies | undefined;
  private stopObserving: (() => void) | undefined;
  /**
   * `starting`: started by `onModuleInit`, the app's bootstrap (every module's
   * `onApplicationBootstrap`, not only this one's) not finished, or failed; `taken`: another app
   * took the meter over meanwhile (this one's start then fails).
   */
  private state: 'idle' | 'starting' | 'running' | 'taken' = 'idle';
  /** The meter and its name while started, for messages. */
  private meterName = '';

  /**
   * @param gauges the application's `GaugeRegistry` (any object with its `onGauge` and `list`)
   * @param options as `BackpressureOpenTelemetryModule.forRoot()` takes them (validated here)
   * @param modules the application's modules, to learn when its whole bootstrap succeeded
   */
  constructor(
    @Inject(GAUGE_REGISTRY_REF) private readonly gauges: GaugeSource,
    @Optional() @Inject(OPENTELEMETRY_OPTIONS) options?: BackpressureOpenTelemetryOptions,
    @Optional() private readonly modules?: ModulesContainer,
  ) {
    this.options = validateOpenTelemetryOptions(options);
    this.buckets = validateBuckets(WHERE, this.options.buckets) ?? DEFAULT_BUCKETS;
  }

  /** Nest calls it at start-up: creates the instruments and starts counting. */
  onModuleInit(): void {
    this.start();
    this.state = 'starting';
  }

  /**
   * Nest calls it once every module is initialised. Throws if another app took the meter over
   * meanwhile (two apps starting at once on one meter: exactly one of them starts). The meter
   * becomes this app's for good only when the whole bootstrap succeeded (the last module's
   * `onApplicationBootstrap`): until then, an app whose start fails in a later module leaves it to
   * the next app, as one whose init failed does.
   */
  onApplicationBootstrap(): void {
    this.confirm();
    if (this.state === 'starting' && !whenBootstrapEnds(this.modules, () => this.confirm(true))) {
      this.state = 'running';
    }
  }

  /** Nest calls it at shutdown: stops counting and observing. */
  onModuleDestroy(): void {
    this.stop();
  }

  /** Creates the instruments on the meter and subscribes to every gauge (for use without the module). */
  start(): void {
    if (this.tallies !== undefined) return;
    const provider = this.options.meterProvider ?? metrics.getMeterProvider();
    const meterName = this.options.meterName ?? 'nestjs-backpressure';
    const meter = provider.getMeter(meterName);
    this.claim(meter, meterName);
    this.meterName = meterName;
    this.state = 'running';
    const names = OPENTELEMETRY_INSTRUMENTS;
    const advice = { explicitBucketBoundaries: [...this.buckets] };
    const histograms = this.options.histograms ?? true;
    const leaseDuration = histograms
      ? meter.createHistogram(names.leaseDuration, {
          description: 'How long a slot of the gauge was held, by how its work ended.',
          unit: 's',
          advice,
        })
      : undefined;
    const timeInQueue = histograms
      ? meter.createHistogram(names.timeInQueue, {
          description: 'How long a caller waited in the queue of the gauge, by how it left.',
          unit: 's',
          advice,
        })
      : undefined;
    const count = { unit: '{request}', valueType: ValueType.INT };
    const observables = {
      activeLeases: meter.createObservableUpDownCounter(names.activeLeases, {
        ...count,
        description: 'Slots of the gauge held now (in this process).',
      }),
      queued: meter.createObservableUpDownCounter(names.queued, {
        ...count,
        description: 'Callers waiting for a slot of the gauge now.',
      }),
      limit: meter.createObservableGauge(names.limit, {
        ...count,
        description: 'Slots the gauge hands out at most at once, now.',
      }),
      requests: meter.createObservableCounter(names.requests, {
        ...count,
        description:
          'Calls to the gauge by result: admitted, or refused (full, queue-full, shed-priority, key-over-share, shed-pressure, unavailable, timeout, shed-delay, aborted).',
      }),
      overdue: meter.createObservableCounter(names.overdue, {
        ...count,
        description: "Slots held longer than the gauge's maxHoldMs.",
      }),
    };
    const tallies = new GaugeTallies((label) => this.sinkFor(label, leaseDuration, timeInQueue));
    const observe: BatchObservableCallback = (result) => {
      for (const { tally, inFlight, queued, limit } of tallies.rows()) {
        const attributes = this.attributes.get(tally.label);
        if (attributes === undefined) continue;
        result.observe(observables.activeLeases, inFlight, attributes.gauge);
        result.observe(observables.queued, queued, attributes.gauge);
        result.observe(observables.limit, limit, attributes.gauge);
        result.observe(observables.requests, tally.admitted, attributes.admitted);
        REFUSAL_REASONS.forEach((reason, i) => {
          const refused = attributes.refused[i];
          if (refused !== undefined) {
            result.observe(observables.requests, tally.refused(reason), refused);
          }
        });
        result.observe(observables.overdue, tally.overdue, attributes.gauge);
      }
    };
    const all: Observable[] = Object.values(observables);
    meter.addBatchObservableCallback(observe, all);
    this.stopObserving = () => {
      meter.removeBatchObservableCallback(observe, all);
      if (meterUsers.get(meter) === this) meterUsers.delete(meter);
    };
    this.tallies = tallies;
    tallies.watch(this.gauges);
  }

  /** Undoes `start()`: unsubscribes from the gauges and stops observing. */
  stop(): void {
    this.state = 'idle';
    this.tallies?.close();
    this.tallies = undefined;
    this.stopObserving?.();
    this.stopObserving = undefined;
  }

  /**
   * Makes `meter` this app's. Two apps on one meter would create the same instruments with the
   * same attributes (a gauge's name): each collection would keep one app's figures for a gauge
   * both have and drop the other's, without a word. A meter an app registered on but whose start
   * failed (Nest calls no shutdown hook then) is taken back; the no-op meter is anyone's.
   */
  private claim(meter: Meter, meterName: string): void {
    const user = meterUsers.get(meter);
    if (user !== undefined && user !== this) {
      if (user.state !== 'starting') throw clash(meterName);
      user.stop();
      user.state = 'taken';
    }
    if (meter !== createNoopMeter()) meterUsers.set(meter, this);
  }

  /** Fails the start if the meter was taken over; at the bootstrap's end, keeps it. */
  private confirm(ended = false): void {
    if (this.state === 'taken') {
      this.state = 'idle';
      throw clash(this.meterName);
    }
    if (ended && this.state === 'starting') this.state = 'running';
  }

  private sinkFor(
    label: string,
    leaseDuration: Histogram | undefined,
    timeInQueue: Histogram | undefined,
  ): DurationSink {
    const { gauge, result, outcome } = OPENTELEMETRY_ATTRIBUTES;
    const base = Object.freeze({ [gauge]: label });
    const by = (name: string, value: string) => Object.freeze({ [gauge]: label, [name]: value });
    this.attributes.set(label, {
      gauge: base,
      admitted: by(result, 'admitted'),
      refused: REFUSAL_REASONS.map((reason) => by(result, reason)),
    });
    if (leaseDuration === undefined || timeInQueue === undefined) return NO_DURATIONS;
    const waits = QUEUE_RESULTS.map((value) => by(result, value));
    const holds = OUTCOMES.map((value) => by(outcome, value));
    return {
      waited: (index, seconds) => timeInQueue.record(seconds, waits[index]),
      held: (index, seconds) => leaseDuration.record(seconds, holds[index]),
    };
  }
}
