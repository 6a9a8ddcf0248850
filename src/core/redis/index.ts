export * from './redis-gauge-store';
export * from './redis-gauge-store.options';
export * from './redis-gauge';
export type { RedisState, StoreLogger } from './redis-health';
