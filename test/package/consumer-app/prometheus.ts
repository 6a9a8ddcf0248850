// A consumer of `nestjs-backpressure/prometheus`, compiled by ../consumer-build.mjs with
// prom-client installed and `skipLibCheck: false`. It names every export of the subpath;
// `main()` scrapes a registry after one call.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { BackpressureModule, GaugeRegistry } from 'nestjs-backpressure';
import {
  BackpressurePrometheusMetrics,
  BackpressurePrometheusModule,
  type BackpressurePrometheusOptions,
  type PrometheusMetricNames,
  type PrometheusRegistry,
} from 'nestjs-backpressure/prometheus';
import { Registry } from 'prom-client';

const registry: PrometheusRegistry = new Registry();
const options: BackpressurePrometheusOptions = { registry, prefix: 'app_', buckets: [0.01, 1] };

@Module({
  imports: [
    BackpressureModule.forRoot({ gauges: { pdf: { limit: 2 } } }),
    BackpressurePrometheusModule.forRoot(options),
  ],
})
class AppModule {}

export async function main(): Promise<string> {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error'] });
  try {
    await app
      .get(GaugeRegistry)
      .get('pdf')
      .process(() => 'pdf');
    const names: PrometheusMetricNames = app.get(BackpressurePrometheusMetrics).names;
    return (await registry.getSingleMetricAsString(names.admitted)).split('\n').pop() ?? '';
  } finally {
    await app.close();
  }
}
