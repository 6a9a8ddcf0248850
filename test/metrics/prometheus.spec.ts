import 'reflect-metadata';
import { Controller, Get, Header, Inject, Module, Param, Query } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { Registry, register as defaultRegistry } from 'prom-client';
import { BackpressureModule, GaugeConfigError, GaugeRegistry, Limited } from '../../src';
import { BackpressurePrometheusMetrics, BackpressurePrometheusModule } from '../../src/prometheus';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from '../e2e/support/apps';
import { send, type Call } from '../e2e/support/http';
import { Probe } from '../e2e/support/probe';
import { until } from '../support/wait';
import { scrape, Scrape } from './support';
import { REFUSAL_REASONS } from '../../src/metrics/gauge-tallies';

const REGISTRY = Symbol('test prom-client registry');

@Controller()
class WorkController {
  constructor(
    private readonly probe: Probe,
    private readonly gauges: GaugeRegistry,
    @Inject(REGISTRY) private readonly registry: Registry,
  ) {}

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

  /** A gauge named by the client: dynamic. */
  @Get('run')
  run(@Query('name') name: string) {
    return this.gauges.get(name).process(() => 'ran');
  }

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  metrics() {
    return this.registry.metrics();
  }
}

const GAUGES = {
  work: { limit: 1, queue: { size: 1, timeoutMs: 10_000 } },
  brief: { limit: 1, queue: { size: 1, timeoutMs: 50 } },
  fast: { limit: 1 },
};

