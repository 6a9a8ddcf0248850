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
/** By default a higher level waits for the next freed slot at most this share of the mean hold time. */
export const DEFAULT_WAIT_SHARE = 0.5;
/** Counts of ended brief waits halve every 2 s: a burst's misses (clumped releases) are soon forgotten. */
const WAIT_HALF_LIFE_MS = 2000;
/** The model's guess counts as this many brief waits until measured ones outweigh it. */
const PRIOR_WAITS = 8;

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
 *
 * With a brief wait (`waitFor`: a higher-level caller that finds no slot it may take waits up to
 * `W` ms for the next freed slot, served before anyone else), the reserve shrinks: the releases,
 * at rate μ, serve the waiting higher levels like one queue, whose wait exceeds `W` with
 * probability about `e^{-(μ - λ) W}` (M/M/1). A higher-level caller is then refused only if all
 * `r` slots are taken and its wait runs out: `ρ^r · e^{-(μ - λ) W} ≤ 0.01`, so
 * `r = ⌈(ln 0.01 + (μ - λ) W) / ln ρ⌉`, at least 0. A 10-slot gauge of 50 ms holds with `critical`
 * at 0.3× its throughput keeps 4 slots without a wait and 1 with the default 25 ms.
 *
 * That M/M/1 tail is an upper guess: a full gauge of steady holds frees a slot almost like a
 * clock. So the tail is measured too: every brief wait that ends (served within half its time,
 * or not: late, run out, or refused because as many wait as releases can serve) updates a miss
 * rate `m` from counts that halve every 2 s, the model's guess counting as 8 waits, and capped
 * at that guess (a warm-up burst's misses must not keep a larger reserve, where waits are then
 * too rare to unlearn them); the reserve is `r = ⌈ln(0.01 / m) / ln ρ⌉`, 0 when `m ≤ 0.01`.
 * Measured over HTTP on the bench mix this keeps about the model's 1 slot; a version without the
 * cap and the half-time rule gave 0 slots in simulation but 2 over HTTP. The gauge lends that slot
 * while a held one is due back (`ReleaseForecast`, from the mean hold and `holdSpreadMs`).
 */
export class PriorityHeadroom {
  /** Decayed arrivals per level (admitted or not): demand, not what was served. */
  private readonly arrivals: number[] = new Array<number>(LEVEL_COUNT).fill(0);
  private meanHeldMs = 0;
  /** Moving mean absolute deviation of hold times: how far a slot's release can be foretold. */
  private spreadMs = 0;
  private at = 0;
  /** Decayed counts of brief waits that ended, and of those that ended refused, as of `waitsAt`. */
  private waits = 0;
  private misses = 0;
  private waitsAt = 0;

  /** Counts an arrival of `rank` at `now` (decaying the older counts first). */
  arrive(rank: PriorityRank, now: number): void {
    this.decay(now);
    this.arrivals[rank] = (this.arrivals[rank] ?? 0) + 1;
  }

  /** The moving mean of hold times (0 until the first release). */
  get meanHoldMs(): number {
    return this.meanHeldMs;
  }

  /** The moving mean absolute deviation of hold times (from the mean hold itself at first). */
  get holdSpreadMs(): number {
    return this.spreadMs;
  }

  /** Learns one slot's hold time (from a release). */
  held(heldMs: number): void {
    if (this.meanHeldMs === 0) {
      // Unsteady until shown otherwise: no release is foretold before a few holds agree.
      this.meanHeldMs = this.spreadMs = heldMs;
      return;
    }
    this.spreadMs += HOLD_WEIGHT * (Math.abs(heldMs - this.meanHeldMs) - this.spreadMs);
    this.meanHeldMs += HOLD_WEIGHT * (heldMs - this.meanHeldMs);
  }

  /**
   * Learns how one brief wait ended at `now`: `served` by a freed slot, or refused (it ran out, or
   * found as many waiting as the next releases can serve).
   */
  waited(served: boolean, now: number): void {
    const elapsed = now - this.waitsAt;
    if (elapsed > 0) {
      const factor = Math.pow(2, -elapsed / WAIT_HALF_LIFE_MS);
      this.waits *= factor;
      this.misses *= factor;
      this.waitsAt = now;
    }
    this.waits += 1;
    if (!served) this.misses += 1;
  }

  /**
   * Slots to keep free for levels above `rank`, out of `capacity`, when those levels wait up to
   * `waitMs` for a freed slot (0: they are refused at once).
   */
  reserveFor(rank: PriorityRank, capacity: number, waitMs = 0): number {
    let above = 0;
    for (let level = 0; level < rank; level++) above += this.arrivals[level] ?? 0;
    if (above < MIN_DEMAND) return 0;
    if (this.meanHeldMs <= 0) return Math.min(1, capacity);
    // ρ = λ / μ = (above · ln 2 / half-life) / (capacity / mean hold)
    const rho = (above * RATE_PER_COUNT * this.meanHeldMs) / capacity;
    if (rho >= 1) return capacity;
    if (waitMs <= 0) return Math.min(capacity, Math.ceil(LOG_TARGET / Math.log(rho)));
    // The share of brief waits that run out: measured, the M/M/1 tail e^{-(μ - λ) W} as the prior.
    const prior = Math.exp(-((capacity * (1 - rho)) / this.meanHeldMs) * waitMs);
    // Never above the model: a few early misses (a warm-up burst) must not keep a larger reserve.
    const miss = Math.min(prior, (this.misses + PRIOR_WAITS * prior) / (this.waits + PRIOR_WAITS));
    if (miss <= REFUSAL_TARGET) return 0;
    return Math.min(capacity, Math.ceil((LOG_TARGET - Math.log(miss)) / Math.log(rho)));
  }

  /**
   * How long a caller of `rank` that finds no slot it may take waits for the next freed one: 0
   * (refused at once) unless a lower level arrived recently (it is what fills the gauge, and its
   * releases will come); then `configuredMs`, or by default half the mean hold time (0 until one
   * is known).
   */
  waitFor(rank: PriorityRank, configuredMs: number | undefined): number {
    let below = 0;
    for (let level = rank + 1; level < LEVEL_COUNT; level++) below += this.arrivals[level] ?? 0;
    return below < MIN_DEMAND ? 0 : this.waitMs(configuredMs);
  }

  /** The wait a higher level gets: `configuredMs`, or half the mean hold time (0 until known). */
  waitMs(configuredMs: number | undefined): number {
    return configuredMs ?? this.meanHeldMs * DEFAULT_WAIT_SHARE;
  }

  /** Most callers waiting at once for `waitMs`: the releases a full gauge gives in that time, at least 1. */
  maxWaiting(capacity: number, waitMs: number): number {
    if (this.meanHeldMs <= 0) return 1;
    return Math.max(1, Math.ceil((capacity * waitMs) / this.meanHeldMs));
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
