import { join } from 'node:path';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { Registry } from 'prom-client';
import type { Gauge } from '../../src';
import type * as OpenTelemetryEntry from '../../src/opentelemetry';
import type * as PrometheusEntry from '../../src/prometheus';
import { lib } from '../harness/lib';
import { repoRoot } from '../harness/paths';
import { spread, show } from '../harness/stats';

/**
 * What the metrics integrations add per acquire()+release (issue 12), on the BUILT library: a
 * fail-fast gauge of 10, never full, in a loop, with no listener, with a trivial listener
 * (`() => count++`: what any listener costs the gauge, i.e. its two clock reads and two event
 * objects), with `BackpressurePrometheusMetrics`, and with `BackpressureOpenTelemetryMetrics` on a
 * real SDK MeterProvider (collected once at the end), with and without its histograms. One warm-up round, then interleaved rounds,
 * each starting one variant further along; "added" is per round, against the same round's gauge
 * without a listener and with the trivial one.
 *
 *   npm run build && npx tsc -p bench/tsconfig.json && \
 *     node --expose-gc node_modules/.cache/nestjs-backpressure-bench/bench/micro/metrics-cost.js [--ops=N] [--rounds=N]
 */
class Reader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

const arg = (name: string, fallback: number) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback);

async function main(): Promise<void> {
  const ops = arg('ops', 1_000_000);
  const rounds = arg('rounds', 7);
  const build = process.env.BENCH_LIB ?? join(repoRoot, 'dist');
  /* eslint-disable @typescript-eslint/no-require-imports */
  const prom = require(join(build, 'prometheus')) as typeof PrometheusEntry;
  const otel = require(join(build, 'opentelemetry')) as typeof OpenTelemetryEntry;
  /* eslint-enable @typescript-eslint/no-require-imports */
  const source = (gauge: Gauge) => ({
    onGauge: (listener: (gauge: Gauge, kind: 'pinned') => void) => {
      listener(gauge, 'pinned');
      return () => undefined;
    },
    list: () => [gauge],
  });

  const bare = new lib.PressureGauge({ name: 'bare', limit: 10 });
  const trivial = new lib.PressureGauge({ name: 'trivial', limit: 10 });
  let heard = 0;
  trivial.subscribe(() => {
    heard++;
  });
  const promGauge = new lib.PressureGauge({ name: 'prometheus', limit: 10 });
  const registry = new Registry();
  new prom.BackpressurePrometheusMetrics(source(promGauge), { registry }).start();
  const otelGauge = new lib.PressureGauge({ name: 'opentelemetry', limit: 10 });
  const reader = new Reader();
  const provider = new MeterProvider({ readers: [reader] });
  new otel.BackpressureOpenTelemetryMetrics(source(otelGauge), { meterProvider: provider }).start();
  const otelCountsGauge = new lib.PressureGauge({ name: 'opentelemetry-counts', limit: 10 });
  new otel.BackpressureOpenTelemetryMetrics(source(otelCountsGauge), {
    meterProvider: provider,
    meterName: 'counts',
    histograms: false,
  }).start();

  const loop = (gauge: Gauge) => () => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < ops; i++) (gauge.acquire() as () => void)();
    return Number(process.hrtime.bigint() - t0) / ops;
  };
  const variants: Record<string, () => number> = {
    'no listener': loop(bare),
    'trivial listener': loop(trivial),
    'Prometheus metrics': loop(promGauge),
    'OpenTelemetry metrics (SDK)': loop(otelGauge),
    'OpenTelemetry, histograms: false': loop(otelCountsGauge),
  };
  const names = Object.keys(variants);
  const runs: Record<string, number[]> = {};
  for (let round = -1; round < rounds; round++) {
    const ns: Record<string, number> = {};
    for (let k = 0; k < names.length; k++) {
      const name = names[(k + Math.max(round, 0)) % names.length]!;
      global.gc?.();
      ns[name] = variants[name]!();
    }
    if (round < 0) continue;
    for (const name of names) (runs[name] ??= []).push(ns[name]!);
    for (const name of names.slice(2)) {
      (runs[`${name}: added vs no listener`] ??= []).push(ns[name]! - ns['no listener']!);
      (runs[`${name}: added vs trivial listener`] ??= []).push(ns[name]! - ns['trivial listener']!);
    }
  }

  // The figures are right, so the loops measured what they claim.
  const scraped = await registry.getSingleMetricAsString('backpressure_admitted_total');
  const total = ops * (rounds + 1);
  if (!scraped.includes(`backpressure_admitted_total{gauge="prometheus"} ${total}`))
    throw new Error(`metrics-cost: unexpected scrape ${scraped}`);
  const { errors } = await reader.collect();
  if (errors.length > 0 || heard !== 2 * total) throw new Error('metrics-cost: bad run');
  await provider.shutdown();

  console.log(
    `acquire()+release, fail fast, limit 10; ${ops} ops × ${rounds} rounds (median (min–max) ns)`,
  );
  for (const [name, values] of Object.entries(runs)) {
    console.log(`  ${name.padEnd(58)} ${show(spread(values), 3, ' ns')}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
