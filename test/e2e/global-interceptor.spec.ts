import 'reflect-metadata';
import { Controller, Get, Inject, Injectable } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import {
  BACKPRESSURE_OPTIONS,
  BackpressureInterceptor,
  BackpressureModule,
  Limited,
  type BackpressureModuleOptions,
} from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send } from './support/http';
import { Probe } from './support/probe';
import { until } from '../support/wait';

@Injectable()
class OptionsReader {
  constructor(@Inject(BACKPRESSURE_OPTIONS) readonly options: BackpressureModuleOptions) {}
}

@Controller()
class MixedController {
  constructor(private readonly probe: Probe) {}

  @Get('free')
  free() {
    return 'free';
  }

  @Get('limited')
  @Limited('global')
  async limited() {
    await this.probe.enter('limited');
    return 'limited';
  }
}

describe.each(PLATFORMS)(
  'BackpressureInterceptor as APP_INTERCEPTOR on %s',
  (platform: Platform) => {
    let probe: Probe;
    let running: Running;

    beforeEach(async () => {
      probe = new Probe();
      running = await startApp(
        platform,
        moduleOf({
          imports: [BackpressureModule.forRoot({ gauges: { global: { limit: 1 } } })],
          controllers: [MixedController],
          providers: [
            { provide: Probe, useValue: probe },
            { provide: APP_INTERCEPTOR, useExisting: BackpressureInterceptor },
            OptionsReader,
          ],
        }),
      );
    });

    afterEach(async () => {
      probe.openAll();
      await running.close();
    });

    it('lets handlers without @Limited through, unlimited', async () => {
      const replies = await Promise.all([1, 2, 3].map(() => send(running.url, '/free').reply));
      expect(replies.map((reply) => reply.status)).toEqual([200, 200, 200]);
    });

    it('counts a @Limited request once although the interceptor applies twice', async () => {
      const call = send(running.url, '/limited');
      await until(() => probe.entered.length === 1, 'the handler runs');
      expect(running.gauge('global')).toMatchObject({ inFlight: 1, admitted: 1 });
      expect((await send(running.url, '/limited').reply).status).toBe(429);
      probe.pass('limited');
      expect((await call.reply).status).toBe(200);
      expect(running.gauge('global')).toMatchObject({ inFlight: 0, admitted: 1, rejected: 1 });
    });

    it('exports the module options for injection', () => {
      expect(running.app.get(OptionsReader).options.gauges?.global?.limit).toBe(1);
    });
  },
);
