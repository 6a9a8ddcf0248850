import 'reflect-metadata';
import {
  Controller,
  Get,
  Param,
  UseInterceptors,
  type CallHandler,
  type NestInterceptor,
} from '@nestjs/common';
import { Observable, of } from 'rxjs';
import { BackpressureModule, Limited } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send } from './support/http';
import { sleep, until } from '../support/wait';

const state = { now: 0, peak: 0, refreshed: 0, errors: [] as string[] };
const cache = new Map<string, unknown>();

/** Stale-while-revalidate: serve the cached value, and start a refresh at once (in the background). */
class Swr implements NestInterceptor {
  intercept(_c: unknown, next: CallHandler) {
    if (cache.has('k')) {
      next.handle().subscribe({
        next: (v) => {
          cache.set('k', v);
          state.refreshed++;
        },
        error: (e) => state.errors.push(String(e)),
      });
      return of(cache.get('k'));
    }
    return next.handle();
  }
}

@Controller('d')
@Limited('d')
class DetachedController {
  /** An async handler that returns a stream of work (e.g. an HttpService call after an await). */
  @Get(':id')
  @UseInterceptors(Swr)
  async data(@Param('id') id: string) {
    await sleep(30);
    return new Observable<string>((s) => {
      state.now++;
      state.peak = Math.max(state.peak, state.now);
      const t = setTimeout(() => {
        s.next(`v-${id}`);
        s.complete();
      }, 200);
      return () => {
        clearTimeout(t);
        state.now--;
      };
    });
  }
}

describe.each(PLATFORMS)(
  'a run after its chain ended (a background refresh), on %s',
  (platform: Platform) => {
    let running: Running;
    beforeEach(async () => {
      cache.clear();
      Object.assign(state, { now: 0, peak: 0, refreshed: 0, errors: [] });
      running = await startApp(
        platform,
        moduleOf({
          imports: [BackpressureModule.forRoot({ gauges: { d: { limit: 1 } } })],
          controllers: [DetachedController],
        }),
      );
    });
    afterEach(() => running.close());

    it('holds a slot of its own: the limit holds', async () => {
      cache.set('k', 'seed');
      const a = await send(running.url, '/d/a').reply; // cached answer; refresh a started in the background
      expect([a.status, a.body]).toEqual([200, 'seed']);
      // The refresh's handler returns its stream after the chain has ended; it streams in a slot.
      await until(() => state.now === 1, 'the refresh streams');
      expect(running.gauge('d').inFlight).toBe(1);
      cache.delete('k');
      const b = send(running.url, '/d/b'); // a normal request, while the refresh still streams
      await until(() => state.now === 2 || state.peak >= 2, 'two streams', 400).catch(
        () => undefined,
      );
      const rb = await b.reply;
      // Refused while the refresh held the only slot (or served after it ended), never both at once.
      expect(rb.status === 429 || state.refreshed === 1).toBe(true);
      expect(state.peak).toBeLessThanOrEqual(1);
    });
  },
);
