import 'reflect-metadata';
import {
  Controller,
  GatewayTimeoutException,
  Get,
  Param,
  StreamableFile,
  UseInterceptors,
  type CallHandler,
  type NestInterceptor,
} from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import {
  catchError,
  map,
  Observable,
  of,
  race,
  retry,
  take,
  throwError,
  timeout,
  TimeoutError,
  timer,
} from 'rxjs';
import { BackpressureInterceptor, BackpressureModule, Limited } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send } from './support/http';
import { Probe } from './support/probe';
import { settle, until } from '../support/wait';

// Issue 8, defect 2: an interceptor *inside* the slot (a method-level one under a class-level
// `@Limited`, or any under a global BackpressureInterceptor) that ends the call early (timeout,
// catchError, race) made the slot free while the handler's promise still ran, so more than
// `limit` handlers ran at once. Required: at most `limit` handler runs in progress per gauge;
// a slot is freed only when that run's own work ends (promise settled, Observable torn down,
// stream sent); an inner retry that calls the handler again while an earlier run still works
// needs a slot of its own; a cache hit that never calls the handler leaves nothing held.

/** Handler runs in progress per gauge, and the most seen at once: counted by the handlers. */
class Runs {
  private readonly now = new Map<string, number>();
  private readonly peak = new Map<string, number>();

  start(gauge: string): void {
    const n = (this.now.get(gauge) ?? 0) + 1;
    this.now.set(gauge, n);
    this.peak.set(gauge, Math.max(n, this.peak.get(gauge) ?? 0));
  }

  end(gauge: string): void {
    this.now.set(gauge, (this.now.get(gauge) ?? 0) - 1);
  }

  running(gauge: string): number {
    return this.now.get(gauge) ?? 0;
  }

  max(gauge: string): number {
    return this.peak.get(gauge) ?? 0;
  }
}

const toGatewayTimeout = catchError((error: unknown) =>
  throwError(() => (error instanceof TimeoutError ? new GatewayTimeoutException() : error)),
);

/** Gives up on the route after 20 ms: 504. */
class Timeout504 implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler) {
    return next.handle().pipe(timeout({ first: 20 }), toGatewayTimeout);
  }
}

/** Answers a fallback value when the route takes longer than 20 ms. */
class TimeoutFallback implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler) {
    return next.handle().pipe(
      timeout({ first: 20 }),
      catchError(() => of('fallback')),
    );
  }
}

/** Races the route against a stale answer ready after 20 ms. */
class RaceStale implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler) {
    return race(next.handle(), timer(20).pipe(map(() => 'stale')));
  }
}

/** Gives up after 20 ms and calls the route once more (with its own 20 ms). */
class TimeoutRetry implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler) {
    return next.handle().pipe(timeout({ first: 20 }), retry(1), toGatewayTimeout);
  }
}

/** Calls the route once more if it fails. */
class RetryOnError implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler) {
    return next.handle().pipe(retry(1));
  }
}

/** A cache hit: answers without calling the route. */
class CacheHit implements NestInterceptor {
  intercept() {
    return of('cached');
  }
}

/** Takes the first value of a stream. */
class FirstValue implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler) {
    return next.handle().pipe(take(1));
  }
}

/** Handlers that count their own runs (`Runs`) and are held by gates (`Probe`). */
abstract class Counted {
  constructor(
    protected readonly probe: Probe,
    protected readonly runs: Runs,
  ) {}

  /** An async run held by the gate `id`, counted against `gauge`. */
  protected async held(gauge: string, id: string): Promise<string> {
    this.runs.start(gauge);
    try {
      await this.probe.enter(id);
      return id;
    } finally {
      this.runs.end(gauge);
    }
  }

  /** A stream that never emits by itself: its run lasts until it is torn down. */
  protected stream(gauge: string): Observable<string> {
    return new Observable<string>((subscriber) => {
      this.runs.start(gauge);
      const forward = this.probe.events.subscribe(subscriber);
      return () => {
        forward.unsubscribe();
        this.runs.end(gauge);
      };
    });
  }
}

@Controller('pair')
@Limited('pair')
class PairController extends Counted {
  constructor(probe: Probe, runs: Runs) {
    super(probe, runs);
  }

  @Get('quick')
  quick() {
    return 'quick';
  }

  @Get('timeout/:id')
  @UseInterceptors(Timeout504)
  timedOut(@Param('id') id: string) {
    return this.held('pair', id);
  }

  @Get('fallback/:id')
  @UseInterceptors(TimeoutFallback)
  fallback(@Param('id') id: string) {
    return this.held('pair', id);
  }

  @Get('race/:id')
  @UseInterceptors(RaceStale)
  raced(@Param('id') id: string) {
    return this.held('pair', id);
  }

  @Get('stream')
  @UseInterceptors(Timeout504)
  silentStream() {
    return this.stream('pair');
  }

  @Get('first')
  @UseInterceptors(FirstValue)
  firstOfStream() {
    return this.stream('pair');
  }

