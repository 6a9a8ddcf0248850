import { describeValue as show } from './config-value.util';
import { GaugeConfigError } from './gauge.errors';
import type { Outcome } from './gauge-events';

/** One finished piece of work, as a limit policy sees it. */
export interface LimitSample {
  /** How long the slot was held (milliseconds). */
  readonly heldMs: number;
  /** How the work ended (see `Outcome`): what tells overload from a bug or a client's choice. */
  readonly outcome: Outcome;
  /** Slots held when this one was given back (including it), to tell a busy gauge from an idle one. */
  readonly inFlight: number;
  /**
   * When the slot was given back (milliseconds on the gauge's clock, `performance.now()`): lets a
   * policy group samples into windows of time without reading the clock again.
   */
  readonly at: number;
}

/**
 * Decides how many slots a gauge has. The gauge counts; the policy decides, from the samples it is
 * fed as slots are given back. A fixed number is the simplest policy; adaptive ones (issue: adaptive
 * limits) follow measured latency. A policy object belongs to one gauge (it keeps state).
 */
export interface LimitPolicy {
  /** The limit right now: a positive integer. */
  readonly limit: number;
  /**
   * True when the policy learns from samples; false lets the gauge skip the clock reads that
   * samples need (a fixed limit).
   */
  readonly samples: boolean;
  /**
   * The most it will ever answer, when it has a bound: a shared gauge stores it as the cap all
   * instances share, each adapting its own share under it. Absent: the current limit is the cap.
   */
  readonly max?: number | undefined;
  /** Feeds one sample; returns the limit from now on (the gauge applies a change at once). */
  update(sample: LimitSample): number;
}

/**
 * Builds the policy of one gauge. Configuration holds factories, not policies, so one option
 * object can configure several gauges without them sharing state.
 */
export interface LimitPolicyFactory {
  /** Names the algorithm in messages and metrics (e.g. `fixed`, `gradient2`). */
  readonly policy: string;
  /**
   * The options it was built from, when it has any to show: two factories of one `policy` with
   * equal options configure the same limit (a gauge configured in two places must agree).
   * Absent: only the same factory object counts as the same limit.
   */
  readonly options?: unknown;
  /** A fresh policy; throws `GaugeConfigError` naming `where` when its options are wrong. */
  create(where: string): LimitPolicy;
}

/** A limit that changes only when told to (`gauge.setLimit`): the default. */
export class FixedLimit implements LimitPolicy {
  readonly samples = false;

  constructor(public limit: number) {
    assertLimit('FixedLimit', limit);
  }

  update(): number {
    return this.limit;
  }
}

/** A limit is a positive safe integer; anything else is a configuration bug, named here. */
export function assertLimit(where: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new GaugeConfigError(
      `${where}: a limit must be an integer from 1 to Number.MAX_SAFE_INTEGER, got ${show(value)}`,
    );
  }
}

/** Whether `value` is a policy factory (as opposed to a plain number limit). */
export function isLimitPolicyFactory(value: unknown): value is LimitPolicyFactory {
  const candidate = value as Partial<LimitPolicyFactory> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.policy === 'string' &&
    typeof candidate.create === 'function'
  );
}
