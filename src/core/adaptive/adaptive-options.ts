import { describeValue as show, isPlainObject } from '../config-value.util';
import { GaugeConfigError } from '../gauge.errors';
import type { WindowOptions } from './sample-window';

/** What every adaptive limit accepts: where it starts, its bounds, its windows and its probes. */
export interface AdaptiveLimitOptions {
  /** The limit before anything is measured. Default 20, moved inside [min, max]. */
  readonly initial?: number | undefined;
  /** The lowest the limit goes, however slow the work gets. Default 1. */
  readonly min?: number | undefined;
  /** The highest the limit goes, however fast the work is. Default 200. */
  readonly max?: number | undefined;
  /** How samples are grouped into one update (see `WindowOptions`). */
  readonly window?: WindowOptions | undefined;
  /**
   * How often the no-load latency is measured again (milliseconds, ±10 % jitter): the limit drops
   * to a quarter for one window so the work runs without a queue in front of it. Also done at the
   * first samples (at `min`), and early when the limit has halved since the last measurement and
   * latency stayed over twice the baseline for ten windows (the work itself got slower).
   * Default 60000.
   */
  readonly probeIntervalMs?: number | undefined;
}

/** The common options after validation and defaults. */
export interface ResolvedAdaptiveOptions {
  readonly initial: number;
  readonly min: number;
  readonly max: number;
  readonly windowMinMs: number;
  readonly windowMaxMs: number;
  readonly windowMinSamples: number;
  readonly percentile: number;
  readonly probeIntervalMs: number;
}

const COMMON_KEYS = ['initial', 'min', 'max', 'window', 'probeIntervalMs'];
const WINDOW_KEYS = ['minMs', 'maxMs', 'minSamples', 'percentile'];
/** setTimeout's ceiling, the longest sensible duration option. */
const MAX_MS = 2 ** 31 - 1;

/**
 * Checks an adaptive limit's options: a plain object whose keys are the common ones plus the
 * algorithm's `own`. Throws `GaugeConfigError` naming `where` (the gauge and option) and the value.
 */
export function resolveAdaptiveOptions(
  where: string,
  options: unknown,
  own: readonly string[],
): ResolvedAdaptiveOptions {
  if (options === undefined) options = {};
  if (!isPlainObject(options)) {
    throw new GaugeConfigError(`${where}: options must be an object, got ${show(options)}`);
  }
  rejectUnknown(where, options, [...COMMON_KEYS, ...own], '');
  const min = integer(where, 'min', options.min, 1, 1, Number.MAX_SAFE_INTEGER);
  const max = integer(where, 'max', options.max, Math.max(200, min), min, Number.MAX_SAFE_INTEGER);
  const initial =
    options.initial === undefined
      ? Math.min(max, Math.max(min, 20))
      : integer(where, 'initial', options.initial, 20, min, max);
  const window: unknown = options.window ?? {};
  if (!isPlainObject(window)) {
    throw new GaugeConfigError(
      `${where}: option "window" must be { minMs, maxMs, minSamples, percentile }, got ${show(window)}`,
    );
  }
  rejectUnknown(where, window, WINDOW_KEYS, 'window.');
  const windowMinMs = number(where, 'window.minMs', window.minMs, 250, 0, MAX_MS);
  const windowMaxMs = number(
    where,
    'window.maxMs',
    window.maxMs,
    Math.max(1000, windowMinMs),
    Math.max(1, windowMinMs),
    MAX_MS,
  );
  return {
    initial,
    min,
    max,
    windowMinMs,
    windowMaxMs,
    windowMinSamples: integer(where, 'window.minSamples', window.minSamples, 10, 1, 1_000_000),
    percentile: number(where, 'window.percentile', window.percentile, 0.5, 0, 1),
    probeIntervalMs: number(where, 'probeIntervalMs', options.probeIntervalMs, 60_000, 1, MAX_MS),
  };
}

/** An integer option within [lo, hi], or `fallback` when absent. */
export function integer(
  where: string,
  option: string,
  value: unknown,
  fallback: number,
  lo: number,
  hi: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < lo || value > hi) {
    throw new GaugeConfigError(
      `${where}: option "${option}" must be an integer from ${bound(lo)} to ${bound(hi)}, got ${show(value)}`,
    );
  }
  return value;
}

/** A finite number option within [lo, hi], or `fallback` when absent. */
export function number(
  where: string,
  option: string,
  value: unknown,
  fallback: number,
  lo: number,
  hi: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < lo || value > hi) {
    throw new GaugeConfigError(
      `${where}: option "${option}" must be a number from ${bound(lo)} to ${bound(hi)}, got ${show(value)}`,
    );
  }
  return value;
}

function bound(value: number): string {
  return value === Number.MAX_SAFE_INTEGER ? 'Number.MAX_SAFE_INTEGER' : String(value);
}

function rejectUnknown(where: string, value: object, known: readonly string[], prefix: string) {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      const allowed = known.map((k) => prefix + k).join(', ');
      throw new GaugeConfigError(`${where}: unknown option "${prefix}${key}" (known: ${allowed})`);
    }
  }
}
