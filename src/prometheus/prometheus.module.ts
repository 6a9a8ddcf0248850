import { Module, type DynamicModule } from '@nestjs/common';
import {
  BackpressurePrometheusMetrics,
  PROMETHEUS_OPTIONS,
  validatePrometheusOptions,
  type BackpressurePrometheusOptions,
} from './prometheus-metrics';

/**
 * Exposes every gauge's figures as Prometheus metrics through prom-client (an optional peer:
 * install `prom-client` to use this entry). Import it beside `BackpressureModule.forRoot()`:
 *
 * @example
 * imports: [
 *   BackpressureModule.forRoot({ gauges: { pdf: { limit: 4 } } }),
 *   BackpressurePrometheusModule.forRoot(), // the default registry, prefix 'backpressure_'
 * ]
 *
 * It serves nothing itself: scrape the registry where the app already does (e.g.
 * `@willsoto/nestjs-prometheus`'s `/metrics`, or `await registry.metrics()` in a controller).
 */
@Module({})
export class BackpressurePrometheusModule {
  /**
   * Registers the metrics in `registry` (default: prom-client's default `register`) with names
   * starting with `prefix` (default `backpressure_`) and histogram `buckets` in seconds. Options
   * are checked here: a mistake throws a `GaugeConfigError` naming it.
   */
  static forRoot(options?: BackpressurePrometheusOptions): DynamicModule {
    const valid = validatePrometheusOptions(options);
    return {
      module: BackpressurePrometheusModule,
      providers: [{ provide: PROMETHEUS_OPTIONS, useValue: valid }, BackpressurePrometheusMetrics],
      exports: [BackpressurePrometheusMetrics],
    };
  }
}