describe.each(PLATFORMS)('Prometheus metrics scraped over HTTP on %s', (platform: Platform) => {
  let probe: Probe;
  let registry: Registry;
  let running: Running;

  beforeEach(async () => {
    probe = new Probe();
    registry = new Registry();
    const module = moduleOf({
      imports: [
        BackpressureModule.forRoot({ gauges: GAUGES, maxDynamicGauges: 50 }),
        BackpressurePrometheusModule.forRoot({ registry }),
      ],
      controllers: [WorkController],
      providers: [
        { provide: Probe, useValue: probe },
        { provide: REGISTRY, useValue: registry },
      ],
    });
    running = await startApp(platform, module);
  });

  afterEach(async () => {
    probe.openAll();
    await running.close();
  });

  async function arrive(route: string, id: string, expect: 'run' | 'queue'): Promise<Call> {
    const gauge = running.gauge(route);
    const [entered, queued] = [probe.entered.length, gauge.queued];
    const call = send(running.url, `/${route}/${id}`);
    if (expect === 'run') await until(() => probe.entered.length === entered + 1, `${id} runs`);
    else await until(() => gauge.queued === queued + 1, `${id} is queued`);
    return call;
  }

  it('an app whose start fails in a later onApplicationBootstrap leaves the registry to the next app', async () => {
    const shared = new Registry();
    class Failing {
      async onApplicationBootstrap() {
        await Promise.resolve();
        throw new Error('cache unreachable');
      }
    }
    const app = (providers: Array<new () => unknown>) =>
      moduleOf({
        imports: [
          BackpressureModule.forRoot({ gauges: { pdf: { limit: 2 } } }),
          BackpressurePrometheusModule.forRoot({ registry: shared }),
        ],
        controllers: [WorkController],
        providers: [
          { provide: Probe, useValue: probe },
          { provide: REGISTRY, useValue: shared },
          ...providers,
        ],
      });
    await expect(startApp(platform, app([Failing]))).rejects.toThrow('cache unreachable');
    const next = await startApp(platform, app([]));
    try {
      const reply = await send(next.url, '/metrics').reply;
      expect(reply.status).toBe(200);
      expect(new Scrape(reply.body).value('backpressure_limit', { gauge: 'pdf' })).toBe(2);
    } finally {
      await next.close();
    }
    expect(shared.getMetricsAsArray()).toEqual([]);
  });

  it('reports every configured gauge at zero before any request', async () => {
    const metrics = await scrape(running.url);
    for (const gauge of ['work', 'brief', 'fast']) {
      expect(metrics.value('backpressure_in_flight', { gauge })).toBe(0);
      expect(metrics.value('backpressure_limit', { gauge })).toBe(1);
      expect(metrics.value('backpressure_queued', { gauge })).toBe(0);
      expect(metrics.value('backpressure_admitted_total', { gauge })).toBe(0);
      for (const reason of REFUSAL_REASONS) {
        expect(metrics.value('backpressure_refused_total', { gauge, reason })).toBe(0);
      }
      expect(
        metrics.value('backpressure_held_seconds_count', { gauge, outcome: 'succeeded' }),
      ).toBe(0);
    }
    expect(metrics.labelValues('gauge')).toEqual(new Set(['work', 'brief', 'fast']));
    expect(metrics.text).toContain('# TYPE backpressure_held_seconds histogram');
    expect(metrics.text).toContain('# TYPE backpressure_admitted_total counter');
    expect(metrics.text).toContain('# TYPE backpressure_in_flight gauge');
  });

  it('counts admitted, queued, refused (full, queue-full, timeout, aborted) and their durations exactly', async () => {
    // work: a runs, b waits, c finds the queue full.
    const a = await arrive('work', 'a', 'run');
    const b = await arrive('work', 'b', 'queue');
    const c = await send(running.url, '/work/c').reply;
    expect(c.status).toBe(429);
    // fast (no queue): d runs, e is refused at once.
    const d = await arrive('fast', 'd', 'run');
    expect((await send(running.url, '/fast/e').reply).status).toBe(429);
    // brief: f runs, g waits 50 ms and times out.
    const f = await arrive('brief', 'f', 'run');
    expect((await send(running.url, '/brief/g').reply).status).toBe(429);

    let metrics = await scrape(running.url);
    expect(metrics.value('backpressure_in_flight', { gauge: 'work' })).toBe(1);
    expect(metrics.value('backpressure_queued', { gauge: 'work' })).toBe(1);
    expect(metrics.value('backpressure_admitted_total', { gauge: 'work' })).toBe(1);
    expect(
      metrics.value('backpressure_refused_total', { gauge: 'work', reason: 'queue-full' }),
    ).toBe(1);
    expect(metrics.value('backpressure_refused_total', { gauge: 'fast', reason: 'full' })).toBe(1);
    expect(metrics.value('backpressure_refused_total', { gauge: 'brief', reason: 'timeout' })).toBe(
      1,
    );
    const timedOut = { gauge: 'brief', result: 'timeout' };
    expect(metrics.value('backpressure_queue_wait_seconds_count', timedOut)).toBe(1);
    expect(metrics.value('backpressure_queue_wait_seconds_sum', timedOut)).toBeCloseTo(0.05, 6);
    expect(
      metrics.value('backpressure_queue_wait_seconds_bucket', { ...timedOut, le: '0.025' }),
    ).toBe(0);
    expect(
      metrics.value('backpressure_queue_wait_seconds_bucket', { ...timedOut, le: '0.05' }),
    ).toBe(1);
    expect(
      metrics.value('backpressure_queue_wait_seconds_bucket', { ...timedOut, le: '+Inf' }),
    ).toBe(1);

    // The waiter gets the slot when a ends; then b fails (a server error: outcome failed).
    probe.pass('a');
    await until(() => probe.entered.includes('b'), 'b runs');
    probe.fail('b', new Error('boom'));
    expect((await a.reply).status).toBe(200);
    expect((await b.reply).status).toBe(500);
    // A waiter whose client leaves is counted as aborted.
    const h = await arrive('work', 'h', 'run');
    const gone = await arrive('work', 'i', 'queue');
    gone.abort();
    const work = running.gauge('work');
    await until(() => work.aborted === 1 && work.queued === 0, 'i leaves the queue');
    for (const id of ['d', 'f', 'h']) probe.pass(id);
    for (const call of [d, f, h]) expect((await call.reply).status).toBe(200);

    metrics = await scrape(running.url);
    expect(metrics.value('backpressure_in_flight', { gauge: 'work' })).toBe(0);
    expect(metrics.value('backpressure_queued', { gauge: 'work' })).toBe(0);
    expect(metrics.value('backpressure_admitted_total', { gauge: 'work' })).toBe(3); // a, b, h
    expect(metrics.value('backpressure_refused_total', { gauge: 'work', reason: 'aborted' })).toBe(
      1,
    );
    const held = (outcome: string) =>
      metrics.value('backpressure_held_seconds_count', { gauge: 'work', outcome });
    expect([held('succeeded'), held('failed'), held('dropped'), held('ignored')]).toEqual([
      2, 1, 0, 0,
    ]);
    const wait = (result: string) =>
      metrics.value('backpressure_queue_wait_seconds_count', { gauge: 'work', result });
    expect([wait('admitted'), wait('timeout'), wait('aborted')]).toEqual([1, 0, 1]);
    expect(
      metrics.value('backpressure_held_seconds_count', { gauge: 'fast', outcome: 'succeeded' }),
    ).toBe(1);
    expect(
      metrics.value('backpressure_held_seconds_count', { gauge: 'brief', outcome: 'succeeded' }),
    ).toBe(1);

    // The counters are the gauges' own figures.
    for (const name of ['work', 'brief', 'fast']) {
      const gauge = running.gauge(name);
      const refused = (reason: string) =>
        metrics.value('backpressure_refused_total', { gauge: name, reason });
      expect(metrics.value('backpressure_admitted_total', { gauge: name })).toBe(gauge.admitted);
      expect(refused('full') + refused('queue-full') + refused('unavailable')).toBe(gauge.rejected);
      expect(refused('timeout')).toBe(gauge.timedOut);
      expect(refused('aborted')).toBe(gauge.aborted);
    }
  });

  it('keeps the metric set bounded: 1,000 client-chosen gauge names are one "(dynamic)" label', async () => {
    const names = Array.from({ length: 1000 }, (_, i) => `tenant-${i}`);
    const run = async (batch: string[]) => {
      const replies = await Promise.all(
        batch.map((n) => send(running.url, `/run?name=${n}`).reply),
      );
      for (const reply of replies) expect(reply.status).toBe(200);
    };
    await run(names.slice(0, 10));
    const before = await scrape(running.url);
    for (let i = 10; i < names.length; i += 50) await run(names.slice(i, i + 50));
    const after = await scrape(running.url);

    expect(after.labelValues('gauge')).toEqual(new Set(['work', 'brief', 'fast', '(dynamic)']));
    expect([...after.samples.keys()]).toEqual([...before.samples.keys()]);
    const dynamic = { gauge: '(dynamic)' };
    expect(after.value('backpressure_admitted_total', dynamic)).toBe(1000);
    expect(
      after.value('backpressure_held_seconds_count', { ...dynamic, outcome: 'succeeded' }),
    ).toBe(1000);
    expect(after.value('backpressure_in_flight', dynamic)).toBe(0);
    // The dynamic gauges that exist now (at most maxDynamicGauges), summed.
    const live = running.app.get(GaugeRegistry).list('dynamic');
    expect(live.length).toBeLessThanOrEqual(50);
    expect(after.value('backpressure_limit', dynamic)).toBe(live.length * 10);
  });
});

