import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { GaugeConfigError, withoutStackTrace } from './core/gauge.errors';
import type { Gauge } from './core/gauge.interface';
import { describeThrown } from './core/gauge-events';
import { assertGaugeName, resolveGaugeOptions } from './core/gauge-options';
import type { ResolvedGaugeOptions } from './core/resolved-gauge-options';
import type { GaugeStore } from './core/gauge-store.interface';
import { MemoryGaugeStore } from './core/memory-gauge.store';
import type { BackpressureModuleOptions } from './backpressure-options.interface';
import { BACKPRESSURE_OPTIONS } from './backpressure.module-definition';
import { DynamicGauges } from './dynamic-gauges.cache';
import { GaugeCatalog } from './gauge-config.catalog';
import { GaugeCapacityException, InvalidGaugeNameException } from './gauge-lookup.exception';
import { validateModuleOptions } from './module-options.validation';
import type { PartitionResolver } from './partition.resolver';
import type { PriorityResolver } from './priority.resolver';
import type { RefusalHook } from './refusal.hook';

/**
 * How a gauge came to exist: `pinned` (configured, named by `@Limited` or `@InjectGauge`, or looked
 * up while the app starts: a bounded set the code decides, kept until shutdown) or `dynamic` (first
 * looked up after bootstrap, often by a name a client chose: at most `maxDynamicGauges`, evictable).
 */
export type GaugeKind = 'pinned' | 'dynamic';

/** Told of a gauge of the registry: see `GaugeRegistry.onGauge`. */
type GaugeCreatedListener = (gauge: Gauge, kind: GaugeKind) => void;

/**
 * Every gauge of the application by name: one registry per application, holding the gauges
 * configured in `forRoot` and in every `forFeature()` module.
 *
 * Gauges that exist by the end of bootstrap — configured in `gauges`, named by `@Limited`,
 * injected with `@InjectGauge`, or looked up while the app starts — are pinned: built (and their
 * store checked) before the app serves, and kept until shutdown, since the interceptor and
 * injected services hold them. A name first seen later (often chosen by a client) gets a
 * "dynamic" gauge with the defaults; at most `maxDynamicGauges` of those are kept, and idle ones
 * are evicted (closed) to make room, so distinct names cannot grow the heap without bound.
 */
