import { describeValue as show } from './config-value.util';
import { GaugeConfigError } from './gauge.errors';

/**
 * setTimeout's ceiling: a longer delay silently becomes 1 ms, so every option that ends up as a
 * timer (a queue timeout, a hold limit) is capped here rather than misbehaving at run time.
 */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * Checks an integer option within bounds, naming where it came from and the option, so that every
 * gauge option reads the same when it is wrong (the messages are part of the bootstrap's contract).
 */
export function assertInteger(
  where: string,
  option: string,
  value: unknown,
  min: number,
  max: number,
): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new GaugeConfigError(
      `${where}: option "${option}" must be an integer from ${min} to ${max === Number.MAX_SAFE_INTEGER ? 'Number.MAX_SAFE_INTEGER' : max}, got ${show(value)}`,
    );
  }
}

/**
 * Checks a finite duration option (milliseconds) within bounds: `NaN` or `Infinity` would pass a
 * plain comparison and then break the timer it feeds.
 */
export function assertNumber(
  where: string,
  option: string,
  value: unknown,
  min: number,
  max: number,
): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new GaugeConfigError(
      `${where}: option "${option}" must be a number of milliseconds from ${min} to ${max}, got ${show(value)}`,
    );
  }
}

/**
 * Fails on the first key not in `known` (listing the known ones, each with `prefix`): a typo in an
 * option bag would otherwise be silently ignored and its default used instead.
 */
export function rejectUnknownKeys(
  where: string,
  value: object,
  known: ReadonlySet<string>,
  prefix: string,
): void {
  for (const key of Object.keys(value)) {
    if (!known.has(key)) {
      const allowed = [...known].map((k) => prefix + k).join(', ');
      throw new GaugeConfigError(`${where}: unknown option "${prefix}${key}" (known: ${allowed})`);
    }
  }
}

/** An object that is not an array: arrays would pass `typeof` and silently mean "no options". */
export function isRecord(value: unknown): value is object {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
