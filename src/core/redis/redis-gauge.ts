import { GaugeAbortedError, GaugeExhaustedError, GaugeUnavailableError } from '../gauge.errors';
import type { Gauge, Release } from '../gauge.interface';
import type { ResolvedGaugeOptions, StoreDownPolicy } from '../gauge-options';
import { WaitList } from '../wait-list';
import { LeaseLedger, type LedgerBackend } from './lease-ledger';
import type { LeaseHolder } from './lease-renewer';
import { OutageFallback } from './outage-fallback';

/** What a Redis gauge needs from its store: the connection's state, the scripts, lease settings. */
export interface LeaseBackend extends LedgerBackend {
  readonly leaseTtlMs: number;
  /** A lease id unique across instances: `instanceId:counter`. */
  nextLeaseId(): string;
}

/** Where one gauge lives in Redis. */
export interface GaugeKeys {
  readonly leases: string;
  readonly channel: string;
}

/**
 * A gauge whose `limit` holds across every instance sharing one Redis: a slot is a lease in the
 * gauge's sorted set, taken and given back by one script each.
 *
 * Callers that find it full wait in a local FIFO (the core `WaitQueue`: one deadline timer, O(1)
 * abort) and are retried when a release notification arrives, or at the store's periodic re-check.
 * While Redis is unreachable the gauge follows its `whenStoreDown` policy: refuse with
 * `GaugeUnavailableError` (503), or admit up to `localLimit` per instance through a local gauge
 * whose slots never touch Redis.
 */
export class RedisGauge implements Gauge, LeaseHolder {
  readonly name: string;
  readonly limit: number;
  readonly retryAfterSeconds: number;
  readonly mayWait = true;
  readonly leaseKey: string;
  readonly channel: string;

  private readonly queueSize: number;
  private readonly waiters: WaitList;
  private readonly fallback: OutageFallback;
  private readonly leases: LeaseLedger;
  private readonly counts = { admitted: 0, rejected: 0, aborted: 0 };
  private wakes = 0;
  private draining = false;
  private drainAgain = false;
  private closed = false;

  constructor(
    options: ResolvedGaugeOptions,
    policy: StoreDownPolicy,
    keys: GaugeKeys,
    private readonly backend: LeaseBackend,
  ) {
    this.name = options.name;
    this.limit = options.limit;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.queueSize = options.queueSize;
    this.leaseKey = keys.leases;
    this.channel = keys.channel;
    this.waiters = new WaitList(this.name, this.retryAfterSeconds, options.queueTimeoutMs);
    this.fallback = new OutageFallback(options, policy, backend.health);
    this.leases = new LeaseLedger(this, backend);
  }

  /** Slots this instance holds (Redis leases plus local fail-open slots). */
  get inFlight(): number {
    return this.leases.size + this.fallback.inFlight;
  }

  get queued(): number {
    return this.waiters.length + this.fallback.queued;
  }

  get admitted(): number {
    return this.counts.admitted + this.fallback.admitted;
  }

  get rejected(): number {
    return this.counts.rejected + this.fallback.rejected;
  }

  get timedOut(): number {
    return this.waiters.timedOut + this.fallback.timedOut;
  }

  get aborted(): number {
    return this.counts.aborted + this.waiters.aborted + this.fallback.aborted;
  }

  /** True when waiting callers get a release notification (queue mode). */
  get notifies(): boolean {
    return this.queueSize > 0;
  }

  acquire(signal?: AbortSignal): Release | Promise<Release> {
    if (signal?.aborted) throw this.abortedError();
    if (this.closed) {
      this.counts.rejected++;
      throw new GaugeUnavailableError(
        this.name,
        `Gauge "${this.name}" is closed`,
        this.retryAfterSeconds,
      );
    }
    const state = this.backend.health.state;
    if (state === 'down') return this.fallback.acquire(signal);
    if (state === 'connecting') {
      return this.backend.health.settled().then(() => this.acquire(signal));
    }
    if (this.waiters.length > 0) {
      if (this.waiters.length >= this.queueSize) throw this.exhausted('queue-full');
      return this.waiters.add(signal);
    }
    return this.attempt(signal);
  }

