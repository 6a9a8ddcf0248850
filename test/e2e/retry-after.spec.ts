import 'reflect-metadata';
import {
  Controller,
  Get,
  UseInterceptors,
  type CallHandler,
  type NestInterceptor,
} from '@nestjs/common';
import { catchError, of, retry, timeout, type Observable } from 'rxjs';
import { BackpressureModule, Limited } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send } from './support/http';
import { Probe } from './support/probe';
import { until } from '../support/wait';

/** Times the handler out, retries once (a second run, refused: the slot is still held), falls back. */
class RetryThenFallback implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(
      timeout({ first: 20 }),
      retry(1),
      catchError(() => of('fallback')),
    );
  }
}

@Controller('ra')
class RetryAfterController {
  constructor(private readonly probe: Probe) {}

  @Get('recovered')
  @UseInterceptors(RetryThenFallback)
  @Limited('recovered')
  async recovered() {
    await this.probe.enter('held');
    return 'slow';
  }

  @Get('held')
  @Limited('recovered')
  async held() {
    await this.probe.enter('other');
    return 'other';
  }
}

describe.each(PLATFORMS)('Retry-After only on a refusal, on %s', (platform: Platform) => {
  let running: Running;
  let probe: Probe;

  beforeEach(async () => {
    probe = new Probe();
    running = await startApp(
      platform,
      moduleOf({
        imports: [BackpressureModule.forRoot({ gauges: { recovered: { limit: 1 } } })],
        controllers: [RetryAfterController],
        providers: [{ provide: Probe, useValue: probe }],
      }),
    );
  });
  afterEach(async () => {
    probe.openAll();
    await running.close();
  });

  it('a retried run refused, then a fallback answered: the 200 carries no Retry-After', async () => {
    const reply = await send(running.url, '/ra/recovered').reply;
    expect({ status: reply.status, body: reply.body }).toEqual({ status: 200, body: 'fallback' });
    expect(reply.headers['retry-after']).toBeUndefined();
  });

  it('a refusal that reaches the client still carries it', async () => {
    const holding = send(running.url, '/ra/held');
    await until(() => probe.entered.includes('other'), 'the slot is held');
    const refused = await send(running.url, '/ra/held').reply;
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    probe.pass('other');
    expect((await holding.reply).status).toBe(200);
  });
});
