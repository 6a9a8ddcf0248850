import 'reflect-metadata';
import { AsyncLocalStorage } from 'node:async_hooks';
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import {
  Controller,
  Get,
  Param,
  type ArgumentMetadata,
  type INestApplication,
  type PipeTransform,
  Query,
  UseInterceptors,
  type CallHandler,
  type NestInterceptor,
} from '@nestjs/common';
import { catchError, of, retry, timeout } from 'rxjs';
import { BackpressureModule, Limited, WorkSignal } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send } from './support/http';
import { Probe } from './support/probe';
import { until } from '../support/wait';
import { Runs } from './support/runs';

/**
 * HTTP runs find their call through an argument Nest fills (limited-run.link), not through
 * AsyncLocalStorage: what the handler sees of its arguments is unchanged, the limit holds on every
 * kind of route, and no AsyncLocalStorage is ever entered (on Node 20 that would turn on promise
 * hooks for the whole process).
 */
class TimeoutFallback implements NestInterceptor {
  intercept(_c: unknown, next: CallHandler) {
    return next.handle().pipe(
      timeout({ first: 20 }),
      catchError(() => of('fallback')),
    );
  }
}

/** Runs the handler a second time when its first run fails (an inner `retry`). */
class RetryOnce implements NestInterceptor {
  intercept(_c: unknown, next: CallHandler) {
    return next.handle().pipe(retry(1));
  }
}

/** A global pipe that does not pass custom parameters through: it hands the handler a copy. */
class CopyingPipe implements PipeTransform {
  transform(value: unknown, metadata: ArgumentMetadata) {
    return metadata.type === 'custom' && typeof value === 'object' && value !== null
      ? { ...value }
      : value;
  }
}

abstract class Base {
  constructor(
    protected readonly probe: Probe,
    protected readonly runs: Runs,
  ) {}

  protected async held(label: string): Promise<string> {
    this.runs.start();
    try {
      await this.probe.enter(label);
      return label;
    } finally {
      this.runs.end();
    }
  }

  @Get('inherited/:id')
  inherited(@Param('id') id: string) {
    return this.held(id);
  }
}

@Controller('linked')
@Limited('linked')
class LinkedController extends Base {
  constructor(probe: Probe, runs: Runs) {
    super(probe, runs);
  }

  @Get('args/:id')
  args(@Param('id') id: string, @Query('q') q?: string, fallback = 'default', ...rest: unknown[]) {
    return { id, q: q ?? null, fallback, rest: rest.length, count: arguments.length };
  }

  @Get('bare')
  bare(...all: unknown[]) {
    return { count: all.length };
  }

  @Get('held/:id')
  hold(@Param('id') id: string) {
    return this.held(id);
  }

  @Get('timeout/:id')
  @UseInterceptors(TimeoutFallback)
  timedOut(@Param('id') id: string) {
    return this.held(id);
  }

  @Get('recursive/:depth')
  async recursive(@Param('depth') depth: string): Promise<string> {
    const n = Number(depth);
    if (n === 0) return this.held('deep');
    return this.recursive(String(n - 1)); // the same run, not another slot
  }

  private failedOnce = false;
  @Get('retry')
  @UseInterceptors(RetryOnce)
  async retried(@WorkSignal() signal: AbortSignal) {
    if (!this.failedOnce) {
      this.failedOnce = true;
      throw new Error('first run fails');
    }
    return { aborted: signal.aborted, held: await this.held('retry') };
  }
}

@Controller('method')
class MethodController extends Base {
  constructor(probe: Probe, runs: Runs) {
    super(probe, runs);
  }

  @Limited('linked')
  @Get('below/:id')
  below(@Param('id') id: string) {
    return this.held(id);
  }

  @Get('above/:id')
  @Limited('linked')
  above(@Param('id') id: string) {
    return this.held(id);
  }
}

