import 'reflect-metadata';
import { expect, it } from '@jest/globals';
import { Controller, Get } from '@nestjs/common';
import { Limited } from '../../src';
import { until } from './support/helpers';
import { HandlerGate } from './support/handler-gate';
import { describeWithRedis } from './support/redis-env';
import { redisApps } from './support/redis-apps';
import { PLATFORMS } from '../e2e/support/apps';
import { tenantOf } from '../e2e/support/request-headers';
import { sharedRedis } from './support/shared-redis';

const describeRedis = describeWithRedis();

/** Lets a test decide when the handlers holding slots finish. */
const gate = new HandlerGate();

@Controller()
class TenantController {
  @Get('work')
  @Limited('tenants')
  async work() {
    await gate.pass();
    return 'done';
  }
}

describeRedis('Per-key fairness over HTTP, two app instances sharing one Redis', () => {
  const { prefix, leftovers } = sharedRedis('partition-http', {
    beforeCleanup: async () => {
      gate.open();
      await apps.closeAll();
      gate.entered = 0;
    },
  });
  const apps = redisApps(prefix, {
    gauges: { tenants: { limit: 4, partition: { key: tenantOf, limit: 2 } } },
    controllers: [TenantController],
  });
  const call = (url: string, key: string) => fetch(`${url}/work`, { headers: { 'x-tenant': key } });

  for (const platform of PLATFORMS) {
    it(`a tenant at partition.limit gets 429 key-over-share on either instance, others are served (${platform})`, async () => {
      const [one, two] = [await apps.start(platform), await apps.start(platform)];
      gate.close();
      const held = [call(one, 'acme'), call(two, 'acme')];
      await until(() => gate.entered === 2, 'acme holds two slots, one per instance');

      for (const url of [one, two]) {
        const refused = await call(url, 'acme');
        expect(refused.status).toBe(429);
        expect(await refused.json()).toMatchObject({ reason: 'key-over-share' });
      }
      held.push(call(two, 'globex'), call(one, 'globex'));
      await until(() => gate.entered === 4, 'globex gets the other two');
      const full = await call(one, 'initech');
      expect(full.status).toBe(429);
      expect(await full.json()).toMatchObject({ reason: 'full' });

      gate.open();
      expect((await Promise.all(held)).map((response) => response.status)).toEqual([
        200, 200, 200, 200,
      ]);
      await until(
        async () => (await leftovers('tenants')).length === 0,
        'the leases and every per-key set are gone',
      );
    });
  }
});
