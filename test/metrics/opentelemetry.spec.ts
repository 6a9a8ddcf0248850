import 'reflect-metadata';
import { Controller, Get, Param } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { metrics } from '@opentelemetry/api';
import {
  DataPointType,
  MeterProvider,
  MetricReader,
  type DataPoint,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { BackpressureModule, GaugeConfigError, GaugeRegistry, Limited } from '../../src';
import { BackpressureOpenTelemetryModule } from '../../src/opentelemetry';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from '../e2e/support/apps';
import { send, type Call } from '../e2e/support/http';
import { Probe } from '../e2e/support/probe';
import { until } from '../support/wait';

/** A reader the test collects from when it wants (no export interval, nothing to wait for). */
class CollectingReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}

  async read(): Promise<Collected> {
    const { resourceMetrics, errors } = await this.collect();
    if (errors.length > 0) throw errors[0];
    return new Collected(resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics));
  }
}

/** One collection: data points by instrument name and attributes. */
class Collected {
  constructor(readonly metrics: MetricData[]) {}

  metric(name: string): MetricData {
    const found = this.metrics.find((m) => m.descriptor.name === name);
    if (!found)
      throw new Error(`no instrument ${name}: ${this.metrics.map((m) => m.descriptor.name)}`);
    return found;
  }

  point(name: string, attributes: Record<string, string>): DataPoint<unknown> {
    const metric = this.metric(name);
    const points = metric.dataPoints as DataPoint<unknown>[];
    const found = points.find((p) => sameAttributes(p.attributes, attributes));
    if (!found) {
      const seen = points.map((p) => JSON.stringify(p.attributes)).join(', ');
      throw new Error(`no point ${name} ${JSON.stringify(attributes)}; points: ${seen}`);
    }
    return found;
  }

  value(name: string, attributes: Record<string, string>): number {
    return this.point(name, attributes).value as number;
  }

  histogram(name: string, attributes: Record<string, string>): Histogram {
    return this.point(name, attributes).value as Histogram;
  }

  /** Every value of attribute `key` over all points. */
  attributeValues(key: string): Set<string> {
    const values = new Set<string>();
    for (const metric of this.metrics) {
      for (const point of metric.dataPoints as DataPoint<unknown>[]) {
        const value = point.attributes[key];
        if (typeof value === 'string') values.add(value);
      }
    }
    return values;
  }
}

function sameAttributes(
  actual: Record<string, unknown>,
  expected: Record<string, string>,
): boolean {
  const keys = Object.keys(actual);
  return (
    keys.length === Object.keys(expected).length && keys.every((k) => actual[k] === expected[k])
  );
}

@Controller()
class WorkController {
  constructor(private readonly probe: Probe) {}

