import { LEVEL_COUNT, type PriorityRank } from './priority.level';

/** Recent counts halve every second: they follow a change of load within a few seconds. */
const HALF_LIFE_MS = 1000;
/**
 * Below this (decayed) count of higher-priority arrivals, no room is kept for them: one arrival
 * keeps a slot for about 3 s, a level silent for longer is forgotten.
 */
const MIN_DEMAND = 0.125;
/** The share of higher-priority arrivals a fail-fast gauge aims to refuse at most under overload. */
const REFUSAL_TARGET = 0.01;
const LOG_TARGET = Math.log(REFUSAL_TARGET);
/** A decayed count of a steady rate λ (per ms) tends to λ · HALF_LIFE_MS / ln 2. */
const RATE_PER_COUNT = Math.LN2 / HALF_LIFE_MS;
/** Weight of each new hold time in the moving mean. */
const HOLD_WEIGHT = 0.05;

/**
 * The room a fail-fast gauge keeps free for higher priorities, calibrated to their recent demand.
 *
 * Under overload, lower levels take every slot the moment it frees; the slots kept free are
 * the only ones a higher-priority arrival can have. They behave like a small queue of `r` places:
 * each higher-priority arrival (rate λ) takes one, each release (rate μ, the gauge's throughput)
 * gives one back. With ρ = λ / μ, all `r` are taken — and a higher-priority caller refused — about
 * ρ^r of the time, so `r = ⌈ln 0.01 / ln ρ⌉` keeps that under 1 %; when ρ ≥ 1 the higher levels
 * alone want more than the gauge can serve, and lower levels get nothing. λ comes from a decaying
 * count (half-life 1 s) of arrivals above the caller's level, admitted or not; μ is what the gauge
 * serves when full, `limit / mean hold time` (a moving mean of release samples). One clock read
 * and one `Math.pow` per acquire, no timer, no allocation. Nothing is kept for levels with no
 * recent arrivals, so a gauge without higher-priority traffic behaves as before; until the first
 * hold time is known, one slot.
 */
export class PriorityHeadroom {
  /** Decayed arrivals per level (admitted or not): demand, not what was served. */
  private readonly arrivals: number[] = new Array<number>(LEVEL_COUNT).fill(0);
  private meanHeldMs = 0;
  private at = 0;

  /** Counts an arrival of `rank` at `now` (decaying the older counts first). */
  arrive(rank: PriorityRank, now: number): void {
    this.decay(now);
    this.arrivals[rank] = (this.arrivals[rank] ?? 0) + 1;
  }

  /** Learns one slot's hold time (from a release). */
  held(heldMs: number): void {
    this.meanHeldMs =
      this.meanHeldMs === 0 ? heldMs : this.meanHeldMs + HOLD_WEIGHT * (heldMs - this.meanHeldMs);
  }

  /** Slots to keep free for levels above `rank`, out of `capacity`. */
  reserveFor(rank: PriorityRank, capacity: number): number {
    let above = 0;
    for (let level = 0; level < rank; level++) above += this.arrivals[level] ?? 0;
    if (above < MIN_DEMAND) return 0;
    if (this.meanHeldMs <= 0) return Math.min(1, capacity);
    // ρ = λ / μ = (above · ln 2 / half-life) / (capacity / mean hold)
    const rho = (above * RATE_PER_COUNT * this.meanHeldMs) / capacity;
    if (rho >= 1) return capacity;
    return Math.min(capacity, Math.ceil(LOG_TARGET / Math.log(rho)));
  }

  private decay(now: number): void {
    const elapsed = now - this.at;
    if (elapsed <= 0) return;
    this.at = now;
    const factor = Math.pow(2, -elapsed / HALF_LIFE_MS);
    for (let level = 0; level < LEVEL_COUNT; level++) {
      this.arrivals[level] = (this.arrivals[level] ?? 0) * factor;
    }
  }
}
