import type { GaugeKeys, LeaseBatch, LeaseClient } from './lease-client';
import type { StoreHealth, StoreLogger } from './store-health';

/** A gauge as the renewer sees it: its keys, its configured limit, the ids this instance holds. */
export interface LeaseHolder {
  readonly keys: GaugeKeys;
  readonly configuredLimit: number;
  heldLeaseIds(): string[];
  /** Told which ids a renewal covered once it is answered or failed; returns those no longer held. */
  renewed(ids: readonly string[]): number;
  /** Numbers the renewal about to be sent (replies may be handled out of order). */
  capStamp(): number;
  /** The cap the store holds now (the renewal stamped `stamp` read it). */
  follow(limit: number, stamp: number): void;
}

/** One gauge in a renewal: who asked, what was sent, and the stamp its reply is matched with. */
interface Renewal {
  readonly holder: LeaseHolder;
  readonly batch: LeaseBatch;
  readonly stamp: number;
}

/**
 * Keeps this instance's leases alive with one timer for the whole store, not one per request: every
 * interval, one batched call re-scores all held leases (one script per gauge, in one round trip).
 * An instance that dies stops renewing, so its leases expire and its slots come back within the TTL.
 * The same call keeps every gauge's cap alive (also of gauges holding no lease, so a cap set at run
 * time lasts while any instance of the gauge runs) and tells each gauge the cap in effect.
 */
export class LeaseRenewer {
  private timer: ReturnType<typeof setInterval> | undefined;
  private running = false;

  constructor(
    private readonly intervalMs: number,
    private readonly ttlMs: number,
    private readonly holders: () => Iterable<LeaseHolder>,
    private readonly client: () => LeaseClient | undefined,
    private readonly health: StoreHealth,
    private readonly logger: StoreLogger,
    /** What kind of store, for the log line about lost leases. */
    private readonly kind: string,
  ) {}

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => void this.renewNow(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Renews now (also right after an outage, to re-add leases a restarted store lost before other
   * instances fill the gauge). A failure marks the store down (unless the store answered with an
   * error of the script's own, logged once); the next interval tries again.
   */
  async renewNow(): Promise<void> {
    const client = this.client();
    if (this.running || !client || this.health.state !== 'up') return;
    const renewals: Renewal[] = [];
    for (const holder of this.holders()) {
      const batch = {
        keys: holder.keys,
        limit: holder.configuredLimit,
        ids: holder.heldLeaseIds(),
      };
      renewals.push({ holder, batch, stamp: holder.capStamp() });
    }
    if (renewals.length === 0) return;
    this.running = true;
    try {
      const replies = await client.renew(
        renewals.map(({ batch }) => batch),
        this.ttlMs,
      );
      // Leases released while the renewal was on the wire are removed again, and not reported.
      let lost = 0;
      replies.forEach(({ readded, limit }, i) => {
        const renewal = renewals[i];
        if (renewal === undefined) {
          throw new Error(`renew answered ${replies.length} replies for ${renewals.length} gauges`);
        }
        lost += Math.max(0, readded - renewal.holder.renewed(renewal.batch.ids));
        renewal.holder.follow(limit, renewal.stamp);
      });
      if (lost > 0) {
        this.logger.warn(
          `${lost} lease(s) held by this instance were missing in ${this.kind} and were added back ` +
            `(${this.kind} restarted without its data, or this process stalled for longer than the lease TTL)`,
        );
      }
    } catch (error) {
      // An error of a renewal script's own (a corrupted key) is logged once, and is no outage.
      this.health.failed(error);
      // It may have been applied all the same: released leases become orphans, removed on recovery.
      renewals.forEach(({ holder, batch }) => holder.renewed(batch.ids));
    } finally {
      this.running = false;
    }
  }
}
