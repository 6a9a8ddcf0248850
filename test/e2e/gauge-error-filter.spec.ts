import 'reflect-metadata';
import { Catch, Controller, Get, Injectable, Res } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import {
  BackpressureModule,
  GaugeAbortedError,
  GaugeErrorFilter,
  GaugeExhaustedError,
  GaugeUnavailableError,
  InjectGauge,
  type Gauge,
} from '../../src';
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

  run(signal?: AbortSignal): Promise<string> {
    return this.gauge.process(
      async () => {
        await this.probe.enter('export');
        return 'exported';
      },
      { signal },
    );
  }
}

/** What a `@Res()` handler writes to, on either platform (Fastify's reply wraps the Node one). */
interface RawResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  write(chunk: string): unknown;
  end(chunk?: string): unknown;
}

@Controller()
class ExportController {
  constructor(private readonly service: ExportService) {}

  @Get('export')
  export() {
    return this.service.run();
  }

  /** Its caller left before a slot was free: a GaugeAbortedError. */
  @Get('export/aborted')
  aborted() {
    return this.service.run(AbortSignal.abort());
  }

  /** Streams its head and a first chunk, then asks the gauge: a refusal with the head out. */
  @Get('export/streamed')
  async streamed(@Res() res: { raw?: RawResponse } & RawResponse) {
    const raw = res.raw ?? res;
    raw.writeHead(200, { 'content-type': 'text/plain' });
    raw.write('partial;');
    raw.end(await this.service.run());
  }
}

/** What the filter threw (nothing, ever: a throw in a filter escapes Nest's error handling). */
const thrown: unknown[] = [];

@Catch(GaugeExhaustedError, GaugeAbortedError, GaugeUnavailableError)
class WatchedFilter extends GaugeErrorFilter {
  override catch(...args: Parameters<GaugeErrorFilter['catch']>) {
    try {
      return super.catch(...args);
    } catch (error) {
      thrown.push(error);
      throw error;
    }
  }
}

describe.each(PLATFORMS)('GaugeErrorFilter on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running;

  beforeEach(async () => {
    probe = new Probe();
    thrown.length = 0;
    running = await startApp(
      platform,
      moduleOf({
        imports: [
          BackpressureModule.forRoot({
            gauges: { exports: { limit: 1, retryAfterSeconds: 7 } },
            errorFilter: false, // the watched one only
          }),
        ],
        controllers: [ExportController],
        providers: [
          ExportService,
          { provide: Probe, useValue: probe },
          { provide: APP_FILTER, useClass: WatchedFilter },
        ],
      }),
    );
  });

  afterEach(async () => {
    probe.openAll();
    await running.close();
    expect(thrown).toEqual([]);
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

  it("answers a GaugeAbortedError with the gauge's Retry-After, not a hard-coded 1", async () => {
    const aborted = await send(running.url, '/export/aborted').reply;
    expect(aborted.status).toBe(429);
    expect(aborted.headers['retry-after']).toBe('7');
    expect(JSON.parse(aborted.body)).toMatchObject({ statusCode: 429, reason: 'aborted' });
    expect(running.gauge('exports')).toMatchObject({ inFlight: 0, aborted: 1 });
  });

  it('ends a response whose head is out, without throwing, and the app serves on', async () => {
    const first = send(running.url, '/export');
    await until(() => probe.entered.length === 1, 'the first export runs');
    const streamed = await send(running.url, '/export/streamed').reply;
    expect({ status: streamed.status, body: streamed.body }).toEqual({
      status: 200,
      body: 'partial;',
    });
    probe.openAll();
    expect((await first.reply).body).toBe('exported');
    const after = await send(running.url, '/export').reply;
    expect({ status: after.status, body: after.body }).toEqual({ status: 200, body: 'exported' });
    expect(running.gauge('exports')).toMatchObject({ inFlight: 0, admitted: 2, rejected: 1 });
  });
});
