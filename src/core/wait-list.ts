import { ControlledDelay } from './controlled-delay';
import { GaugeAbortedError, GaugeExhaustedError } from './gauge.errors';
import type { GaugeFigures } from './gauge-events';
import type { Release } from './gauge.interface';
import type { KeyEntry } from './partition/key-partitions';
import { LEVEL_COUNT, NORMAL_RANK, type PriorityRank } from './priority/priority.level';
import type { QueueDiscipline } from './queue-discipline';
import { WaitQueue } from './wait-queue';
import { Waiter } from './waiter';

/** How the waiters of one gauge are served (see `QueueDiscipline`); fifo by default. */
export interface WaitListOptions {
  readonly discipline?: QueueDiscipline | undefined;
  /** CoDel's target wait (ms); only for `codel`. */
  readonly targetMs?: number | undefined;
  /** CoDel's interval (ms); only for `codel`. */
  readonly intervalMs?: number | undefined;
  /** Told whenever a waiter of a key leaves the list: served (it now holds a slot) or not. */
  readonly onLeft?: ((entry: KeyEntry, served: boolean) => void) | undefined;
  /**
   * Whether `entry` holds its per-key cap (a fractional cap shrinks with a cut limit): its waiter
   * is refused `key-over-share` at the hand-off instead of being served past the cap.
   */
  readonly atCap?: ((entry: KeyEntry) => boolean) | undefined;
}

/** Queues per level: waiters of keys within their share, then those beyond it. */
const CLASSES = 2;

/**
 * The callers of one gauge waiting in this process: one `WaitQueue` per priority level in use
 * (each with one deadline timer, O(1) removal; at most four timers, never one per waiter). A freed
 * slot goes to the highest level waiting; within a level, the discipline picks (oldest, newest, or
 * CoDel's adaptive LIFO). Shared by the in-memory and Redis gauges so that timeouts and aborts
 * behave the same: a caller that times out, aborts or is shed is rejected here and has left the
 * list before anyone could hand it a slot.
 */
export class WaitList {
  /** By `Waiter.index`: level × 2, + 1 for waiters of a key beyond its share. */
  private readonly levels: (WaitQueue<Waiter> | undefined)[] = new Array(
    LEVEL_COUNT * CLASSES,
  ).fill(undefined);
  private count = 0;
  private readonly discipline: QueueDiscipline;
  private readonly delay: ControlledDelay | undefined;
  private readonly onLeft: ((entry: KeyEntry, served: boolean) => void) | undefined;
  private readonly atCap: ((entry: KeyEntry) => boolean) | undefined;

  constructor(
    /** Where timeouts, aborts and queueing are reported (and counted). */
    private readonly figures: GaugeFigures,
    private readonly retryAfterSeconds: number,
    private readonly timeoutMs: number,
    options: WaitListOptions = {},
  ) {
    this.discipline = options.discipline ?? 'fifo';
    this.delay =
      this.discipline === 'codel'
        ? new ControlledDelay(options.targetMs ?? 5, options.intervalMs ?? 100)
        : undefined;
    this.onLeft = options.onLeft;
    this.atCap = options.atCap;
  }

  /** How long `waiter` has waited, from the deadline the queue set (no extra clock read on push). */
  waitedMs(waiter: Waiter, now: number = performance.now()): number {
    return now - (waiter.deadline - this.timeoutMs);
  }

  get length(): number {
    return this.count;
  }

  /** True while CoDel sees a standing queue (always false for fifo and lifo). */
  get standing(): boolean {
    return this.delay?.standing ?? false;
  }

