// A consumer of `nestjs-backpressure/redis`, compiled by ../consumer-build.mjs with ioredis
// installed and `skipLibCheck: false`, beside root.ts. It names every export of the subpath.
import { Redis } from 'ioredis';
import { BackpressureModule, type GaugeStore } from 'nestjs-backpressure';
import {
  RedisGaugeStore,
  type RedisGaugeStoreOptions,
  type RedisState,
  type StoreLogger,
} from 'nestjs-backpressure/redis';

const logger: StoreLogger = console;

/** A store from a URL (ioredis loaded on demand) or from a client the app already has. */
export function storeFor(url: string, client?: Redis): GaugeStore {
  const options: RedisGaugeStoreOptions = {
    redis: client ?? url,
    keyPrefix: process.env.KEY_PREFIX ?? 'consumer:',
    instanceId: process.env.HOSTNAME, // may be unset: the option is then not given
    whenStoreDown: { localLimit: 1 },
    logger,
  };
  const store = new RedisGaugeStore(options);
  const state: RedisState = store.state;
  logger.log(`store ${store.instanceId} ${state}`);
  return store;
}

export const redisModule = BackpressureModule.forRootAsync({
  useFactory: () => ({
    store: storeFor('redis://127.0.0.1:6379', new Redis({ lazyConnect: true })),
  }),
});
