import 'reflect-metadata';
import { Controller, Get, Injectable, Module, type DynamicModule, type Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  aimd,
  BackpressureModule,
  GaugeConfigError,
  GaugeRegistry,
  gradient2,
  InjectGauge,
  Limited,
  getGaugeToken,
  vegas,
  type Gauge,
  type GaugeConfig,
} from '../../src';
import { PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send } from './support/http';
import { Probe } from './support/probe';
import { until } from '../support/wait';

/*
 * Two feature modules, each configuring and injecting its own gauges through
 * BackpressureModule.forFeature(), under a root that is not global: every gauge lands in the
 * application's one registry, and each module sees the registry and its tokens.
 */

@Injectable()
class ReportsService {
  constructor(
    @InjectGauge('reports') readonly gauge: Gauge,
    readonly registry: GaugeRegistry,
  ) {}
}

@Controller('reports')
class ReportsController {
  constructor(private readonly probe: Probe) {}

  @Get()
  @Limited('reports')
  async list() {
    await this.probe.enter('reports');
    return 'reports';
  }
}

@Injectable()
class PdfService {
  constructor(
    @InjectGauge('pdf') readonly gauge: Gauge,
    private readonly probe: Probe,
  ) {}

  render(): Promise<string> {
    return this.gauge.process(async () => {
      await this.probe.enter('pdf');
      return 'pdf';
    });
  }
}

@Controller('pdf')
class PdfController {
  constructor(private readonly pdf: PdfService) {}

  @Get()
  render() {
    return this.pdf.render();
  }
}

/** Only names a gauge configured by another feature, to inject it. */
@Injectable()
class AuditService {
  constructor(@InjectGauge('reports') readonly reports: Gauge) {}
}

function featureModule(name: string, metadata: Parameters<typeof Module>[0]): Type {
  const module = class {};
  Object.defineProperty(module, 'name', { value: name });
  Module(metadata)(module);
  return module;
}

type FeatureGauges = NonNullable<Parameters<typeof BackpressureModule.forFeature>[0]>['gauges'];

/** The feature modules of one test app (fresh classes, so no app shares them). */
function features(probe: Probe, pdfGauges: FeatureGauges = { pdf: { limit: 2 } }) {
  const ReportsModule = featureModule('ReportsModule', {
    imports: [BackpressureModule.forFeature({ gauges: { reports: { limit: 1 } } })],
    controllers: [ReportsController],
    providers: [ReportsService, { provide: Probe, useValue: probe }],
  });
  const PdfModule = featureModule('PdfModule', {
    imports: [BackpressureModule.forFeature({ gauges: pdfGauges })],
    controllers: [PdfController],
    providers: [PdfService, { provide: Probe, useValue: probe }],
  });
  const AuditModule = featureModule('AuditModule', {
    imports: [BackpressureModule.forFeature({ gauges: ['reports'] })],
    providers: [AuditService],
  });
  return { ReportsModule, PdfModule, AuditModule };
}

function rootOf(backpressure: DynamicModule, ...imports: Type[]): Type {
  return featureModule('AppModule', { imports: [backpressure, ...imports] });
}

describe.each(PLATFORMS)('BackpressureModule.forFeature() on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running | undefined;

  beforeEach(() => (probe = new Probe()));

  afterEach(async () => {
    probe.openAll();
    await running?.close();
    running = undefined;
  });

  it('two feature modules configure and inject their own gauges under a non-global root', async () => {
    const { ReportsModule, PdfModule, AuditModule } = features(probe);
    const root = BackpressureModule.forRoot({ isGlobal: false, defaultLimit: 5 });
    expect(root.global).toBe(false);
    const app = (running = await startApp(
      platform,
      rootOf(root, ReportsModule, PdfModule, AuditModule),
    ));
    const registry = app.app.get(GaugeRegistry);
    const reports = app.app.select(ReportsModule).get(ReportsService);
    const pdf = app.app.select(PdfModule).get(PdfService);

    // One registry, seen from each module; each injected gauge is the registry's.
    expect(reports.registry).toBe(registry);
    expect(reports.gauge).toBe(registry.get('reports'));
    expect(pdf.gauge).toBe(registry.get('pdf'));
    expect(app.app.select(AuditModule).get(AuditService).reports).toBe(reports.gauge);
    expect(app.app.select(PdfModule).get(getGaugeToken('pdf'))).toBe(pdf.gauge);
    expect([reports.gauge.limit, pdf.gauge.limit, registry.get('other').limit]).toEqual([1, 2, 5]);

    // @Limited in a feature module shares the injected gauge's limit.
    const first = send(app.url, '/reports');
    await until(() => probe.entered.length === 1, 'the report runs');
    expect((await send(app.url, '/reports').reply).status).toBe(429);
    expect(reports.gauge.inFlight).toBe(1);

    // process() in the other feature: 429 from the library's filter, no filter registered.
    const renders = [send(app.url, '/pdf'), send(app.url, '/pdf')];
    await until(() => probe.entered.length === 3, 'two renders run');
    const refused = await send(app.url, '/pdf').reply;
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');

    probe.passAll();
    expect((await first.reply).status).toBe(200);
    for (const render of renders) expect((await render.reply).body).toBe('pdf');
  });

  it('a feature gauge without a limit gets the root default limit (forRootAsync too)', async () => {
    const { ReportsModule, PdfModule, AuditModule } = features(probe, {
      pdf: { queue: { size: 2, timeoutMs: 500 } },
    });
    const root = BackpressureModule.forRootAsync({ useFactory: async () => ({ defaultLimit: 3 }) });
    const app = (running = await startApp(
      platform,
      rootOf(root, ReportsModule, PdfModule, AuditModule),
    ));
    const pdf = app.gauge('pdf');
    expect(pdf).toMatchObject({ limit: 3, mayWait: true });
    expect(app.gauge('reports').limit).toBe(1);
  });
});

