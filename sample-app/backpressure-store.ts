import { Logger } from '@nestjs/common';
import { type GaugeStore } from '../src';
import { RedisGaugeStore } from '../src/redis';

/**
 * Where the sample app counts its slots. Without `BACKPRESSURE_REDIS_URL`: `undefined`, the default
 * in-memory store, so each instance enforces its own limits. With it (e.g. `redis://127.0.0.1:6379`):
 * a Redis store, so every instance started with the same URL shares each gauge's limit — 10 on
 * `/request` means 10 across all of them. While Redis is unreachable the gauges fail closed (503);
 * `BACKPRESSURE_FAIL_OPEN=N` makes them fail open to N slots per instance instead.
 */
export function storeFromEnv(env: NodeJS.ProcessEnv = process.env): GaugeStore | undefined {
  const url = env.BACKPRESSURE_REDIS_URL;
  if (!url) return undefined;
  const failOpen = Number(env.BACKPRESSURE_FAIL_OPEN);
  return new RedisGaugeStore({
    redis: url,
    keyPrefix: env.BACKPRESSURE_REDIS_PREFIX ?? 'backpressure-sample:',
    whenStoreDown: failOpen > 0 ? { localLimit: failOpen } : 'fail-closed',
    logger: new Logger('Backpressure'),
  });
}
