/**
 * CoDel's test for a standing queue, applied to a queue of callers (as Facebook's "Fail at Scale"
 * and folly do): if, over a whole interval, even the shortest wait seen stayed above the target,
 * the queue is not absorbing a burst but standing — the gauge is overloaded and serving waiters
 * in order only makes every one of them late.
 *
 * Entering: the wait observed is the oldest waiter's at each hand-off (what a FIFO would serve
 * next), and 0 whenever the queue empties, so a queue that drains even once in an interval is not
 * standing. Leaving: only after a whole interval in which no waiter was late (shed, timed out, or
 * served after more than the target). An empty queue does not end the spell: under overload the
 * queue empties because its stale waiters were shed, not because the load went away.
 * No timer: the state is re-evaluated (`poll`) whenever the queue is used.
 */
export class ControlledDelay {
  private standingNow = false;
  private minWaitMs = Number.POSITIVE_INFINITY;
  private intervalEnds: number | undefined;
  /** While standing: when a waiter was last late. */
  private lateAt = 0;

  constructor(
    /** Waits up to this are fine (milliseconds). */
    readonly targetMs: number,
    /** How long the wait must stay above target before the queue counts as standing (ms). */
    readonly intervalMs: number,
  ) {}

  /** True from a whole interval that never saw a wait at or below the target, until one with no late waiter. */
  get standing(): boolean {
    return this.standingNow;
  }

  /**
   * A waiter that has waited longer than this in a standing queue is stale and may be shed: twice
   * the target, as in folly, so a queue that just turned standing does not shed what is nearly
   * served.
   */
  get sloughMs(): number {
    return this.targetMs * 2;
  }

  /**
   * What `poll(now)` would return after `observe(observedMs, now)` (nothing observed: undefined),
   * changing nothing: so a list can tell which waiter a hand-off at `now` would serve before it
   * asks a store for that waiter's slot.
   */
  standsAt(now: number, observedMs?: number): boolean {
    if (this.standingNow) {
      const late = observedMs !== undefined && observedMs > this.targetMs && now > this.lateAt;
      return now - (late ? now : this.lateAt) < this.intervalMs;
    }
    if (this.intervalEnds === undefined || now < this.intervalEnds) return false;
    const minWaitMs =
      observedMs === undefined ? this.minWaitMs : Math.min(this.minWaitMs, observedMs);
    return minWaitMs > this.targetMs;
  }

  /** Ends the interval or the standing spell if `now` is past it; returns whether standing. */
  poll(now: number): boolean {
    if (this.standingNow) {
      if (now - this.lateAt >= this.intervalMs) {
        this.standingNow = false;
        this.open(now);
      }
    } else if (this.intervalEnds === undefined) {
      this.open(now);
    } else if (now >= this.intervalEnds) {
      if (this.minWaitMs > this.targetMs) {
        this.standingNow = true;
        this.lateAt = now;
      } else this.open(now);
    }
    return this.standingNow;
  }

  /**
   * Records a wait seen at `now`: the oldest waiter's at a hand-off, or that of a waiter served,
   * shed or timed out. A wait above the target keeps a standing spell going.
   */
  observe(waitMs: number, now: number): void {
    if (waitMs < this.minWaitMs) this.minWaitMs = waitMs;
    if (waitMs > this.targetMs && now > this.lateAt) this.lateAt = now;
  }

  /** The queue emptied: the wait is 0 now, so the current interval does not turn it standing. */
  drained(): void {
    this.minWaitMs = 0;
  }

  private open(now: number): void {
    this.minWaitMs = Number.POSITIVE_INFINITY;
    this.intervalEnds = now + this.intervalMs;
  }
}
