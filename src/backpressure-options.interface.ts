import type { GaugeOptions } from './core/gauge-options';
import type { GaugeStore } from './core/gauge-store.interface';

/** One gauge as configured in the module: the core options plus where its slots are counted. */
export interface GaugeConfig extends GaugeOptions {
  /** Overrides the module's `store` for this gauge (e.g. keep one gauge local while others share Redis). */
  store?: GaugeStore;
}

/** What `BackpressureModule.forRoot()` / `forRootAsync()` accept. */
export interface BackpressureModuleOptions {
  /** Slots for every gauge not given its own `limit` (default 10). */
  defaultLimit?: number;
  /** Gauges by name; a name used by `@Limited` or `@InjectGauge` but absent here gets the defaults. */
  gauges?: Record<string, GaugeConfig>;
  /**
   * Where slots are counted for every gauge without its own `store` (default: in memory). A
   * `RedisGaugeStore` makes each limit hold across every instance sharing the Redis.
   */
  store?: GaugeStore;
}
