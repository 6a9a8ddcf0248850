import { GaugeAbortedError, GaugeExhaustedError, GaugeUnavailableError } from '../gauge.errors';
import { GaugeFigures, type GaugeListener } from '../gauge-events';
import type { AcquireOptions, Gauge, Release } from '../gauge.interface';
import type { ResolvedGaugeOptions } from '../resolved-gauge-options';
import type { StoreDownPolicy } from '../store-down.policy';
import { HoldWatch } from '../hold-watch';
import type { LimitPolicy } from '../limit-policy';
import { classifyError, type OutcomeClassifier } from '../outcome';
import { runInSlot, type Work } from '../work';
import { LoopPressure } from '../pressure/loop-pressure';
import { NORMAL_RANK, rankOf, type PriorityRank } from '../priority/priority.level';
import { KeyEntry } from '../partition/key-partitions';
import { WaitList } from '../wait-list';
import type { StoreCommandError } from './command-error';
import { LeaseAttempts, type Granted } from './lease-attempts';
import type { LeaseBackend } from './lease-backend.interface';
import type { GaugeKeys } from './lease-client';
import { LeaseLedger } from './lease-ledger';
import type { LeaseHolder } from './lease-renewer';
import { OutageFallback } from './outage-fallback';
import { SharedDrain } from './shared-drain';
import { SharedLimit } from './shared-limit';
import { SharedSlots } from './shared-slots';
import { SharedHeadroom } from './shared-headroom';
import { SharedPartitions } from './shared-partitions';
import type { StoreState } from './store-health';

/**
 * A gauge whose `limit` holds across every instance sharing one store: a slot is a lease in the
 * gauge's lease set, taken and given back by one `LeaseClient` call each. Nothing here depends on
 * the store: Redis is one `LeaseClient` (src/redis). The limit is a cap stored beside the leases
 * (see `SharedLimit`): `setLimit` on one instance applies to all, and `limit` follows it.
 *
 * Callers that cannot have a slot at once wait in one local FIFO (the core `WaitList`: queue size,
 * timeout and abort as in memory), whatever the store's state: while it is still connecting, while
 * the gauge is full (retried on a release notification or the store's periodic re-check), and
 * while the store is down and every fail-open local slot is taken. So a caller keeps its place and
 * deadline across an outage and its recovery, and is served before anyone who came later. While
 * the store is unreachable the gauge follows its `whenStoreDown` policy (see `OutageFallback`).
 *
 * Keys (`acquire({ key })`, option `partition`) and, failing fast, priorities are enforced by
 * the store's acquire script across every instance (`SharedPartitions`, `SharedHeadroom`): a key's
 * cap and fair share, and the room kept for higher levels, in the same one call per attempt.
 *
 * With an adaptive limit (`gradient2()`, …) the cap in the store is the policy's `max` (or what
 * `setLimit` set), and each instance adapts its own share under it from its own samples: it holds
 * at most `min(share, cap)` leases, so `limit` here is that share. Instances whose dependency
 * slows down back off on their own; together they never exceed the cap.
 */
export class SharedGauge implements Gauge, LeaseHolder {
  readonly name: string;
  readonly retryAfterSeconds: number;
  readonly mayWait = true;
  readonly classify: OutcomeClassifier;
  /** The gauge's keys in the store: lease set, cap, channel. */
  readonly keys: GaugeKeys;
  readonly leaseKey: string;
  readonly channel: string;

  private readonly queueSize: number;
  private readonly waiters: WaitList;
  private readonly fallback: OutageFallback;
  private readonly leases: LeaseLedger;
  private readonly figures: GaugeFigures;
  private readonly cap: SharedLimit;
  /** The release handles: leases given back once, hold times and outcomes reported. */
  private readonly slots: SharedSlots;
  /** An adaptive limit's policy: this instance's share under the cap. Absent: a fixed limit. */
  private readonly share: LimitPolicy | undefined;
  /** The calls to the store for a lease, and those still on the wire. */
  private readonly attempts: LeaseAttempts;
  /** Serves the local waiters from the store. */
  private readonly drainer: SharedDrain;
  private wakes = 0;
  private closed = false;
  /** Present with option `eventLoop`: this process's own pressure (the store knows nothing of it). */
  private readonly pressure: LoopPressure | undefined;
  /** Per-key fairness: enforced by the store's acquire script, across every instance. */
  private readonly partitions: SharedPartitions;
  /** The room the store keeps for keys under their share and, failing fast, higher levels. */
  private readonly headroom: SharedHeadroom;

