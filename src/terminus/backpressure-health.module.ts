import { Module, type DynamicModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { GaugeHealthIndicator } from './gauge-health.indicator';
import {
  HEALTH_OPTIONS,
  validateHealthModuleOptions,
  type BackpressureHealthOptions,
} from './gauge-health.options';

/**
 * Provides `GaugeHealthIndicator` (with terminus's `TerminusModule`) to the module that imports
 * it, beside `BackpressureModule.forRoot()`; `@nestjs/terminus` is an optional peer: install it
 * to use this entry.
 *
 * @example
 * @Module({
 *   imports: [BackpressureHealthModule.forRoot({ saturation: 0.9, forMs: 30_000 })],
 *   controllers: [HealthController],
 * })
 * export class HealthModule {}
 */
@Module({})
export class BackpressureHealthModule {
  /**
   * The defaults of every check (`saturation` 1, `forMs` 10 000, `checkStore` true) and the
   * clock. Checked here: a mistake throws a `GaugeConfigError` naming the option and value.
   */
  static forRoot(options?: BackpressureHealthOptions): DynamicModule {
    const valid = validateHealthModuleOptions(options);
    return {
      module: BackpressureHealthModule,
      imports: [TerminusModule],
      providers: [{ provide: HEALTH_OPTIONS, useValue: valid }, GaugeHealthIndicator],
      exports: [GaugeHealthIndicator, TerminusModule],
    };
  }
}
