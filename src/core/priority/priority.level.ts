import { describeValue as show } from '../config-value.util';
import { GaugeConfigError } from '../gauge.errors';

/**
 * How much a caller matters under overload, highest first (after Google SRE's criticality):
 * `critical` (health checks, checkout), `high`, `normal` (the default), `low` (batch, crawlers).
 * Lower levels are shed first; a queue serves higher levels first.
 */
export type PriorityLevel = 'critical' | 'high' | 'normal' | 'low';

/** Every level, highest first. */
export const PRIORITIES: readonly PriorityLevel[] = ['critical', 'high', 'normal', 'low'];

/** What a caller without a priority gets. */
export const DEFAULT_PRIORITY: PriorityLevel = 'normal';

/** A level as an index: 0 = `critical` … 3 = `low`; lower is more important. */
export type PriorityRank = 0 | 1 | 2 | 3;

/** The rank of `normal`, which every caller without a priority has. */
export const NORMAL_RANK: PriorityRank = 2;

/** How many levels there are. */
export const LEVEL_COUNT = 4;

/** The rank of a level, or undefined for anything that is not one (a typo, a number, null). */
export function rankOf(value: unknown): PriorityRank | undefined {
  switch (value) {
    case 'critical':
      return 0;
    case 'high':
      return 1;
    case 'normal':
      return 2;
    case 'low':
      return 3;
    default:
      return undefined;
  }
}

/** True for one of the four levels. */
export function isPriority(value: unknown): value is PriorityLevel {
  return rankOf(value) !== undefined;
}

/** Checks a level given in code or config, naming where it came from. */
export function assertPriority(where: string, value: unknown): asserts value is PriorityLevel {
  if (!isPriority(value)) {
    throw new GaugeConfigError(
      `${where} must be one of ${PRIORITIES.map((level) => `'${level}'`).join(', ')}, got ${show(value)}`,
    );
  }
}