describe('BackpressurePrometheusModule', () => {
  async function compile(imports: unknown[]) {
    const moduleRef = await Test.createTestingModule({ imports: imports as never[] }).compile();
    await moduleRef.init();
    return moduleRef;
  }

  it("uses prom-client's default registry unless given one, and leaves it at shutdown", async () => {
    const app = await compile([
      BackpressureModule.forRoot({ gauges: { pdf: { limit: 4 } } }),
      BackpressurePrometheusModule.forRoot(),
    ]);
    try {
      const metrics = new Scrape(await defaultRegistry.metrics());
      expect(metrics.value('backpressure_limit', { gauge: 'pdf' })).toBe(4);
    } finally {
      await app.close();
    }
    expect(defaultRegistry.getSingleMetric('backpressure_limit')).toBeUndefined();
    expect(await defaultRegistry.metrics()).not.toContain('backpressure_');
  });

  it('takes a prefix and buckets, and exposes the names it registered', async () => {
    const registry = new Registry();
    const app = await compile([
      BackpressureModule.forRoot({ gauges: { pdf: { limit: 4 } } }),
      BackpressurePrometheusModule.forRoot({ registry, prefix: 'api_', buckets: [0.1, 1] }),
    ]);
    try {
      const gauge = app.get(GaugeRegistry).get('pdf');
      const release = await gauge.acquire();
      release();
      const { names } = app.get(BackpressurePrometheusMetrics);
      expect(names).toMatchObject({ admitted: 'api_admitted_total', held: 'api_held_seconds' });
      const metrics = new Scrape(await registry.metrics());
      expect(metrics.value('api_admitted_total', { gauge: 'pdf' })).toBe(1);
      const buckets = [...metrics.samples.keys()].filter((k) =>
        /^api_held_seconds_bucket\{gauge="pdf",le="[^"]+",outcome="succeeded"\}$/.test(k),
      );
      expect(metrics.value('api_held_seconds_count', { gauge: 'pdf', outcome: 'succeeded' })).toBe(
        1,
      );
      expect(buckets.map((k) => /le="([^"]+)"/.exec(k)?.[1])).toEqual(['0.1', '1', '+Inf']);
    } finally {
      await app.close();
    }
  });

  it('sees gauges created after it started (pinned while the app starts, dynamic after)', async () => {
    const registry = new Registry();
    const app = await compile([
      BackpressureModule.forRoot(),
      BackpressurePrometheusModule.forRoot({ registry }),
    ]);
    try {
      const gauges = app.get(GaugeRegistry);
      await gauges.get('late').process(() => 'ok');
      const metrics = new Scrape(await registry.metrics());
      expect(metrics.value('backpressure_admitted_total', { gauge: '(dynamic)' })).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('refuses a second set of the same metrics in one registry, naming the clash', async () => {
    const registry = new Registry();
    const first = await compile([
      BackpressureModule.forRoot(),
      BackpressurePrometheusModule.forRoot({ registry }),
    ]);
    try {
      await expect(
        compile([BackpressureModule.forRoot(), BackpressurePrometheusModule.forRoot({ registry })]),
      ).rejects.toThrow(/"backpressure_in_flight" is already registered/);
    } finally {
      await first.close();
    }
  });

  it.each([
    ['a provider whose onModuleInit throws (after the metrics registered)', 'init'],
    ['a bad gauge config (from a factory)', 'config'],
    ["a later module's onApplicationBootstrap throws (after this module's)", 'bootstrap'],
    ["the root module's provider's onApplicationBootstrap throws", 'root'],
    ["the root module's own onApplicationBootstrap throws", 'root-class'],
  ] as const)(
    'an app whose start failed (%s) leaves the registry to the next app',
    async (_what, failure) => {
      const registry = new Registry();
      class Failing {
        onModuleInit() {
          if (failure === 'init') throw new Error('database unreachable');
        }
        async onApplicationBootstrap() {
          await Promise.resolve();
          if (failure === 'bootstrap' || failure === 'root') throw new Error('cache unreachable');
        }
      }
      const root =
        failure === 'config'
          ? BackpressureModule.forRootAsync({
              useFactory: () => ({ gauges: { pdf: { limit: -1 } } }),
            })
          : BackpressureModule.forRoot({ gauges: { pdf: { limit: 1 } } });
      const imports = [root, BackpressurePrometheusModule.forRoot({ registry })];
      @Module({ imports })
      class FailingRoot {
        onApplicationBootstrap() {
          throw new Error('queue unreachable');
        }
      }
      const start = async () => {
        if (failure === 'root-class') {
          // The root module's own hook, which Nest calls after every other one.
          await NestFactory.createApplicationContext(FailingRoot, {
            logger: false,
            abortOnError: false,
          });
          return;
        }
        const builder =
          failure === 'root'
            ? Test.createTestingModule({ imports, providers: [Failing] })
            : Test.createTestingModule({
                imports: [...imports, moduleOf({ providers: [Failing] })],
              });
        await (await builder.compile()).init();
      };
      await expect(start()).rejects.toThrow(
        failure === 'config' ? GaugeConfigError : /unreachable/,
      );
      // Nest calls no shutdown hook after a failed init: the next app must start all the same.
      const next = await compile([
        BackpressureModule.forRoot({ gauges: { csv: { limit: 3 } } }),
        BackpressurePrometheusModule.forRoot({ registry }),
      ]);
      try {
        await next
          .get(GaugeRegistry)
          .get('csv')
          .process(() => 'ok');
        const metrics = new Scrape(await registry.metrics());
        expect(metrics.value('backpressure_limit', { gauge: 'csv' })).toBe(3);
        expect(metrics.value('backpressure_admitted_total', { gauge: 'csv' })).toBe(1);
        // Only the new app's gauges: the failed one's figures are gone with it.
        expect(() => metrics.value('backpressure_limit', { gauge: 'pdf' })).toThrow(/no sample/);
      } finally {
        await next.close();
      }
      expect(registry.getMetricsAsArray()).toEqual([]);
    },
  );

  it('two apps finishing their start at once (Promise.all of init): exactly one starts', async () => {
    for (let round = 0; round < 2; round++) {
      const registry = new Registry();
      const build = (limit: number) =>
        Test.createTestingModule({
          imports: [
            BackpressureModule.forRoot({ gauges: { pdf: { limit } } }),
            BackpressurePrometheusModule.forRoot({ registry }),
          ],
        }).compile();
      const apps = [await build(4), await build(9)];
      const ordered = round === 1 ? [...apps].reverse() : apps;
      const results = await Promise.allSettled(ordered.map((built) => built.init()));
      expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      const failed = results.find((r) => r.status === 'rejected')!;
      expect(String(failed.reason)).toMatch(/"backpressure_in_flight" is already registered/);
      const winner = ordered[results.findIndex((r) => r.status === 'fulfilled')]!;
      const metrics = new Scrape(await registry.metrics());
      expect(metrics.value('backpressure_limit', { gauge: 'pdf' })).toBe(
        winner === apps[0] ? 4 : 9,
      );
      // Nest 11's close() of an app whose init() failed rejects with that failure; Nest 12's does not.
      for (const built of apps) {
        if (built === winner) await built.close();
        else await built.close().catch(() => undefined);
      }
      expect(registry.getMetricsAsArray()).toEqual([]);
    }
  });

  it('two apps starting at once on one registry: the one that finishes second fails', async () => {
    const registry = new Registry();
    const build = async () =>
      Test.createTestingModule({
        imports: [BackpressureModule.forRoot(), BackpressurePrometheusModule.forRoot({ registry })],
      }).compile();
    const [first, second] = [await build(), await build()];
    const [a, b] = [
      first.get(BackpressurePrometheusMetrics),
      second.get(BackpressurePrometheusMetrics),
    ];
    a.onModuleInit();
    b.onModuleInit(); // takes over from a, whose bootstrap has not finished
    b.onApplicationBootstrap();
    expect(() => a.onApplicationBootstrap()).toThrow(
      /"backpressure_in_flight" is already registered/,
    );
    expect(registry.getSingleMetric('backpressure_in_flight')).toBeDefined(); // b's, untouched
    await first.close();
    await second.close();
    expect(registry.getMetricsAsArray()).toEqual([]);
  });

  it.each([
    [{ prefix: 'bad-prefix' }, /option "prefix"/],
    [{ prefix: 3 }, /option "prefix"/],
    [{ buckets: [] }, /option "buckets"/],
    [{ buckets: [1, 0.5] }, /option "buckets"/],
    [{ buckets: [0, 1] }, /option "buckets"/],
    [{ registry: {} }, /option "registry" must be a prom-client Registry/],
    [{ regsitry: new Registry() }, /unknown option "regsitry"/],
    ['backpressure_', /options must be an object/],
  ])('rejects bad options where they are declared: %p', (options, message) => {
    const call = () => BackpressurePrometheusModule.forRoot(options as never);
    expect(call).toThrow(GaugeConfigError);
    expect(call).toThrow(message);
  });
});
