import 'reflect-metadata';
import { expect, it } from '@jest/globals';
import { Controller, Get } from '@nestjs/common';
import { Redis } from 'ioredis';
import { BackpressureModule, Limited, type BackpressureModuleOptions } from '../../src';
import { RedisGaugeStore } from '../../src/redis';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from '../e2e/support/apps';
import { Logs, until } from './support/helpers';
import { HandlerGate } from './support/handler-gate';
import { closeClient, describeWithRedis, REDIS_URL } from './support/redis-env';
import { sharedRedis } from './support/shared-redis';

const describeRedis = describeWithRedis();

/** Lets a test decide when the handlers holding slots finish. */
const gate = new HandlerGate();

@Controller()
class LimitedController {
  @Get('shared')
  @Limited('shared')
  async shared() {
    await gate.pass();
    return 'done';
  }

  @Get('down')
  @Limited('down')
  down() {
    return 'never';
  }
}

/** Nothing listens here: a Redis that is down from the start. */
const DEAD_URL = 'redis://127.0.0.1:1';

describeRedis('BackpressureModule with a RedisGaugeStore', () => {
  let app: Running | undefined;
  const { prefix, redis } = sharedRedis('module', {
    beforeCleanup: async () => {
      gate.open();
      await app?.close();
      app = undefined;
      gate.entered = 0;
    },
  });

  const start = async (
    platform: Platform,
    options: BackpressureModuleOptions | (() => BackpressureModuleOptions),
  ) => {
    const imports =
      typeof options === 'function'
        ? [BackpressureModule.forRootAsync({ useFactory: options })]
        : [BackpressureModule.forRoot(options)];
    app = await startApp(platform, moduleOf({ imports, controllers: [LimitedController] }));
    return app.url;
  };

  for (const platform of PLATFORMS) {
    it(`answers 429 with Retry-After when the shared gauge is full (${platform})`, async () => {
      const url = await start(platform, {
        store: new RedisGaugeStore({ redis: REDIS_URL, keyPrefix: prefix, logger: new Logs() }),
        gauges: { shared: { limit: 2 } },
      });
      gate.close();
      const held = [fetch(`${url}/shared`), fetch(`${url}/shared`)];
      await until(() => gate.entered === 2, 'two handlers hold both slots');
      expect(await redis.zcard(`${prefix}{shared}:leases`)).toBe(2);

      const refused = await fetch(`${url}/shared`);
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('1');
      gate.open();
      expect((await Promise.all(held)).map((r) => r.status)).toEqual([200, 200]);
      await until(
        async () => (await redis.zcard(`${prefix}{shared}:leases`)) === 0,
        'slots are released',
      );
    });

    it(`answers 503 with Retry-After when Redis is down and the gauge fails closed (${platform})`, async () => {
      const logs = new Logs();
      const url = await start(platform, {
        gauges: {
          down: {
            limit: 1,
            retryAfterSeconds: 7,
            store: new RedisGaugeStore({ redis: DEAD_URL, logger: logs }),
          },
        },
      });
      const responses = await Promise.all([1, 2, 3].map(() => fetch(`${url}/down`)));
      expect(responses.map((r) => r.status)).toEqual([503, 503, 503]);
      expect(responses[0]?.headers.get('retry-after')).toBe('7');
      expect(await responses[0]?.json()).toEqual({
        statusCode: 503,
        message: 'Service unavailable',
        error: 'Service Unavailable',
        reason: 'unavailable',
      });
      expect(logs.warnings).toEqual([
        expect.stringContaining('redis://127.0.0.1:1 is unreachable'),
      ]);
    });
  }

  it('takes an ioredis client through forRootAsync, and leaves that client open at shutdown', async () => {
    const client = new Redis(REDIS_URL);
    try {
      const url = await start('express', () => ({
        store: new RedisGaugeStore({ redis: client, keyPrefix: prefix, logger: new Logs() }),
        gauges: { shared: { limit: 1, queue: { size: 5, timeoutMs: 5000 } } },
      }));
      gate.close();
      const first = fetch(`${url}/shared`);
      await until(() => gate.entered === 1, 'the first handler holds the slot');
      const second = fetch(`${url}/shared`);
      await until(async () => (await redis.zcard(`${prefix}{shared}:leases`)) === 1, 'one lease');
      gate.open();
      expect((await Promise.all([first, second])).map((r) => r.status)).toEqual([200, 200]);
      expect(gate.entered).toBe(2);

      await app!.close();
      app = undefined;
      expect(await client.ping()).toBe('PONG');
    } finally {
      await closeClient(client);
    }
  });
});
