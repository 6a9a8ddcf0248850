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

/** The spell a gauge is in at one threshold, as the last check left it. */
interface Spell {
  readonly since: number | undefined;
  /** `rejected + timedOut` at the last check. */
  readonly refusals: number;
}

/**
 * How long each gauge has been saturated, measured at the checks (a readiness probe every few
 * seconds), from figures every gauge keeps anyway: it subscribes to nothing, so a request costs
 * nothing more, whether or not anything is checked.
 *
 * A check sees pressure when the gauge holds at least `threshold × limit` slots, or when it
 * refused a caller (rejected at once, or timed out in its queue) since the previous check at that
 * threshold: a fail-fast gauge under overload frees a slot between requests, so "full at this
 * instant" alone would miss it. A spell starts at the first check that sees pressure and ends at
 * the first check that sees none, so a spell is never longer than the gauge was under pressure
 * (it may be shorter, by up to one check interval).
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
    const saturated = ratio >= threshold || (last !== undefined && refusals > last.refusals);
    const since = saturated ? (last?.since ?? at) : undefined;
    byThreshold.set(threshold, { since, refusals });
    return { at, ratio, saturated, since };
  }
}