  /**
   * Joins the list at its level (for `entry`, behind the waiters of keys within their share when
   * `excess`); settles when a slot is handed over, at the timeout, on abort or when shed.
   */
  add(
    signal: AbortSignal | undefined,
    rank: PriorityRank = NORMAL_RANK,
    entry?: KeyEntry,
    excess = false,
  ): Promise<Release> {
    return new Promise<Release>((resolve, reject) => {
      const index = rank * CLASSES + (excess ? 1 : 0);
      const waiter = new Waiter(resolve, reject, signal, rank, entry, index);
      if (signal) {
        waiter.onAbort = () => this.abort(waiter);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      const queue = this.level(index);
      if (this.delay !== undefined) this.shedStale(queue);
      // Aborted while joining (a listener told of a waiter shed for it): its abort event is past.
      if (signal?.aborted) {
        waiter.settle();
        if (entry !== undefined) this.onLeft?.(entry, false);
        this.figures.abort(0);
        reject(GaugeAbortedError.withoutStack(this.figures.gauge));
        return;
      }
      queue.push(waiter);
      this.count++;
      this.figures.queue();
    });
  }

  /**
   * The waiter a freed slot goes to, out of the list and detached from its signal. Waiters whose
   * deadline has passed are expired first (their timer may not have fired yet), whatever the
   * discipline: nobody is served past its own deadline. `at`: a clock reading already taken.
   */
  shift(at?: number): Waiter | undefined {
    if (this.count === 0) return undefined; // a release with nobody waiting reads no clock
    const now = at ?? performance.now();
    for (const queue of this.levels) queue?.expireDue(now);
    for (;;) {
      const waiter = this.next(now);
      if (waiter === undefined) return undefined;
      // Its key reached its cap while it waited (the limit, and a fractional cap, were cut).
      if (waiter.entry !== undefined && this.atCap?.(waiter.entry) === true) {
        // A hand-off all the same: CoDel sees the queue's delay, this waiter's included.
        if (this.delay !== undefined) this.handOffSeen(this.delay, now);
        this.shed(this.levels[waiter.index]!, waiter, 'key-over-share', now);
        continue;
      }
      this.take(waiter, now);
      return waiter;
    }
  }

  /**
   * The waiter `shift(at)` would hand a slot to, left in the list: a shared gauge asks the store
   * for a slot under that waiter's key (and level) before it `take`s it. Waiters past their
   * deadline are expired first, as by `shift`; CoDel's switch to newest first at this very
   * hand-off is foreseen, not made, so `shift(at)` takes this same waiter (unless `atCap` refuses
   * it there: a list with that option is served by `shift` only).
   */
  peek(at?: number): Waiter | undefined {
    if (this.count === 0) return undefined;
    const now = at ?? performance.now();
    for (const queue of this.levels) queue?.expireDue(now);
    return this.next(now);
  }

  /**
   * Takes `waiter` out of the list as served at `now` (false if it already left): the hand-off
   * CoDel learns from is the same whichever waiter the caller chose. A shared gauge serves the
   * waiter whose key and level its lease was granted under, whatever the discipline would pick.
   */
  take(waiter: Waiter, now: number = performance.now()): boolean {
    const queue = this.levels[waiter.index];
    if (queue === undefined || !waiter.queued) return false;
    const delay = this.delay;
    if (delay !== undefined) this.handOffSeen(delay, now);
    queue.remove(waiter);
    if (delay !== undefined) {
      // The queue's delay is its oldest waiter's, whatever the level served: a fresh `high`
      // waiter served at once must not hide a backlog of `low` (or over-share) waiters.
      const oldest = this.oldestWaiter();
      const waited = this.waitedMs(waiter, now);
      delay.observe(
        oldest === undefined ? waited : Math.max(waited, this.waitedMs(oldest, now)),
        now,
      );
    }
    this.left(waiter, true);
    return true;
  }

  /** Refuses `waiter` (still in the list) with `why`: its key may not have the slot it waits for. */
  refuse(waiter: Waiter, why: 'key-over-share' | 'shed-priority'): boolean {
    const queue = this.levels[waiter.index];
    if (queue === undefined || !waiter.queued) return false;
    this.shed(queue, waiter, why);
    return true;
  }

  /**
   * Refuses `waiter` (still in the list) as `unavailable` with `error`: the store answered its
   * attempt with an error (a script failed on a corrupted key), so no slot can be had for it.
   */
  fail(waiter: Waiter, error: Error): boolean {
    const queue = this.levels[waiter.index];
    if (queue === undefined || !waiter.queued) return false;
    queue.remove(waiter);
    this.left(waiter, false);
    this.figures.reject('unavailable');
    waiter.reject(error);
    return true;
  }

  /**
   * The list is full and a caller of `rank` wants in: sheds the waiter that would be served last
   * if it is of a lower level (`shed-priority`) or, for a caller within its key's share, of a key
   * beyond its share at the same level (`key-over-share`); or, in a standing CoDel queue, the
   * oldest waiter of the caller's own queue (`shed-delay`), so the newest is served. False:
   * nothing to shed, the caller is refused.
   */
  makeRoom(rank: PriorityRank, excess = false): boolean {
    const own = rank * CLASSES + (excess ? 1 : 0);
    for (let lowest = this.levels.length - 1; lowest >= own; lowest--) {
      const queue = this.levels[lowest];
      if (queue === undefined || queue.length === 0) continue;
      if (lowest > own) {
        const last = this.lastServed(queue);
        if (last === undefined) return false;
        this.shed(queue, last, last.rank > rank ? 'shed-priority' : 'key-over-share');
        return true;
      }
      const oldest = queue.oldest;
      if (oldest === undefined || !this.standing || !this.delay!.poll(performance.now())) {
        return false;
      }
      this.shed(queue, oldest, 'shed-delay');
      return true;
    }
    return false;
  }

  /** Every waiter, highest level and oldest first, out of the list (outage, shutdown). */
  takeAll(): Waiter[] {
    const all: Waiter[] = [];
    for (const queue of this.levels) if (queue !== undefined) all.push(...queue.drain());
    for (const waiter of all) this.left(waiter, false);
    return all;
  }

  /**
   * Who a hand-off at `now` serves (nobody is taken out): the highest level's oldest (fifo, or
   * CoDel while the queue does not stand at `now`) or newest. CoDel's state is foreseen as `take`
   * will leave it: the oldest waiter's wait observed, then polled.
   */
  private next(now: number): Waiter | undefined {
    const queue = this.highest();
    if (queue === undefined) return undefined;
    if (this.discipline === 'fifo') return queue.oldest;
    if (this.discipline === 'lifo') return queue.newest;
    const delay = this.delay!;
    const oldest = delay.standing ? undefined : this.oldestWaiter();
    const observed = oldest === undefined ? undefined : this.waitedMs(oldest, now);
    return delay.standsAt(now, observed) ? queue.newest : queue.oldest;
  }

  /** CoDel at a hand-off, before anyone leaves: the oldest waiter's wait seen, then polled. */
  private handOffSeen(delay: ControlledDelay, now: number): void {
    if (!delay.standing) this.observeOldest(delay, now);
    delay.poll(now);
  }

  private observeOldest(delay: ControlledDelay, now: number): void {
    const oldest = this.oldestWaiter();
    if (oldest !== undefined) delay.observe(this.waitedMs(oldest, now), now);
  }

  /**
   * CoDel, a caller joins `queue`: while the queue stands, its waiters that have waited past the
   * slough time are shed (`shed-delay`), oldest first. Served newest first, they would only be
   * served once nobody fresher waits, late; the newcomer takes their place.
   */
  private shedStale(queue: WaitQueue<Waiter>): void {
    const delay = this.delay!;
    if (!delay.standing) return; // only hand-offs open and close intervals
    const now = performance.now();
    if (!delay.poll(now)) return;
    for (let head = queue.oldest; head !== undefined; head = queue.oldest) {
      if (this.waitedMs(head, now) <= delay.sloughMs) break;
      this.shed(queue, head, 'shed-delay', now);
    }
  }

  private lastServed(queue: WaitQueue<Waiter>): Waiter | undefined {
    const newestLast =
      this.discipline === 'fifo' || (this.discipline === 'codel' && !this.standing);
    return newestLast ? queue.newest : queue.oldest;
  }

  private shed(
    queue: WaitQueue<Waiter>,
    waiter: Waiter,
    why: 'shed-priority' | 'shed-delay' | 'key-over-share',
    now: number = performance.now(),
  ): void {
    queue.remove(waiter);
    this.left(waiter, false);
    if (why === 'shed-delay') {
      const waitedMs = this.waitedMs(waiter, now);
      this.delay?.observe(waitedMs, now);
      this.figures.timeOut(waitedMs, 'shed-delay');
    } else this.figures.reject(why);
    waiter.reject(
      GaugeExhaustedError.withoutStack(this.figures.gauge, why, this.retryAfterSeconds),
    );
  }

  private oldestWaiter(): Waiter | undefined {
    let oldest: Waiter | undefined;
    for (const queue of this.levels) {
      const head = queue?.oldest;
      if (head !== undefined && (oldest === undefined || head.deadline < oldest.deadline)) {
        oldest = head;
      }
    }
    return oldest;
  }

  private highest(): WaitQueue<Waiter> | undefined {
    for (const queue of this.levels) if (queue !== undefined && queue.length > 0) return queue;
    return undefined;
  }

  private level(index: number): WaitQueue<Waiter> {
    let queue = this.levels[index];
    if (queue === undefined) {
      queue = new WaitQueue<Waiter>(this.timeoutMs, this.expire);
      this.levels[index] = queue;
    }
    return queue;
  }

  /** A waiter is out of the queue (served, shed, expired, aborted): counts and detaches it. */
  private left(waiter: Waiter, served: boolean): void {
    waiter.settle();
    if (--this.count === 0) this.delay?.drained();
    if (waiter.entry !== undefined) this.onLeft?.(waiter.entry, served);
  }

  private readonly expire = (waiter: Waiter): void => {
    this.left(waiter, false);
    this.delay?.observe(this.timeoutMs, waiter.deadline);
    this.figures.timeOut(this.timeoutMs);
    waiter.reject(
      GaugeExhaustedError.withoutStack(this.figures.gauge, 'timeout', this.retryAfterSeconds),
    );
  };

  private abort(waiter: Waiter): void {
    if (!this.levels[waiter.index]?.remove(waiter)) return;
    this.left(waiter, false);
    this.figures.abort(this.waitedMs(waiter));
    waiter.reject(GaugeAbortedError.withoutStack(this.figures.gauge));
  }
}
