/**
 * CoDel's test for a standing queue, applied to a queue of callers (as Facebook's "Fail at Scale"
 * and folly do): if, over a whole interval, even the shortest wait seen stayed above the target,
 * the queue is not absorbing a burst but standing — the gauge is overloaded and serving waiters
 * in order only makes every one of them late.
 *
 * The wait observed is the oldest waiter's at each hand-off (what a FIFO would serve next), and 0
 * whenever the queue empties, so a queue that drains even once in an interval is not standing.
 * No timer: the interval is checked when the queue is used.
 */
export class ControlledDelay {
  private standingNow = false;
  private minWaitMs = Number.POSITIVE_INFINITY;
  private intervalEnds: number | undefined;

  constructor(
    /** Waits up to this are fine (milliseconds). */
    readonly targetMs: number,
    /** How long the wait must stay above target before the queue counts as standing (ms). */
    readonly intervalMs: number,
  ) {}

  /** True while the last full interval never saw a wait at or below the target. */
  get standing(): boolean {
    return this.standingNow;
  }

  /**
   * A waiter that has waited longer than this in a standing queue is shed: twice the target, as in
   * folly, so a queue that just turned standing does not shed what is nearly served.
   */
  get sloughMs(): number {
    return this.targetMs * 2;
  }

  /** Records the oldest waiter's wait at `now`; returns whether the queue is standing. */
  observe(waitMs: number, now: number): boolean {
    if (this.intervalEnds === undefined) this.intervalEnds = now + this.intervalMs;
    else if (now >= this.intervalEnds) {
      this.standingNow = this.minWaitMs > this.targetMs;
      this.minWaitMs = Number.POSITIVE_INFINITY;
      this.intervalEnds = now + this.intervalMs;
    }
    if (waitMs < this.minWaitMs) this.minWaitMs = waitMs;
    return this.standingNow;
  }

  /**
   * The queue emptied: nobody waits, so the wait is 0 now. Ends a standing spell at once, since a
   * queue that drained is absorbing its load.
   */
  drained(): void {
    this.minWaitMs = 0;
    this.standingNow = false;
  }
}
