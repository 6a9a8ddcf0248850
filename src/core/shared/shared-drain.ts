import type { Release } from '../gauge.interface';
import { NORMAL_RANK, type PriorityRank } from '../priority/priority.level';
import type { WaitList } from '../wait-list';
import type { Waiter } from '../waiter';
import type { StoreCommandError } from './command-error';
import type { Granted, LeaseAttempts } from './lease-attempts';
import type { LeasePartition } from './lease-client';
import { namedRank } from './shared-headroom';
import type { SharedPartitions } from './shared-partitions';

/** What serving a shared gauge's waiters needs of the gauge. */
export interface DrainHost {
  readonly waiters: WaitList;
  readonly attempts: LeaseAttempts;
  readonly partitions: SharedPartitions;
  /** Fail fast (0): only callers left from the first connection wait, and levels are sent. */
  readonly queueSize: number;
  /** Whether the store is up and this instance may try for one more lease. */
  mayTry(): boolean;
  nextLeaseId(): string;
  /** Gives back a lease held for a waiter that is no longer there. */
  giveBack(id: string): void;
  /** The release handle of lease `id`, now `waiter`'s. */
  grant(id: string, waiter: Waiter, partition: LeasePartition | undefined): Release;
  /** The error a caller gets when the store answered its attempt with `failure` (no outage). */
  refusal(failure: StoreCommandError): Error;
  /** Refuses every waiter as `full` (fail-fast callers left from the first connection). */
  refuseAll(): void;
}

/**
 * Serves a shared gauge's local waiters from the store, one attempt at a time: on a release
 * notification, the periodic re-check, a raise or a release here. Each slot is asked for under the
 * key and level of the waiter a hand-off would serve, and goes only to a waiter it fits, so no
 * waiter is served under another key's lease (nor, failing fast, another level's headroom).
 */
export class SharedDrain {
  private draining = false;
  private again = false;

  constructor(private readonly host: DrainHost) {}

  /** Serves waiters until the store says full; a call while serving makes it go round again. */
  async drain(): Promise<void> {
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = true;
    try {
      do {
        this.again = false;
        await this.serve();
      } while (this.again);
    } finally {
      this.draining = false;
    }
  }

  private async serve(): Promise<void> {
    const host = this.host;
    const waiters = host.waiters;
    while (waiters.length > 0 && host.mayTry()) {
      // The slot is asked for under the key of the waiter it would go to.
      const next = waiters.peek();
      const key = next?.entry?.key;
      const rank = next?.rank ?? NORMAL_RANK;
      const id = host.nextLeaseId();
      const partition = host.partitions.request(key, id);
      let granted: Granted;
      try {
        granted = await host.attempts.try(id, partition, rank, namedRank(rank));
      } catch (error) {
        const failure = host.attempts.lost(id, partition, error);
        // The store answered with an error of the script's own (no outage): the waiter it was
        // asked for is refused with it, and the others tried; each such try refuses one waiter.
        // (Gone meanwhile: the next one is tried all the same, the store being up.)
        if (failure === undefined || next === undefined) return;
        waiters.fail(next, host.refusal(failure));
        continue;
      }
      if (granted === 'key-over-share' || granted === 'shed-priority') {
        // Its key reached its cap (or share) across the instances while it waited, or (fail
        // fast, first connection) the free slots are kept for higher levels: refused, as it
        // would have been on arrival; the others are served.
        if (next !== undefined) waiters.refuse(next, granted);
        continue;
      }
      if (granted === 'full') {
        // Fail-fast callers left from the first connection get their answer: full.
        if (host.queueSize === 0) host.refuseAll();
        return;
      }
      // The slot goes to the waiter a hand-off serves now if the lease fits it (same key, and
      // failing fast the same level: the store kept room by level), else to the waiter it was
      // asked for if still there and of the same level; else it goes back and is asked for anew.
      const now = performance.now();
      const first = waiters.peek(now);
      const waiter =
        first !== undefined && this.fits(first, key, rank)
          ? first
          : next?.queued === true && next.rank === first?.rank
            ? next
            : undefined;
      if (waiter === undefined || !waiters.take(waiter, now)) {
        host.giveBack(granted);
        if (first === undefined) return;
        continue;
      }
      waiter.resolve(host.grant(granted, waiter, partition));
    }
  }

  /** Whether a lease asked for under `key` at `rank` may go to `waiter`. */
  private fits(waiter: Waiter, key: string | undefined, rank: PriorityRank): boolean {
    // A keyed waiter never takes a plain lease, nor a waiter another key's (or a plain one).
    if (waiter.entry?.key !== key) return false;
    return this.host.queueSize > 0 || waiter.rank === rank;
  }
}
