import { randomBytes } from 'node:crypto';
import type { ResolvedGaugeOptions } from '../resolved-gauge-options';
import type { StoreDownPolicy } from '../store-down.policy';
import type { ConnectionEvents, LeaseConnection } from './lease-client';
import { LeaseRenewer } from './lease-renewer';
import type { LeaseBackend } from './lease-backend.interface';
import { SharedGauge } from './shared-gauge';
import { StoreHealth, type StoreLogger, type StoreState } from './store-health';

/** How a shared store behaves, whatever the store: what `SharedGaugeStore` is built from. */
export interface SharedStoreSettings {
  /** What kind of store, for messages: `Redis` (`Redis gauges now fail open …`). */
  readonly kind: string;
  /** The public store's class, for messages (`RedisGaugeStore is closed`). */
  readonly storeName: string;
  /** A lease not renewed for this long expires. */
  readonly leaseTtlMs: number;
  /** How often every held lease is renewed, in one batched call. */
  readonly renewIntervalMs: number;
  /** Fallback re-check of waiting callers, and probe interval while the store is down. */
  readonly recheckIntervalMs: number;
  /** How long the first connection may take before the store counts as down. */
  readonly connectTimeoutMs: number;
  /** How long `close()` waits for running handlers to release their slots. */
  readonly closeGraceMs: number;
  /** The policy of gauges without their own `whenStoreDown`. */
  readonly whenStoreDown: StoreDownPolicy;
  /** Readable start of the lease ids; random when undefined. */
  readonly instanceId: string | undefined;
  readonly logger: StoreLogger;
}

/**
 * The store-independent half of a shared gauge store: builds `SharedGauge`s on one
 * `LeaseConnection`, and runs what they share — the connection's health (outage policy, one log
 * line per outage, probes), one lease renewal timer (which also keeps every gauge's stored cap
 * alive), wake-up of waiting callers by release and raised-cap announcements and a periodic
 * re-check, lease ids unique per store, and a graceful close. A store such as `RedisGaugeStore`
 * is this plus its `LeaseConnection`.
 *
 * Per store: the connection's own resources, and two timers (renewal; re-check and probe), whatever
 * the number of gauges and requests.
 */
export class SharedGaugeStore {
  /** The readable start of this store's lease ids (the `instanceId` setting, or random). */
  readonly instanceId: string;
  /**
   * What every lease id of this store starts with: `instanceId:nonce`, the nonce random per store,
   * so stores given the same `instanceId` never share, renew or release one another's leases.
   */
  readonly leaseIdPrefix: string;
  private readonly health: StoreHealth;
  private readonly renewer: LeaseRenewer;
  private readonly backend: LeaseBackend;
  private readonly gauges = new Set<SharedGauge>();
  private readonly byChannel = new Map<string, Set<SharedGauge>>();
  private readonly events: ConnectionEvents;
  private recheckTimer: ReturnType<typeof setInterval> | undefined;
  private leaseCounter = 0;
  private started = false;
  private closed = false;

  constructor(
    private readonly connection: LeaseConnection,
    private readonly settings: SharedStoreSettings,
  ) {
    const { kind, logger, recheckIntervalMs, renewIntervalMs, leaseTtlMs } = settings;
    this.instanceId = settings.instanceId ?? randomBytes(6).toString('base64url');
    this.leaseIdPrefix = `${this.instanceId}:${randomBytes(9).toString('base64url')}`;
    this.health = new StoreHealth(
      `${kind} ${connection.label}`,
      kind,
      recheckIntervalMs,
      logger,
      (state) => this.onHealthChange(state),
      () => connection.probe(),
    );
    this.renewer = new LeaseRenewer(
      renewIntervalMs,
      leaseTtlMs,
      () => this.gauges,
      () => connection.client(),
      this.health,
      logger,
      kind,
    );
    this.backend = {
      kind,
      health: this.health,
      leaseTtlMs,
      logger,
      connectTimeoutMs: settings.connectTimeoutMs,
      client: () => connection.client(),
      nextLeaseId: () => `${this.leaseIdPrefix}:${(++this.leaseCounter).toString(36)}`,
    };
    this.events = {
      up: () => this.health.markUp(),
      down: (reason) => this.health.markDown(reason),
      released: (channel) => {
        for (const gauge of this.byChannel.get(channel) ?? []) gauge.wake();
      },
      missedReleases: () => this.wakeAll(),
    };
  }

  /** `connecting` until the first connection settles, then `up` or `down`. */
  get state(): StoreState {
    return this.health.state;
  }

  /** Builds a gauge whose slots are leases in the store; opens the connection on the first call. */
  createGauge(options: ResolvedGaugeOptions): SharedGauge {
    if (this.closed) throw new Error(`${this.settings.storeName} is closed; create a new one`);
    // First: a connection that cannot even start (its driver missing) fails this call, and every
    // later one, with the same clear error, rather than leaving a gauge that never connects.
    this.start();
    const policy = options.whenStoreDown ?? this.settings.whenStoreDown;
    const keys = this.connection.keys(options.name);
    const gauge = new SharedGauge(options, policy, keys, this.backend);
    this.gauges.add(gauge);
    if (gauge.notifies) this.listen(gauge);
    if (this.health.state === 'up') gauge.connected(); // else when it is
    return gauge;
  }

  /**
   * Refuses waiting and new callers, gives handlers still running up to `closeGraceMs` to release
   * their slots (so those releases reach the store), then stops timers and closes the connection.
   * Leases still held after that are no longer renewed and expire within the TTL.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.recheckTimer !== undefined) clearInterval(this.recheckTimer);
    for (const gauge of this.gauges) gauge.close();
    await this.heldLeasesReleased();
    this.renewer.stop();
    this.health.close();
    await this.connection.close();
  }

  /**
   * Waits (at most `closeGraceMs`) until no gauge holds a lease. Never frees a slot itself: a lease
   * is released only by its holder, so a handler still running keeps its slot counted.
   */
  private async heldLeasesReleased(): Promise<void> {
    if (this.health.state !== 'up') return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.settings.closeGraceMs);
    });
    await Promise.race([Promise.all([...this.gauges].map((gauge) => gauge.idle())), bound]);
    clearTimeout(timer);
  }

  private start(): void {
    if (this.started) return;
    this.connection.open(this.events); // throws (not started) when it cannot even start
    this.started = true;
    this.health.expectUpWithin(this.settings.connectTimeoutMs);
    this.recheckTimer = setInterval(() => this.wakeAll(), this.settings.recheckIntervalMs);
    this.recheckTimer.unref();
    this.renewer.start();
  }

  private listen(gauge: SharedGauge): void {
    let gauges = this.byChannel.get(gauge.channel);
    if (!gauges) {
      this.byChannel.set(gauge.channel, (gauges = new Set()));
      this.connection.listen(gauge.channel);
    }
    gauges.add(gauge);
  }

  private onHealthChange(state: 'up' | 'down'): void {
    if (state === 'down') {
      for (const gauge of this.gauges) gauge.storeDown(this.health.reason);
      return;
    }
    // Re-add this instance's leases (a restarted store lost them) before serving anyone new.
    void this.renewer.renewNow();
    for (const gauge of this.gauges) gauge.storeUp();
  }

  private wakeAll(): void {
    if (this.health.state === 'up') for (const gauge of this.gauges) gauge.wake();
  }
}
