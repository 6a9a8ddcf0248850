// A consumer of `nestjs-backpressure/terminus`, compiled by ../consumer-build.mjs with
// @nestjs/terminus installed and `skipLibCheck: false`. It names every export of the subpath;
// `main()` runs one health check with a gauge held full.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheckService } from '@nestjs/terminus';
import { BackpressureModule, GaugeRegistry, type Release } from 'nestjs-backpressure';
import {
  BackpressureHealthModule,
  DEFAULT_SATURATED_FOR_MS,
  DEFAULT_SATURATION,
  GaugeHealthIndicator,
  type BackpressureHealthOptions,
  type GaugeHealthCheckOptions,
  type GaugeHealthDetails,
  type GaugeHealthOptions,
} from 'nestjs-backpressure/terminus';

const defaults: GaugeHealthOptions = { saturation: DEFAULT_SATURATION, forMs: 0 };
const options: BackpressureHealthOptions = { ...defaults, clock: () => DEFAULT_SATURATED_FOR_MS };
const check: GaugeHealthCheckOptions = { key: 'pdf-gauge' };

@Module({
  imports: [
    BackpressureModule.forRoot({ gauges: { pdf: { limit: 1 } } }),
    BackpressureHealthModule.forRoot(options),
  ],
})
class AppModule {}

export async function main(): Promise<string> {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  try {
    const release = (await app.get(GaugeRegistry).get('pdf').acquire()) as Release;
    const gauges = app.get(GaugeHealthIndicator);
    const result = await app
      .get(HealthCheckService)
      .check([() => gauges.isHealthy('pdf', check)])
      .catch(
        (error: { response: { error: Record<string, GaugeHealthDetails> } }) => error.response,
      );
    release();
    const details = result.error?.['pdf-gauge'];
    return `${details?.reason} ${details?.inFlight}/${details?.limit} ${details?.store}`;
  } finally {
    await app.close();
  }
}
