import type { Gauge } from './gauge.interface';
import type { ResolvedGaugeOptions } from './resolved-gauge-options';

/**
 * Where a gauge counts its slots. The default keeps them in this process (`MemoryGaugeStore`); a
 * shared store (Redis) makes one limit hold across replicas. Stores build gauges so each can bring
 * its own waiting and failure behaviour while the Nest layer sees one `Gauge` shape.
 */
export interface GaugeStore {
  /** Builds the gauge for one validated configuration. */
  createGauge(options: ResolvedGaugeOptions): Gauge;
  /** Frees connections and timers at shutdown. */
  close?(): Promise<void> | void;
}

// Transitional: test/redis/replicas.spec.ts still requires MemoryGaugeStore from this compiled
// file. Drop this line once it requires `core/memory-gauge.store` (its own owner's change).
export { MemoryGaugeStore } from './memory-gauge.store';
