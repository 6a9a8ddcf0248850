import { GaugeAbortedError, GaugeExhaustedError, GaugeUnavailableError } from '../gauge.errors';
import type { Gauge, Release } from '../gauge.interface';
import type { ResolvedGaugeOptions, StoreDownPolicy } from '../gauge-options';
import { PressureGauge } from '../pressure-gauge';
import { WaitQueue, type QueueNode } from '../wait-queue';
import type { LeaseCommands } from './lease-commands';
import type { LeaseHolder } from './lease-renewer';
import { describeFailure, type RedisHealth } from './redis-health';

/** What a Redis gauge needs from its store: the connection's state, the scripts, lease settings. */
export interface LeaseBackend {
  readonly health: RedisHealth;
  readonly leaseTtlMs: number;
  /** Undefined until the client exists (ioredis still loading). */
  commands(): LeaseCommands | undefined;
  /** A lease id unique across instances: `instanceId:counter`. */
  nextLeaseId(): string;
}

/** Where one gauge lives in Redis. */
export interface GaugeKeys {
  readonly leases: string;
  readonly channel: string;
}

/** A caller waiting locally for a global slot. */
class Waiter implements QueueNode {
  prev: QueueNode | undefined = undefined;
  next: QueueNode | undefined = undefined;
  deadline = 0;
  queued = false;
  onAbort: (() => void) | undefined = undefined;

  constructor(
    readonly resolve: (release: Release) => void,
    readonly reject: (error: Error) => void,
    readonly signal: AbortSignal | undefined,
  ) {}

