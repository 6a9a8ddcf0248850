import type { LimitPolicyFactory } from '../limit-policy';
import { AdaptiveLimit, type WindowSummary } from './adaptive-limit';
import {
  number,
  resolveAdaptiveOptions,
  type AdaptiveLimitOptions,
  type ResolvedAdaptiveOptions,
} from './adaptive-options';

/** Gradient2's own options, beside the common ones. */
export interface Gradient2Options extends AdaptiveLimitOptions {
  /**
   * How much slower than the baseline a window may be before the limit comes down (1.1: a tenth
   * slower). Higher keeps more throughput, lower keeps latency closer to the baseline. Default 1.1:
   * the baseline is measured with no queue (as Envoy's minRTT), not a long-run average as in
   * Netflix's Gradient2 (whose tolerance is 1.5); under overload the limit settles near
   * `tolerance × capacity + queueSize` (at 1.25 a pool of 10 was held at 14-15, a queue of 4-5).
   */
  readonly tolerance?: number | undefined;
  /**
   * How far each window moves the limit towards a lower target, from 0 to 1. Default 0.5: a
   * capacity cut is followed within a second or two (at 0.2 it took 3 s and more, with the queue
   * and latency of the old limit meanwhile).
   */
  readonly smoothing?: number | undefined;
  /**
   * Slots added on top of what the gradient allows, so the limit can probe upwards: a number, or
   * a function of the current limit. Default `Math.sqrt(limit) / 2` (at least 1): small enough
   * that a small limit does not queue much.
   */
  readonly queueSize?: number | ((limit: number) => number) | undefined;
}

const OWN = ['tolerance', 'smoothing', 'queueSize'];

/**
 * Gradient2 (after Netflix concurrency-limits): the limit follows the ratio of the no-load
 * latency to the current one. While a window is within `tolerance` of the baseline the limit
 * grows by `queueSize`; slower, it shrinks in proportion (at most by half a window), smoothed,
 * and by half at once when the window is twice as slow as tolerated or worse.
 * Drops shrink it further, in proportion to their share.
 */
export class Gradient2Limit extends AdaptiveLimit {
  constructor(
    options: ResolvedAdaptiveOptions,
    private readonly tolerance: number,
    private readonly smoothing: number,
    private readonly queueSize: (limit: number) => number,
  ) {
    super(options);
  }

  protected next(estimate: number, window: WindowSummary): number {
    let gradient = Number.isNaN(window.latencyMs)
      ? 0.5
      : Math.max(0.5, Math.min(1, (this.tolerance * window.baselineMs) / window.latencyMs));
    gradient = Math.max(0.5, gradient * (1 - window.dropRatio));
    const target = estimate * gradient + this.queueSize(estimate);
    // Within tolerance (no sign of a queue): take the step at once, so spare capacity is found
    // quickly. Slower: move towards the target smoothly, so one slow window does not halve it.
    if (gradient >= 1) return target;
    // Twice as slow as tolerated or worse (a capacity cut, a start far too high): halve at once.
    // A window's median, not one slow call, says so.
    if (gradient <= 0.5) return target;
    return estimate * (1 - this.smoothing) + target * this.smoothing;
  }
}

/**
 * An adaptive limit for work whose latency rises with load (a database, a downstream service):
 * the default choice. See `Gradient2Options`; `gradient2()` with no options works untuned.
 */
export function gradient2(options: Gradient2Options = {}): LimitPolicyFactory {
  return {
    policy: 'gradient2',
    options,
    create(where) {
      const common = resolveAdaptiveOptions(where, options, OWN);
      const tolerance = number(where, 'tolerance', options.tolerance, 1.1, 1, 100);
      const smoothing = number(where, 'smoothing', options.smoothing, 0.5, 0.01, 1);
      return new Gradient2Limit(
        common,
        tolerance,
        smoothing,
        queueFunction(where, options.queueSize),
      );
    },
  };
}

function queueFunction(
  where: string,
  value: Gradient2Options['queueSize'],
): (limit: number) => number {
  if (typeof value === 'function') {
    return (limit) => {
      const size = value(limit);
      return Number.isFinite(size) && size > 0 ? size : 1;
    };
  }
  const fixed = number(where, 'queueSize', value, Number.NaN, 0, 1_000_000);
  return Number.isNaN(fixed) ? (limit) => Math.max(1, Math.sqrt(limit) / 2) : () => fixed;
}
