/*
 * The public API of `nestjs-backpressure/terminus`: the gauges as a `@nestjs/terminus` health
 * indicator. Only this entry (and what it reaches) imports `@nestjs/terminus`, an optional peer,
 * so apps that do not use it never need it installed. Everything else under src/terminus is
 * internal.
 */
export { BackpressureHealthModule } from './backpressure-health.module';
export { GaugeHealthIndicator, type GaugeHealthDetails } from './gauge-health.indicator';
export {
  DEFAULT_SATURATED_FOR_MS,
  DEFAULT_SATURATION,
  type BackpressureHealthOptions,
  type GaugeHealthCheckOptions,
  type GaugeHealthOptions,
} from './gauge-health.options';
