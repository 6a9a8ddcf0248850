import { Module, type DynamicModule } from '@nestjs/common';
import {
  BackpressureOpenTelemetryMetrics,
  OPENTELEMETRY_OPTIONS,
  validateOpenTelemetryOptions,
  type BackpressureOpenTelemetryOptions,
} from './opentelemetry-metrics';

/**
 * Reports every gauge's figures as OpenTelemetry metrics through `@opentelemetry/api` (an
 * optional peer: install it, and an SDK such as `@opentelemetry/sdk-node`, to use this entry).
 * Import it beside `BackpressureModule.forRoot()`:
 *
 * @example
 * imports: [
 *   BackpressureModule.forRoot({ gauges: { pdf: { limit: 4 } } }),
 *   BackpressureOpenTelemetryModule.forRoot(), // the global MeterProvider, meter 'nestjs-backpressure'
 * ]
 */
@Module({})
export class BackpressureOpenTelemetryModule {
  /**
   * Creates the instruments on `meterProvider` (default: the global one, read when the app
   * starts) under the meter `meterName` (default `nestjs-backpressure`), with the histograms'
   * advised `buckets` in seconds. Options are checked here: a mistake throws a
   * `GaugeConfigError` naming it.
   */
  static forRoot(options?: BackpressureOpenTelemetryOptions): DynamicModule {
    const valid = validateOpenTelemetryOptions(options);
    return {
      module: BackpressureOpenTelemetryModule,
      providers: [
        { provide: OPENTELEMETRY_OPTIONS, useValue: valid },
        BackpressureOpenTelemetryMetrics,
      ],
      exports: [BackpressureOpenTelemetryMetrics],
    };
  }
}
