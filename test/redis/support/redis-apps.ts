import type { Type } from '@nestjs/common';
import { BackpressureModule, type BackpressureModuleOptions } from '../../../src';
import { RedisGaugeStore } from '../../../src/redis';
import { moduleOf, startApp, type Platform, type Running } from '../../e2e/support/apps';
import { Logs } from './helpers';
import { REDIS_URL } from './redis-env';

/** Instances of one app sharing a Redis: what a suite starts, and closes after each test. */
export interface RedisApps {
  /** Starts one instance: its own store (connections, lease ids), the same Redis and prefix. */
  start(platform: Platform): Promise<string>;
  /** Closes every instance started (each closes its store). */
  closeAll(): Promise<void>;
}

/** Instances of the app of `controllers` and `gauges`, each on a free loopback port. */
export function redisApps(
  prefix: string,
  app: { gauges: BackpressureModuleOptions['gauges']; controllers: Type[] },
): RedisApps {
  const running: Running[] = [];
  return {
    async start(platform) {
      const store = new RedisGaugeStore({
        redis: REDIS_URL,
        keyPrefix: prefix,
        logger: new Logs(),
      });
      const module = moduleOf({
        imports: [BackpressureModule.forRoot({ store, gauges: app.gauges })],
        controllers: app.controllers,
      });
      const started = await startApp(platform, module);
      running.push(started);
      return started.url;
    },
    async closeAll() {
      await Promise.all(running.splice(0).map((instance) => instance.close()));
    },
  };
}
