import type { LimitPolicyFactory } from '../limit-policy';
import { AdaptiveLimit, type WindowSummary } from './adaptive-limit';
import {
  number,
  resolveAdaptiveOptions,
  type AdaptiveLimitOptions,
  type ResolvedAdaptiveOptions,
} from './adaptive-options';

/** AIMD's own options, beside the common ones. */
export interface AimdOptions extends AdaptiveLimitOptions {
  /** What the limit is multiplied by on a drop, from 0.5 to 1 (exclusive). Default 0.9. */
  readonly backoffRatio?: number | undefined;
  /**
   * A window slower than this multiple of the baseline latency counts as a drop. Default 1.5: the
   * limit saws between about 1.3 and 1.7 × the dependency's capacity (at 2, around twice it).
   */
  readonly dropLatencyFactor?: number | undefined;
  /** A window slower than this (milliseconds) counts as a drop, whatever the baseline. Optional. */
  readonly timeoutMs?: number | undefined;
}

const OWN = ['backoffRatio', 'dropLatencyFactor', 'timeoutMs'];

/**
 * AIMD (additive increase, multiplicative decrease, after TCP and Netflix concurrency-limits):
 * one more slot per window while nothing is dropped, the limit times `backoffRatio` when a window
 * has drops or is slower than `dropLatencyFactor` × the baseline (or `timeoutMs`). Simple and
 * robust; it saws around the point where latency crosses the threshold.
 */
export class AimdLimit extends AdaptiveLimit {
  constructor(
    options: ResolvedAdaptiveOptions,
    private readonly backoffRatio: number,
    private readonly dropLatencyFactor: number,
    private readonly timeoutMs: number,
  ) {
    super(options);
  }

  protected next(estimate: number, window: WindowSummary): number {
    const latency = window.latencyMs;
    const dropped =
      window.dropRatio > 0 ||
      Number.isNaN(latency) ||
      latency > this.dropLatencyFactor * window.baselineMs ||
      latency > this.timeoutMs;
    return dropped ? estimate * this.backoffRatio : estimate + 1;
  }
}

/**
 * An adaptive limit that backs off only on drops (and on latency past a threshold): the choice
 * when latency is too noisy to read, or errors such as timeouts are the clearest signal.
 */
export function aimd(options: AimdOptions = {}): LimitPolicyFactory {
  return {
    policy: 'aimd',
    options,
    create(where) {
      const common = resolveAdaptiveOptions(where, options, OWN);
      const backoffRatio = number(where, 'backoffRatio', options.backoffRatio, 0.9, 0.5, 0.999);
      const factor = number(where, 'dropLatencyFactor', options.dropLatencyFactor, 1.5, 1, 1000);
      const timeoutMs = number(where, 'timeoutMs', options.timeoutMs, Infinity, 1, 2 ** 31 - 1);
      return new AimdLimit(common, backoffRatio, factor, timeoutMs);
    },
  };
}
