import type { GaugeStore } from './gauge-store.interface';
import type { ResolvedGaugeOptions } from './resolved-gauge-options';
import { PressureGauge } from './pressure-gauge';

/** The default store: slots counted in this process, nothing to install or connect. */
export class MemoryGaugeStore implements GaugeStore {
  createGauge(options: ResolvedGaugeOptions): PressureGauge {
    return new PressureGauge(options);
  }
}
