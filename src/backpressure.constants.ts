/** Metadata key under which `@Limited` records the gauge name on a handler or controller. */
export const LIMITED_GAUGE = 'backpressure:gauge';

/** The DI token of the gauge `name`, for `@Inject(getGaugeToken(name))` or a custom provider. */
export function getGaugeToken(name: string): string {
  return `BackpressureGauge:${name}`;
}