  constructor(
    options: ResolvedGaugeOptions,
    policy: StoreDownPolicy,
    keys: GaugeKeys,
    private readonly backend: LeaseBackend,
  ) {
    this.name = options.name;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.queueSize = options.queueSize;
    this.keys = keys;
    this.leaseKey = keys.leases;
    this.channel = keys.channel;
    this.classify = options.classify ?? classifyError;
    this.figures = new GaugeFigures(this.name);
    this.share = options.policy?.create(`Gauge "${this.name}": option "limit"`);
    this.cap = new SharedLimit(
      this.share?.max ?? options.limit,
      {
        name: this.name,
        keys,
        retryAfterSeconds: this.retryAfterSeconds,
        changed: (from, to) => this.capChanged(from, to),
      },
      backend,
    );
    this.pressure =
      options.eventLoop === undefined
        ? undefined
        : new LoopPressure(options.eventLoop, () => this.inFlight);
    // A fail-fast gauge waits only for the first connection, and at most as long as it may take.
    const timeoutMs = this.queueSize > 0 ? options.queueTimeoutMs : backend.connectTimeoutMs;
    this.waiters = new WaitList(this.figures, this.retryAfterSeconds, timeoutMs, {
      discipline: options.queueDiscipline,
      targetMs: options.queueTargetMs,
      intervalMs: options.queueIntervalMs,
    });
    this.fallback = new OutageFallback(
      options,
      policy,
      backend.health,
      backend.kind,
      this.figures,
      () => this.serveLocally(),
    );
    this.leases = new LeaseLedger(this, backend);
    this.partitions = new SharedPartitions(options.partition, this.queueSize === 0);
    this.headroom = new SharedHeadroom(this.queueSize === 0);
    const holds =
      options.maxHoldMs === undefined ? undefined : new HoldWatch(this.figures, options.maxHoldMs);
    this.slots = new SharedSlots(this.figures, this.leases, this.headroom, holds, this.share, {
      limit: () => this.limit,
      waitedMs: (waiter) => this.waiters.waitedMs(waiter),
      mayServe: () => {
        if (this.waiters.length > 0) void this.drainer.drain();
      },
    });
    this.attempts = new LeaseAttempts(backend, keys, this.cap, this.headroom, this.leases);
    this.drainer = new SharedDrain({
      waiters: this.waiters,
      attempts: this.attempts,
      partitions: this.partitions,
      queueSize: this.queueSize,
      mayTry: () => this.backend.health.state === 'up' && this.shareFree(),
      nextLeaseId: () => this.backend.nextLeaseId(),
      giveBack: (id) => this.leases.release(id),
      grant: (id, waiter, partition) => this.slots.grant(id, waiter, partition),
      refusal: (failure) => this.refusal(failure),
      refuseAll: () => this.refuseWaiters('full'),
    });
  }

  /**
   * The cap every instance applies now, as the store last reported it; with an adaptive limit,
   * this instance's share under it.
   */
  get limit(): number {
    const cap = this.cap.value;
    return this.share === undefined ? cap : Math.min(cap, this.share.limit);
  }

  /** Where the store's connection stands now: what a health check reports. */
  get storeState(): StoreState {
    return this.backend.health.state;
  }

  /** This instance's configured limit: the cap when the store holds none. */
  get configuredLimit(): number {
    return this.cap.configured;
  }

  /** Slots this instance holds (leases in the store plus local fail-open slots). */
  get inFlight(): number {
    return this.leases.size + this.fallback.inFlight;
  }

  get queued(): number {
    return this.waiters.length;
  }

  get admitted(): number {
    return this.figures.admitted;
  }

  get rejected(): number {
    return this.figures.rejected;
  }

  get timedOut(): number {
    return this.figures.timedOut;
  }

  get aborted(): number {
    return this.figures.aborted;
  }

  subscribe(listener: GaugeListener): () => void {
    return this.figures.subscribe(listener);
  }

  /**
   * Stores `limit` as the cap of every instance sharing the gauge, at once: a raise hands slots to
   * waiters (here at once, elsewhere on the announcement), a cut never revokes a held slot. Throws
   * `GaugeConfigError` for a bad value; rejects with `GaugeUnavailableError` when the store is not
   * up or did not answer (then the limit is unchanged, or unknown if the call got lost).
   */
  setLimit(limit: number): Promise<void> {
    return this.cap.set(limit, this.closed);
  }

  /** Numbers a call that will report the cap (see `SharedLimit.stamp`). */
  capStamp(): number {
    return this.cap.stamp();
  }

