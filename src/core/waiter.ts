import type { Release } from './gauge.interface';
import type { KeyEntry } from './partition/key-partitions';
import { NORMAL_RANK, type PriorityRank } from './priority/priority.level';
import type { QueueNode } from './wait-queue';

/**
 * A caller waiting for a slot: a node of the `WaitQueue`, plus the promise callbacks and the
 * abort listener to detach once it is settled.
 */
export class Waiter implements QueueNode {
  prev: QueueNode | undefined = undefined;
  next: QueueNode | undefined = undefined;
  deadline = 0;
  queued = false;
  onAbort: (() => void) | undefined = undefined;

  constructor(
    readonly resolve: (release: Release) => void,
    readonly reject: (error: Error) => void,
    readonly signal: AbortSignal | undefined,
    /** Its priority level: 0 (`critical`) is served first. */
    readonly rank: PriorityRank = NORMAL_RANK,
    /** The key it waits for (a partitioned gauge), told when it leaves the list. */
    readonly entry: KeyEntry | undefined = undefined,
    /** Its queue: two per level, the waiters of keys within their share first. */
    readonly index: number = rank * 2,
  ) {}

  /** Detaches the abort listener so a settled waiter holds no reference from the signal. */
  settle(): void {
    if (this.onAbort) this.signal?.removeEventListener('abort', this.onAbort);
    this.onAbort = undefined;
  }
}
