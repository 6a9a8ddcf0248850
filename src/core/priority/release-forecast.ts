/** One held slot of a gauge with priorities, linked in grant order. */
export interface HeldSince {
  /** `performance.now()` when the slot was granted. */
  readonly since: number;
  prev: HeldSince | undefined;
  next: HeldSince | undefined;
  /** Still in the list: held, and not yet dropped as late (see `due`). */
  held: boolean;
}

/**
 * Which held slots are about to come back: the room a fail-fast gauge keeps for higher levels may
 * be lent to a lower level while a release is due soon, since a higher-level caller that then finds
 * the gauge full waits briefly (`PriorityGrace`) and the due release goes to it first.
 *
 * Why: a kept slot is idle until a higher-level caller comes (at 0.3× of a 10-slot gauge's
 * throughput, most of the time), and under overload that idle slot is the whole price of priorities.
 * When holds are steady, the next release is known in advance: every slot is expected back at its
 * start plus the mean hold, so a slot counts as due when `since + meanHold + spread ≤ now + window`,
 * `spread` being the mean absolute deviation of hold times. Unsteady holds (a spread as long as the
 * window) make nothing due, and the gauge keeps its reserve as before; so does a level that may not
 * wait (`priorityWaitMs: 0`).
 *
 * A slot still held more than `window` past its latest foretold release (`since + meanHold +
 * spread`) has shown that its forecast failed (its work hangs, the upstream slowed down): it is
 * dropped from the list, never counted as due again, else one stalled slot would lend the
 * reserve for as long as it is held.
 *
 * Slots are linked in grant order, O(1) to add and to remove, so the oldest held slot — the first
 * expected back, all having the same mean hold — is the head. Counting the due ones drops the late
 * ones from the head (each slot at most once), then walks and stops at the first one not due, and
 * at `max`. No timer; one small node per slot.
 */
export class ReleaseForecast {
  private head: HeldSince | undefined;
  private tail: HeldSince | undefined;

  /** A slot granted at `since` (clock readings only grow, so the list stays in time order). */
  start(since: number): HeldSince {
    const node: HeldSince = { since, prev: this.tail, next: undefined, held: true };
    if (this.tail === undefined) this.head = node;
    else this.tail.next = node;
    this.tail = node;
    return node;
  }

  /** The slot came back, or is late (once; a second call does nothing). */
  end(node: HeldSince): void {
    if (!node.held) return;
    node.held = false;
    const { prev, next } = node;
    if (prev === undefined) this.head = next;
    else prev.next = next;
    if (next === undefined) this.tail = prev;
    else next.prev = prev;
    node.prev = node.next = undefined;
  }

  /**
   * How many held slots (at most `max`) are expected back within `windowMs` of `now`, given the
   * mean hold time and its spread: 0 until a hold time is known, or when the spread alone fills the
   * window. Slots already late by more than the window are dropped, not counted.
   */
  due(now: number, windowMs: number, meanHoldMs: number, spreadMs: number, max: number): number {
    if (meanHoldMs <= 0 || spreadMs >= windowMs) return 0;
    const before = now + windowMs - meanHoldMs - spreadMs;
    const late = now - windowMs - meanHoldMs - spreadMs;
    while (this.head !== undefined && this.head.since < late) this.end(this.head);
    let count = 0;
    for (let node = this.head; node !== undefined && count < max; node = node.next) {
      if (node.since > before) break;
      count++;
    }
    return count;
  }
}