describe.each(PLATFORMS)('linked runs on %s', (platform: Platform) => {
  let running: Running | undefined;
  let probe: Probe;
  let runs: Runs;
  let alsRuns: jest.SpiedFunction<AsyncLocalStorage<unknown>['run']>;

  const start = async (limit: number, setup?: (app: INestApplication) => void) => {
    probe = new Probe();
    runs = new Runs();
    alsRuns = jest.spyOn(AsyncLocalStorage.prototype, 'run');
    running = await startApp(
      platform,
      moduleOf({
        imports: [BackpressureModule.forRoot({ gauges: { linked: { limit } } })],
        controllers: [LinkedController, MethodController],
        providers: [
          { provide: Probe, useValue: probe },
          { provide: Runs, useValue: runs },
        ],
      }),
      setup,
    );
    return running;
  };

  afterEach(async () => {
    probe.openAll();
    await running?.close();
    running = undefined;
    alsRuns.mockRestore();
  });

  it('hands the handler exactly its own arguments (defaults and rest included)', async () => {
    const { url } = await start(5);
    const args = await send(url, '/linked/args/7?q=x').reply;
    expect(JSON.parse(args.body)).toEqual({
      id: '7',
      q: 'x',
      fallback: 'default',
      rest: 0,
      count: 2,
    });
    const bare = await send(url, '/linked/bare').reply;
    expect(JSON.parse(bare.body)).toEqual({ count: 0 });
    expect(alsRuns).not.toHaveBeenCalled();
  });

  it.each([
    ['@Limited on the class', '/linked/held'],
    ['a handler inherited from an unlimited base', '/linked/inherited'],
    ['@Limited below the route decorator', '/method/below'],
    ['@Limited above the route decorator', '/method/above'],
    ['an inner timeout that answers first', '/linked/timeout'],
  ])('holds the limit without AsyncLocalStorage: %s', async (_kind, path) => {
    const { url, gauge } = await start(2);
    const calls = [1, 2, 3, 4].map((i) => send(url, `${path}/${i}`));
    await until(() => probe.entered.length === 2, 'two handlers run');
    const refused = await Promise.all(calls.slice(2).map((call) => call.status));
    expect(refused).toEqual([429, 429]);
    expect(runs.peak).toBe(2);
    expect(gauge('linked').inFlight).toBe(2); // the timeout answered; the runs still hold
    probe.passAll();
    await Promise.all(calls.slice(0, 2).map((call) => call.reply));
    await until(() => gauge('linked').inFlight === 0, 'every slot is back');
    expect(alsRuns).not.toHaveBeenCalled();
  });

  it('holds the limit when a global pipe replaces the linked argument', async () => {
    const { url, gauge } = await start(2, (app) => app.useGlobalPipes(new CopyingPipe()));
    const calls = [1, 2, 3, 4].map((i) => send(url, `/linked/held/${i}`));
    await until(() => probe.entered.length === 2, 'two handlers run');
    expect(await Promise.all(calls.slice(2).map((call) => call.status))).toEqual([429, 429]);
    expect(runs.peak).toBe(2);
    probe.passAll();
    expect(
      (await Promise.all(calls.slice(0, 2).map((call) => call.reply))).map((r) => r.status),
    ).toEqual([200, 200]);
    await until(() => gauge('linked').inFlight === 0, 'every slot is back');
    const args = await send(url, '/linked/args/9').reply;
    expect(JSON.parse(args.body)).toMatchObject({ id: '9', rest: 0, count: 2 });
  });

  it('counts a handler calling itself as one run', async () => {
    const { url, gauge } = await start(1);
    const call = send(url, '/linked/recursive/3');
    await until(() => probe.entered.length === 1, 'the handler runs');
    expect(gauge('linked').inFlight).toBe(1);
    probe.pass('deep');
    expect((await call.reply).status).toBe(200);
    expect(alsRuns).not.toHaveBeenCalled();
  });

  it('gives a retried run its call (its work signal too) and a slot of its own', async () => {
    const { url, gauge } = await start(2);
    const call = send(url, '/linked/retry');
    await until(() => probe.entered.length === 1, 'the handler runs');
    expect(gauge('linked').inFlight).toBe(1); // the failed first run gave its slot back
    probe.pass('retry');
    const reply = await call.reply;
    expect(JSON.parse(reply.body)).toEqual({ aborted: false, held: 'retry' });
    await until(() => gauge('linked').inFlight === 0, 'every slot is back');
    expect(alsRuns).not.toHaveBeenCalled();
  });

  it('links a controller again in a second app of the same process', async () => {
    const first = await start(2);
    await first.close();
    alsRuns.mockRestore();
    const { url } = await start(2);
    const args = await send(url, '/linked/args/8').reply;
    expect(JSON.parse(args.body)).toEqual({
      id: '8',
      q: null,
      fallback: 'default',
      rest: 0,
      count: 2,
    });
    expect(alsRuns).not.toHaveBeenCalled();
  });
});
