import { describeValue } from '../core/config-value.util';
import { GaugeConfigError } from '../core/gauge.errors';
import { assertOptionsObject } from '../metrics/metrics-options.validation';

/** When a gauge counts as unhealthy; each option may be given per check or as the module default. */
export interface GaugeHealthOptions {
  /**
   * Share of the limit, in (0, 1], at which the gauge counts as saturated (default 1: every slot
   * held). A refusal since the previous check counts as saturated too.
   */
  readonly saturation?: number | undefined;
  /**
   * How long, in ms, the gauge must stay saturated before it is reported down (default 10 000;
   * 0: as soon as a check sees it saturated). Measured at the checks, so a probe every 5 s sees
   * 10 s of saturation at its third check.
   */
  readonly forMs?: number | undefined;
  /**
   * Whether a shared gauge whose store is down (or still connecting) is reported down (default
   * true). Set false when the gauges fail open and the instance should stay in rotation meanwhile.
   */
  readonly checkStore?: boolean | undefined;
}

/** What one `GaugeHealthIndicator.isHealthy` call takes. */
export interface GaugeHealthCheckOptions extends GaugeHealthOptions {
  /** The key of the result in the health report (default: the gauge's name). */
  readonly key?: string | undefined;
}

/** What `BackpressureHealthModule.forRoot()` takes: the defaults of every check, and the clock. */
export interface BackpressureHealthOptions extends GaugeHealthOptions {
  /**
   * Milliseconds since the epoch, never going back nor jumping (default: the process's start time
   * plus `performance.now()`, which wall-clock changes do not move); a test gives a fake clock.
   */
  readonly clock?: (() => number) | undefined;
}

/** The options of one check, every default applied. */
export interface ResolvedHealthOptions {
  readonly saturation: number;
  readonly forMs: number;
  readonly checkStore: boolean;
}

/** Default `saturation`: every slot held. */
export const DEFAULT_SATURATION = 1;
/** Default `forMs`: ten seconds, two or three readiness probes. */
export const DEFAULT_SATURATED_FOR_MS = 10_000;

/** DI token of the options given to `BackpressureHealthModule.forRoot()`. */
export const HEALTH_OPTIONS = Symbol('BackpressureHealthOptions');

const CHECK_KEYS = ['saturation', 'forMs', 'checkStore'];

/** Checks the module's options where they are declared: a mistake fails the start, naming it. */
export function validateHealthModuleOptions(value: unknown): BackpressureHealthOptions {
  const where = 'BackpressureHealthModule';
  const options = assertOptionsObject(where, value, [...CHECK_KEYS, 'clock']);
  if (options.clock !== undefined && typeof options.clock !== 'function') {
    throw new GaugeConfigError(
      `${where}: option "clock" must be a function returning milliseconds, got ${describeValue(options.clock)}`,
    );
  }
  resolveHealthOptions(where, options, undefined, ['clock']);
  return options as BackpressureHealthOptions;
}

/**
 * One check's options over the defaults, checked: a bad value throws a `GaugeConfigError` naming
 * the option, the value and `where` (the gauge).
 */
export function resolveHealthOptions(
  where: string,
  value: unknown,
  defaults: ResolvedHealthOptions | undefined,
  extraKeys: readonly string[] = [],
): ResolvedHealthOptions {
  const options = assertOptionsObject(where, value, [...CHECK_KEYS, ...extraKeys]);
  const { saturation, forMs, checkStore } = options;
  if (
    saturation !== undefined &&
    (typeof saturation !== 'number' || !(saturation > 0 && saturation <= 1))
  ) {
    throw new GaugeConfigError(
      `${where}: option "saturation" must be a number in (0, 1] (a share of the limit), got ${describeValue(saturation)}`,
    );
  }
  if (forMs !== undefined && (typeof forMs !== 'number' || !Number.isFinite(forMs) || forMs < 0)) {
    throw new GaugeConfigError(
      `${where}: option "forMs" must be a finite number of milliseconds >= 0, got ${describeValue(forMs)}`,
    );
  }
  if (checkStore !== undefined && typeof checkStore !== 'boolean') {
    throw new GaugeConfigError(
      `${where}: option "checkStore" must be a boolean, got ${describeValue(checkStore)}`,
    );
  }
  return {
    saturation: saturation ?? defaults?.saturation ?? DEFAULT_SATURATION,
    forMs: forMs ?? defaults?.forMs ?? DEFAULT_SATURATED_FOR_MS,
    checkStore: checkStore ?? defaults?.checkStore ?? true,
  };
}
