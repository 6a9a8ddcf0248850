import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import {
  Controller,
  Get,
  Module,
  type ExecutionContext,
  type INestApplication,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Redis } from 'ioredis';
import { BackpressureModule, Limited } from '../../src';
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

/** The tenant a request says it is (Express and Fastify alike). */
const tenant = (context: ExecutionContext): string | undefined => {
  const value = context.switchToHttp().getRequest<{ headers: Record<string, unknown> }>().headers[
    'x-tenant'
  ];
  return typeof value === 'string' ? value : undefined;
};

@Controller()
class TenantController {
  @Get('work')
  @Limited('tenants')
  async work() {
    entered++;
    await gate;
    return 'done';
  }
}

describeRedis('Per-key fairness over HTTP, two app instances sharing one Redis', () => {
  const prefix = uniquePrefix('partition-http');
  const apps: INestApplication[] = [];
  let redis: Redis;

  /** One instance of the app: its own store (connections, lease ids), the same Redis and prefix. */
  const start = async (platform: string) => {
    @Module({
      imports: [
        BackpressureModule.forRoot({
          store: new RedisGaugeStore({ redis: REDIS_URL, keyPrefix: prefix, logger: new Logs() }),
          gauges: { tenants: { limit: 4, partition: { key: tenant, limit: 2 } } },
        }),
      ],
      controllers: [TenantController],
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
  const call = (url: string, key: string) => fetch(`${url}/work`, { headers: { 'x-tenant': key } });

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
    it(`a tenant at partition.limit gets 429 key-over-share on either instance, others are served (${platform})`, async () => {
      const [one, two] = [await start(platform), await start(platform)];
      void closeGate();
      const held = [call(one, 'acme'), call(two, 'acme')];
      await until(() => entered === 2, 'acme holds two slots, one per instance');

      for (const url of [one, two]) {
        const refused = await call(url, 'acme');
        expect(refused.status).toBe(429);
        expect(await refused.json()).toMatchObject({ reason: 'key-over-share' });
      }
      held.push(call(two, 'globex'), call(one, 'globex'));
      await until(() => entered === 4, 'globex gets the other two');
      const full = await call(one, 'initech');
      expect(full.status).toBe(429);
      expect(await full.json()).toMatchObject({ reason: 'full' });

      open();
      expect((await Promise.all(held)).map((response) => response.status)).toEqual([
        200, 200, 200, 200,
      ]);
      await until(
        async () =>
          (await redis.keys(`${prefix}{tenants}*`)).filter((key) => !key.endsWith(':limit'))
            .length === 0,
        'the leases and every per-key set are gone',
      );
    });
  }
});
