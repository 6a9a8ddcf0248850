import { GaugeAbortedError, GaugeConfigError, GaugeExhaustedError } from './gauge.errors';
import { GaugeFigures, type GaugeListener, type Outcome } from './gauge-events';
import type { AcquireOptions, Gauge, Release } from './gauge.interface';
import { resolveGaugeOptions, type GaugeOptions } from './gauge-options';
import type { ResolvedGaugeOptions } from './resolved-gauge-options';
import { attachSlot, HoldWatch } from './hold-watch';
import { assertLimit, FixedLimit, type LimitPolicy } from './limit-policy';
import { classifyError, type OutcomeClassifier } from './outcome';
import { LoopPressure } from './pressure/loop-pressure';
import type { KeyEntry, KeyPartitions } from './partition/key-partitions';
import { NORMAL_RANK, rankOf, type PriorityRank } from './priority/priority.level';
import { RankedAdmission } from './priority/ranked-admission';
import type { HeldSince } from './priority/release-forecast';
import { WaitList } from './wait-list';
import { runInSlot, type Work } from './work';

/**
 * An in-process counting semaphore: at most `limit` callers hold a slot at once. The rest are
 * rejected at once (fail fast) or wait in a bounded queue for at most the queue timeout.
 *
 * A freed slot goes straight to a waiter (hand-off: the highest priority waiting, then as the
 * queue discipline says), so a newcomer can never barge past the queue, and a waiter that timed
 * out, aborted or was shed has already left the queue and is never served. Calls with a priority
 * or a key are admitted by `RankedAdmission` (a fail-fast gauge keeps room for higher levels and
 * for keys under their share, which may wait briefly for the next freed slot); until the first
 * such call, the gauge does exactly what it did without.
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
  /**
   * Created by option `partition`, the first call with a key, or the first with a priority on a
   * fail-fast gauge; from then on all calls but a queue's without a key go through it.
   */
  private ranked: RankedAdmission | undefined;
  /** Option `priorityWaitMs`; absent: half the mean hold time. */
  private readonly priorityWaitMs: number | undefined;
  /** Present with option `eventLoop`: refuses `low` and caps `normal` while the process's event loop is late. */
  private readonly pressure: LoopPressure | undefined;
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
    if (resolved.partition !== undefined) this.ranked = this.createRanked();
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
      this.holds === undefined && this.pressure === undefined && this.ranked === undefined;
  }

  /**
   * A queue, or a fail-fast gauge whose higher levels and keys under their share may wait briefly
   * (`priorityWaitMs`) once priorities or keys are in use: `acquire()` may return a promise.
   */
  get mayWait(): boolean {
    return this.queueSize > 0 || (this.priorityWaitMs !== 0 && this.ranked !== undefined);
  }

  get limit(): number {
    return this.current;
  }

  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiters.length + (this.ranked?.waiting ?? 0);
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
    if (this.ranked !== undefined) return this.ranked.tryAcquire();
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
      throw GaugeAbortedError.withoutStack(this.name);
    }
    const priority = options?.priority;
    const rank = rankOf(priority) ?? NORMAL_RANK;
    if (this.pressure?.sheds(rank, this.active)) {
      this.figures.reject('shed-pressure');
      throw GaugeExhaustedError.withoutStack(this.name, 'shed-pressure', this.retryAfterSeconds);
    }
    const key = options?.key;
    if (this.ranked === undefined && key === undefined) {
      // No priority or key seen yet; a queue serves priorities itself, without ranked admission.
      if (priority === undefined || this.queueSize > 0) {
        if (this.active < this.capacity && this.waiters.length === 0) return this.grant();
        return this.wait(signal, rank);
      }
    }
    return (this.ranked ?? this.createRanked()).acquire(signal, rank, priority !== undefined, key);
  }

  /** The keys this gauge divides its slots between, once it does (ranked admission's). */
  private get partitions(): KeyPartitions | undefined {
    return this.ranked?.partitions;
  }

  /** The ranked admission, at the first call that needs it: from then on no slot is plain. */
  private createRanked(): RankedAdmission {
    const ranked = new RankedAdmission(
      {
        figures: this.figures,
        retryAfterSeconds: this.retryAfterSeconds,
        priorityWaitMs: this.priorityWaitMs,
        capacity: () => this.capacity,
        inFlight: () => this.active,
        waiting: () => this.waiters.length,
        queueSize: () => this.queueSize,
        closed: () => this.closed,
        grant: (entry, now) => this.grant(entry, now),
        wait: (signal, rank, entry, excess) => this.wait(signal, rank, entry, excess),
        lease: (entry, now) => this.lease(entry, now),
      },
      this.partitionSettings,
    );
    this.ranked = ranked;
    this.refresh();
    return ranked;
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
    this.ranked?.close();
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
    while (this.active < this.capacity && this.ranked?.waiting) {
      this.active++;
      // Every brief waiter left may have run out of time (refused now): the slot stays free.
      if (!this.ranked.serve(at)) {
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
    const timed = this.timed || this.ranked?.headroom !== undefined || entry !== undefined;
    const since = timed ? (now ?? performance.now()) : 0;
    const watched = this.holds?.start();
    const due: HeldSince | undefined = this.ranked?.forecast?.start(since);
    const release = (outcome: Outcome = 'succeeded') => {
      if (!held) return;
      held = false;
      if (watched !== undefined) this.holds!.end(watched);
      if (due !== undefined) this.ranked!.forecast!.end(due);
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
    this.ranked?.held(heldMs, keyed);
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
      if (this.ranked === undefined || this.active > this.capacity || !this.ranked.serve(now)) {
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
