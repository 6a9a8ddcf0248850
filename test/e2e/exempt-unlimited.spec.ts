import 'reflect-metadata';
import { Controller, Get } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import {
  BackpressureInterceptor,
  BackpressureModule,
  GaugeConfigError,
  LIMITED_GAUGE,
  Limited,
} from '../../src';
import { Unlimited } from '../../src/unlimited.decorator';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send } from './support/http';
import { Probe } from './support/probe';
import { until } from '../support/wait';

/*
 * @Unlimited() exempts one method of a class-level @Limited: a health route answers 200 while the
 * class's gauge is full, takes no slot, and is never a 500.
 */

@Controller('api')
@Limited('api')
class ApiController {
  constructor(private readonly probe: Probe) {}

  @Get('work')
  async work() {
    await this.probe.enter('work');
    return 'work';
  }

  @Get('health')
  @Unlimited()
  health() {
    return 'ok';
  }

  /** Decorators the other way round: @Unlimited above the route decorator. */
  @Unlimited()
  @Get('slow-health')
  async slowHealth() {
    await this.probe.enter('slow-health');
    return 'ok';
  }

  @Get('export')
  @Limited('export')
  async export() {
    await this.probe.enter('export');
    return 'export';
  }
}

describe.each(PLATFORMS)(
  '@Unlimited() under a class-level @Limited on %s',
  (platform: Platform) => {
    let probe: Probe;
    let running: Running;

    describe.each([
      ['@Limited only', false],
      ['the interceptor also global', true],
    ])('%s', (_how, global) => {
      beforeEach(async () => {
        probe = new Probe();
        running = await startApp(
          platform,
          moduleOf({
            imports: [
              BackpressureModule.forRoot({ gauges: { api: { limit: 1 }, export: { limit: 1 } } }),
            ],
            controllers: [ApiController],
            providers: [
              { provide: Probe, useValue: probe },
              ...(global
                ? [{ provide: APP_INTERCEPTOR, useExisting: BackpressureInterceptor }]
                : []),
            ],
          }),
        );
      });

      afterEach(async () => {
        probe.openAll();
        await running.close();
      });

      it('answers 200 while the class gauge is full, taking no slot', async () => {
        const api = running.gauge('api');
        const held = send(running.url, '/api/work');
        await until(() => probe.entered.length === 1, 'the class gauge is full');
        expect((await send(running.url, '/api/work').reply).status).toBe(429);

        for (let i = 0; i < 3; i++) {
          const health = await send(running.url, '/api/health').reply;
          expect(health.status).toBe(200);
          expect(health.body).toBe('ok');
        }
        // Held handlers of the exempt route do not count either.
        const slow = [send(running.url, '/api/slow-health'), send(running.url, '/api/slow-health')];
        await until(() => probe.entered.length === 3, 'two slow health checks run');
        expect(api).toMatchObject({ inFlight: 1, admitted: 1, rejected: 1 });

        probe.passAll();
        expect((await held.reply).status).toBe(200);
        for (const call of slow) expect((await call.reply).status).toBe(200);
        expect(api.inFlight).toBe(0);
      });

      it('a method-level @Limited in the same class still uses its own gauge', async () => {
        const held = send(running.url, '/api/export');
        await until(() => probe.entered.length === 1, 'the export runs');
        expect((await send(running.url, '/api/export').reply).status).toBe(429);
        expect((await send(running.url, '/api/health').reply).status).toBe(200);
        expect(running.gauge('api').admitted).toBe(0);
        probe.passAll();
        expect((await held.reply).status).toBe(200);
      });
    });
  },
);

describe('@Unlimited() is checked where the class is declared', () => {
  it('records "no gauge" (false) under LIMITED_GAUGE, wrapped or not', () => {
    const proto = ApiController.prototype as unknown as Record<'health' | 'slowHealth', object>;
    expect(Reflect.getMetadata(LIMITED_GAUGE, proto.health)).toBe(false);
    expect(Reflect.getMetadata(LIMITED_GAUGE, proto.slowHealth)).toBe(false);
    expect(Reflect.getMetadata(LIMITED_GAUGE, ApiController)).toBe('api');
  });

  it('refuses @Unlimited() and @Limited(name) on one method, in either order', () => {
    expect(() => {
      class Both {
        @Unlimited()
        @Limited('x')
        handler() {}
      }
      return Both;
    }).toThrow(
      new GaugeConfigError(
        '@Unlimited() on Both.handler: the method also has @Limited("x"); keep one of them',
      ),
    );
    expect(() => {
      class Both {
        @Limited('x')
        @Unlimited()
        handler() {}
      }
      return Both;
    }).toThrow(
      new GaugeConfigError(
        '@Limited() on Both.handler: the method also has @Unlimited(); keep one of them',
      ),
    );
  });
});
