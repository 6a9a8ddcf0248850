import type { LimitPolicyFactory } from '../limit-policy';
import { AdaptiveLimit, type WindowSummary } from './adaptive-limit';
import {
  number,
  resolveAdaptiveOptions,
  type AdaptiveLimitOptions,
  type ResolvedAdaptiveOptions,
} from './adaptive-options';

/** Vegas's own options, beside the common ones. */
export interface VegasOptions extends AdaptiveLimitOptions {
  /**
   * Queue estimate (in slots, per log10 of the limit) below which the limit grows. Default 2; at
   * most a quarter of the limit, so a small limit does not queue more than it serves.
   */
  readonly alpha?: number | undefined;
  /**
   * Queue estimate (same unit) above which the limit shrinks; at least `alpha`. Default 3: the
   * limit holds while 2 to 3 calls (per log10 of the limit) wait in the dependency (at 4 a pool
   * of 4 was held at 7-8). At most half the limit.
   */
  readonly beta?: number | undefined;
}

const OWN = ['alpha', 'beta'];

/** log10 of the limit as a whole number, at least 1: Vegas's step and the unit of alpha, beta. */
function step(limit: number): number {
  return Math.max(1, Math.floor(Math.log10(limit)));
}

/**
 * Vegas (after TCP Vegas and Netflix concurrency-limits): estimates how many of the limit's slots
 * are queueing, `limit × (1 − baseline / latency)`, and keeps that between `alpha` and `beta`:
 * grows by a step below alpha (by alpha steps when there is no queue at all), shrinks by a step
 * above beta (by half the excess when that is more) or when work was dropped. Moves by whole
 * steps near its target: steady under steady load.
 */
export class VegasLimit extends AdaptiveLimit {
  constructor(
    options: ResolvedAdaptiveOptions,
    private readonly alpha: number,
    private readonly beta: number,
  ) {
    super(options);
  }

  protected next(estimate: number, window: WindowSummary): number {
    const unit = step(estimate);
    if (window.dropRatio > 0 || Number.isNaN(window.latencyMs)) return estimate - unit;
    // Real-valued: rounding up (as before) read any jitter above the baseline as a waiting call.
    const queue = estimate * (1 - window.baselineMs / window.latencyMs);
    // A small limit (CPU-bound work, a pool of one or two) holds at most a quarter to a half of
    // its slots waiting: two waiting calls in front of one served would triple its latency.
    const alpha = Math.min(this.alpha * unit, estimate / 4);
    const beta = Math.min(this.beta * unit, estimate / 2);
    if (queue < unit / 2 && queue < alpha) return estimate + this.alpha * unit; // no queue at all
    if (queue < alpha) return estimate + unit;
    // Far above beta (a capacity cut, a start far too high): halve the excess at once.
    if (queue > beta) return estimate - Math.max(unit, (queue - beta) / 2);
    return estimate;
  }
}

/**
 * An adaptive limit that holds a small, steady queue in front of the work: the choice when the
 * limit should sit still under steady load. See `VegasOptions`.
 */
export function vegas(options: VegasOptions = {}): LimitPolicyFactory {
  return {
    policy: 'vegas',
    options,
    create(where) {
      const common = resolveAdaptiveOptions(where, options, OWN);
      const alpha = number(where, 'alpha', options.alpha, 2, 1, 1000);
      const beta = number(where, 'beta', options.beta, Math.max(3, alpha), alpha, 1000);
      return new VegasLimit(common, alpha, beta);
    },
  };
}
