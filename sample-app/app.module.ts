import { Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { BackpressureModule, GaugeErrorFilter } from '../src';
import { BackpressurePrometheusModule } from '../src/prometheus';
import { BackpressureHealthModule } from '../src/terminus';
import { storeFromEnv } from './backpressure-store';
import { HealthController } from './health.controller';
import { HomeController } from './home.controller';
import { MetricsController } from './metrics.controller';
import { ReportsController } from './reports.controller';
import { ReportsService } from './reports.service';
import { WorkController } from './work.controller';

/** Configures every gauge in one place, so `GET /gauges` lists them all from the start. */
@Module({
  imports: [
    BackpressureModule.forRoot({
      store: storeFromEnv(),
      gauges: {
        // The Go original: a buffered channel of 10, full means "Too many requests" at once.
        request: { limit: 10 },
        // Absorb short bursts: 2 run, 5 wait up to 1 s, the rest are refused at once.
        queued: { limit: 2, queue: { size: 5, timeoutMs: 1000 } },
        reports: { limit: 3 },
      },
    }),
    // Every gauge's figures as Prometheus metrics in prom-client's default registry: GET /metrics.
    BackpressurePrometheusModule.forRoot(),
    // GET /health: every gauge as a @nestjs/terminus health indicator (and terminus itself).
    BackpressureHealthModule.forRoot({ forMs: 10_000 }),
  ],
  controllers: [
    HomeController,
    WorkController,
    ReportsController,
    MetricsController,
    HealthController,
  ],
  providers: [ReportsService, { provide: APP_FILTER, useClass: GaugeErrorFilter }],
})
export class AppModule {}
