import type { GaugeConfig } from './backpressure-options.interface';

/**
 * What `BackpressureModule.forFeature()` accepts: the gauges a feature module configures or uses.
 *
 * - `{ gauges: { pdf: { limit: 4 } } }` configures `pdf` (merged into the application's one
 *   registry: the same name configured elsewhere with other options fails the start);
 * - `{ gauges: ['reports'] }` (or `{ reports: {} }`) only declares that the module uses `reports`,
 *   configured in `forRoot` or another feature, or given the defaults.
 *
 * Either way the module gets an injection token for each gauge listed (`@InjectGauge(name)`) and
 * `GaugeRegistry`, also when the root module is not global.
 */
export interface BackpressureFeatureOptions {
  /**
   * The gauges the module configures (`{ pdf: { limit: 4 } }`) or only uses (`['reports']`, or
   * `{ reports: {} }`); each gets an injection token in the importing module.
   */
  gauges?: Record<string, GaugeConfig> | readonly string[] | undefined;
}
