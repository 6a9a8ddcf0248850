import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { GaugeConfigError } from './core/gauge.errors';
import type { Gauge } from './core/gauge.interface';
import { assertDefaultLimit, DEFAULT_LIMIT, resolveGaugeOptions } from './core/gauge-options';
import { MemoryGaugeStore, type GaugeStore } from './core/gauge-store.interface';
import type { BackpressureModuleOptions, GaugeConfig } from './backpressure-options.interface';
import { BACKPRESSURE_OPTIONS } from './backpressure.module-definition';

/**
 * Every gauge of the application by name. Configured gauges are built (and validated) when the
 * module starts, so bad options fail the bootstrap; other names get a default gauge on first use.
 */
@Injectable()
export class GaugeRegistry implements OnApplicationShutdown {
  private readonly logger = new Logger('Backpressure');
  private readonly gauges = new Map<string, Gauge>();
  private readonly defaultLimit: number;
  private readonly defaultStore: GaugeStore;
  private readonly stores = new Set<GaugeStore>();

  constructor(@Inject(BACKPRESSURE_OPTIONS) options: BackpressureModuleOptions) {
    if (options === null || typeof options !== 'object') {
      throw new GaugeConfigError(
        `BackpressureModule: options must be an object or a number, got ${String(options)}`,
      );
    }
    this.defaultLimit = options.defaultLimit ?? DEFAULT_LIMIT;
    assertDefaultLimit(this.defaultLimit);
    this.defaultStore = options.store ?? new MemoryGaugeStore();
    for (const [name, config] of Object.entries(options.gauges ?? {})) {
      this.gauges.set(name, this.build(name, config));
    }
  }

  /** The gauge `name`, created with the default limit if it was not configured. */
  get(name: string): Gauge {
    return this.gauges.get(name) ?? this.create(name);
  }

  /** Whether `name` exists yet (configured, or used since start). */
  has(name: string): boolean {
    return this.gauges.has(name);
  }

  /** All gauges built so far, for health checks and metrics. */
  list(): Gauge[] {
    return [...this.gauges.values()];
  }

  async onApplicationShutdown(): Promise<void> {
    for (const gauge of this.gauges.values()) await gauge.close?.();
    for (const store of this.stores) await store.close?.();
  }

  private create(name: string): Gauge {
    const gauge = this.build(name, {});
    this.gauges.set(name, gauge);
    this.logger.debug?.(`gauge "${name}" created with the default limit ${this.defaultLimit}`);
    return gauge;
  }

  private build(name: string, config: GaugeConfig): Gauge {
    if (config === null || typeof config !== 'object') {
      throw new GaugeConfigError(
        `Gauge "${name}": options must be an object, got ${String(config)}`,
      );
    }
    const { store = this.defaultStore, ...options } = config;
    const gauge = store.createGauge(resolveGaugeOptions(name, options, this.defaultLimit));
    this.stores.add(store);
    return gauge;
  }
}
