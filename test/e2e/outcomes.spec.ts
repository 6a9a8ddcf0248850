import 'reflect-metadata';
import { Readable } from 'node:stream';
import {
  BadRequestException,
  Controller,
  Get,
  Injectable,
  ServiceUnavailableException,
  Sse,
  StreamableFile,
  UseInterceptors,
  type CallHandler,
  type NestInterceptor,
} from '@nestjs/common';
import { interval, map, of, take, throwError, type Observable } from 'rxjs';
import { BackpressureModule, Limited, type Outcome } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { CountingStore, type CountingGauge } from './support/counting-store';
import { get } from './support/http';
import { until } from '../support/wait';

/** Answers from a cache: the handler never runs. */
@Injectable()
class CacheHit implements NestInterceptor {
  intercept(_context: unknown, _next: CallHandler): Observable<unknown> {
    return of('cached');
  }
}

/** Keeps the first value of an endless stream and drops the rest. */
@Injectable()
class FirstOnly implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(take(1));
  }
}

@Controller()
class OutcomesController {
  @Get('value')
  @Limited('value')
  value() {
    return 'ok';
  }

  @Get('client-error')
  @Limited('client-error')
  async clientError() {
    await Promise.resolve();
    throw new BadRequestException();
  }

  @Get('bug')
  @Limited('bug')
  bug() {
    throw new Error('a bug');
  }

  @Get('overloaded')
  @Limited('overloaded')
  async overloaded() {
    await Promise.resolve();
    throw new ServiceUnavailableException();
  }

  @Get('observable')
  @Limited('observable')
  observable() {
    return of('one');
  }

  @Get('observable-error')
  @Limited('observable-error')
  observableError() {
    return throwError(() => new Error('stream bug'));
  }

  @Get('cut-short')
  @Limited('cut-short')
  @UseInterceptors(FirstOnly)
  cutShort() {
    return interval(1).pipe(map(String));
  }

  @Sse('sse')
  @Limited('sse')
  sse() {
    return of({ data: 'a' }, { data: 'b' });
  }

  @Get('file')
  @Limited('file')
  file() {
    return new StreamableFile(Readable.from(['a', 'b']));
  }
}

/** Class-level `@Limited`: the method's own interceptors run inside the slot. */
@Controller('inner')
@Limited('inner-cache')
class InnerCacheController {
  @Get('cached')
  @UseInterceptors(CacheHit)
  cached() {
    return 'never';
  }
}

/** What the limit policy learns from each kind of ending (the default classification). */
const EXPECTED: Array<[string, number, Outcome]> = [
  ['value', 200, 'succeeded'],
  ['client-error', 400, 'ignored'],
  ['bug', 500, 'failed'],
  ['overloaded', 503, 'dropped'],
  ['observable', 200, 'succeeded'],
  ['observable-error', 500, 'failed'],
  ['cut-short', 200, 'dropped'],
  ['sse', 200, 'ignored'],
  ['file', 200, 'ignored'],
];

describe.each(PLATFORMS)('each release reports how its work ended, on %s', (platform: Platform) => {
  let running: Running;

  beforeAll(async () => {
    const store = new CountingStore();
    running = await startApp(
      platform,
      moduleOf({
        imports: [BackpressureModule.forRoot({ store })],
        controllers: [OutcomesController, InnerCacheController],
      }),
    );
  });
  afterAll(() => running.close());

  it.each(EXPECTED)('%s: %d, released as %s', async (route, status, outcome) => {
    const reply = await get(running.url, `/${route}`);
    expect(reply.status).toBe(status);
    const gauge = running.gauge(route) as CountingGauge;
    await until(() => gauge.releaseCalls === 1, 'the slot is released');
    expect(gauge.outcomes).toEqual([outcome]);
    expect(gauge.inFlight).toBe(0);
  });

  it('a cache hit inside the slot: the slot taken for the call goes back as ignored', async () => {
    expect((await get(running.url, '/inner/cached')).body).toBe('cached');
    const gauge = running.gauge('inner-cache') as CountingGauge;
    await until(() => gauge.releaseCalls === 1, 'the slot is released');
    expect(gauge.outcomes).toEqual(['ignored']);
  });
});
