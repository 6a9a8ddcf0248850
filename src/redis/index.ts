/*
 * The public API of `nestjs-backpressure/redis`: a gauge store shared through Redis. Only this
 * entry mentions `ioredis` (an optional peer), so apps that do not use Redis never need it, not
 * even for type-checking. Everything else under src/redis is internal.
 */
export { RedisGaugeStore, type RedisState } from './redis-gauge-store';
export type { RedisGaugeStoreOptions } from './redis-gauge-store.options';
export type { StoreLogger } from '../core/shared/store-health';
