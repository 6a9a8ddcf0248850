import { GaugeAbortedError, GaugeConfigError, GaugeExhaustedError } from './gauge.errors';
import { GaugeFigures, type GaugeListener, type Outcome } from './gauge-events';
import type { AcquireOptions, Gauge, Release } from './gauge.interface';
import { resolveGaugeOptions, type GaugeOptions } from './gauge-options';
import type { ResolvedGaugeOptions } from './resolved-gauge-options';
import { attachSlot, HoldWatch } from './hold-watch';
import { assertLimit, FixedLimit, type LimitPolicy } from './limit-policy';
import { classifyError, type OutcomeClassifier } from './outcome';
import { LoopPressure } from './pressure/loop-pressure';
import { DEFAULT_MAX_KEYS, KeyPartitions, type KeyEntry } from './partition/key-partitions';
import { PriorityGrace } from './priority/priority-grace';
import { PriorityHeadroom } from './priority/priority-headroom';
import { ReleaseForecast, type HeldSince } from './priority/release-forecast';
import { NORMAL_RANK, rankOf, type PriorityRank } from './priority/priority.level';
import { WaitList } from './wait-list';
import { runInSlot, type Work } from './work';

/**
 * An in-process counting semaphore: at most `limit` callers hold a slot at once. The rest are
 * rejected at once (fail fast) or wait in a bounded queue for at most the queue timeout.
 *
 * A freed slot goes straight to a waiter (hand-off: the highest priority waiting, then as the
 * queue discipline says), so a newcomer can never barge past the queue, and a waiter that timed
 * out, aborted or was shed has already left the queue and is never served. A fail-fast gauge that
 * sees priorities keeps room for higher levels (`PriorityHeadroom`) and lets them wait briefly for
 * the next freed slot (`PriorityGrace`); until the first call with a priority, it does exactly
 * what it did without.
 * Everything is synchronous on the happy path: no promise, timer or signal unless a caller waits,
 * and no clock read unless the limit policy learns from samples or someone listens.
 *
 * The limit is the policy's: a fixed one (`setLimit`) or an adaptive one, fed each release's
 * latency and outcome. A change applies at once: a raise hands slots to waiters, a cut lets held
 * slots drain and hands none out until `inFlight` is under the new limit.
 */
export class PressureGauge implements Gauge {
  readonly name: string;
  readonly retryAfterSeconds: number;
  readonly classify: OutcomeClassifier;

  private active = 0;
  private current: number;
  /** Slots on offer: the limit until `close()`, then 0, so the hot path needs no extra check. */
  private capacity: number;
  private closed = false;
  private queueSize: number;
  private readonly policy: LimitPolicy;
  private readonly figures: GaugeFigures;
  private readonly waiters: WaitList;
  private readonly holds: HoldWatch | undefined;
  /** Created by the first call with a priority on a fail-fast gauge; from then on all calls use it. */
  private headroom: PriorityHeadroom | undefined;
  /** Created with `headroom`: the higher-level callers waiting briefly for a freed slot. */
  private grace: PriorityGrace | undefined;
  /** Created with `headroom`: the held slots in grant order, to lend the reserve while one is due. */
  private forecast: ReleaseForecast | undefined;
  /** Option `priorityWaitMs`; absent: half the mean hold time. */
  private readonly priorityWaitMs: number | undefined;
  /** Present with option `eventLoop`: refuses `low` and caps `normal` while the process's event loop is late. */
  private readonly pressure: LoopPressure | undefined;
  /** Created by option `partition` or the first call with a key; from then on all calls use it. */
  private partitions: KeyPartitions | undefined;
  private readonly partitionSettings: ResolvedGaugeOptions['partition'];
  /** Whether the policy learns from samples: read once, as the policy's `samples` is fixed. */
  private readonly samples: boolean;
  /**
   * No priority headroom, partitions, event-loop pressure or hold watch: `acquire()` without
   * options is a count and a comparison, its release a count (and a sample when `timed`).
   */
  private plain: boolean;
  /** Whether a plain slot reads the clock: the policy samples or someone listens. */
  private timed: boolean;