  @Get('work/:id')
  @Limited('work')
  async work(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('brief/:id')
  @Limited('brief')
  async brief(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('fast/:id')
  @Limited('fast')
  async fast(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }
}

const GAUGES = {
  work: { limit: 1, queue: { size: 1, timeoutMs: 10_000 } },
  brief: { limit: 1, queue: { size: 1, timeoutMs: 50 } },
  fast: { limit: 2 },
};
const G = 'backpressure.gauge';
const RESULT = 'backpressure.result';
const OUTCOME = 'backpressure.outcome';

describe.each(PLATFORMS)('OpenTelemetry metrics on %s', (platform: Platform) => {
  let probe: Probe;
  let reader: CollectingReader;
  let provider: MeterProvider;
  let running: Running;

  beforeEach(async () => {
    probe = new Probe();
    reader = new CollectingReader();
    provider = new MeterProvider({ readers: [reader] });
    const module = moduleOf({
      imports: [
        BackpressureModule.forRoot({ gauges: GAUGES, maxDynamicGauges: 50 }),
        BackpressureOpenTelemetryModule.forRoot({ meterProvider: provider }),
      ],
      controllers: [WorkController],
      providers: [{ provide: Probe, useValue: probe }],
    });
    running = await startApp(platform, module);
  });

  afterEach(async () => {
    probe.openAll();
    await running.close();
    await provider.shutdown();
  });

  async function arrive(route: string, id: string, expect: 'run' | 'queue'): Promise<Call> {
    const gauge = running.gauge(route);
    const [entered, queued] = [probe.entered.length, gauge.queued];
    const call = send(running.url, `/${route}/${id}`);
    if (expect === 'run') await until(() => probe.entered.length === entered + 1, `${id} runs`);
    else await until(() => gauge.queued === queued + 1, `${id} is queued`);
    return call;
  }

  it('reports the same figures as the gauges: leases, queue, limit, requests by result, durations', async () => {
    const a = await arrive('work', 'a', 'run');
    const b = await arrive('work', 'b', 'queue');
    expect((await send(running.url, '/work/c').reply).status).toBe(429); // queue-full
    const d = await arrive('fast', 'd', 'run');
    const e = await arrive('fast', 'e', 'run');
    expect((await send(running.url, '/fast/f').reply).status).toBe(429); // full
    const g = await arrive('brief', 'g', 'run');
    expect((await send(running.url, '/brief/h').reply).status).toBe(429); // timeout

    let collected = await reader.read();
    expect(collected.value('backpressure.active_request_leases', { [G]: 'work' })).toBe(1);
    expect(collected.value('backpressure.active_request_leases', { [G]: 'fast' })).toBe(2);
    expect(collected.value('backpressure.queued_requests', { [G]: 'work' })).toBe(1);
    expect(collected.value('backpressure.limit', { [G]: 'fast' })).toBe(2);
    const requests = (gauge: string, result: string) =>
      collected.value('backpressure.requests', { [G]: gauge, [RESULT]: result });
    expect(requests('work', 'admitted')).toBe(1);
    expect(requests('work', 'queue-full')).toBe(1);
    expect(requests('fast', 'admitted')).toBe(2);
    expect(requests('fast', 'full')).toBe(1);
    expect(requests('brief', 'timeout')).toBe(1);
    expect(requests('brief', 'aborted')).toBe(0);
    const timedOut = collected.histogram('backpressure.request.time_in_queue', {
      [G]: 'brief',
      [RESULT]: 'timeout',
    });
    expect(timedOut.count).toBe(1);
    expect(timedOut.sum).toBeCloseTo(0.05, 6);
    expect(collected.metric('backpressure.request.time_in_queue').descriptor.unit).toBe('s');

    probe.pass('a');
    await until(() => probe.entered.includes('b'), 'b runs');
    probe.fail('b', new Error('boom'));
    expect((await a.reply).status).toBe(200);
    expect((await b.reply).status).toBe(500);
    const i = await arrive('work', 'i', 'run');
    const gone = await arrive('work', 'j', 'queue');
    gone.abort();
    const work = running.gauge('work');
    await until(() => work.aborted === 1 && work.queued === 0, 'j leaves the queue');
    for (const id of ['d', 'e', 'g', 'i']) probe.pass(id);
    for (const call of [d, e, g, i]) expect((await call.reply).status).toBe(200);

    collected = await reader.read();
    expect(collected.value('backpressure.active_request_leases', { [G]: 'work' })).toBe(0);
    expect(requests('work', 'admitted')).toBe(3);
    expect(requests('work', 'aborted')).toBe(1);
    const held = (gauge: string, outcome: string) =>
      collected.histogram('backpressure.request_lease.duration', { [G]: gauge, [OUTCOME]: outcome })
        .count;
    expect(held('work', 'succeeded')).toBe(2);
    expect(held('work', 'failed')).toBe(1);
    expect(held('fast', 'succeeded')).toBe(2);
    const waited = (result: string) =>
      collected.histogram('backpressure.request.time_in_queue', { [G]: 'work', [RESULT]: result })
        .count;
    expect([waited('admitted'), waited('aborted')]).toEqual([1, 1]);
    const duration = collected.metric('backpressure.request_lease.duration');
    expect(duration.dataPointType).toBe(DataPointType.HISTOGRAM);
    expect(
      collected.histogram('backpressure.request_lease.duration', {
        [G]: 'work',
        [OUTCOME]: 'succeeded',
      }).buckets.boundaries,
    ).toEqual([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

    for (const name of ['work', 'brief', 'fast']) {
      const gauge = running.gauge(name);
      expect(requests(name, 'admitted')).toBe(gauge.admitted);
      expect(
        requests(name, 'full') + requests(name, 'queue-full') + requests(name, 'unavailable'),
      ).toBe(gauge.rejected);
      expect(requests(name, 'timeout')).toBe(gauge.timedOut);
      expect(requests(name, 'aborted')).toBe(gauge.aborted);
    }
  });

  it('keeps the attribute sets bounded: 1,000 run-time gauge names are one "(dynamic)"', async () => {
    const registry = running.app.get(GaugeRegistry);
    for (let i = 0; i < 1000; i++) await registry.get(`tenant-${i}`).process(() => i);
    const collected = await reader.read();
    expect(collected.attributeValues(G)).toEqual(new Set(['work', 'brief', 'fast', '(dynamic)']));
    const dynamic = { [G]: '(dynamic)' };
    expect(collected.value('backpressure.requests', { ...dynamic, [RESULT]: 'admitted' })).toBe(
      1000,
    );
    expect(
      collected.histogram('backpressure.request_lease.duration', {
        ...dynamic,
        [OUTCOME]: 'succeeded',
      }).count,
    ).toBe(1000);
    const points = collected.metrics.reduce((sum, m) => sum + m.dataPoints.length, 0);
    // 4 labels × (3 current figures + 6 results + overdue) + the histograms' series that saw data.
    expect(points).toBeLessThanOrEqual(4 * 10 + 4 * 7);
  });
});

describe('BackpressureOpenTelemetryModule', () => {
  it('uses the global MeterProvider, read when the app starts', async () => {
    const reader = new CollectingReader();
    const provider = new MeterProvider({ readers: [reader] });
    metrics.setGlobalMeterProvider(provider);
    try {
      const app = await Test.createTestingModule({
        imports: [
          BackpressureModule.forRoot({ gauges: { pdf: { limit: 4 } } }),
          BackpressureOpenTelemetryModule.forRoot({ buckets: [0.5, 5] }),
        ],
      }).compile();
      await app.init();
      await app
        .get(GaugeRegistry)
        .get('pdf')
        .process(() => 'ok');
      const collected = await reader.read();
      expect(collected.value('backpressure.limit', { [G]: 'pdf' })).toBe(4);
      const held = collected.histogram('backpressure.request_lease.duration', {
        [G]: 'pdf',
        [OUTCOME]: 'succeeded',
      });
      expect(held.buckets.boundaries).toEqual([0.5, 5]);
      await app.close();
      await expect(reader.read()).resolves.toBeInstanceOf(Collected); // no callback left failing
    } finally {
      metrics.disable();
      await provider.shutdown();
    }
  });

  it('leaves the histograms out with histograms: false (the counts stay)', async () => {
    const reader = new CollectingReader();
    const provider = new MeterProvider({ readers: [reader] });
    const app = await Test.createTestingModule({
      imports: [
        BackpressureModule.forRoot({ gauges: { pdf: { limit: 4 } } }),
        BackpressureOpenTelemetryModule.forRoot({ meterProvider: provider, histograms: false }),
      ],
    }).compile();
    await app.init();
    try {
      await app
        .get(GaugeRegistry)
        .get('pdf')
        .process(() => 'ok');
      const collected = await reader.read();
      expect(collected.value('backpressure.requests', { [G]: 'pdf', [RESULT]: 'admitted' })).toBe(
        1,
      );
      expect(collected.metrics.map((m) => m.descriptor.name)).not.toContain(
        'backpressure.request_lease.duration',
      );
    } finally {
      await app.close();
      await provider.shutdown();
    }
  });

  describe('two applications on one meter', () => {
    const app = async (
      gauges: Record<string, { limit: number }>,
      options = {},
      extra: unknown[] = [],
    ) => {
      const built = await Test.createTestingModule({
        imports: [
          BackpressureModule.forRoot({ gauges }),
          BackpressureOpenTelemetryModule.forRoot(options),
          ...(extra as never[]),
        ],
      }).compile();
      await built.init();
      return built;
    };

    it('the second fails its start, naming the cause; with its own meterName both report', async () => {
      const reader = new CollectingReader();
      const provider = new MeterProvider({ readers: [reader] });
      const first = await app({ pdf: { limit: 4 } }, { meterProvider: provider });
      try {
        await expect(app({ pdf: { limit: 9 } }, { meterProvider: provider })).rejects.toThrow(
          /meter "nestjs-backpressure" of this MeterProvider already reports another application's gauges.*own "meterName"/,
        );
        const second = await app(
          { pdf: { limit: 9 } },
          { meterProvider: provider, meterName: 'api-2' },
        );
        try {
          const { resourceMetrics } = await reader.collect();
          const limits = Object.fromEntries(
            resourceMetrics.scopeMetrics.map((scope) => [
              scope.scope.name,
              new Collected(scope.metrics).value('backpressure.limit', { [G]: 'pdf' }),
            ]),
          );
          expect(limits).toEqual({ 'nestjs-backpressure': 4, 'api-2': 9 });
        } finally {
          await second.close();
        }
      } finally {
        await first.close();
      }
      // Closed: the meter is free for the next app.
      const next = await app({ pdf: { limit: 2 } }, { meterProvider: provider });
      await next.close();
      await provider.shutdown();
    });

    it('an app whose start failed after this module started leaves the meter to the next', async () => {
      const reader = new CollectingReader();
      const provider = new MeterProvider({ readers: [reader] });
      class Failing {
        onModuleInit() {
          throw new Error('database unreachable');
        }
      }
      await expect(
        app({ pdf: { limit: 4 } }, { meterProvider: provider }, [
          moduleOf({ providers: [Failing] }),
        ]),
      ).rejects.toThrow('database unreachable');
      const next = await app({ pdf: { limit: 7 } }, { meterProvider: provider });
      try {
        expect((await reader.read()).value('backpressure.limit', { [G]: 'pdf' })).toBe(7);
      } finally {
        await next.close();
        await provider.shutdown();
      }
    });

    it.each([
      ["a later module's onApplicationBootstrap", 'later'],
      ["the root module's provider's onApplicationBootstrap", 'root'],
    ] as const)(
      'an app whose start failed in %s (after this module bootstrapped) leaves the meter to the next',
      async (_where, where) => {
        const reader = new CollectingReader();
        const provider = new MeterProvider({ readers: [reader] });
        class Failing {
          async onApplicationBootstrap() {
            await Promise.resolve();
            throw new Error('cache unreachable');
          }
        }
        const imports = [
          BackpressureModule.forRoot({ gauges: { pdf: { limit: 4 } } }),
          BackpressureOpenTelemetryModule.forRoot({ meterProvider: provider }),
        ];
        const failing = await Test.createTestingModule(
          where === 'root'
            ? { imports, providers: [Failing] }
            : { imports: [...imports, moduleOf({ providers: [Failing] })] },
        ).compile();
        await expect(failing.init()).rejects.toThrow('cache unreachable');
        const next = await app({ pdf: { limit: 7 } }, { meterProvider: provider });
        try {
          expect((await reader.read()).value('backpressure.limit', { [G]: 'pdf' })).toBe(7);
        } finally {
          await next.close();
          await provider.shutdown();
        }
      },
    );

    it('two apps finishing their start at once: exactly one starts, the other fails naming the meter', async () => {
      for (let round = 0; round < 3; round++) {
        const reader = new CollectingReader();
        const provider = new MeterProvider({ readers: [reader] });
        const build = (limit: number) =>
          Test.createTestingModule({
            imports: [
              BackpressureModule.forRoot({ gauges: { pdf: { limit } } }),
              BackpressureOpenTelemetryModule.forRoot({ meterProvider: provider }),
            ],
          }).compile();
        const apps = [await build(4), await build(9)];
        const ordered = round === 1 ? [...apps].reverse() : apps;
        const results = await Promise.allSettled(ordered.map((built) => built.init()));
        const started = results.filter((r) => r.status === 'fulfilled');
        const failed = results.filter((r) => r.status === 'rejected');
        expect([started.length, failed.length]).toEqual([1, 1]);
        expect(String(failed[0]!.reason)).toMatch(
          /meter "nestjs-backpressure" of this MeterProvider already reports another application's gauges/,
        );
        const winner = ordered[results.findIndex((r) => r.status === 'fulfilled')]!;
        const limit = winner === apps[0] ? 4 : 9;
        // The one that started reports its figures (none lost without a word).
        await winner
          .get(GaugeRegistry)
          .get('pdf')
          .process(() => 'ok');
        const collected = await reader.read();
        expect(collected.value('backpressure.limit', { [G]: 'pdf' })).toBe(limit);
        expect(collected.value('backpressure.requests', { [G]: 'pdf', [RESULT]: 'admitted' })).toBe(
          1,
        );
        // Nest 11's close() of an app whose init() failed rejects with that failure; Nest 12's does not.
        for (const built of apps) {
          if (built === winner) await built.close();
          else await built.close().catch(() => undefined);
        }
        // Both closed: the meter is free again.
        const next = await app({ pdf: { limit: 2 } }, { meterProvider: provider });
        expect((await reader.read()).value('backpressure.limit', { [G]: 'pdf' })).toBe(2);
        await next.close();
        await provider.shutdown();
      }
    });

    it('without an SDK (the no-op meter) any number of apps start', async () => {
      const [a, b] = [await app({ pdf: { limit: 1 } }), await app({ pdf: { limit: 1 } })];
      await a.close();
      await b.close();
    });
  });

  it.each([
    [{ histograms: 'no' }, /option "histograms"/],
    [{ meterProvider: {} }, /option "meterProvider"/],
    [{ meterName: ' ' }, /option "meterName"/],
    [{ buckets: [2, 1] }, /option "buckets"/],
    [{ meter: 'x' }, /unknown option "meter"/],
  ])('rejects bad options where they are declared: %p', (options, message) => {
    const call = () => BackpressureOpenTelemetryModule.forRoot(options as never);
    expect(call).toThrow(GaugeConfigError);
    expect(call).toThrow(message);
  });
});
