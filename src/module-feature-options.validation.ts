import { describeValue as show, isPlainObject } from './core/config-value.util';
import { GaugeConfigError } from './core/gauge.errors';
import { assertGaugeName, DEFAULT_LIMIT } from './core/gauge-options';
import type { GaugeConfig } from './backpressure-options.interface';
import { validateGauges } from './module-options.validation';

/** What one `forFeature()` declares, checked: kept by its module and merged at bootstrap. */
export interface FeatureGauges {
  /** Every gauge name the feature lists, configured here or not, in the order given. */
  readonly names: readonly string[];
  /** The gauges it configures (given at least one option), as given. */
  readonly configured: Readonly<Record<string, GaugeConfig>>;
}

const WHERE = 'BackpressureModule.forFeature()';
const KEYS = ['gauges'];

/**
 * Checks what `forFeature()` was given, where the feature module is declared: nothing, or
 * `{ gauges }` with an array of names or an object of gauge options by name. Each gauge's options
 * are checked as in `forRoot` (the module's own `defaultLimit` is applied at bootstrap, when the
 * features are merged into the registry).
 */
export function validateFeatureOptions(value: unknown): FeatureGauges {
  if (value === undefined) return { names: [], configured: {} };
  if (!isPlainObject(value)) {
    throw new GaugeConfigError(
      `${WHERE} takes { gauges }: an array of gauge names or an object of gauge options by name, got ${show(value)}`,
    );
  }
  for (const key of Object.keys(value)) {
    if (!KEYS.includes(key)) {
      throw new GaugeConfigError(`${WHERE}: unknown option "${key}" (known: ${KEYS.join(', ')})`);
    }
  }
  const { gauges } = value;
  if (gauges === undefined) return { names: [], configured: {} };
  if (Array.isArray(gauges)) {
    for (const name of gauges as unknown[]) {
      assertGaugeName(name, `${WHERE}: option "gauges": a gauge name`);
    }
    return { names: [...new Set(gauges as string[])], configured: {} };
  }
  if (!isPlainObject(gauges)) {
    throw new GaugeConfigError(
      `${WHERE}: option "gauges" must be an array of gauge names or an object of gauge options by name, such as { pdf: { limit: 4 } }, got ${show(gauges)}`,
    );
  }
  validateGauges(gauges, DEFAULT_LIMIT, WHERE);
  const configured: Record<string, GaugeConfig> = {};
  for (const [name, config] of Object.entries(gauges as Record<string, GaugeConfig>)) {
    if (Object.keys(config).length > 0) configured[name] = config;
  }
  return { names: Object.keys(gauges), configured };
}