  /** Takes either raw options (validated here) or options the module already resolved. */
  constructor(options: ResolvedGaugeOptions | (GaugeOptions & { name: string })) {
    const resolved = isResolved(options) ? options : resolveRaw(options);
    this.name = resolved.name;
    this.policy =
      resolved.policy?.create(`Gauge "${resolved.name}": option "limit"`) ??
      new FixedLimit(resolved.limit);
    this.current = this.policy.limit;
    this.capacity = this.current;
    this.retryAfterSeconds = resolved.retryAfterSeconds;
    this.queueSize = resolved.queueSize;
    this.classify = resolved.classify ?? classifyError;
    this.figures = new GaugeFigures(this.name);
    this.waiters = new WaitList(this.figures, this.retryAfterSeconds, resolved.queueTimeoutMs, {
      discipline: resolved.queueDiscipline,
      targetMs: resolved.queueTargetMs,
      intervalMs: resolved.queueIntervalMs,
      onLeft: (entry, served) => this.partitions?.dequeue(entry, served),
      atCap: (entry) => this.partitions?.atCap(entry, this.capacity) === true,
    });
    this.partitionSettings = resolved.partition;
    this.priorityWaitMs = resolved.priorityWaitMs;
    if (resolved.partition !== undefined) this.partitions = new KeyPartitions(resolved.partition);
    this.holds =
      resolved.maxHoldMs === undefined
        ? undefined
        : new HoldWatch(this.figures, resolved.maxHoldMs);
    this.pressure =
      resolved.eventLoop === undefined
        ? undefined
        : new LoopPressure(resolved.eventLoop, () => this.active);
    this.samples = this.policy.samples;
    this.timed = this.samples;
    this.plain = this.holds === undefined && this.pressure === undefined;
    this.refresh();
  }

  /** Decides again, after a change of listeners or the first priority or key, what a slot costs. */
  private refresh(): void {
    this.timed = this.samples || this.figures.listening;
    this.plain =
      this.holds === undefined &&
      this.pressure === undefined &&
      this.headroom === undefined &&
      this.partitions === undefined;
  }

  /**
   * A queue, or a fail-fast gauge whose higher levels and keys under their share may wait briefly
   * (`priorityWaitMs`) once priorities or keys are in use: `acquire()` may return a promise.
   */
  get mayWait(): boolean {
    return (
      this.queueSize > 0 ||
      (this.priorityWaitMs !== 0 && (this.headroom !== undefined || this.partitions !== undefined))
    );
  }