  /** The store reported the cap in effect (a renewal, stamped `stamp`, read it). */
  follow(limit: number, stamp: number): void {
    this.cap.follow(limit, stamp);
  }

  /** True when waiting callers get a release notification (queue mode). */
  get notifies(): boolean {
    return this.queueSize > 0;
  }

  acquire(options?: AcquireOptions): Release | Promise<Release> {
    const signal = options?.signal;
    if (signal?.aborted) throw this.abortedError();
    // Failing fast, the store keeps room for higher levels and for keys under their share, across
    // the instances (`SharedHeadroom`, `SharedPartitions`); a queue orders its own waiters.
    const named = rankOf(options?.priority);
    const rank = named ?? NORMAL_RANK;
    const key = typeof options?.key === 'string' ? options.key : undefined;
    if (this.pressure?.sheds(rank, this.inFlight)) throw this.exhausted('shed-pressure');
    if (this.closed) throw this.closedError();
    switch (this.backend.health.state) {
      case 'up':
        // Behind earlier callers; a fail-fast gauge's callers left from the first connection are
        // being served, and a newcomer may try the store meanwhile rather than be refused.
        if (this.waiters.length > 0 && this.queueSize > 0) return this.join(signal, rank, key);
        // This instance's adaptive share is used up: no need to ask the store.
        if (!this.shareFree()) {
          if (this.queueSize === 0) throw this.exhausted('full');
          return this.join(signal, rank, key);
        }
        return this.attempt(signal, rank, key, named !== undefined);
      case 'down':
        return this.outageSlot(signal, rank, key);
      case 'connecting':
        // Nothing is known yet: wait in the list (bounded) until the first connection settles.
        return this.join(signal, rank, key);
    }
  }

  async process<T>(fn: Work<T>, options?: AcquireOptions): Promise<T> {
    const release = await this.acquire(options);
    return runInSlot(fn, release, this.classify, options?.signal);
  }

  heldLeaseIds(): string[] {
    return this.leases.ids();
  }

  renewed(ids: readonly string[]): number {
    return this.leases.renewed(ids);
  }

  /** Resolves once this instance holds no lease (every release sent), for a graceful close. */
  idle(): Promise<void> {
    return this.leases.idle();
  }

  /** A release notification or the periodic re-check: waiting callers try again. */
  wake(): void {
    this.wakes++;
    if (this.waiters.length > 0) void this.drainer.drain();
  }

  /** The store went away (or never came): waiting callers take the failure policy now. */
  storeDown(reason: string): void {
    this.figures.storeDown(reason);
    if (!this.fallback.failsOpen) {
      for (const waiter of this.waiters.takeAll()) waiter.reject(this.fallback.refusal());
      return;
    }
    this.serveLocally();
    // A fail-fast gauge waited only for the connection: whoever got no local slot is refused.
    if (this.queueSize === 0) this.refuseWaiters('full');
  }

  /** The store is back (or connected): frees what the outage left behind, then serves waiters. */
  storeUp(): void {
    this.figures.storeUp();
    this.connected();
    this.leases.removeOrphans();
    this.wake();
  }

  /** The store is up (first time: bootstrap): stores or adopts the gauge's cap, once. */
  connected(): void {
    this.cap.sync();
  }

  /** A renewal round was answered: a cap sync that failed (a script error) is tried again. */
  retryBootstrap(): void {
    this.cap.sync();
  }

  /** Rejects waiting callers (they are told the gauge is full, as the in-memory gauge does). */
  close(): void {
    this.pressure?.close();
    this.closed = true;
    this.refuseWaiters('queue-full');
  }

  /** One `acquire` call: a slot now, a refusal, or a place in the local queue. */
  private async attempt(
    signal: AbortSignal | undefined,
    rank: PriorityRank,
    key: string | undefined,
    named: boolean,
  ): Promise<Release> {
    const id = this.backend.nextLeaseId();
    const partition = this.partitions.request(key, id);
    const wakes = this.wakes;
    let granted: Granted;
    try {
      granted = await this.attempts.try(id, partition, rank, named);
    } catch (error) {
      const failure = this.attempts.lost(id, partition, error);
      if (failure !== undefined) {
        // The store answered with an error of the script's own: no outage, this call is refused.
        this.figures.reject('unavailable');
        throw this.refusal(failure);
      }
      // Closed while the attempt was on the wire: no local slot, no place in the list.
      if (this.closed) throw this.closedError();
      return this.outageSlot(signal, rank, key);
    }
    if (granted === 'key-over-share' || granted === 'shed-priority') throw this.exhausted(granted);
    if (granted !== 'full') {
      if (!signal?.aborted && !this.closed) return this.slots.grant(granted, undefined, partition);
      this.leases.release(granted);
      throw signal?.aborted ? this.abortedError() : this.closedError();
    }
    if (this.queueSize === 0) throw this.exhausted('full');
    if (signal?.aborted) throw this.abortedError();
    // Closed while the attempt was on the wire: `close()` refused the waiters, and so this caller.
    if (this.closed) throw this.closedError();
    const waiting = this.join(signal, rank, key);
    // A release notification that arrived while this attempt was on the wire was meant for it too.
    if (wakes !== this.wakes) void this.drainer.drain();
    this.serveLocally(); // the store went away meanwhile: a free local slot is for this caller
    return waiting;
  }

