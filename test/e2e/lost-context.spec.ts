import 'reflect-metadata';
import {
  Controller,
  Get,
  Param,
  UseInterceptors,
  type CallHandler,
  type NestInterceptor,
} from '@nestjs/common';
import { EventEmitter } from 'node:events';
import { catchError, of, Subject, switchMap, take, timeout } from 'rxjs';
import { BackpressureModule, Limited } from '../../src';
import { RedisGaugeStore } from '../../src/redis';
import { Logs } from '../redis/support/helpers';
import { REDIS_URL, uniquePrefix } from '../redis/support/redis-env';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send } from './support/http';
import { Probe } from './support/probe';
import { until } from '../support/wait';
import { Runs } from './support/runs';

/** Gate: lets the chain through when the app emits "ready" (emitted from outside any request). */
const ready = new EventEmitter();
class WaitReady implements NestInterceptor {
  intercept(_c: unknown, next: CallHandler) {
    const gate = new Subject<void>();
    ready.once('go', () => gate.next());
    return gate.pipe(
      take(1),
      switchMap(() => next.handle()),
      timeout({ first: 300 }),
      catchError(() => of('timed-out')),
    );
  }
}

/** A smoothing interceptor: requests go on at the next tick of a shared, lazily started ticker. */
class Smooth implements NestInterceptor {
  private tick$?: Subject<number>;
  intercept(_c: unknown, next: CallHandler) {
    if (!this.tick$) {
      const tick$ = (this.tick$ = new Subject<number>());
      const timer = setInterval(() => tick$.next(0), 10);
      timer.unref();
    }
    return this.tick$.pipe(
      take(1),
      switchMap(() => next.handle()),
    );
  }
}

@Controller('als')
@Limited('als')
class AlsController {
  constructor(
    private readonly probe: Probe,
    private readonly runs: Runs,
  ) {}

  @Get('gated/:id')
  @UseInterceptors(WaitReady)
  async gated(@Param('id') id: string) {
    this.runs.start();
    try {
      await this.probe.enter(id);
      return id;
    } finally {
      this.runs.end();
    }
  }
}

@Controller('smooth')
class SmoothController {
  @Get(':id')
  @UseInterceptors(Smooth)
  @Limited('smooth')
  smooth(@Param('id') id: string) {
    return id;
  }
}

@Controller('rec')
class RecursionController {
  @Get(':n')
  @Limited('rec')
  async depth(@Param('n') n: string): Promise<number> {
    const k = Number(n);
    if (k <= 0) return 0;
    return 1 + (await this.depth(String(k - 1)));
  }

  @Get('q/:n')
  @Limited('recq')
  async depthQ(@Param('n') n: string): Promise<number> {
    const k = Number(n);
    if (k <= 0) return 0;
    return 1 + (await this.depthQ(String(k - 1)));
  }
}

const CASES = PLATFORMS.flatMap(
  (p) =>
    [
      [p, 'memory'],
      [p, 'redis'],
    ] as Array<[Platform, string]>,
);
describe.each(CASES)(
  'runs whose async context was lost, on %s / %s',
  (platform: Platform, mode: string) => {
    let stores: RedisGaugeStore[] = [];
    const st = () => {
      if (mode !== 'redis') return {};
      const store = new RedisGaugeStore({
        redis: REDIS_URL,
        keyPrefix: uniquePrefix('hostile'),
        logger: new Logs(),
      });
      stores.push(store);
      return { store };
    };
    let probe: Probe;
    let runs: Runs;
    let running: Running;

    beforeEach(async () => {
      probe = new Probe();
      runs = new Runs();
      stores = [];
      running = await startApp(
        platform,
        moduleOf({
          imports: [
            BackpressureModule.forRoot({
              gauges: {
                als: { limit: 1, ...st() },
                smooth: { limit: 5, ...st() },
                rec: { limit: 1, ...st() },
                recq: { limit: 1, queue: { size: 5, timeoutMs: 500 }, ...st() },
              },
            }),
          ],
          controllers: [AlsController, SmoothController, RecursionController],
          providers: [
            { provide: Probe, useValue: probe },
            { provide: Runs, useValue: runs },
          ],
        }),
      );
      // Callers of a store that still connects wait; under load that could outlast a timeout.
      await until(() => stores.every((store) => store.state === 'up'), 'the stores are up');
    });
    afterEach(async () => {
      probe.openAll();
      await running.close();
    });

    it('a gate emitted outside any request + an inner timeout: the limit holds', async () => {
      const a = send(running.url, '/als/gated/a');
      await until(() => ready.listenerCount('go') > 0, 'a waits at the gate');
      setImmediate(() => ready.emit('go'));
      await until(() => probe.entered.length === 1, 'a runs');
      const ra = await a.reply;
      // a's run still holds the only slot (its handler is held): b is refused at once.
      const rb = await send(running.url, '/als/gated/b').reply;
      // a's inner timeout answered while its run still holds the only slot: b is refused.
      expect([ra.status, ra.body]).toEqual([200, 'timed-out']);
      expect(rb.status).toBe(429);
      expect(runs.peak).toBeLessThanOrEqual(1);
    });

    it('a ticker started inside the first request: later requests are still served', async () => {
      const out: string[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await send(running.url, `/smooth/${i}`).reply;
        out.push(`${r.status}:${r.body.slice(0, 60)}`);
      }
      expect(out.every((s) => s.startsWith('200'))).toBe(true);
    });

    it('recursion in a limited handler (fail fast, limit 1)', async () => {
      const r = await send(running.url, '/rec/3').reply;
      expect(r.status).toBe(200);
    });

    it('recursion in a limited handler (queue, limit 1)', async () => {
      const r = await send(running.url, '/rec/q/2').reply;
      expect(r.status).toBe(200);
    });
  },
);
