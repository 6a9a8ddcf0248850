/*
 * The public API of `nestjs-backpressure/opentelemetry`: the gauges' figures as OpenTelemetry
 * metrics. Only this entry (and what it reaches) imports `@opentelemetry/api`, an optional peer,
 * so apps that do not use it never need it installed, not even for type-checking. Everything else
 * under src/opentelemetry is internal.
 */
export { BackpressureOpenTelemetryModule } from './opentelemetry.module';
export {
  BackpressureOpenTelemetryMetrics,
  OPENTELEMETRY_ATTRIBUTES,
  OPENTELEMETRY_INSTRUMENTS,
  type BackpressureOpenTelemetryOptions,
} from './opentelemetry-metrics';
