import { Inject } from '@nestjs/common';
import { assertGaugeName } from './core/gauge-options';
import { getGaugeToken } from './backpressure.constants';

/**
 * Names seen by `@InjectGauge` anywhere in the process, so the root module can declare a token for
 * each without the application listing them. Only declarations: the token's provider is
 * transient, so it builds a gauge only in an application that injects it. Which gauges an
 * application uses is found in that application's own classes at bootstrap (see
 * `RouteGaugesExplorer`); `forRoot`'s `gauges` and `forFeature()` provide their tokens directly.
 */
export const injectedGaugeNames = new Set<string>();

/**
 * Injects the gauge `name` (for work outside controllers: `gauge.process(fn)`). The gauge is the
 * same object `@Limited(name)` uses, so both share one limit.
 *
 * The token (`getGaugeToken(name)`) is provided by the root module for every name, and by each
 * `BackpressureModule.forFeature()` for the names it lists (needed where the root is not global).
 */
export function InjectGauge(name: string): PropertyDecorator & ParameterDecorator {
  assertGaugeName(name, '@InjectGauge(): the gauge name');
  injectedGaugeNames.add(name);
  return Inject(getGaugeToken(name));
}
