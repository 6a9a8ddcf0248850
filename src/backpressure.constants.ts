/** Metadata key under which `@Limited` records the gauge name on a handler or controller. */
export const LIMITED_GAUGE = 'backpressure:gauge';

/** The DI token of the gauge `name`, for `@Inject(getGaugeToken(name))` or a custom provider. */
export function getGaugeToken(name: string): string {
  return `BackpressureGauge:${name}`;
}

/**
 * Metadata key under which `@Limited` records, on each handler it wraps, the wrapper itself: the
 * interceptor matches it against the function that reports a run, so a helper method called from
 * inside a handler is not taken for a run of it.
 */
export const LIMITED_RUNNER = 'backpressure:runner';

/** Metadata key under which `@Priority(level)` records a handler's or controller's level. */
export const PRIORITY_LEVEL = 'backpressure:priority';