  settle(): void {
    if (this.onAbort) this.signal?.removeEventListener('abort', this.onAbort);
    this.onAbort = undefined;
  }
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
  private readonly waiters: WaitQueue<Waiter>;
  /** Fail-open policy only: the per-instance gauge used while Redis is down. */
  private readonly local: PressureGauge | undefined;
  private readonly held = new Set<string>();
  /** Leases to remove once Redis is back: failed releases, and attempts whose outcome was lost. */
  private readonly orphans = new Set<string>();
  private readonly counts = { admitted: 0, rejected: 0, timedOut: 0, aborted: 0 };
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
    this.waiters = new WaitQueue<Waiter>(options.queueTimeoutMs, this.expire);
    if (policy !== 'fail-closed') {
      this.local = new PressureGauge({ ...options, limit: policy.localLimit });
    }
  }

  /** Slots this instance holds (Redis leases plus local fail-open slots). */
  get inFlight(): number {
    return this.held.size + (this.local?.inFlight ?? 0);
  }

  get queued(): number {
    return this.waiters.length + (this.local?.queued ?? 0);
  }

  get admitted(): number {
    return this.counts.admitted + (this.local?.admitted ?? 0);
  }

  get rejected(): number {
    return this.counts.rejected + (this.local?.rejected ?? 0);
  }

  get timedOut(): number {
    return this.counts.timedOut + (this.local?.timedOut ?? 0);
  }

  get aborted(): number {
    return this.counts.aborted + (this.local?.aborted ?? 0);
  }

  /** True when waiting callers get a release notification (queue mode). */
  get notifies(): boolean {
    return this.queueSize > 0;
  }

  acquire(signal?: AbortSignal): Release | Promise<Release> {
    if (signal?.aborted) throw this.abortedError();
    if (this.closed) throw this.unavailable(`Gauge "${this.name}" is closed`);
    const state = this.backend.health.state;
    if (state === 'down') return this.whileDown(signal);
    if (state === 'connecting') {
      return this.backend.health.settled().then(() => this.acquire(signal));
    }
    if (this.waiters.length > 0) {
      if (this.waiters.length >= this.queueSize) throw this.exhausted('queue-full');
      return this.enqueue(signal);
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
    return [...this.held];
  }

  /** A release notification or the periodic re-check: waiting callers try again. */
  wake(): void {
    this.wakes++;
    if (this.waiters.length > 0) void this.drain();
  }

  /** Redis went away: waiting callers take the failure policy now rather than time out. */
  storeDown(): void {
    for (const waiter of this.waiters.drain()) {
      waiter.settle();
      try {
        const slot = this.whileDown(waiter.signal);
        if (typeof slot === 'function') waiter.resolve(slot);
        else slot.then(waiter.resolve, waiter.reject);
      } catch (error) {
        waiter.reject(error as Error);
      }
    }
  }

  /** Redis is back: frees what the outage left behind, then serves waiters. */
  storeUp(): void {
    this.removeOrphans();
    this.wake();
  }

  /** Rejects waiting callers (they are told the gauge is full, as the in-memory gauge does). */
  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.drain()) {
      waiter.settle();
      this.counts.rejected++;
      waiter.reject(new GaugeExhaustedError(this.name, 'queue-full', this.retryAfterSeconds));
    }
    this.local?.close();
  }

  /** One script call: a slot now, a refusal, or a place in the local queue. */
  private async attempt(signal: AbortSignal | undefined): Promise<Release> {
    const id = this.backend.nextLeaseId();
    const wakes = this.wakes;
    let granted: boolean;
    try {
      granted = await this.backend.commands()!.acquire(this.leaseKey, id, this.limit, this.ttl);
    } catch (error) {
      this.failed(id, error);
      return this.whileDown(signal);
    }
    if (granted) {
      if (!signal?.aborted && !this.closed) return this.grant(id);
      this.releaseLease(id);
      throw this.abortedError();
    }
    if (this.queueSize === 0) throw this.exhausted('full');
    if (this.waiters.length >= this.queueSize) throw this.exhausted('queue-full');
    if (signal?.aborted) throw this.abortedError();
    const waiting = this.enqueue(signal);
    // A release notification that arrived while this attempt was on the wire was meant for it too.
    if (wakes !== this.wakes) void this.drain();
    return waiting;
  }

  private enqueue(signal: AbortSignal | undefined): Promise<Release> {
    return new Promise<Release>((resolve, reject) => {
      const waiter = new Waiter(resolve, reject, signal);
      if (signal) {
        waiter.onAbort = () => this.abort(waiter);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiters.push(waiter);
    });
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
        this.failed(id, error);
        return;
      }
      if (!granted) return;
      // The waiter this was for may have timed out or aborted meanwhile: the next one gets it.
      const waiter = this.waiters.shift();
      if (waiter === undefined) {
        this.releaseLease(id);
        return;
      }
      waiter.settle();
      waiter.resolve(this.grant(id));
    }
  }

  private grant(id: string): Release {
    this.held.add(id);
    this.counts.admitted++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.held.delete(id);
      this.releaseLease(id);
    };
  }

  /** One script call; if Redis is away the lease is remembered and removed when it is back. */
  private releaseLease(id: string): void {
    const commands = this.backend.commands();
    if (!commands || this.backend.health.state !== 'up') {
      this.orphans.add(id);
      return;
    }
    commands
      .release(this.leaseKey, this.channel, this.limit, this.notifies, [id])
      .catch((error: unknown) => this.failed(id, error));
  }

  private removeOrphans(): void {
    const commands = this.backend.commands();
    if (this.orphans.size === 0 || !commands) return;
    const ids = [...this.orphans];
    this.orphans.clear();
    commands
      .release(this.leaseKey, this.channel, this.limit, this.notifies, ids)
      .catch((error: unknown) => {
        for (const id of ids) this.orphans.add(id);
        this.backend.health.markDown(describeFailure(error));
      });
  }

  /** A command failed: its lease may exist in Redis, so it is removed on recovery; Redis is down. */
  private failed(id: string, error: unknown): void {
    this.orphans.add(id);
    this.backend.health.markDown(describeFailure(error));
  }

  /** The failure policy: a local slot (fail open) or 503 (fail closed). */
  private whileDown(signal: AbortSignal | undefined): Release | Promise<Release> {
    if (this.local) return this.local.acquire(signal);
    const why = this.backend.health.reason || 'not connected';
    throw this.unavailable(
      `Gauge "${this.name}" refused: its Redis store is unreachable (${why}) and it fails closed`,
    );
  }

  private get ttl(): number {
    return this.backend.leaseTtlMs;
  }

  private readonly expire = (waiter: Waiter): void => {
    waiter.settle();
    this.counts.timedOut++;
    waiter.reject(new GaugeExhaustedError(this.name, 'timeout', this.retryAfterSeconds));
  };

  private abort(waiter: Waiter): void {
    if (!this.waiters.remove(waiter)) return;
    waiter.settle();
    waiter.reject(this.abortedError());
  }

  private exhausted(reason: 'full' | 'queue-full'): GaugeExhaustedError {
    this.counts.rejected++;
    return new GaugeExhaustedError(this.name, reason, this.retryAfterSeconds);
  }

  private abortedError(): GaugeAbortedError {
    this.counts.aborted++;
    return new GaugeAbortedError(this.name);
  }

  private unavailable(message: string): GaugeUnavailableError {
    this.counts.rejected++;
    return new GaugeUnavailableError(this.name, message, this.retryAfterSeconds);
  }
}
