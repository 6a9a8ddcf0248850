import 'reflect-metadata';
import { Controller, Get, Injectable } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { BackpressureModule, GaugeErrorFilter, InjectGauge, type Gauge } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send } from './support/http';
import { Probe } from './support/probe';
import { until } from '../support/wait';

@Injectable()
class ExportService {
  constructor(
    @InjectGauge('exports') private readonly gauge: Gauge,
    private readonly probe: Probe,
  ) {}

  run(): Promise<string> {
    return this.gauge.process(async () => {
      await this.probe.enter('export');
      return 'exported';
    });
  }
}

@Controller()
class ExportController {
  constructor(private readonly service: ExportService) {}

  @Get('export')
  export() {
    return this.service.run();
  }
}

describe.each(PLATFORMS)('GaugeErrorFilter on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running;

  beforeEach(async () => {
    probe = new Probe();
    running = await startApp(
      platform,
      moduleOf({
        imports: [
          BackpressureModule.forRoot({ gauges: { exports: { limit: 1, retryAfterSeconds: 7 } } }),
        ],
        controllers: [ExportController],
        providers: [
          ExportService,
          { provide: Probe, useValue: probe },
          { provide: APP_FILTER, useClass: GaugeErrorFilter },
        ],
      }),
    );
  });

  afterEach(async () => {
    probe.openAll();
    await running.close();
  });

  it('answers a GaugeExhaustedError from gauge.process() with 429, Retry-After and Nest’s body', async () => {
    const first = send(running.url, '/export');
    await until(() => probe.entered.length === 1, 'the first export runs');
    const refused = await send(running.url, '/export').reply;
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('7');
    expect(JSON.parse(refused.body)).toEqual({
      statusCode: 429,
      message: 'Too many requests',
      error: 'Too Many Requests',
      reason: 'full',
    });
    probe.passAll();
    expect((await first.reply).body).toBe('exported');
    expect(running.gauge('exports')).toMatchObject({ inFlight: 0, admitted: 1, rejected: 1 });
  });
});
