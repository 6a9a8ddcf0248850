import 'reflect-metadata';
import { Controller, Get, Injectable, Module, type DynamicModule } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  BACKPRESSURE_OPTIONS,
  BackpressureModule,
  GaugeConfigError,
  GaugeExhaustedError,
  GaugeRegistry,
  getGaugeToken,
  InjectGauge,
  Limited,
  type BackpressureModuleOptions,
  type Gauge,
} from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send } from './support/http';
import { Probe } from './support/probe';
import { until } from '../support/wait';

@Injectable()
class ReportService {
  constructor(@InjectGauge('reports') readonly gauge: Gauge) {}
}

@Controller('reports')
class ReportController {
  constructor(private readonly probe: Probe) {}

  @Get()
  @Limited('reports')
  async report() {
    await this.probe.enter('report');
    return 'report';
  }
}

/** Stands in for an app's config module (e.g. @nestjs/config), which forRootAsync imports. */
@Injectable()
class AppConfig {
  readonly reportLimit = 1;
  readonly defaultLimit = 3;
}

/** An options factory for `useClass` / `useExisting`. */
@Injectable()
class BackpressureConfig {
  constructor(private readonly config: AppConfig) {}
  createBackpressureOptions(): BackpressureModuleOptions {
    return {
      defaultLimit: this.config.defaultLimit,
      gauges: { reports: { limit: this.config.reportLimit } },
    };
  }
}

@Module({ providers: [AppConfig, BackpressureConfig], exports: [AppConfig, BackpressureConfig] })
class ConfigModule {}

const ASYNC_VARIANTS: Array<[string, () => DynamicModule]> = [
  [
    'useFactory (imports + inject)',
    () =>
      BackpressureModule.forRootAsync({
        imports: [ConfigModule],
        inject: [AppConfig],
        useFactory: async (config: AppConfig) => ({
          defaultLimit: config.defaultLimit,
          gauges: { reports: { limit: config.reportLimit } },
        }),
      }),
  ],
  [
    'useClass',
    () =>
      BackpressureModule.forRootAsync({ imports: [ConfigModule], useClass: BackpressureConfig }),
  ],
  [
    'useExisting',
    () =>
      BackpressureModule.forRootAsync({ imports: [ConfigModule], useExisting: BackpressureConfig }),
  ],
];

describe.each(PLATFORMS)('gauges shared through DI on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running;

  async function start(backpressure: DynamicModule): Promise<Running> {
    probe = new Probe();
    const module = moduleOf({
      imports: [backpressure],
      controllers: [ReportController],
      providers: [ReportService, { provide: Probe, useValue: probe }],
    });
    return (running = await startApp(platform, module));
  }

  afterEach(async () => {
    probe.openAll();
    await running.close();
  });

  it('@InjectGauge injects the gauge the registry returns and @Limited uses', async () => {
    const app = await start(BackpressureModule.forRoot({ gauges: { reports: { limit: 1 } } }));
    const injected = app.app.get(ReportService).gauge;
    expect(injected).toBe(app.app.get(GaugeRegistry).get('reports'));

    const call = send(app.url, '/reports');
    await until(() => injected.inFlight === 1, 'the HTTP request holds the injected gauge');
    await expect(injected.process(() => 'work')).rejects.toBeInstanceOf(GaugeExhaustedError);
    probe.pass('report');
    expect((await call.reply).status).toBe(200);
    expect(await injected.process(() => 'work')).toBe('work');
  });

  it.each(ASYNC_VARIANTS)('forRootAsync with %s configures the gauges', async (_how, module) => {
    const app = await start(module());
    const registry = app.app.get(GaugeRegistry);
    expect(registry.get('reports').limit).toBe(1);
    expect(registry.get('anything-else').limit).toBe(3);
    expect(app.app.get(ReportService).gauge).toBe(registry.get('reports'));

    const call = send(app.url, '/reports');
    await until(() => probe.entered.length === 1, 'the handler runs');
    expect((await send(app.url, '/reports').reply).status).toBe(429);
    probe.pass('report');
    expect((await call.reply).status).toBe(200);
  });
});