  @Get('async-stream/:id')
  @UseInterceptors(Timeout504)
  async asyncStream(@Param('id') id: string) {
    await this.held('pair', id);
    return this.stream('pair');
  }

  @Get('file/:id')
  @UseInterceptors(Timeout504)
  async file(@Param('id') id: string) {
    await this.held('pair', id);
    return new StreamableFile(this.probe.body);
  }

  @Get('cached')
  @UseInterceptors(CacheHit)
  cached() {
    this.runs.start('pair');
    this.runs.end('pair');
    return 'fresh';
  }
}

@Controller('single')
@Limited('single')
class SingleController extends Counted {
  constructor(probe: Probe, runs: Runs) {
    super(probe, runs);
  }

  @Get('quick')
  quick() {
    return 'quick';
  }

  @Get('retry-timeout')
  @UseInterceptors(TimeoutRetry)
  retriedAfterTimeout() {
    return this.held('single', `try${this.probe.entered.length + 1}`);
  }

  @Get('retry-error')
  @UseInterceptors(RetryOnError)
  retriedAfterError() {
    return this.held('single', `try${this.probe.entered.length + 1}`);
  }
}

/** As the README registers it globally, with a timeout on the controller (inside the slot). */
@Controller('global')
@UseInterceptors(Timeout504)
class GlobalController extends Counted {
  constructor(probe: Probe, runs: Runs) {
    super(probe, runs);
  }

  @Get('quick')
  @Limited('global')
  quick() {
    return 'quick';
  }

  @Get('timeout/:id')
  @Limited('global')
  timedOut(@Param('id') id: string) {
    return this.held('global', id);
  }
}