  async process<T>(fn: () => T | PromiseLike<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  heldLeaseIds(): string[] {
    return this.leases.ids();
  }

  /** A release notification or the periodic re-check: waiting callers try again. */
  wake(): void {
    this.wakes++;
    if (this.waiters.length > 0) void this.drain();
  }

  /** Redis went away: waiting callers take the failure policy now rather than time out. */
  storeDown(): void {
    for (const waiter of this.waiters.takeAll()) {
      try {
        const slot = this.fallback.acquire(waiter.signal);
        if (typeof slot === 'function') waiter.resolve(slot);
        else slot.then(waiter.resolve, waiter.reject);
      } catch (error) {
        waiter.reject(error as Error);
      }
    }
  }

  /** Redis is back: frees what the outage left behind, then serves waiters. */
  storeUp(): void {
    this.leases.removeOrphans();
    this.wake();
  }

  /** Rejects waiting callers (they are told the gauge is full, as the in-memory gauge does). */
  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.takeAll()) {
      this.counts.rejected++;
      waiter.reject(
        GaugeExhaustedError.withoutStack(this.name, 'queue-full', this.retryAfterSeconds),
      );
    }
    this.fallback.close();
  }

  /** One script call: a slot now, a refusal, or a place in the local queue. */
  private async attempt(signal: AbortSignal | undefined): Promise<Release> {
    const id = this.backend.nextLeaseId();
    const wakes = this.wakes;
    let granted: boolean;
    try {
      granted = await this.backend.commands()!.acquire(this.leaseKey, id, this.limit, this.ttl);
    } catch (error) {
      this.leases.lost(id, error);
      return this.fallback.acquire(signal);
    }
    if (granted) {
      if (!signal?.aborted && !this.closed) return this.grant(id);
      this.leases.release(id);
      throw this.abortedError();
    }
    if (this.queueSize === 0) throw this.exhausted('full');
    if (this.waiters.length >= this.queueSize) throw this.exhausted('queue-full');
    if (signal?.aborted) throw this.abortedError();
    const waiting = this.waiters.add(signal);
    // A release notification that arrived while this attempt was on the wire was meant for it too.
    if (wakes !== this.wakes) void this.drain();
    return waiting;
  }

  /** Serves waiters oldest first, one attempt at a time, until Redis says full. */
  private async drain(): Promise<void> {
    if (this.draining) {
      this.drainAgain = true;
      return;
    }
    this.draining = true;
    try {
      do {
        this.drainAgain = false;
        await this.serveWaiters();
      } while (this.drainAgain);
    } finally {
      this.draining = false;
    }
  }

  private async serveWaiters(): Promise<void> {
    while (this.waiters.length > 0 && this.backend.health.state === 'up') {
      const id = this.backend.nextLeaseId();
      let granted: boolean;
      try {
        granted = await this.backend.commands()!.acquire(this.leaseKey, id, this.limit, this.ttl);
      } catch (error) {
        this.leases.lost(id, error);
        return;
      }
      if (!granted) return;
      // The waiter this was for may have timed out or aborted meanwhile: the next one gets it.
      const waiter = this.waiters.shift();
      if (waiter === undefined) {
        this.leases.release(id);
        return;
      }
      waiter.resolve(this.grant(id));
    }
  }

  private grant(id: string): Release {
    this.leases.hold(id);
    this.counts.admitted++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.leases.release(id);
    };
  }

  private get ttl(): number {
    return this.backend.leaseTtlMs;
  }

  private exhausted(reason: 'full' | 'queue-full'): GaugeExhaustedError {
    this.counts.rejected++;
    return GaugeExhaustedError.withoutStack(this.name, reason, this.retryAfterSeconds);
  }

  private abortedError(): GaugeAbortedError {
    this.counts.aborted++;
    return new GaugeAbortedError(this.name);
  }
}
