import { Inject } from '@nestjs/common';
import { assertGaugeName } from './core/gauge-options';
import { getGaugeToken } from './backpressure.constants';

/** Names seen by `@InjectGauge`, so the module can provide a token for each of them. */
export const injectedGaugeNames = new Set<string>();

/**
 * Injects the gauge `name` (for work outside controllers: `gauge.process(fn)`). The gauge is the
 * same object `@Limited(name)` uses, so both share one limit.
 */
export function InjectGauge(name: string): PropertyDecorator & ParameterDecorator {
  assertGaugeName(name, '@InjectGauge(): the gauge name');
  injectedGaugeNames.add(name);
  return Inject(getGaugeToken(name));
}