describe.each(PLATFORMS)('interceptors inside the slot, on %s', (platform: Platform) => {
  let probe: Probe;
  let runs: Runs;
  let running: Running;

  beforeEach(async () => {
    probe = new Probe();
    runs = new Runs();
    running = await startApp(
      platform,
      moduleOf({
        imports: [
          BackpressureModule.forRoot({ gauges: { pair: { limit: 2 }, single: { limit: 1 } } }),
        ],
        controllers: [PairController, SingleController],
        providers: [
          { provide: Probe, useValue: probe },
          { provide: Runs, useValue: runs },
        ],
      }),
    );
  });

  afterEach(async () => {
    probe.openAll();
    probe.events.complete();
    probe.body.destroy();
    await running.close();
  });

  const status = async (path: string) => (await send(running.url, path).reply).status;

  /** Opens every gate; the slots come back once the runs end, and the gauge serves again. */
  async function expectFreedAfterRuns(gauge: 'pair' | 'single') {
    probe.passAll();
    await until(() => runs.running(gauge) === 0, 'the held runs end');
    await until(() => running.gauge(gauge).inFlight === 0, 'their slots are free');
    expect(await status(`/${gauge}/quick`)).toBe(200);
    expect(running.gauge(gauge).inFlight).toBe(0);
  }

  it('inner timeout: 504s, and the slots stay held while the handlers run (12 requests, limit 2)', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push(await status(`/pair/timeout/r${i}`));
    expect(statuses).toEqual([504, 504, ...Array<number>(10).fill(429)]);
    expect(probe.entered).toEqual(['r0', 'r1']);
    expect(runs.max('pair')).toBe(2);
    expect(running.gauge('pair')).toMatchObject({ inFlight: 2, admitted: 2, rejected: 10 });
    await expectFreedAfterRuns('pair');
  });

  it('inner timeout + catchError(fallback): answered, but the slot is held until the run ends', async () => {
    const replies = [await send(running.url, '/pair/fallback/a').reply];
    replies.push(await send(running.url, '/pair/fallback/b').reply);
    expect(replies.map((reply) => [reply.status, reply.body])).toEqual([
      [200, 'fallback'],
      [200, 'fallback'],
    ]);
    expect(await status('/pair/fallback/c')).toBe(429);
    expect(await status('/pair/timeout/d')).toBe(429);
    expect(probe.entered).toEqual(['a', 'b']);
    expect(runs.max('pair')).toBe(2);
    await expectFreedAfterRuns('pair');
  });

  it('inner race with a stale answer: answered, but the slot is held until the run ends', async () => {
    expect((await send(running.url, '/pair/race/a').reply).body).toBe('stale');
    expect((await send(running.url, '/pair/race/b').reply).body).toBe('stale');
    expect(await status('/pair/race/c')).toBe(429);
    expect(probe.entered).toEqual(['a', 'b']);
    expect(runs.max('pair')).toBe(2);
    await expectFreedAfterRuns('pair');
  });

  it('one gate opened frees exactly one slot', async () => {
    expect(await status('/pair/timeout/a')).toBe(504);
    expect(await status('/pair/timeout/b')).toBe(504);
    expect(running.gauge('pair').inFlight).toBe(2);
    probe.pass('a');
    await until(() => running.gauge('pair').inFlight === 1, 'the ended run frees its slot');
    expect(await status('/pair/timeout/c')).toBe(504); // runs: one slot was free
    expect(await status('/pair/timeout/d')).toBe(429); // b and c still run
    expect(probe.entered).toEqual(['a', 'b', 'c']);
    expect(runs.max('pair')).toBe(2);
    await expectFreedAfterRuns('pair');
  });

  it('an Observable handler under an inner timeout: torn down, so its slot is free', async () => {
    expect(await status('/pair/stream')).toBe(504);
    await until(() => running.gauge('pair').inFlight === 0, 'the torn-down stream frees its slot');
    expect(runs.running('pair')).toBe(0);
    expect(probe.events.observed).toBe(false);
    expect(await status('/pair/stream')).toBe(504);
    expect(await status('/pair/stream')).toBe(504);
    expect(await status('/pair/stream')).toBe(504); // never refused: each frees its slot
    await until(() => running.gauge('pair').inFlight === 0, 'the slots are free');
  });

  it('an Observable handler under an inner take(1): freed at its first value', async () => {
    const call = send(running.url, '/pair/first');
    await until(() => probe.events.observed, 'the stream runs');
    probe.events.next('one');
    expect(await call.reply).toMatchObject({ status: 200, body: 'one' });
    await until(() => running.gauge('pair').inFlight === 0, 'the slot is free');
    expect(runs.running('pair')).toBe(0);
  });

  it('an async Observable handler under an inner timeout: held while it awaits, freed after', async () => {
    expect(await status('/pair/async-stream/a')).toBe(504);
    expect(await status('/pair/async-stream/b')).toBe(504);
    expect(await status('/pair/async-stream/c')).toBe(429);
    expect(probe.entered).toEqual(['a', 'b']);
    // The streams returned after the timeout are never sent: the runs are over once returned.
    await expectFreedAfterRuns('pair');
    expect(probe.events.observed).toBe(false);
  });

  it('an async StreamableFile handler under an inner timeout: held while it awaits, freed after', async () => {
    expect(await status('/pair/file/a')).toBe(504);
    expect(await status('/pair/file/b')).toBe(504);
    expect(await status('/pair/file/c')).toBe(429);
    expect(probe.entered).toEqual(['a', 'b']);
    await expectFreedAfterRuns('pair');
    await until(() => probe.body.destroyed, 'the unsent file is destroyed');
  });

  it('an inner retry while the first run still works needs a slot of its own (limit 1: 429)', async () => {
    expect(await status('/single/retry-timeout')).toBe(429);
    expect(probe.entered).toEqual(['try1']); // the handler was not called a second time
    expect(runs.max('single')).toBe(1);
    expect(running.gauge('single').inFlight).toBe(1);
    expect(await status('/single/quick')).toBe(429);
    await expectFreedAfterRuns('single');
  });

  it('an inner retry after the first run ended runs (limit 1 is enough)', async () => {
    const call = send(running.url, '/single/retry-error');
    await until(() => probe.entered.length === 1, 'the first run starts');
    probe.fail('try1', new Error('flaky'));
    await until(() => probe.entered.length === 2, 'the retry runs');
    expect(runs.max('single')).toBe(1);
    probe.pass('try2');
    expect(await call.reply).toMatchObject({ status: 200, body: 'try2' });
    await until(() => running.gauge('single').inFlight === 0, 'the slot is free');
  });

  it('an inner cache hit that never calls the handler leaves nothing held', async () => {
    for (let i = 0; i < 4; i++) {
      expect(await send(running.url, '/pair/cached').reply).toMatchObject({
        status: 200,
        body: 'cached',
      });
    }
    await settle();
    expect(runs.max('pair')).toBe(0);
    expect(running.gauge('pair').inFlight).toBe(0);
    expect(await status('/pair/quick')).toBe(200);
  });
});

describe.each(PLATFORMS)(
  'a global BackpressureInterceptor with a controller timeout inside it, on %s',
  (platform: Platform) => {
    let probe: Probe;
    let runs: Runs;
    let running: Running;

    beforeEach(async () => {
      probe = new Probe();
      runs = new Runs();
      running = await startApp(
        platform,
        moduleOf({
          imports: [BackpressureModule.forRoot({ gauges: { global: { limit: 2 } } })],
          controllers: [GlobalController],
          providers: [
            { provide: Probe, useValue: probe },
            { provide: Runs, useValue: runs },
            { provide: APP_INTERCEPTOR, useExisting: BackpressureInterceptor },
          ],
        }),
      );
    });

    afterEach(async () => {
      probe.openAll();
      await running.close();
    });

    it('504s, and no more than the limit run at once', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        statuses.push((await send(running.url, `/global/timeout/r${i}`).reply).status);
      }
      expect(statuses).toEqual([504, 504, 429, 429, 429, 429]);
      expect(probe.entered).toEqual(['r0', 'r1']);
      expect(runs.max('global')).toBe(2);
      expect(running.gauge('global')).toMatchObject({ inFlight: 2, admitted: 2 });

      probe.passAll();
      await until(() => running.gauge('global').inFlight === 0, 'the slots are free');
      expect((await send(running.url, '/global/quick').reply).status).toBe(200);
    });
  },
);