describe('forFeature() merging', () => {
  const compile = (...imports: Array<Type | DynamicModule>) =>
    Test.createTestingModule({ imports }).compile();

  async function failure(compiling: Promise<unknown>): Promise<Error> {
    const error = await compiling.then(
      () => new Error('compiled'),
      (caught: unknown) => caught as Error,
    );
    expect(error).toBeInstanceOf(GaugeConfigError);
    return error;
  }

  it('a name configured in two features with different options fails, naming both modules', async () => {
    const A = featureModule('BillingModule', {
      imports: [BackpressureModule.forFeature({ gauges: { pdf: { limit: 2 } } })],
    });
    const B = featureModule('InvoicesModule', {
      imports: [BackpressureModule.forFeature({ gauges: { pdf: { limit: 3 } } })],
    });
    const error = await failure(compile(BackpressureModule.forRoot(), A, B));
    expect(error.message).toBe(
      'Gauge "pdf" is configured twice with different options: {"limit":2} in ' +
        'BackpressureModule.forFeature() in BillingModule, and {"limit":3} in ' +
        'BackpressureModule.forFeature() in InvoicesModule. Configure it in one place ' +
        '(the others can list it by name: forFeature({ gauges: ["pdf"] }))',
    );
  });

  it('forRoot and a feature disagreeing name forRoot and the module', async () => {
    const A = featureModule('BillingModule', {
      imports: [
        BackpressureModule.forFeature({ gauges: { pdf: { queue: { size: 1, timeoutMs: 5 } } } }),
      ],
    });
    const error = await failure(
      compile(BackpressureModule.forRoot({ gauges: { pdf: { limit: 2 } } }), A),
    );
    expect(error.message).toMatch(
      /^Gauge "pdf" is configured twice with different options: \{"limit":2\} in BackpressureModule\.forRoot\(\), and \{"queue":\{"size":1,"timeoutMs":5\}\} in BackpressureModule\.forFeature\(\) in BillingModule\./,
    );
  });

  it('the same options in two places, or a name only listed, are fine', async () => {
    const A = featureModule('BillingModule', {
      imports: [BackpressureModule.forFeature({ gauges: { pdf: { limit: 2 } } })],
    });
    const B = featureModule('InvoicesModule', {
      imports: [BackpressureModule.forFeature({ gauges: { pdf: { limit: 2 }, audit: {} } })],
    });
    const C = featureModule('ListsOnlyModule', {
      imports: [BackpressureModule.forFeature({ gauges: ['pdf', 'audit'] })],
    });
    const app = await compile(
      BackpressureModule.forRootAsync({
        useFactory: () => ({ gauges: { audit: { limit: 7 } } }),
      }),
      A,
      B,
      C,
    );
    try {
      const registry = app.get(GaugeRegistry);
      expect(registry.get('pdf').limit).toBe(2);
      expect(registry.get('audit').limit).toBe(7);
    } finally {
      await app.close();
    }
  });

  it.each<[string, () => GaugeConfig, () => GaugeConfig]>([
    [
      'adaptive limits with different bounds',
      () => ({ limit: gradient2({ max: 30 }) }),
      () => ({ limit: gradient2({ max: 300 }) }),
    ],
    ['two adaptive algorithms', () => ({ limit: vegas() }), () => ({ limit: aimd() })],
    [
      'different classifiers',
      () => ({ limit: 2, classify: () => 'failed' as const }),
      () => ({ limit: 2, classify: () => 'ignored' as const }),
    ],
  ])('%s in two places fail (functions are no longer dropped)', async (_case, a, b) => {
    const A = featureModule('BillingModule', {
      imports: [BackpressureModule.forFeature({ gauges: { pdf: a() } })],
    });
    const error = await failure(compile(BackpressureModule.forRoot({ gauges: { pdf: b() } }), A));
    expect(error.message).toMatch(/^Gauge "pdf" is configured twice with different options/);
  });

  it('the same adaptive limit built twice, or one classifier, in two places is fine', async () => {
    const classify = () => 'failed' as const;
    const A = featureModule('BillingModule', {
      imports: [
        BackpressureModule.forFeature({
          gauges: { pdf: { limit: gradient2({ max: 30 }), classify } },
        }),
      ],
    });
    const app = await compile(
      BackpressureModule.forRoot({ gauges: { pdf: { limit: gradient2({ max: 30 }), classify } } }),
      A,
    );
    await app.close();
  });

  it('a conflict through forRootAsync names forRootAsync', async () => {
    const A = featureModule('BillingModule', {
      imports: [BackpressureModule.forFeature({ gauges: { pdf: { limit: 2 } } })],
    });
    const root = BackpressureModule.forRootAsync({
      useFactory: () => ({ gauges: { pdf: { limit: 4 } } }),
    });
    const error = await failure(compile(root, A));
    expect(error.message).toMatch(/\{"limit":4\} in BackpressureModule\.forRootAsync\(\), and/);
  });
});

