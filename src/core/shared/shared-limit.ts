import { GaugeUnavailableError } from '../gauge.errors';
import { assertLimit } from '../limit-policy';
import type { GaugeKeys, LimitSync } from './lease-client';
import type { LedgerBackend } from './lease-ledger';
import { describeFailure, type StoreLogger } from './store-health';

/** What a shared gauge's cap needs of its store. */
export interface LimitBackend extends LedgerBackend {
  /** What kind of store, for messages (`Redis`). */
  readonly kind: string;
  /** How long a stored cap lives without being renewed (as long as a lease). */
  readonly leaseTtlMs: number;
  /** Gets the warning when instances disagree about a gauge's limit at bootstrap. */
  readonly logger: StoreLogger;
}

/** Where a cap lives and whom to tell when it changes. */
export interface LimitTarget {
  readonly name: string;
  readonly keys: GaugeKeys;
  readonly retryAfterSeconds: number;
  /**
   * The cap changed from `from` to `to`: report it (as the gauge's own limit, which an adaptive
   * share may keep lower) and, on a raise, let waiting callers try for a slot.
   */
  changed(from: number, to: number): void;
}

/**
 * The cap of one shared gauge, as this instance knows it. The cap is stored beside the gauge's
 * leases and applies to every instance: the store's acquire counts against it, and every reply
 * (acquire, renewal, bootstrap) tells this instance the cap in effect, so `gauge.limit` follows a
 * `setLimit` made anywhere. A change is reported once (`limit-changed`); a raise wakes waiters.
 *
 * At bootstrap the newest configuration wins, and a cap set at run time survives restarts of
 * instances configured alike (see `LimitSync`); a stored cap that differs from this instance's
 * configured limit is logged once.
 */
export class SharedLimit {
  private current: number;
  private synced = false;
  /** Stamps of the calls sent, and of the latest whose reply was applied (see `stamp`). */
  private sent = 0;
  private applied = 0;

  constructor(
    /** This instance's configured limit: the cap when the store holds none. */
    readonly configured: number,
    private readonly target: LimitTarget,
    private readonly backend: LimitBackend,
  ) {
    this.current = configured;
  }

  /** The cap in effect, as last reported by the store. */
  get value(): number {
    return this.current;
  }

  /**
   * Numbers a call that will report the cap, as it is sent. The store runs one connection's calls
   * in the order sent, but their replies may reach `follow` out of order (promise chains of
   * different lengths): a reply older than one already applied is stale and ignored.
   */
  stamp(): number {
    return ++this.sent;
  }

  /** The store reported the cap in effect (for the call stamped `stamp`): adopts it; a raise wakes waiters. */
  follow(limit: number, stamp: number): void {
    if (stamp < this.applied) return;
    this.applied = stamp;
    const from = this.current;
    if (limit === from || !Number.isSafeInteger(limit) || limit < 1) return;
    this.current = limit;
    this.target.changed(from, limit);
  }

  /**
   * Once the store is first up: stores or adopts the cap, warning if it differs from ours. Until
   * that succeeds, called again on each recovery and each answered renewal round (an error of the
   * script's own, say a corrupted cap key, needs no outage to be retried), never while in flight.
   */
  sync(): void {
    const client = this.backend.client();
    if (this.synced || !client || this.backend.health.state !== 'up') return;
    this.synced = true;
    const stamp = this.stamp();
    client.syncLimit(this.target.keys, this.configured, this.backend.leaseTtlMs).then(
      (found) => {
        this.warnIfDiffers(found);
        this.follow(found.limit, stamp);
      },
      (error: unknown) => {
        this.synced = false; // again on the next renewal round or recovery
        // An error of the script's own (a corrupted cap key) is logged once, and is no outage.
        this.backend.health.failed(error);
      },
    );
  }

  /**
   * Stores `limit` as the cap of every instance. Throws `GaugeConfigError` (synchronously) for a
   * bad value; rejects with `GaugeUnavailableError` when the store cannot take it.
   */
  set(limit: number, closed: boolean): Promise<void> {
    const { name } = this.target;
    assertLimit(`Gauge "${name}": setLimit()`, limit);
    const client = this.backend.client();
    const { state, reason } = this.backend.health;
    const { kind } = this.backend;
    const failed = (why: string) =>
      new GaugeUnavailableError(name, why, this.target.retryAfterSeconds);
    const call = `setLimit(${String(limit)})`;
    if (closed) return Promise.reject(failed(`Gauge "${name}" is closed: ${call} not applied`));
    if (!client || state !== 'up') {
      const why = state === 'down' ? `is unreachable (${reason})` : 'is not connected yet';
      return Promise.reject(
        failed(
          `Gauge "${name}": ${call} not applied, its ${kind} store ${why}; ` +
            `the limit stays ${String(this.current)}`,
        ),
      );
    }
    const stamp = this.stamp();
    return client.setLimit(this.target.keys, limit, this.configured, this.backend.leaseTtlMs).then(
      () => this.follow(limit, stamp),
      (error: unknown) => {
        const failure = this.backend.health.failed(error);
        if (failure !== undefined) {
          // The store answered with an error of the script's own: no outage. The script stopped
          // at the error, so the cap may have been written or not; the store reports it later.
          throw failed(
            `Gauge "${name}": ${call} failed, its ${kind} store answered with an error: ` +
              `${failure.message}; the limit stays ${String(this.current)} here`,
          );
        }
        const why = describeFailure(error);
        throw failed(
          `Gauge "${name}": ${call} may not have been applied, its ${kind} store did not answer (${why})`,
        );
      },
    );
  }

  /** One warning when the stored cap is not this instance's configured limit. */
  private warnIfDiffers({ limit, storedLimit, storedConfigured }: LimitSync): void {
    const { name } = this.target;
    const { kind } = this.backend;
    const mine = this.configured;
    if (storedLimit === undefined || storedLimit === mine) return;
    if (storedConfigured !== mine) {
      this.backend.logger.warn(
        `Gauge "${name}": configured with limit ${mine} here, but the cap stored in ${kind} is ` +
          `${storedLimit} (from another instance configured with ${String(storedConfigured)}); ` +
          `the newest configuration wins: the cap is now ${limit} for every instance`,
      );
      return;
    }
    this.backend.logger.warn(
      `Gauge "${name}": configured with limit ${mine}, but the cap stored in ${kind} is ` +
        `${storedLimit} (set at run time with setLimit); it stays in effect for every instance ` +
        'until setLimit changes it, an instance with another configured limit starts, or every ' +
        'instance of the gauge has stopped',
    );
  }
}
