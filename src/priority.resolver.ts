import type { ExecutionContext } from '@nestjs/common';
import { describeValue as show } from './core/config-value.util';
import { GaugeConfigError } from './core/gauge.errors';
import type { AcquireOptions } from './core/gauge.interface';
import {
  DEFAULT_PRIORITY,
  isPriority,
  PRIORITIES,
  type PriorityLevel,
} from './core/priority/priority.level';

/**
 * Decides a call's priority from its context (the gauge option `priority`): e.g. from the route,
 * the authenticated user's plan, or a trusted internal header (`trustedPriorityHeader`). Called
 * once per call, before the slot is taken; keep it cheap. A resolver that throws or returns
 * something that is not a level gives `normal` (with one process warning), never a 500.
 */
export type PriorityResolver = (context: ExecutionContext) => PriorityLevel;

/** What a route's calls get their priority from: a fixed level (`@Priority`) or the gauge's resolver. */
export type RoutePriority = PriorityLevel | PriorityResolver;

/** One frozen options object per level, so a fail-fast acquire with a priority allocates nothing. */
const AT_LEVEL = Object.fromEntries(
  PRIORITIES.map((level) => [level, Object.freeze({ priority: level })]),
) as Record<PriorityLevel, AcquireOptions>;

/** The acquire options for `level` (shared, frozen). */
export function acquireAt(level: PriorityLevel): AcquireOptions {
  return AT_LEVEL[level];
}

const warned = new WeakSet<PriorityResolver>();

/** The call's level: the route's fixed one, or what the resolver says, `normal` when it fails. */
export function priorityOf(priority: RoutePriority, context: ExecutionContext): PriorityLevel {
  if (typeof priority === 'string') return priority;
  let level: unknown;
  try {
    level = priority(context);
  } catch (error) {
    warnOnce(priority, () => `threw ${String(error)}`);
    return DEFAULT_PRIORITY;
  }
  if (isPriority(level)) return level;
  warnOnce(priority, () => `returned ${show(level)}, not one of ${PRIORITIES.join(', ')}`);
  return DEFAULT_PRIORITY;
}

/** `what` is rendered only for the first warning, and never throws (a value may refuse `String()`). */
function warnOnce(resolver: PriorityResolver, describe: () => string): void {
  if (warned.has(resolver)) return;
  warned.add(resolver);
  let what: string;
  try {
    what = describe();
  } catch {
    what = 'threw or returned a value that cannot be shown';
  }
  process.emitWarning(
    `A gauge's priority resolver ${what}; the call (and any like it) counts as 'normal'`,
    'BackpressurePriorityWarning',
  );
}

/** Checks the gauge option `priority` at bootstrap. */
export function assertPriorityResolver(
  where: string,
  value: unknown,
): asserts value is PriorityResolver {
  if (typeof value !== 'function') {
    throw new GaugeConfigError(
      `${where}: option "priority" must be a function (context: ExecutionContext) => 'critical' | 'high' | 'normal' | 'low', got ${show(value)}`,
    );
  }
}
