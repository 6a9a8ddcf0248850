import { NORMAL_RANK, type PriorityRank } from '../priority/priority.level';
import type { LeasePartition, LeaseRequest } from './lease-client';

/** Weight of each new hold time in the moving mean (as `PriorityHeadroom`). */
const HOLD_WEIGHT = 0.05;

/**
 * What a shared gauge tells its store's acquire script so that the store can keep room, across
 * every instance, for keys under their share and (fail fast) for higher priorities: the caller's
 * level and this instance's mean hold time. The store keeps the arrival counts (decayed, on its
 * own clock); the hold time is this instance's own, a moving mean of its releases.
 */
export class SharedHeadroom {
  private meanHeldMs = 0;

  constructor(
    /** Fail fast: levels are sent (a queue orders them locally instead). */
    private readonly failFast: boolean,
  ) {}

  /** Whether hold times are worth measuring: fail fast, or for a keyed call. */
  measures(keyed: boolean): boolean {
    return this.failFast || keyed;
  }

  /** The moving mean of this instance's hold times (0 until the first release). */
  get meanHoldMs(): number {
    return this.meanHeldMs;
  }

  /** Learns one slot's hold time. */
  held(heldMs: number): void {
    this.meanHeldMs =
      this.meanHeldMs === 0 ? heldMs : this.meanHeldMs + HOLD_WEIGHT * (heldMs - this.meanHeldMs);
  }

  /**
   * The request for one attempt at `rank` (`named`: the caller gave a level) with `partition`;
   * undefined when there is nothing to add to a plain attempt (a queue's call without a key).
   */
  request(
    rank: PriorityRank,
    named: boolean,
    partition: LeasePartition | undefined,
  ): LeaseRequest | undefined {
    if (!this.failFast) {
      return partition === undefined ? undefined : { partition, meanHoldMs: this.meanHeldMs };
    }
    return { partition, priority: { rank, named }, meanHoldMs: this.meanHeldMs };
  }
}

/** A waiter's level as a request's: named unless it is the default. */
export function namedRank(rank: PriorityRank): boolean {
  return rank !== NORMAL_RANK;
}
