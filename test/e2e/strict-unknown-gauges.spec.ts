import 'reflect-metadata';
import {
  Controller,
  Get,
  Injectable,
  Module,
  type DynamicModule,
  type INestApplication,
  type LoggerService,
  type Type,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import {
  BackpressureModule,
  GaugeConfigError,
  GaugeRegistry,
  InjectGauge,
  Limited,
  type Gauge,
} from '../../src';
import { Unlimited } from '../../src/unlimited.decorator';
import { PLATFORMS, type Platform } from './support/apps';

/*
 * Names used by @Limited / @InjectGauge but configured nowhere are reported at bootstrap once the
 * app configures gauges: a warning by default, a GaugeConfigError with unknownGauges: 'error'. The
 * README's zero-config quick start stays silent.
 */

/** Keeps what Nest logs, to read the warnings. */
class CapturingLogger implements LoggerService {
  readonly lines: Array<{ level: string; message: string; context?: string | undefined }> = [];
  log = this.record('log');
  error = this.record('error');
  warn = this.record('warn');
  debug = this.record('debug');
  verbose = this.record('verbose');
  fatal = this.record('fatal');

  /** The warnings the library logged. */
  get warnings(): string[] {
    return this.lines
      .filter((line) => line.level === 'warn' && line.context === 'Backpressure')
      .map((line) => line.message);
  }

  private record(level: string) {
    return (message: unknown, ...rest: unknown[]) => {
      const context = typeof rest.at(-1) === 'string' ? (rest.at(-1) as string) : undefined;
      this.lines.push({ level, message: String(message), context });
    };
  }
}

@Controller('reports')
class ReportsController {
  @Get()
  @Limited('reports')
  list() {
    return 'reports';
  }

  @Get('typo')
  @Limited('reprots')
  typo() {
    return 'typo';
  }
}

@Controller('status')
@Limited('status')
class StatusController {
  @Get()
  status() {
    return 'status';
  }

  @Get('health')
  @Unlimited()
  health() {
    return 'ok';
  }
}

@Injectable()
class MailService {
  constructor(@InjectGauge('mail') readonly gauge: Gauge) {}
}

function appModule(backpressure: DynamicModule, ...imports: Type[]): Type {
  @Module({
    imports: [backpressure, ...imports],
    controllers: [ReportsController, StatusController],
    providers: [MailService],
  })
  class AppModule {}
  return AppModule;
}

describe.each(PLATFORMS)('gauges used but configured nowhere, on %s', (platform: Platform) => {
  let app: INestApplication | undefined;
  let logger: CapturingLogger;

  async function create(module: Type): Promise<INestApplication> {
    logger = new CapturingLogger();
    const adapter = platform === 'express' ? new ExpressAdapter() : new FastifyAdapter();
    app = await NestFactory.create(module, adapter, { logger, abortOnError: false });
    await app.init();
    return app;
  }

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it("the README's zero-config forRoot() says nothing", async () => {
    await create(appModule(BackpressureModule.forRoot()));
    expect(logger.warnings).toEqual([]);
    expect(logger.lines.filter((line) => line.level === 'error')).toEqual([]);
  });

  it('with gauges configured, each unknown name is one warning naming where it is used', async () => {
    const started = await create(
      appModule(BackpressureModule.forRoot({ gauges: { reports: { limit: 2 } } })),
    );
    expect(logger.warnings).toEqual([
      expect.stringMatching(
        /^Gauge "reprots" is used by @Limited\("reprots"\) on ReportsController\.typo but configured nowhere, so it gets the defaults \(limit 10\)\. A typo\?/,
      ),
      expect.stringMatching(/^Gauge "status" is used by @Limited\("status"\) on StatusController /),
      expect.stringMatching(/^Gauge "mail" is used by @InjectGauge\("mail"\) in MailService /),
    ]);
    // Still served, with the defaults; the exempt route names no gauge.
    expect(started.get(GaugeRegistry).get('reprots').limit).toBe(10);
    expect(started.get(GaugeRegistry).has('false')).toBe(false);
  });

  it('names configured or listed by a forFeature() are not reported', async () => {
    @Module({ imports: [BackpressureModule.forFeature({ gauges: ['reprots', 'status'] })] })
    class ListsModule {}
    await create(
      appModule(
        BackpressureModule.forRoot({ gauges: { reports: {}, mail: { limit: 1 } } }),
        ListsModule,
      ),
    );
    expect(logger.warnings).toEqual([]);
  });

  it("unknownGauges: 'error' fails the start, listing every unknown name", async () => {
    const module = appModule(
      BackpressureModule.forRoot({ gauges: { reports: {} }, unknownGauges: 'error' }),
    );
    const error = await create(module).then(
      () => new Error('started'),
      (caught: unknown) => caught as Error,
    );
    expect(error).toBeInstanceOf(GaugeConfigError);
    expect(error.message).toBe(
      "Gauges used but configured nowhere (option unknownGauges: 'error'): " +
        '"reprots" (@Limited("reprots") on ReportsController.typo), ' +
        '"status" (@Limited("status") on StatusController), ' +
        '"mail" (@InjectGauge("mail") in MailService). ' +
        'For each, configure it in forRoot\'s "gauges" or list it in a BackpressureModule.forFeature().',
    );
  });

  it("unknownGauges: 'error' from forRootAsync, with every name configured, starts", async () => {
    await create(
      appModule(
        BackpressureModule.forRootAsync({
          useFactory: () => ({
            gauges: { reports: {}, reprots: {}, status: {}, mail: {} },
            unknownGauges: 'error' as const,
          }),
        }),
      ),
    );
    expect(logger.warnings).toEqual([]);
  });

  it("unknownGauges: 'ignore' silences the warnings; 'warn' warns with nothing configured", async () => {
    await create(
      appModule(BackpressureModule.forRoot({ gauges: { a: {} }, unknownGauges: 'ignore' })),
    );
    expect(logger.warnings).toEqual([]);
    await app!.close();

    await create(appModule(BackpressureModule.forRoot({ unknownGauges: 'warn' })));
    expect(logger.warnings).toHaveLength(4); // reports, reprots, status, mail
  });
});

describe('option unknownGauges is checked', () => {
  it.each([['strict'], [true], [null]])('rejects %p', (value) => {
    expect(() => BackpressureModule.forRoot({ unknownGauges: value as never })).toThrow(
      /^BackpressureModule: option "unknownGauges" must be one of 'warn', 'error', 'ignore', got /,
    );
  });
});
