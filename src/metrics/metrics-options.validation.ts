import { describeValue, isPlainObject } from '../core/config-value.util';
import { GaugeConfigError } from '../core/gauge.errors';

/**
 * Checks a metrics integration's options object: a plain object (or nothing) with only `keys`.
 * Returns it, typed as the caller's record of unknown values.
 */
export function assertOptionsObject(
  where: string,
  value: unknown,
  keys: readonly string[],
): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) {
    throw new GaugeConfigError(`${where}: options must be an object, got ${describeValue(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) {
      throw new GaugeConfigError(`${where}: unknown option "${key}" (known: ${keys.join(', ')})`);
    }
  }
  return value;
}

/** Histogram bucket bounds in seconds: finite, > 0, strictly increasing, at least one. */
export function validateBuckets(where: string, value: unknown): readonly number[] | undefined {
  if (value === undefined) return undefined;
  const ok =
    Array.isArray(value) &&
    value.length > 0 &&
    value.every(
      (bound: unknown, i: number) =>
        typeof bound === 'number' &&
        Number.isFinite(bound) &&
        bound > 0 &&
        (i === 0 || bound > (value[i - 1] as number)),
    );
  if (!ok) {
    throw new GaugeConfigError(
      `${where}: option "buckets" must be a non-empty array of increasing numbers > 0 (seconds), got ${describeValue(value)}`,
    );
  }
  return Object.freeze([...(value as number[])]);
}
