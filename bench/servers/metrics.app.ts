import { join } from 'node:path';
import { Controller, Get, Header, Inject, Module, type Type } from '@nestjs/common';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { Registry } from 'prom-client';
import type * as OpenTelemetryEntry from '../../src/opentelemetry';
import type * as PrometheusEntry from '../../src/prometheus';
import { lib } from '../harness/lib';
import { repoRoot } from '../harness/paths';
import { Dependency } from './dependency';
import { counter } from './handler-counter';

/**
 * Scenario 12 (issue 12): what the metrics integrations cost on a trivial GET, and what they show
 * under load. Variants:
 * - `limited`: `@Limited` on an ample gauge, no metrics (the baseline);
 * - `prometheus`: the same with `BackpressurePrometheusModule` on its own prom-client registry;
 * - `opentelemetry`: the same with `BackpressureOpenTelemetryModule` on a real SDK MeterProvider
 *   (histograms on, the default), collected and exported (to a sink) every second;
 * - `opentelemetry-counts`: the same with `histograms: false`;
 * - `overload`: scenario 3's I/O endpoint (a dependency serving 10 calls at a time in 50 ms) under a
 *   fail-fast gauge of 10 with the Prometheus module, and `GET /metrics` serving its registry (the
 *   bench scrapes it while loading the endpoint).
 * The integrations come from the BUILT entries (dist/prometheus, dist/opentelemetry), as an
 * application installs them.
 */
const build = process.env.BENCH_LIB ?? join(repoRoot, 'dist');
/* eslint-disable @typescript-eslint/no-require-imports */
const prometheus = () => require(join(build, 'prometheus')) as typeof PrometheusEntry;
const opentelemetry = () => require(join(build, 'opentelemetry')) as typeof OpenTelemetryEntry;
/* eslint-enable @typescript-eslint/no-require-imports */

/** The registry the `overload` variant's metrics go to and `GET /metrics` serves. */
const PROM_REGISTRY = Symbol('bench prometheus registry');

@Controller()
class TrivialController {
  @Get()
  @lib.Limited('bench')
  get(): string {
    return 'ok';
  }
}

const dependency = new Dependency(10, 50);

@Controller()
class OverloadController {
  constructor(@Inject(PROM_REGISTRY) private readonly registry: Registry) {}

  @Get()
  @lib.Limited('bench')
  async get(): Promise<string> {
    counter.enter();
    try {
      await dependency.call();
      return 'ok';
    } finally {
      counter.leave();
    }
  }

  /** prom-client's text format, as a scraper reads it (never limited). */
  @Get('metrics')
  @Header('Content-Type', Registry.PROMETHEUS_CONTENT_TYPE)
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}

/** An exporter that drops what it is given: the SDK still collects and aggregates everything. */
const sink = {
  export: (_metrics: unknown, done: (result: { code: 0 }) => void) => done({ code: 0 }),
  forceFlush: async () => undefined,
  shutdown: async () => undefined,
};

/** The root module for one variant. */
export function metricsModule(variant: string): Type {
  const ample = lib.BackpressureModule.forRoot({ gauges: { bench: { limit: 10_000 } } });
  switch (variant) {
    case 'limited': {
      @Module({ imports: [ample], controllers: [TrivialController] })
      class LimitedModule {}
      return LimitedModule;
    }
    case 'prometheus': {
      @Module({
        imports: [
          ample,
          prometheus().BackpressurePrometheusModule.forRoot({ registry: new Registry() }),
        ],
        controllers: [TrivialController],
      })
      class PrometheusModule {}
      return PrometheusModule;
    }
    case 'opentelemetry':
    case 'opentelemetry-counts': {
      const meterProvider = new MeterProvider({
        readers: [
          new PeriodicExportingMetricReader({ exporter: sink, exportIntervalMillis: 1000 }),
        ],
      });
      @Module({
        imports: [
          ample,
          opentelemetry().BackpressureOpenTelemetryModule.forRoot({
            meterProvider,
            histograms: variant === 'opentelemetry',
          }),
        ],
        controllers: [TrivialController],
      })
      class OpenTelemetryModule {}
      return OpenTelemetryModule;
    }
    case 'overload': {
      const registry = new Registry();
      @Module({
        imports: [
          lib.BackpressureModule.forRoot({ gauges: { bench: { limit: 10 } } }),
          prometheus().BackpressurePrometheusModule.forRoot({ registry }),
        ],
        controllers: [OverloadController],
        providers: [{ provide: PROM_REGISTRY, useValue: registry }],
      })
      class OverloadModule {}
      return OverloadModule;
    }
    default:
      throw new Error(`metrics: unknown variant ${variant}`);
  }
}
