import { Inject, Injectable, Optional } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { GAUGE_REGISTRY_REF } from '../backpressure-core.tokens';
import { describeValue } from '../core/config-value.util';
import { GaugeConfigError } from '../core/gauge.errors';
import type { Gauge } from '../core/gauge.interface';
import type { GaugeKind } from '../gauge.registry';
import {
  HEALTH_OPTIONS,
  resolveHealthOptions,
  validateHealthModuleOptions,
  type BackpressureHealthOptions,
  type GaugeHealthCheckOptions,
  type GaugeHealthOptions,
  type ResolvedHealthOptions,
} from './gauge-health.options';
import { SaturationWatch } from './saturation.watch';

/** What the indicator reads of the application's `GaugeRegistry`. */
interface GaugeLookup {
  has(name: string): boolean;
  get(name: string): Gauge;
  list(kind?: GaugeKind): Gauge[];
}

/** What a gauge's entry in the health report carries, besides terminus's `status`. */
export interface GaugeHealthDetails extends Record<string, unknown> {
  /** Slots held now (in this process, for a shared gauge). */
  readonly inFlight: number;
  /** The gauge's limit now. */
  readonly limit: number;
  /** Callers waiting for a slot now. */
  readonly queued: number;
  /** When the current spell of saturation was first seen (ISO 8601), or null. */
  readonly saturatedSince: string | null;
  /** How long the gauge has been saturated, in ms (0 when it is not). */
  readonly saturatedForMs: number;
  /** The shared store's state (`up`, `down`, `connecting`), or `memory` for an in-process gauge. */
  readonly store: 'connecting' | 'up' | 'down' | 'memory';
  /** Why the gauge is down (`saturated`, `store-down`); only when it is. */
  readonly reason?: 'saturated' | 'store-down';
  /** A sentence saying why it is down; only when it is. */
  readonly message?: string;
}

const WHERE = 'GaugeHealthIndicator';

/**
 * Milliseconds since the epoch that never jump: the process's start time plus a monotonic clock,
 * so setting the wall clock (NTP, a VM resumed) cannot lengthen or shorten a saturation spell.
 */
const monotonicNow = (): number => performance.timeOrigin + performance.now();

/**
 * A `@nestjs/terminus` health indicator for the gauges: a gauge is down when it has been saturated
 * (at least `saturation` × its limit held, or refusing callers) for longer than `forMs`, or when
 * its shared store is down, so a readiness probe takes an overloaded or cut-off instance out of
 * rotation. `BackpressureHealthModule.forRoot()` provides it; it can also be listed directly as a
 * provider of a module that imports `TerminusModule`.
 *
 * @example
 * @Get('health') @HealthCheck()
 * ready() {
 *   return this.health.check([() => this.gauges.isHealthy('pdf', { saturation: 0.9 })]);
 * }
 *
 * Saturation is measured at the checks, from figures the gauges keep anyway: the indicator adds
 * nothing to a request's cost.
 */
@Injectable()
export class GaugeHealthIndicator {
  private readonly defaults: ResolvedHealthOptions;
  private readonly watch: SaturationWatch;

  /**
   * @param gauges the application's `GaugeRegistry`
   * @param indicators terminus's `HealthIndicatorService` (from `TerminusModule`)
   * @param options as `BackpressureHealthModule.forRoot()` takes them (validated here)
   */
  constructor(
    @Inject(GAUGE_REGISTRY_REF) private readonly gauges: GaugeLookup,
    private readonly indicators: HealthIndicatorService,
    @Optional() @Inject(HEALTH_OPTIONS) options?: BackpressureHealthOptions,
  ) {
    const valid = validateHealthModuleOptions(options);
    this.defaults = resolveHealthOptions('BackpressureHealthModule', valid, undefined, ['clock']);
    this.watch = new SaturationWatch(valid.clock ?? monotonicNow);
  }

  /**
   * The health of gauge `name`, reported under `options.key` (default: the name). Throws a
   * `GaugeConfigError` for a gauge that does not exist or a bad option: a mistake in the health
   * endpoint's code, not a health state.
   */
  async isHealthy(name: string, options?: GaugeHealthCheckOptions): Promise<HealthIndicatorResult> {
    const gauge = this.find(name);
    const where = `${WHERE}: gauge "${name}"`;
    const resolved = resolveHealthOptions(where, options, this.defaults, ['key']);
    const key = options?.key ?? name;
    if (typeof key !== 'string' || key === '') {
      throw new GaugeConfigError(
        `${where}: option "key" must be a non-empty string, got ${describeValue(key)}`,
      );
    }
    return this.report(key, gauge, resolved);
  }

  /**
   * The health of each gauge of `names` (default: every pinned gauge, i.e. configured, `@Limited`
   * or `@InjectGauge`; not the dynamic ones clients name), each under its own name: the check is
   * down when one of them is.
   */
  async areHealthy(
    names?: readonly string[],
    options?: GaugeHealthOptions,
  ): Promise<HealthIndicatorResult> {
    if (names !== undefined && !Array.isArray(names)) {
      throw new GaugeConfigError(
        `${WHERE}: the gauge names must be an array of strings, got ${describeValue(names)}`,
      );
    }
    const gauges =
      names === undefined ? this.gauges.list('pinned') : names.map((n) => this.find(n));
    const resolved = resolveHealthOptions(WHERE, options, this.defaults);
    const result: HealthIndicatorResult = {};
    for (const gauge of gauges) Object.assign(result, this.report(gauge.name, gauge, resolved));
    return result;
  }

  private find(name: unknown): Gauge {
    if (typeof name !== 'string' || !this.gauges.has(name)) {
      const known = this.gauges.list('pinned').map((gauge) => gauge.name);
      throw new GaugeConfigError(
        `${WHERE}: no gauge ${describeValue(name)} (known: ${known.join(', ') || 'none'})`,
      );
    }
    return this.gauges.get(name);
  }

  private report(key: string, gauge: Gauge, options: ResolvedHealthOptions): HealthIndicatorResult {
    const reading = this.watch.read(gauge, options.saturation);
    const forMs = reading.since === undefined ? 0 : Math.max(0, reading.at - reading.since);
    const store = gauge.storeState ?? 'memory';
    const details: GaugeHealthDetails = {
      inFlight: gauge.inFlight,
      limit: gauge.limit,
      queued: gauge.queued,
      saturatedSince: reading.since === undefined ? null : new Date(reading.since).toISOString(),
      saturatedForMs: forMs,
      store,
    };
    const session = this.indicators.check(key);
    if (options.checkStore && (store === 'down' || store === 'connecting')) {
      return session.down({
        ...details,
        reason: 'store-down',
        message: `Gauge "${gauge.name}": its store is ${store === 'down' ? 'down' : 'not connected yet'}`,
      });
    }
    if (reading.saturated && forMs >= options.forMs) {
      return session.down({
        ...details,
        reason: 'saturated',
        message: `Gauge "${gauge.name}" has been saturated (at least ${Math.round(options.saturation * 1000) / 10} % of its limit held, or refusing callers) for ${forMs} ms`,
      });
    }
    return session.up(details);
  }
}
