/*
 * The public API of `nestjs-backpressure/prometheus`: the gauges' figures as Prometheus metrics.
 * Only this entry (and what it reaches) imports `prom-client`, an optional peer, so apps that do
 * not use it never need it installed, not even for type-checking. Everything else under
 * src/prometheus is internal.
 */
export { BackpressurePrometheusModule } from './prometheus.module';
export {
  BackpressurePrometheusMetrics,
  type BackpressurePrometheusOptions,
  type PrometheusMetricNames,
  type PrometheusRegistry,
} from './prometheus-metrics';
