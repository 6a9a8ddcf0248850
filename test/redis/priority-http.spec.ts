import 'reflect-metadata';
import { expect, it } from '@jest/globals';
import { Controller, Get } from '@nestjs/common';
import { Limited, Priority } from '../../src';
import { PLATFORMS } from '../e2e/support/apps';
import { until } from './support/helpers';
import { HandlerGate } from './support/handler-gate';
import { describeWithRedis } from './support/redis-env';
import { redisApps } from './support/redis-apps';
import { sharedRedis } from './support/shared-redis';

const describeRedis = describeWithRedis();

/** Lets a test decide when the handlers holding slots finish. */
const gate = new HandlerGate();

@Controller()
@Limited('api')
class LevelsController {
  @Get('work')
  async work() {
    await gate.pass();
    return 'done';
  }

  @Get('checkout')
  @Priority('critical')
  async checkout() {
    await gate.pass();
    return 'done';
  }
}

describeRedis('Priorities over HTTP, two fail-fast app instances sharing one Redis', () => {
  const { prefix } = sharedRedis('priority-http', {
    beforeCleanup: async () => {
      gate.open();
      await apps.closeAll();
      gate.entered = 0;
    },
  });
  const apps = redisApps(prefix, {
    gauges: { api: { limit: 3 } },
    controllers: [LevelsController],
  });
  const call = (url: string, path: 'work' | 'checkout') => fetch(`${url}/${path}`);

  for (const platform of PLATFORMS) {
    it(`keeps a slot for critical routes of either instance: normal traffic gets 429 shed-priority (${platform})`, async () => {
      const [one, two] = [await apps.start(platform), await apps.start(platform)];
      gate.close();
      const held = [call(two, 'checkout')]; // a critical call: the levels are counted from now on
      await until(() => gate.entered === 1, 'the checkout holds a slot');
      held.push(call(one, 'work'));
      await until(() => gate.entered === 2, 'a normal call takes the next');
      const shed = await call(one, 'work'); // the last free slot is kept for critical calls
      expect(shed.status).toBe(429);
      expect(await shed.json()).toMatchObject({ reason: 'shed-priority' });
      expect((await call(two, 'work')).status).toBe(429);
      held.push(call(one, 'checkout'));
      await until(() => gate.entered === 3, 'a critical call on the other instance gets it');
      const full = await call(two, 'checkout');
      expect(full.status).toBe(429);
      expect(await full.json()).toMatchObject({ reason: 'full' });

      gate.open();
      expect((await Promise.all(held)).map((response) => response.status)).toEqual([200, 200, 200]);
    });
  }
});