describe('forFeature() needs a root', () => {
  it('without forRoot, compile() fails saying the registry of forRoot() is missing', async () => {
    const compiling = Test.createTestingModule({
      imports: [BackpressureModule.forFeature({ gauges: ['pdf'] })],
    }).compile();
    await expect(compiling).rejects.toThrow(/GaugeRegistry of BackpressureModule\.forRoot\(\)/);
  });
});

describe('forFeature() options are checked where declared', () => {
  it.each<[string, unknown, RegExp]>([
    ['a string', 'pdf', /^BackpressureModule\.forFeature\(\) takes \{ gauges \}: .*got "pdf"$/],
    [
      'a typo',
      { gaugs: {} },
      /^BackpressureModule\.forFeature\(\): unknown option "gaugs" \(known: gauges\)$/,
    ],
    [
      'gauges: a string',
      { gauges: 'pdf' },
      /option "gauges" must be an array of gauge names or an object .*got "pdf"$/,
    ],
    [
      'a blank name',
      { gauges: [' '] },
      /forFeature\(\): option "gauges": a gauge name must be a non-empty string, got " "$/,
    ],
    [
      'a bad limit',
      { gauges: { pdf: { limit: 0 } } },
      /^Gauge "pdf": option "limit" must be an integer from 1/,
    ],
    [
      'an unknown gauge option',
      { gauges: { pdf: { limt: 1 } } },
      /^Gauge "pdf": unknown option "limt"/,
    ],
    [
      'a bad store',
      { gauges: { pdf: { store: 'redis://x' } } },
      /^Gauge "pdf": option "store" must be a GaugeStore/,
    ],
  ])('%s', (_what, options, message) => {
    expect(() => BackpressureModule.forFeature(options as never)).toThrow(GaugeConfigError);
    expect(() => BackpressureModule.forFeature(options as never)).toThrow(message);
  });

  it('forFeature() and forFeature({}) only bring GaugeRegistry', () => {
    for (const module of [BackpressureModule.forFeature(), BackpressureModule.forFeature({})]) {
      expect(module.exports).toEqual([GaugeRegistry]);
    }
  });
});

/** Injected only in the first app below: the second must never build its gauge. */
@Injectable()
class OnlyInFirstApp {
  constructor(@InjectGauge('only-in-the-first-app') readonly gauge: Gauge) {}
}

describe('@InjectGauge names are per application', () => {
  it("an application does not build (nor report) another application's injected gauges", async () => {
    const first = await Test.createTestingModule({
      imports: [BackpressureModule.forRoot()],
      providers: [OnlyInFirstApp],
    }).compile();
    const second = await Test.createTestingModule({
      imports: [BackpressureModule.forRoot({ gauges: { api: {} }, unknownGauges: 'error' })],
    }).compile();
    try {
      expect(first.get(GaugeRegistry).has('only-in-the-first-app')).toBe(true);
      expect(first.get(OnlyInFirstApp).gauge).toBe(
        first.get(GaugeRegistry).get('only-in-the-first-app'),
      );
      expect(second.get(GaugeRegistry).has('only-in-the-first-app')).toBe(false);
      expect(
        second
          .get(GaugeRegistry)
          .list()
          .map((gauge) => gauge.name),
      ).toEqual(['api']);
    } finally {
      await first.close();
      await second.close();
    }
  });
});