  get limit(): number {
    return this.current;
  }

  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiters.length + (this.grace?.length ?? 0);
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
    const unsubscribe = this.figures.subscribe(listener);
    this.refresh();
    return () => {
      unsubscribe();
      this.refresh();
    };
  }

  /**
   * Takes a slot only if one is free right now, without waiting or queueing. A miss counts as a
   * rejection, since the caller was turned away.
   */
  tryAcquire(): Release | undefined {
    if (this.pressure?.sheds(NORMAL_RANK, this.active)) {
      this.figures.reject('shed-pressure');
      return undefined;
    }
    if (this.headroom !== undefined || this.partitions !== undefined) {
      const slot = this.tryRanked(NORMAL_RANK, false, this.partitions?.lookup(undefined));
      return typeof slot === 'function' ? slot : undefined;
    }
    if (this.active < this.capacity && this.waiters.length === 0) return this.grant();
    this.figures.reject('full');
    return undefined;
  }

  acquire(options?: AcquireOptions): Release | Promise<Release> {
    if (options === undefined && this.plain) {
      if (this.active < this.capacity && this.waiters.length === 0) {
        this.active++;
        this.figures.admit(0);
        return this.timed ? this.timedLease(performance.now()) : this.countedLease();
      }
      return this.wait(undefined, NORMAL_RANK);
    }
    const signal = options?.signal;
    if (signal?.aborted) {
      this.figures.abort(0);
      throw new GaugeAbortedError(this.name);
    }
    const priority = options?.priority;
    if (this.pressure?.sheds(rankOf(priority) ?? NORMAL_RANK, this.active)) {
      this.figures.reject('shed-pressure');
      throw GaugeExhaustedError.withoutStack(this.name, 'shed-pressure', this.retryAfterSeconds);
    }
    const key = options?.key;
    if (priority === undefined && this.headroom === undefined) {
      if (key === undefined && this.partitions === undefined) {
        if (this.active < this.capacity && this.waiters.length === 0) return this.grant();
        return this.wait(signal, NORMAL_RANK);
      }
    }
    const rank = rankOf(priority) ?? NORMAL_RANK;
    const entry =
      key === undefined && this.partitions === undefined
        ? undefined
        : (this.partitions ??= this.defaultPartitions()).lookup(key);
    return this.acquireRanked(signal, rank, priority !== undefined, entry);
  }

  /**
   * `acquire` with a priority or a key: a fail-fast gauge keeps room for higher levels and for
   * keys under their share; a queue serves them first.
   */
  private acquireRanked(
    signal: AbortSignal | undefined,
    rank: PriorityRank,
    prioritized: boolean,
    entry: KeyEntry | undefined,
  ): Release | Promise<Release> {
    if (this.queueSize === 0) {
      const slot = this.tryRanked(rank, prioritized, entry, signal, true);
      if (typeof slot !== 'string') return slot;
      throw GaugeExhaustedError.withoutStack(this.name, slot, this.retryAfterSeconds);
    }
    if (entry === undefined) {
      if (this.active < this.capacity && this.waiters.length === 0) return this.grant();
      return this.wait(signal, rank);
    }
    const partitions = this.partitions!;
    if (!partitions.mayQueue(entry, this.capacity)) {
      this.figures.reject('key-over-share');
      throw GaugeExhaustedError.withoutStack(this.name, 'key-over-share', this.retryAfterSeconds);
    }
    if (this.active < this.capacity && this.waiters.length === 0) return this.grant(entry);
    return this.wait(signal, rank, entry, partitions.excess(entry, this.capacity));
  }

  /**
   * Fail fast with priorities or keys: a slot only if more are free than higher levels need kept
   * and, for a key at or over its share, than keys under theirs need kept; else, for `acquire`
   * (`mayWait`) above a level that fills the gauge, a brief wait for the next freed slot.
   */
  private tryRanked(
    rank: PriorityRank,
    prioritized: boolean,
    entry: KeyEntry | undefined,
    signal?: AbortSignal,
    mayWait = false,
  ): Release | Promise<Release> | 'full' | 'shed-priority' | 'key-over-share' {
    let headroom = this.headroom;
    if (headroom === undefined && prioritized) {
      headroom = this.headroom = this.createHeadroom();
      this.refresh();
    }
    const now = performance.now();
    headroom?.arrive(rank, now);
    const free = this.capacity - this.active;
    let reason: 'full' | 'shed-priority' | 'key-over-share' = 'full';
    if (
      entry !== undefined &&
      !this.closed &&
      !this.partitions!.admits(entry, this.capacity, free, now, this.priorityWaitMs)
    ) {
      reason = 'key-over-share';
    } else if (free > 0 && this.waiters.length === 0) {
      if (headroom === undefined || rank === 0 || free > this.keptFor(headroom, rank, now)) {
        return this.grant(entry, now);
      }
      reason = 'shed-priority';
    }
    if (mayWait && reason !== 'key-over-share' && !this.closed) {
      // Above a level that fills the gauge, or a key under its share while another key fills it.
      let basis = headroom;
      let waitMs = headroom === undefined ? 0 : headroom.waitFor(rank, this.priorityWaitMs);
      if (waitMs === 0 && reason === 'full' && entry !== undefined) {
        basis = this.partitions!.headroom;
        waitMs = this.partitions!.graceFor(entry, this.priorityWaitMs);
      }
      if (basis !== undefined && waitMs > 0) {
        const grace = (this.grace ??= this.createGrace());
        if (grace.servedBefore(rank) < basis.maxWaiting(this.capacity, waitMs)) {
          if (entry !== undefined) this.partitions!.queue(entry);
          return grace.add(rank, waitMs, now, signal, entry, basis);
        }
        basis.waited(false, now); // as many wait as the next releases can serve: a miss too
      }
    }
    this.figures.reject(reason);
    return reason;
  }

  /**
   * Slots kept free for levels above `rank`: the calibrated reserve, less the held slots due back
   * within half the brief wait (a higher-level caller finding the gauge full is served by one of
   * them in time), less those already promised to brief waiters. Nothing is lent while a level
   * above `rank` waits briefly: a slot free then is kept for it (lending it would serve a lower
   * level first).
   */
  private keptFor(headroom: PriorityHeadroom, rank: PriorityRank, now: number): number {
    const waitMs = headroom.waitMs(this.priorityWaitMs);
    const kept = headroom.reserveFor(rank, this.capacity, waitMs);
    if (kept === 0 || waitMs <= 0) return kept;
    const promised = this.grace?.length ?? 0;
    if (promised > 0 && this.grace!.servedBefore((rank - 1) as PriorityRank) > 0) return kept;
    const due = this.forecast!.due(
      now,
      waitMs / 2,
      headroom.meanHoldMs,
      headroom.holdSpreadMs,
      kept + promised,
    );
    return kept - Math.max(0, due - promised);
  }

  /** The headroom, and the brief wait that goes with it, at the first call with a priority. */
  private createHeadroom(): PriorityHeadroom {
    this.grace ??= this.createGrace();
    this.forecast = new ReleaseForecast();
    return new PriorityHeadroom();
  }

  /** The brief wait of a fail-fast gauge: for higher levels and for keys under their share. */
  private createGrace(): PriorityGrace {
    return new PriorityGrace(this.figures, this.retryAfterSeconds, {
      refusal: () => (this.capacity - this.active > 0 ? 'shed-priority' : 'full'),
      onLeft: (entry, served) => this.partitions?.dequeue(entry, served),
      atCap: (entry) => this.partitions?.atCap(entry, this.capacity) === true,
    });
  }

  /** Hands a slot that is not `inFlight`'s to drop to the first brief waiter, if any. */
  private serveGrace(now?: number): boolean {
    const waiter = this.grace?.shift(now);
    if (waiter === undefined) return false;
    if (this.figures.listening) this.figures.admit((now ?? performance.now()) - waiter.since);
    else this.figures.admit(0);
    waiter.resolve(this.lease(waiter.entry, now));
    return true;
  }

  /**
   * Joins the queue at `rank` (for a key beyond its share, `excess`: behind the others), making
   * room by shedding a waiter served later if it is full.
   */
  private wait(
    signal: AbortSignal | undefined,
    rank: PriorityRank,
    entry?: KeyEntry,
    excess = false,
  ): Promise<Release> {
    if (this.waiters.length >= this.queueSize) {
      if (this.queueSize === 0 || !this.waiters.makeRoom(rank, excess)) {
        const reason = this.queueSize === 0 ? 'full' : excess ? 'key-over-share' : 'queue-full';
        this.figures.reject(reason);
        throw GaugeExhaustedError.withoutStack(this.name, reason, this.retryAfterSeconds);
      }
    }
    if (entry !== undefined) this.partitions!.queue(entry);
    return this.waiters.add(signal, rank, entry, excess);
  }

  /** The partitioning a gauge without option `partition` gets at its first key. */
  private defaultPartitions(): KeyPartitions {
    const partitions = new KeyPartitions(this.partitionSettings ?? { maxKeys: DEFAULT_MAX_KEYS });
    this.partitions = partitions;
    this.refresh();
    return partitions;
  }

  process<T>(fn: Work<T>, options?: AcquireOptions): Promise<T> {
    let slot: Release | Promise<Release>;
    try {
      slot = this.acquire(options);
    } catch (error) {
      return Promise.reject(error);
    }
    const signal = options?.signal;
    if (typeof slot === 'function') return runInSlot(fn, slot, this.classify, signal);
    return slot.then((release) => runInSlot(fn, release, this.classify, signal));
  }

  setLimit(limit: number): void {
    if (!(this.policy instanceof FixedLimit)) {
      throw new GaugeConfigError(
        `Gauge "${this.name}": setLimit() is for a fixed limit; this gauge's limit policy decides it`,
      );
    }
    assertLimit(`Gauge "${this.name}": setLimit()`, limit);
    this.policy.limit = limit;
    this.apply(limit);
  }

  /**
   * Shuts the gauge: every waiter and every later caller is refused as if the gauge were full
   * (`queue-full` for waiters, `full` afterwards); holders still release normally.
   */
  close(): void {
    this.pressure?.close();
    this.closed = true;
    this.capacity = 0;
    this.queueSize = 0;
    for (const waiter of this.waiters.takeAll()) {
      this.figures.reject('queue-full');
      waiter.reject(
        GaugeExhaustedError.withoutStack(this.name, 'queue-full', this.retryAfterSeconds),
      );
    }
    for (const waiter of this.grace?.takeAll() ?? []) {
      this.figures.reject('full');
      waiter.reject(GaugeExhaustedError.withoutStack(this.name, 'full', this.retryAfterSeconds));
    }
  }

  /** A new limit, at once: a raise serves waiters now; a cut takes effect as slots come back. */
  private apply(limit: number, at?: number): void {
    const from = this.current;
    if (limit === from) return;
    this.current = limit;
    if (this.closed) return;
    this.capacity = limit;
    this.figures.limitChanged(from, limit);
    const now = this.waiters.length === 0 ? 0 : (at ?? performance.now());
    while (this.active < this.capacity) {
      const waiter = this.waiters.shift(now);
      if (waiter === undefined) break;
      this.active++;
      this.figures.admit(this.figures.listening ? this.waiters.waitedMs(waiter, now) : 0);
      waiter.resolve(this.lease(waiter.entry, now));
    }
    while (this.active < this.capacity && this.grace?.length) {
      this.active++;
      // Every brief waiter left may have run out of time (refused now): the slot stays free.
      if (!this.serveGrace(at)) {
        this.active--;
        break;
      }
    }
  }

  /** A slot at once; for a key, counted as its. `now`: a clock reading already taken, if any. */
  private grant(entry?: KeyEntry, now?: number): Release {
    this.active++;
    if (entry !== undefined) this.partitions!.hold(entry);
    this.figures.admit(0);
    return this.lease(entry, now);
  }

  /**
   * A release handle that frees its slot once, however often it is called. It reads the clock
   * only when the policy learns from samples, someone listens, or priorities or keys need hold
   * times; `now` is a reading the caller already took (a hand-off reuses its release's).
   */
  private lease(entry: KeyEntry | undefined, now?: number): Release {
    if (this.plain) {
      return this.timed ? this.timedLease(now ?? performance.now()) : this.countedLease();
    }
    let held = true;
    const timed = this.timed || this.headroom !== undefined || entry !== undefined;
    const since = timed ? (now ?? performance.now()) : 0;
    const watched = this.holds?.start();
    const due: HeldSince | undefined = this.forecast?.start(since);
    const release = (outcome: Outcome = 'succeeded') => {
      if (!held) return;
      held = false;
      if (watched !== undefined) this.holds!.end(watched);
      if (due !== undefined) this.forecast!.end(due);
      if (entry !== undefined) this.partitions!.unhold(entry);
      if (timed) this.handOff(this.sample(since, outcome, entry !== undefined));
      else {
        this.figures.released++;
        this.handOff(undefined);
      }
    };
    return watched === undefined ? release : attachSlot(release, watched);
  }

  /**
   * The release of a plain slot (see `plain`) that nothing times: a count. Whether a slot is timed
   * is decided when it is granted, so a listener subscribing meanwhile hears no release without
   * its grant.
   */
  private countedLease(): Release {
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.figures.released++;
      this.handOff(undefined);
    };
  }

  /** The release of a plain slot held since `since`: a sample for the policy and listeners. */
  private timedLease(since: number): Release {
    let held = true;
    return (outcome: Outcome = 'succeeded') => {
      if (!held) return;
      held = false;
      this.handOff(this.sample(since, outcome, false));
    };
  }

  /** Reports one finished slot (a learning policy may move the limit); returns the clock reading. */
  private sample(since: number, outcome: Outcome, keyed: boolean): number {
    const at = performance.now();
    const heldMs = at - since;
    this.figures.release(heldMs, outcome);
    this.headroom?.held(heldMs);
    if (keyed) this.partitions?.headroom.held(heldMs);
    if (!this.samples) return at;
    const limit = this.policy.update({ heldMs, outcome, inFlight: this.active, at });
    if (limit !== this.current) this.apply(limit, at);
    return at;
  }

  /**
   * A freed slot goes to the oldest waiter if the limit allows; only otherwise does `inFlight`
   * drop. `now`: the release's clock reading, reused as the new holder's start.
   */
  private handOff(now: number | undefined): void {
    const waiter = this.active > this.capacity ? undefined : this.waiters.shift(now);
    if (waiter === undefined) {
      if (this.grace === undefined || this.active > this.capacity || !this.serveGrace(now)) {
        this.active--;
      }
      return;
    }
    this.figures.admit(this.figures.listening ? this.waiters.waitedMs(waiter, now) : 0);
    waiter.resolve(this.lease(waiter.entry, now));
  }
}

function isResolved(options: object): options is ResolvedGaugeOptions {
  return 'queueSize' in options && 'queueTimeoutMs' in options;
}

/** Validates raw options with every key the caller gave, so a typo such as `limt` is refused. */
function resolveRaw({ name, ...options }: GaugeOptions & { name: string }): ResolvedGaugeOptions {
  return resolveGaugeOptions(name, options);
}