@Injectable()
export class GaugeRegistry implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Backpressure');
  private readonly pinned = new Map<string, Gauge>();
  private readonly dynamic: DynamicGauges;
  private readonly defaultLimit: number;
  private readonly defaultStore: GaugeStore;
  private readonly stores = new Set<GaugeStore>();
  private readonly priorities = new Map<string, PriorityResolver>();
  private readonly refusalHooks = new Map<string, RefusalHook>();
  private readonly moduleRefusalHook: RefusalHook | undefined;
  private readonly partitions = new Map<string, PartitionResolver>();
  /** Set once the app has started: from then on new names are dynamic and checked as input. */
  private bootstrapped = false;
  private watchers: readonly GaugeCreatedListener[] = [];

  /**
   * @param catalog the configuration merged with the `forFeature()` modules' (the module provides
   *   it); without it, `options` alone
   */
  constructor(
    @Inject(BACKPRESSURE_OPTIONS) options: BackpressureModuleOptions,
    @Optional() catalog?: GaugeCatalog,
  ) {
    const validated = catalog?.options ?? validateModuleOptions(options);
    this.defaultLimit = validated.defaultLimit;
    this.defaultStore = validated.store ?? new MemoryGaugeStore();
    this.dynamic = new DynamicGauges(validated.maxDynamicGauges, (name, gauge) =>
      this.evicted(name, gauge),
    );
    this.moduleRefusalHook = validated.onRefusal;
    for (const [name, gauge] of validated.gauges) {
      const { store, options: resolved, priority, onRefusal, partition } = gauge;
      this.pinned.set(name, this.build(store ?? this.defaultStore, resolved));
      if (priority !== undefined) this.priorities.set(name, priority);
      if (onRefusal !== undefined) this.refusalHooks.set(name, onRefusal);
      if (partition !== undefined) this.partitions.set(name, partition);
    }
  }

  /**
   * The gauge `name`, created with the default limit if it does not exist yet.
   *
   * After bootstrap a new name must be a non-blank string of at most
   * `MAX_RUNTIME_GAUGE_NAME_LENGTH` characters, or this throws `InvalidGaugeNameException`
   * (400); at the `maxDynamicGauges` cap with no idle dynamic gauge to evict it throws
   * `GaugeCapacityException` (503). A dynamic gauge may be evicted once idle, so look it up per
   * use rather than keeping it.
   */
  get(name: string): Gauge {
    return this.pinned.get(name) ?? this.dynamic.get(name) ?? this.create(name);
  }

  /** The gauge's `priority` resolver, if it was configured with one (for the interceptor). */
  priorityResolver(name: string): PriorityResolver | undefined {
    return this.priorities.get(name);
  }

  /**
   * The `onRefusal` hook for gauge `name`'s refusals: its own, else the module's; undefined when
   * neither is configured. Creates no gauge.
   */
  refusalHook(name: string): RefusalHook | undefined {
    return this.refusalHooks.get(name) ?? this.moduleRefusalHook;
  }

  /** The gauge's `partition` key resolver, if it was configured with one (for the interceptor). */
  partitionResolver(name: string): PartitionResolver | undefined {
    return this.partitions.get(name);
  }

  /** Whether `name` exists now (pinned, or dynamic and not evicted). */
  has(name: string): boolean {
    return this.pinned.has(name) || this.dynamic.has(name);
  }

  /**
   * All gauges that exist now, pinned first, for health checks and metrics; with `kind`, only the
   * pinned or only the dynamic ones.
   */
  list(kind?: GaugeKind): Gauge[] {
    if (kind === 'pinned') return [...this.pinned.values()];
    if (kind === 'dynamic') return [...this.dynamic.values()];
    return [...this.pinned.values(), ...this.dynamic.values()];
  }

  /**
   * Calls `listener(gauge, kind)` for every gauge that exists now (pinned first) and then for each
   * gauge created later, as it is created, so a metrics or health integration sees every gauge
   * whenever it starts. Returns what stops the calls. Synchronous, like gauge listeners: it must be
   * quick; one that throws is logged, never the caller's error. An evicted dynamic gauge is not
   * announced (it only stops being listed).
   */
  onGauge(listener: (gauge: Gauge, kind: GaugeKind) => void): () => void {
    this.watchers = [...this.watchers, listener];
    for (const gauge of this.pinned.values()) this.announce(listener, gauge, 'pinned');
    for (const gauge of this.dynamic.values()) this.announce(listener, gauge, 'dynamic');
    return () => {
      this.watchers = this.watchers.filter((each) => each !== listener);
    };
  }

  /** The app has started: gauges created from now on are dynamic. */
  onApplicationBootstrap(): void {
    this.bootstrapped = true;
  }

  /**
   * Nest calls this when the app shuts down (`app.close()`, or a signal with
   * `enableShutdownHooks()`): closes every gauge (their timers stop, pending waiters are rejected)
   * and then every store (a shared store's connections). Not for application code to call.
   */
  async onApplicationShutdown(): Promise<void> {
    for (const gauge of this.list()) await gauge.close?.();
    this.dynamic.clear();
    for (const store of this.stores) await store.close?.();
  }

  private create(name: string): Gauge {
    if (!this.bootstrapped) {
      assertGaugeName(name);
      const gauge = this.build(this.defaultStore, resolveGaugeOptions(name, {}, this.defaultLimit));
      this.pinned.set(name, gauge);
      this.created(gauge, 'pinned');
      return gauge;
    }
    const invalid = InvalidGaugeNameException.check(name);
    if (invalid !== undefined) {
      throw withoutStackTrace(() => new InvalidGaugeNameException(invalid));
    }
    if (!this.dynamic.makeRoom()) {
      throw withoutStackTrace(() => new GaugeCapacityException(this.dynamic.max));
    }
    const gauge = this.build(this.defaultStore, resolveGaugeOptions(name, {}, this.defaultLimit));
    this.dynamic.add(name, gauge);
    this.logger.debug?.(`gauge "${name}" created with the default limit ${this.defaultLimit}`);
    this.created(gauge, 'dynamic');
    return gauge;
  }

  private created(gauge: Gauge, kind: GaugeKind): void {
    for (const listener of this.watchers) this.announce(listener, gauge, kind);
  }

  private announce(listener: GaugeCreatedListener, gauge: Gauge, kind: GaugeKind): void {
    try {
      listener(gauge, kind);
    } catch (error) {
      this.logger.warn(
        `a listener of new gauges threw on "${gauge.name}": ${describeThrown(error)}`,
      );
    }
  }

  /**
   * Builds one gauge. Nothing is recorded unless it succeeds, so a store that fails once (a
   * driver missing, a connection refused) fails that call only, never later ones. While the app
   * starts, a failure becomes a `GaugeConfigError` naming the gauge, which fails the bootstrap.
   */
  private build(store: GaugeStore, options: ResolvedGaugeOptions): Gauge {
    let gauge: Gauge;
    try {
      gauge = store.createGauge(options);
    } catch (error) {
      if (this.bootstrapped) throw error;
      const why = error instanceof Error ? error.message : describeThrown(error);
      throw new GaugeConfigError(`Gauge "${options.name}": its store could not create it: ${why}`, {
        cause: error,
      });
    }
    this.stores.add(store);
    return gauge;
  }

  /** Closes an evicted gauge without waiting; its failure is logged, never thrown at a caller. */
  private evicted(name: string, gauge: Gauge): void {
    this.logger.debug?.(`idle gauge "${name}" evicted (option "maxDynamicGauges")`);
    const warn = (error: unknown) =>
      this.logger.warn(`closing evicted gauge "${name}" failed: ${describeThrown(error)}`);
    try {
      const closing = gauge.close?.();
      if (closing !== undefined) Promise.resolve(closing).catch(warn);
    } catch (error) {
      warn(error);
    }
  }
}
