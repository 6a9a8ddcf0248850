import type { GaugeStats } from '../core/gauge.interface';

/** What one check learned about a gauge's pressure, at one threshold. */
export interface SaturationReading {
  /** When the check ran (the watch's clock). */
  readonly at: number;
  /** Share of the limit held now: `inFlight / limit` (1 for a gauge with no slots). */
  readonly ratio: number;
  /** Under pressure now: at or over the threshold, or a caller refused since the last check. */
  readonly saturated: boolean;
  /** When the current spell of pressure was first seen; undefined when not saturated. */
  readonly since: number | undefined;
}

/** The spell a gauge is in at one threshold, and the check it is measured from. */
interface Spell {
  readonly since: number | undefined;
  /** When the baseline check ran: the last one at least `MIN_GAP_MS` after the one before. */
  readonly at: number;
  /** `rejected + timedOut` at the baseline check. */
  readonly refusals: number;
}

/**
 * The shortest interval over which a check may say that pressure ended: "no refusal since the
 * previous check" means nothing when that check ran a millisecond earlier (a liveness and a
 * readiness probe at once, several load balancers).
 */
export const MIN_GAP_MS = 1_000;

/**
 * How long each gauge has been saturated, measured at the checks (a readiness probe every few
 * seconds), from figures every gauge keeps anyway: it subscribes to nothing, so a request costs
 * nothing more, whether or not anything is checked.
 *
 * A check sees pressure when the gauge holds at least `threshold × limit` slots, or when it
 * refused a caller (rejected at once, or timed out in its queue) since the baseline check at that
 * threshold: a fail-fast gauge under overload frees a slot between requests, so "full at this
 * instant" alone would miss it. A spell starts at the first check that sees pressure and ends at
 * the first check that sees none, so a spell is never longer than the gauge was under pressure
 * (it may be shorter, by up to one check interval).
 *
 * The baseline moves only to a check at least `MIN_GAP_MS` after it: a check sooner than that
 * (a burst of probes) can start a spell but not end one, and compares its refusals with the
 * baseline's. The clock must be monotonic (the indicator's default is): a wall clock set back or
 * forward would shorten or lengthen a spell by the jump.
 */
export class SaturationWatch {
  private readonly spells = new WeakMap<GaugeStats, Map<number, Spell>>();

  constructor(private readonly now: () => number) {}

  /** Reads `gauge` now against `threshold` (in (0, 1]) and moves its spell on. */
  read(gauge: GaugeStats, threshold: number): SaturationReading {
    const at = this.now();
    let byThreshold = this.spells.get(gauge);
    if (byThreshold === undefined) {
      byThreshold = new Map();
      this.spells.set(gauge, byThreshold);
    }
    const last = byThreshold.get(threshold);
    const refusals = gauge.rejected + gauge.timedOut;
    const { limit, inFlight } = gauge;
    const ratio = limit > 0 ? inFlight / limit : 1;
    const pressed = ratio >= threshold || (last !== undefined && refusals > last.refusals);
    // Too soon after the baseline (or before it, with a clock that went back) to say it ended.
    const soon = last !== undefined && !(at - last.at >= MIN_GAP_MS);
    const since = pressed ? (last?.since ?? at) : soon ? last.since : undefined;
    byThreshold.set(threshold, soon ? { ...last, since } : { since, at, refusals });
    return { at, ratio, saturated: since !== undefined, since };
  }
}
