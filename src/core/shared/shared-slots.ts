import type { GaugeFigures, Outcome } from '../gauge-events';
import type { Release } from '../gauge.interface';
import { attachSlot, type HoldWatch } from '../hold-watch';
import type { LimitPolicy, LimitSample } from '../limit-policy';
import type { Waiter } from '../waiter';
import type { LeasePartition } from './lease-client';
import type { LeaseLedger } from './lease-ledger';
import type { SharedHeadroom } from './shared-headroom';

/** What a shared gauge's slots need of the gauge. */
export interface SlotsHost {
  /** This instance's limit now: the cap, or its adaptive share under it. */
  limit(): number;
  /** How long `waiter` waited, for the admission event. */
  waitedMs(waiter: Waiter): number;
  /** A slot came back or the share moved: local waiters may be served now. */
  mayServe(): void;
}

/**
 * The release handles of a shared gauge: each gives its lease back once, however often called,
 * and reports the hold time and outcome to the listeners, the headroom (its mean hold time) and,
 * with an adaptive limit, this instance's share. With `maxHoldMs`, every slot (lease or local
 * fail-open) is watched for overdue work.
 */
export class SharedSlots {
  constructor(
    private readonly figures: GaugeFigures,
    private readonly leases: LeaseLedger,
    private readonly headroom: SharedHeadroom,
    private readonly holds: HoldWatch | undefined,
    /** An adaptive limit's policy: this instance's share under the cap. Absent: a fixed limit. */
    private readonly share: LimitPolicy | undefined,
    private readonly host: SlotsHost,
  ) {}

  /** Lease `id`, now held (by `waiter` if it waited; under `partition` if keyed): its release. */
  grant(id: string, waiter?: Waiter, partition?: LeasePartition): Release {
    this.leases.hold(id);
    const listening = this.figures.listening;
    this.figures.admit(listening && waiter ? this.host.waitedMs(waiter) : 0);
    let held = true;
    const timed = this.headroom.measures(partition !== undefined);
    const since = listening || timed || this.share !== undefined ? performance.now() : -1;
    return this.watched((outcome: Outcome = 'succeeded') => {
      if (!held) return;
      held = false;
      const at = since < 0 ? 0 : performance.now();
      const heldMs = at - since;
      this.figures.release(since < 0 ? 0 : heldMs, outcome);
      const inFlight = this.leases.size;
      this.leases.release(id);
      if (timed) this.headroom.held(heldMs);
      if (this.share !== undefined) this.learn({ heldMs, outcome, inFlight, at });
    });
  }

  /** With `maxHoldMs`: a release whose slot is watched for overdue work. */
  watched(release: Release): Release {
    const holds = this.holds;
    if (holds === undefined) return release;
    const slot = holds.start();
    return attachSlot((outcome?: Outcome) => {
      holds.end(slot);
      release(outcome);
    }, slot);
  }

  /** Feeds this instance's share one sample; a change is an event, a raise serves waiters. */
  private learn(sample: LimitSample): void {
    const from = this.host.limit();
    this.share!.update(sample);
    const to = this.host.limit();
    if (to !== from) this.figures.limitChanged(from, to);
    // The slot just given back (or a raise) may let a waiter of this instance in.
    this.host.mayServe();
  }
}
