import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import { Controller, Get, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Redis } from 'ioredis';
import { BackpressureModule, Limited, Priority } from '../../src';
import { RedisGaugeStore } from '../../src/redis';
import { Logs, until } from './support/helpers';
import {
  closeClient,
  deleteKeys,
  describeWithRedis,
  REDIS_URL,
  uniquePrefix,
} from './support/redis-env';

const describeRedis = describeWithRedis();

/** Lets a test decide when the handlers holding slots finish. */
let gate: Promise<void> = Promise.resolve();
let open: () => void = () => undefined;
const closeGate = () => (gate = new Promise<void>((resolve) => (open = resolve)));
let entered = 0;

@Controller()
@Limited('api')
class LevelsController {
  @Get('work')
  async work() {
    entered++;
    await gate;
    return 'done';
  }

  @Get('checkout')
  @Priority('critical')
  async checkout() {
    entered++;
    await gate;
    return 'done';
  }
}

describeRedis('Priorities over HTTP, two fail-fast app instances sharing one Redis', () => {
  const prefix = uniquePrefix('priority-http');
  const apps: INestApplication[] = [];
  let redis: Redis;

  /** One instance of the app: its own store (connections, lease ids), the same Redis and prefix. */
  const start = async (platform: string) => {
    @Module({
      imports: [
        BackpressureModule.forRoot({
          store: new RedisGaugeStore({ redis: REDIS_URL, keyPrefix: prefix, logger: new Logs() }),
          gauges: { api: { limit: 3 } },
        }),
      ],
      controllers: [LevelsController],
    })
    class AppModule {}
    const adapter = platform === 'express' ? new ExpressAdapter() : new FastifyAdapter();
    const app = await NestFactory.create(AppModule, adapter, {
      logger: false,
      forceCloseConnections: true,
    });
    apps.push(app);
    await app.listen(0, '127.0.0.1');
    return (await app.getUrl()).replace('[::1]', '127.0.0.1');
  };
  const call = (url: string, path: 'work' | 'checkout') => fetch(`${url}/${path}`);

  beforeAll(() => {
    redis = new Redis(REDIS_URL);
  });
  afterEach(async () => {
    open();
    await Promise.all(apps.splice(0).map((app) => app.close()));
    entered = 0;
    await deleteKeys(redis, prefix);
  });
  afterAll(async () => {
    await closeClient(redis);
  });

  for (const platform of ['express', 'fastify']) {
    it(`keeps a slot for critical routes of either instance: normal traffic gets 429 shed-priority (${platform})`, async () => {
      const [one, two] = [await start(platform), await start(platform)];
      void closeGate();
      const held = [call(two, 'checkout')]; // a critical call: the levels are counted from now on
      await until(() => entered === 1, 'the checkout holds a slot');
      held.push(call(one, 'work'));
      await until(() => entered === 2, 'a normal call takes the next');
      const shed = await call(one, 'work'); // the last free slot is kept for critical calls
      expect(shed.status).toBe(429);
      expect(await shed.json()).toMatchObject({ reason: 'shed-priority' });
      expect((await call(two, 'work')).status).toBe(429);
      held.push(call(one, 'checkout'));
      await until(() => entered === 3, 'a critical call on the other instance gets it');
      const full = await call(two, 'checkout');
      expect(full.status).toBe(429);
      expect(await full.json()).toMatchObject({ reason: 'full' });

      open();
      expect((await Promise.all(held)).map((response) => response.status)).toEqual([200, 200, 200]);
    });
  }
});