describe('forRootAsync validation', () => {
  it('rejects bad options from the factory at compile time, naming gauge and option', async () => {
    const compiling = Test.createTestingModule({
      imports: [
        BackpressureModule.forRootAsync({
          useFactory: () => ({ gauges: { reports: { limit: 0 } } }),
        }),
      ],
    }).compile();
    await expect(compiling).rejects.toThrow(/Gauge "reports": option "limit"/);
  });

  it("provides the factory's own, validated object as BACKPRESSURE_OPTIONS", async () => {
    const options: BackpressureModuleOptions = { defaultLimit: 4, maxDynamicGauges: 5 };
    const app = await Test.createTestingModule({
      imports: [BackpressureModule.forRootAsync({ useFactory: async () => options })],
    }).compile();
    try {
      expect(app.get(BACKPRESSURE_OPTIONS)).toBe(options);
      expect(app.get(GaugeRegistry).get('any').limit).toBe(4);
    } finally {
      await app.close();
    }
  });

  it.each([true, false, undefined])('honours isGlobal: %p', async (isGlobal) => {
    const module = BackpressureModule.forRootAsync({ useFactory: () => ({}), isGlobal });
    expect(module.global).toBe(isGlobal ?? true);
    expect(BackpressureModule.forRoot({ isGlobal }).global).toBe(isGlobal ?? true);
  });
});

describe('module definition', () => {
  it("provides forRoot's configured gauges as plain tokens, and @InjectGauge names lazily", async () => {
    const app = await Test.createTestingModule({
      imports: [BackpressureModule.forRoot({ gauges: { reports: { limit: 2 } } })],
    }).compile();
    try {
      const registry = app.get(GaugeRegistry);
      expect(app.get(getGaugeToken('reports'))).toBe(registry.get('reports'));
      // ReportService (@InjectGauge('reports')) is not part of this app: nothing else was built.
      expect(registry.list().map((gauge) => gauge.name)).toEqual(['reports']);
    } finally {
      await app.close();
    }
  });

  it('one registry per app, closed once at shutdown', async () => {
    const closes: string[] = [];
    const store = {
      createGauge: (options: { name: string; limit: number }) =>
        Object.assign(new (class {})(), {
          ...options,
          close: () => void closes.push(options.name),
        }) as unknown as Gauge,
      close: () => void closes.push('store'),
    };
    const app = await Test.createTestingModule({
      imports: [
        BackpressureModule.forRoot({ store: store as never, gauges: { a: {} } }),
        BackpressureModule.forFeature({ gauges: { b: { limit: 3 } } }),
      ],
    }).compile();
    await app.init();
    expect(
      app
        .get(GaugeRegistry)
        .list()
        .map((gauge) => gauge.name),
    ).toEqual(['a', 'b']);
    await app.close();
    expect(closes).toEqual(['a', 'b', 'store']);
  });

  it.each<[string, () => unknown, RegExp]>([
    [
      'forRoot errorFilter "no"',
      () => BackpressureModule.forRoot({ errorFilter: 'no' as never }),
      /^BackpressureModule: option "errorFilter" must be a boolean, got "no"$/,
    ],
    [
      'forRootAsync errorFilter 0',
      () => BackpressureModule.forRootAsync({ useFactory: () => ({}), errorFilter: 0 as never }),
      /^BackpressureModule\.forRootAsync\(\): option "errorFilter" must be a boolean, got 0$/,
    ],
  ])('%s is refused', (_what, declare, message) => {
    expect(declare).toThrow(GaugeConfigError);
    expect(declare).toThrow(message);
  });

  it('errorFilter from a factory is refused, saying where it goes', async () => {
    const compiling = Test.createTestingModule({
      imports: [
        BackpressureModule.forRootAsync({ useFactory: () => ({ errorFilter: false }) as never }),
      ],
    }).compile();
    await expect(compiling).rejects.toThrow(
      /option "errorFilter" \(got false\) is not a gauge option: pass it to forRoot\(\{ errorFilter \}\) or forRootAsync\(\{ errorFilter, useFactory \}\) itself/,
    );
  });
});
