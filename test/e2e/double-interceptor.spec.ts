import 'reflect-metadata';
import {
  Controller,
  Get,
  UseInterceptors,
  type CallHandler,
  type NestInterceptor,
} from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { EventEmitter } from 'node:events';
import { Subject, switchMap, take } from 'rxjs';
import { BackpressureInterceptor, BackpressureModule, Limited } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send } from './support/http';
import { until } from '../support/wait';

/** Lets a request through once the app emits "go" (say, a warm-up or feature-flag gate). */
const ready = new EventEmitter();
class WaitReady implements NestInterceptor {
  intercept(_c: unknown, next: CallHandler) {
    const gate = new Subject<void>();
    ready.once('go', () => gate.next());
    return gate.pipe(
      take(1),
      switchMap(() => next.handle()),
    );
  }
}

@Controller('d')
@UseInterceptors(WaitReady)
class DoubleController {
  @Get()
  @Limited('one')
  one() {
    return 'ok';
  }
}

describe.each(PLATFORMS)(
  'a global and a @Limited interceptor with one between, on %s',
  (platform: Platform) => {
    let running: Running;
    beforeEach(async () => {
      running = await startApp(
        platform,
        moduleOf({
          imports: [BackpressureModule.forRoot({ gauges: { one: { limit: 1 } } })],
          controllers: [DoubleController],
          providers: [{ provide: APP_INTERCEPTOR, useExisting: BackpressureInterceptor }],
        }),
      );
    });
    afterEach(() => running.close());

    it('a single request on a limit-1 gauge (global interceptor + @Limited, a gate between)', async () => {
      const call = send(running.url, '/d');
      await until(() => ready.listenerCount('go') > 0, 'the request waits at the gate');
      ready.emit('go');
      const reply = await call.reply;
      expect(reply.status).toBe(200);
    });
  },
);
