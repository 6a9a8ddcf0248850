import type { Gauge } from './gauge.interface';
import type { ResolvedGaugeOptions } from './gauge-options';
import { PressureGauge } from './pressure-gauge';

/**
 * Where a gauge counts its slots. The default keeps them in this process; a shared store (Redis)
 * makes one limit hold across replicas. Stores build gauges so each can bring its own waiting and
 * failure behaviour while the Nest layer sees one `Gauge` shape.
 */
export interface GaugeStore {
  /** Builds the gauge for one validated configuration. */
  createGauge(options: ResolvedGaugeOptions): Gauge;
  /** Frees connections and timers at shutdown. */
  close?(): Promise<void> | void;
}

/** The default store: slots counted in this process, nothing to install or connect. */
export class MemoryGaugeStore implements GaugeStore {
  createGauge(options: ResolvedGaugeOptions): PressureGauge {
    return new PressureGauge(options);
  }
}
