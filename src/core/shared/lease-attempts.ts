import type { PriorityRank } from '../priority/priority.level';
import type { StoreCommandError } from './command-error';
import type { LeaseBackend } from './lease-backend.interface';
import type { GaugeKeys, LeasePartition } from './lease-client';
import type { LeaseLedger } from './lease-ledger';
import type { SharedHeadroom } from './shared-headroom';
import type { SharedLimit } from './shared-limit';

/** An attempt's outcome: the lease id now held, or why there was none. */
export type Granted = string | 'full' | 'key-over-share' | 'shed-priority';

/**
 * A shared gauge's calls to its store for one lease each: what one attempt asks (key, level,
 * hold time), the cap each reply reports (adopted before the caller sees the answer), and the
 * attempts still on the wire, which count against an adaptive share like the leases held.
 */
export class LeaseAttempts {
  private onTheWire = 0;

  constructor(
    private readonly backend: LeaseBackend,
    private readonly keys: GaugeKeys,
    private readonly cap: SharedLimit,
    private readonly headroom: SharedHeadroom,
    private readonly leases: LeaseLedger,
  ) {}

  /** Attempts sent whose reply has not come back yet. */
  get trying(): number {
    return this.onTheWire;
  }

  /**
   * One acquire call for lease `id` (under `partition`, at `rank`; `named`: the caller gave a
   * level). Resolves to the lease id now held, or why there was none; rejects when the reply was
   * lost (then see `lost`).
   */
  async try(
    id: string,
    partition: LeasePartition | undefined,
    rank: PriorityRank,
    named: boolean,
  ): Promise<Granted> {
    const client = this.backend.client()!;
    const stamp = this.cap.stamp();
    const request = this.headroom.request(rank, named, partition);
    this.onTheWire++;
    try {
      const reply = await client.acquire(
        this.keys,
        id,
        this.cap.configured,
        this.backend.leaseTtlMs,
        request,
      );
      this.cap.follow(reply.limit, stamp);
      if (reply.granted) return reply.id ?? id;
      return reply.reason ?? 'full';
    } finally {
      this.onTheWire--;
    }
  }

  /**
   * An attempt that failed: whichever id the store may have recorded is an orphan (see
   * `LeaseLedger.lost`). Returns the error when the store answered with one of the script's own
   * (no outage): the caller is refused with it.
   */
  lost(
    id: string,
    partition: LeasePartition | undefined,
    error: unknown,
  ): StoreCommandError | undefined {
    const ids = partition === undefined ? [id] : [partition.id, partition.overflowId];
    return this.leases.lost(ids, error);
  }
}
