import { StoreCommandError } from './command-error';
import type { GaugeKeys, LeaseBatch, LeaseClient, RenewOutcome } from './lease-client';
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
  /**
   * The store answered a renewal round: a step of the gauge's bootstrap that failed with an error
   * of the store's own (its cap sync) is tried again, so it need not wait for an outage to end.
   * A no-op once it succeeded; at most one try per round (one interval), and a failure is logged once.
   */
  retryBootstrap(): void;
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
   * instances fill the gauge). A failure marks the store down; the next interval tries again. A
   * gauge whose script answered an error of its own (a corrupted key) is logged once and skipped,
   * the store staying up and the other gauges' replies handled as usual.
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
      const outcomes = await client.renew(
        renewals.map(({ batch }) => batch),
        this.ttlMs,
      );
      if (outcomes.length !== renewals.length) {
        throw new Error(`renew answered ${outcomes.length} replies for ${renewals.length} gauges`);
      }
      let lost = 0;
      outcomes.forEach((outcome, i) => (lost += this.handle(renewals[i]!, outcome)));
      if (lost > 0) {
        this.logger.warn(
          `${lost} lease(s) held by this instance were missing in ${this.kind} and were added back ` +
            `(${this.kind} restarted without its data, or this process stalled for longer than the lease TTL)`,
        );
      }
    } catch (error) {
      this.health.failed(error);
      // It may have been applied all the same: released leases become orphans, removed on recovery.
      renewals.forEach(({ holder, batch }) => holder.renewed(batch.ids));
      return;
    } finally {
      this.running = false;
    }
    // The store answered: what a gauge's bootstrap left undone is tried again (after the renewal,
    // which re-adds leases first, as on a recovery).
    for (const { holder } of renewals) holder.retryBootstrap();
  }

  /** One gauge's outcome; returns how many of its leases had to be re-added. */
  private handle({ holder, batch, stamp }: Renewal, outcome: RenewOutcome): number {
    // Leases released while the renewal was on the wire are removed again, and not reported.
    const released = holder.renewed(batch.ids);
    if (outcome instanceof StoreCommandError) {
      // An error of this gauge's script (a corrupted key): logged once, no outage, no cap read.
      this.health.failed(outcome);
      return 0;
    }
    holder.follow(outcome.limit, stamp);
    return Math.max(0, outcome.readded - released);
  }
}
