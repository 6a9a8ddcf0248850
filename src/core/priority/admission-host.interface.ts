import type { GaugeFigures } from '../gauge-events';
import type { Release } from '../gauge.interface';
import type { KeyEntry } from '../partition/key-partitions';
import type { PriorityRank } from './priority.level';

/**
 * What ranked admission needs of its gauge: the slot count it decides on, and the gauge's own
 * means to grant a slot, queue a caller and hand a slot on, so that counting stays in one place.
 */
export interface AdmissionHost {
  readonly figures: GaugeFigures;
  readonly retryAfterSeconds: number;
  /** Option `priorityWaitMs`; absent: half the mean hold time. */
  readonly priorityWaitMs: number | undefined;
  /** Slots on offer: the limit, 0 once the gauge is closed. */
  capacity(): number;
  /** Slots held. */
  inFlight(): number;
  /** Callers in the gauge's queue: a free slot is theirs, not a newcomer's. */
  waiting(): number;
  /** The queue's size: 0 for a fail-fast gauge, and once the gauge is closed. */
  queueSize(): number;
  closed(): boolean;
  /** A slot at once; for a key, counted as its. `now`: a clock reading already taken, if any. */
  grant(entry: KeyEntry | undefined, now?: number): Release;
  /** Joins the gauge's queue at `rank` (for a key beyond its share, `excess`: behind the others). */
  wait(
    signal: AbortSignal | undefined,
    rank: PriorityRank,
    entry: KeyEntry | undefined,
    excess: boolean,
  ): Promise<Release>;
  /** The release handle of a slot already counted in `inFlight` (handed to a brief waiter). */
  lease(entry: KeyEntry | undefined, now?: number): Release;
}
