import type { GaugeOptions } from './core/gauge-options';
import type { GaugeStore } from './core/gauge-store.interface';
import type { PartitionConfig, PartitionResolver } from './partition.resolver';
import type { PriorityResolver } from './priority.resolver';
import type { RefusalHook } from './refusal.hook';

/** One gauge as configured in the module: the core options plus where its slots are counted. */
export interface GaugeConfig extends Omit<GaugeOptions, 'partition'> {
  /** Overrides the module's `store` for this gauge (e.g. keep one gauge local while others share Redis). */
  store?: GaugeStore | undefined;
  /**
   * Each call's priority under overload, from its ExecutionContext (default: `normal`, or the
   * route's `@Priority`, which wins). See `trustedPriorityHeader` for a header set by internal
   * callers. On a shared (Redis) gauge it orders this instance's waiters only.
   */
  priority?: PriorityResolver | undefined;
  /**
   * Told of each refusal of this gauge; may log it and reshape it (status 429 / 503, body,
   * message). Replaces the module's `onRefusal` for this gauge.
   */
  onRefusal?: RefusalHook | undefined;
  /**
   * Per-key fairness: whose call each is, from its ExecutionContext (a tenant, user, API key,
   * IP), either the resolver alone or `{ key, limit?, maxKeys? }` (see `PartitionOptions`). Under
   * overload a key over its fair share is refused first (429, reason `key-over-share`) and a
   * queue serves the others first. A shared (Redis) gauge enforces it across every instance.
   */
  partition?: PartitionResolver | PartitionConfig | undefined;
}

/**
 * What to do, at bootstrap, with a gauge name used by `@Limited` or `@InjectGauge` but configured
 * nowhere (neither in `gauges` nor listed by a `forFeature()`): log a warning, fail the start
 * with a `GaugeConfigError`, or say nothing (the gauge gets the defaults either way).
 */
export type UnknownGaugesPolicy = 'warn' | 'error' | 'ignore';

/**
 * What `BackpressureModule.forRoot()` / `forRootAsync()` accept. Checked as a whole when the
 * module is declared or its factory returns: an unknown key or a value of the wrong type fails the
 * bootstrap with a `GaugeConfigError` naming the option and the value given.
 */
export interface BackpressureModuleOptions {
  /** Slots for every gauge not given its own `limit` (default 10). */
  defaultLimit?: number | undefined;
  /** Gauges by name; a name used by `@Limited` or `@InjectGauge` but absent here gets the defaults. */
  gauges?: Record<string, GaugeConfig> | undefined;
  /**
   * Where slots are counted for every gauge without its own `store` (default: in memory). A
   * `RedisGaugeStore` makes each limit hold across every instance sharing the Redis.
   */
  store?: GaugeStore | undefined;
  /**
   * Most gauges kept for names first used after bootstrap (default 1000), e.g. by
   * `registry.get(nameFromTheRequest)`, so client-chosen names cannot grow the heap. At the cap,
   * idle ones (no slot held, nobody queued) are evicted, least recently used first; with none
   * idle, `get` throws `GaugeCapacityException` (503). Gauges configured here, named by
   * `@Limited`, injected with `@InjectGauge` or looked up during bootstrap are never counted nor
   * evicted. 0 allows none.
   */
  maxDynamicGauges?: number | undefined;
  /**
   * A name used by `@Limited` / `@InjectGauge` but configured nowhere — likely a typo — is
   * reported at bootstrap: `'warn'` (the default once any gauge is configured, here or in a
   * `forFeature()`), `'error'` (fail the start), `'ignore'` (the default when nothing is
   * configured, so a zero-config app stays silent).
   */
  unknownGauges?: UnknownGaugesPolicy | undefined;
  /**
   * Told of every refusal the module answers (`@Limited` calls, and gauge errors that
   * `GaugeErrorFilter` answers), for gauges without their own `onRefusal`: return nothing to
   * observe only (a log line), or a `RefusalShape` (status 429 / 503, body, message). `Retry-After`
   * stays the gauge's; a hook that throws or returns something invalid leaves the default refusal
   * (one process warning).
   */
  onRefusal?: RefusalHook | undefined;
  /**
   * With `@nestjs/swagger` installed, every `@Limited` HTTP route documents its 429 (and 503 where
   * its gauge's store can be down) in the OpenAPI document (default `true`). `false` writes
   * nothing, e.g. when an `onRefusal` hook answers with another status, or the routes document
   * their refusals themselves.
   */
  openApi?: boolean | undefined;
}
