import 'reflect-metadata';
import {
  Controller,
  Get,
  UseInterceptors,
  type CallHandler,
  type NestInterceptor,
} from '@nestjs/common';
import { of, race, retry, timeout } from 'rxjs';
import { BackpressureModule, Limited } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send } from './support/http';
import { Probe } from './support/probe';
import { until } from '../support/wait';

/** Gives up on a pending handler after 30 ms and tries once more. */
class TimeoutThenRetry implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler) {
    return next.handle().pipe(timeout({ first: 30 }), retry(1));
  }
}

/** Answers from a "cache" at once, racing the handler: the handler's Observable is never subscribed. */
class RaceCached implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler) {
    return race(next.handle(), of('cached'));
  }
}

@Controller('retry')
@UseInterceptors(TimeoutThenRetry)
class RetryController {
  constructor(private readonly probe: Probe) {}

  @Get('fast-fail')
  @Limited('one')
  async failFast() {
    await this.probe.enter('fast-fail');
    return 'ok';
  }

  @Get('queued')
  @Limited('queued')
  async queued() {
    await this.probe.enter('queued');
    return 'ok';
  }
}

@Controller('race')
@UseInterceptors(RaceCached)
class RaceController {
  @Get()
  @Limited('one')
  fresh() {
    return 'fresh';
  }
}

describe.each(PLATFORMS)(
  'outer interceptors that retry or never subscribe, on %s',
  (platform: Platform) => {
    let probe: Probe;
    let running: Running;

    beforeEach(async () => {
      probe = new Probe();
      running = await startApp(
        platform,
        moduleOf({
          imports: [
            BackpressureModule.forRoot({
              gauges: {
                one: { limit: 1 },
                queued: { limit: 1, queue: { size: 5, timeoutMs: 5_000 } },
              },
            }),
          ],
          controllers: [RetryController, RaceController],
          providers: [{ provide: Probe, useValue: probe }],
        }),
      );
    });

    afterEach(async () => {
      probe.openAll();
      await running.close();
    });

    it('a retry after a timeout takes a slot of its own (fail fast: refused, handler not run twice)', async () => {
      const reply = await send(running.url, '/retry/fast-fail').reply;
      // First attempt timed out with its handler still running (slot held); the retry found no slot.
      expect(reply.status).toBe(429);
      expect(probe.entered).toEqual(['fast-fail']);
      expect(running.gauge('one')).toMatchObject({ inFlight: 1, admitted: 1, rejected: 1 });
      probe.passAll();
      await until(() => running.gauge('one').inFlight === 0, 'the first handler frees its slot');
    });

    it('a retry after a timeout takes a slot of its own (queue: waits, handler not run twice)', async () => {
      const reply = await send(running.url, '/retry/queued').reply;
      // The retry queued behind the running handler and timed out there too; it never ran.
      expect(reply.status).toBe(500);
      expect(probe.entered).toEqual(['queued']);
      expect(running.gauge('queued')).toMatchObject({ inFlight: 1, queued: 0, admitted: 1 });
      probe.passAll();
      await until(() => running.gauge('queued').inFlight === 0, 'the first handler frees its slot');
    });

    it('takes no slot when the handler is never subscribed', async () => {
      expect((await send(running.url, '/race').reply).body).toBe('cached');
      expect(running.gauge('one')).toMatchObject({ inFlight: 0, admitted: 0 });
    });
  },
);