  /** While the store is down: a local slot (fail open, nobody waiting before), a wait, or a refusal. */
  private outageSlot(
    signal: AbortSignal | undefined,
    rank: PriorityRank,
    key: string | undefined,
  ): Release | Promise<Release> {
    if (!this.fallback.failsOpen) throw this.fallback.refusal();
    if (this.waiters.length === 0) {
      const slot = this.fallback.take();
      if (slot) return this.slots.watched(slot);
    }
    return this.join(signal, rank, key);
  }

  /** Joins the end of the wait list if there is room (a waiter's key rides along, for the store). */
  private join(
    signal: AbortSignal | undefined,
    rank: PriorityRank,
    key: string | undefined,
  ): Promise<Release> {
    const entry = key === undefined ? undefined : new KeyEntry(key);
    if (this.queueSize > 0) {
      if (this.waiters.length >= this.queueSize && !this.waiters.makeRoom(rank)) {
        throw this.exhausted('queue-full');
      }
      return this.waiters.add(signal, rank, entry);
    }
    // Fail fast: wait only for the first connection, and no more callers than could be admitted.
    const connecting = this.backend.health.state === 'connecting';
    if (!connecting || this.waiters.length >= this.limit) throw this.exhausted('full');
    return this.waiters.add(signal, rank, entry);
  }

  /**
   * While the store is down, hands free local slots to the oldest waiters. The waiter is found
   * before a slot is taken: waiters past their deadline (their timer not run yet) are refused
   * first, and may leave nobody to take the slot.
   */
  private serveLocally(): void {
    while (this.waiters.length > 0 && this.backend.health.state === 'down') {
      const now = performance.now();
      const waiter = this.waiters.peek(now);
      if (waiter === undefined) return;
      const slot = this.fallback.take();
      if (!slot) return;
      if (this.waiters.take(waiter, now)) waiter.resolve(this.slots.watched(slot));
      else slot('ignored'); // a listener told of the grant made the waiter leave meanwhile
    }
  }

  private refuseWaiters(reason: 'full' | 'queue-full'): void {
    for (const waiter of this.waiters.takeAll()) waiter.reject(this.exhausted(reason));
  }

  /** Whether this instance may try for one more lease: always, unless its adaptive share is used. */
  private shareFree(): boolean {
    return this.share === undefined || this.leases.size + this.attempts.trying < this.limit;
  }

  /** The cap changed: an event if this instance's limit did, waiters woken on a raise. */
  private capChanged(from: number, to: number): void {
    const share = this.share?.limit ?? Infinity;
    const [was, now] = [Math.min(from, share), Math.min(to, share)];
    if (was !== now) this.figures.limitChanged(was, now);
    if (now > was) this.wake();
  }

  private exhausted(
    reason: 'full' | 'queue-full' | 'shed-pressure' | 'key-over-share' | 'shed-priority',
  ): GaugeExhaustedError {
    this.figures.reject(reason);
    return GaugeExhaustedError.withoutStack(this.name, reason, this.retryAfterSeconds);
  }

  /** A caller's refusal when the store answered its attempt with `failure` (no outage). */
  private refusal(failure: StoreCommandError): GaugeUnavailableError {
    return new GaugeUnavailableError(
      this.name,
      `Gauge "${this.name}": its ${this.backend.kind} store answered with an error: ` +
        `${failure.message}; the call is refused`,
      this.retryAfterSeconds,
    );
  }

  /** The refusal of a caller of a closed gauge (counted as `unavailable`). */
  private closedError(): GaugeUnavailableError {
    this.figures.reject('unavailable');
    return new GaugeUnavailableError(
      this.name,
      `Gauge "${this.name}" is closed`,
      this.retryAfterSeconds,
    );
  }

  private abortedError(): GaugeAbortedError {
    this.figures.abort(0);
    return GaugeAbortedError.withoutStack(this.name);
  }
}
