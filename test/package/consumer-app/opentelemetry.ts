// A consumer of `nestjs-backpressure/opentelemetry`, compiled by ../consumer-build.mjs with
// @opentelemetry/api installed (no SDK) and `skipLibCheck: false`. It names every export of the
// subpath; `main()` runs it on the API's no-op meter.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { metrics } from '@opentelemetry/api';
import { BackpressureModule, GaugeRegistry } from 'nestjs-backpressure';
import {
  BackpressureOpenTelemetryMetrics,
  BackpressureOpenTelemetryModule,
  OPENTELEMETRY_ATTRIBUTES,
  OPENTELEMETRY_INSTRUMENTS,
  type BackpressureOpenTelemetryOptions,
} from 'nestjs-backpressure/opentelemetry';

const options: BackpressureOpenTelemetryOptions = {
  meterProvider: metrics.getMeterProvider(),
  meterName: 'consumer',
  buckets: [0.01, 1],
};

@Module({
  imports: [
    BackpressureModule.forRoot({ gauges: { pdf: { limit: 2 } } }),
    BackpressureOpenTelemetryModule.forRoot(options),
  ],
})
class AppModule {}

export async function main(): Promise<string> {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error'] });
  try {
    app.get(BackpressureOpenTelemetryMetrics);
    await app
      .get(GaugeRegistry)
      .get('pdf')
      .process(() => 'pdf');
    return `${OPENTELEMETRY_INSTRUMENTS.requests} ${OPENTELEMETRY_ATTRIBUTES.gauge}`;
  } finally {
    await app.close();
  }
}
