import { GaugeAbortedError, GaugeExhaustedError } from '../gauge.errors';
import type { GaugeFigures } from '../gauge-events';
import type { Release } from '../gauge.interface';
import type { KeyEntry } from '../partition/key-partitions';
import type { PriorityHeadroom } from './priority-headroom';
import type { PriorityRank } from './priority.level';

/** A caller of a fail-fast gauge waiting briefly for the next freed slot. */
export interface GraceWaiter {
  readonly rank: PriorityRank;
  /** `performance.now()` when it started waiting. */
  readonly since: number;
  /** `performance.now()` at which it is refused. */
  readonly deadline: number;
  /** The key it waits for (a partitioned gauge), told when it leaves. */
  readonly entry: KeyEntry | undefined;
  /** The headroom that let it wait, told whether it was served (it learns how often waits run out). */
  readonly basis: PriorityHeadroom | undefined;
  readonly resolve: (release: Release) => void;
  readonly reject: (error: Error) => void;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** What a grace wait needs from its gauge. */
export interface GraceHooks {
  /** Why a waiter whose time ran out is refused: `full`, or `shed-priority` if slots are free (kept for higher levels). */
  readonly refusal: () => 'full' | 'shed-priority';
  /** Told whenever a waiter of a key leaves: served (it now holds a slot) or not. */
  readonly onLeft?: ((entry: KeyEntry, served: boolean) => void) | undefined;
  /** Whether `entry` holds its per-key cap (cut with the limit): its waiter is refused, not served. */
  readonly atCap?: ((entry: KeyEntry) => boolean) | undefined;
}

/**
 * The brief wait of a fail-fast gauge with priorities: a caller above a level that fills the
 * gauge, finding no slot it may take, waits a little (`PriorityHeadroom.waitFor`, bounded) for the
 * next freed slot, which goes to it before anyone else (highest level, then oldest). That lets the
 * gauge keep fewer slots idle for higher levels: a higher-level arrival that finds the reserve
 * taken is served by the next release instead of being refused. It stays fail fast for everyone
 * else, and a waiter whose time runs out is refused with the reason a fail-fast gauge would give
 * (`full`, or `shed-priority` while free slots are kept for higher levels).
 *
 * Few waiters at once (the gauge caps them), kept in service order in one small array; one timer
 * for the whole list, armed for the earliest deadline and cleared when the list empties, never
 * one per waiter. Deadlines may differ (the wait follows the measured hold time), so a sweep
 * looks at every waiter, which is cheap for a handful.
 */
export class PriorityGrace {
  private readonly waiters: GraceWaiter[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The deadline the timer is armed for. */
  private armedFor = Infinity;

  constructor(
    private readonly figures: GaugeFigures,
    private readonly retryAfterSeconds: number,
    private readonly hooks: GraceHooks,
  ) {}

  get length(): number {
    return this.waiters.length;
  }

  /**
   * Waiters served before or with a newcomer of `rank` (its level and higher ones): what bounds its
   * wait. Lower levels waiting do not count: the newcomer is served before them anyway.
   */
  servedBefore(rank: PriorityRank): number {
    let count = 0;
    while (count < this.waiters.length && this.waiters[count]!.rank <= rank) count++;
    return count;
  }

  /** Waits at `rank` for at most `waitMs` from `now`; settles on a hand-off, at the deadline or on abort. */
  add(
    rank: PriorityRank,
    waitMs: number,
    now: number,
    signal: AbortSignal | undefined,
    entry: KeyEntry | undefined,
    basis?: PriorityHeadroom,
  ): Promise<Release> {
    return new Promise<Release>((resolve, reject) => {
      const waiter: GraceWaiter = {
        rank,
        since: now,
        deadline: now + waitMs,
        entry,
        basis,
        resolve,
        reject,
        signal,
        onAbort: undefined,
      };
      if (signal !== undefined) {
        waiter.onAbort = () => this.abort(waiter);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      let at = this.waiters.length;
      while (at > 0 && this.waiters[at - 1]!.rank > rank) at--;
      this.waiters.splice(at, 0, waiter);
      if (waiter.deadline < this.armedFor) this.arm(waiter.deadline, now);
      // Told last: a listener that frees a slot serves this waiter at once, disarming the timer.
      this.figures.queue();
    });
  }

  /**
   * The waiter a freed slot goes to (highest level, then oldest), out of the list. Waiters whose
   * time ran out are refused first (a busy loop may not have run their timer yet): nobody is
   * served past its deadline. `now`: a clock reading already taken.
   */
  shift(now?: number): GraceWaiter | undefined {
    if (this.waiters.length === 0) return undefined;
    const at = now ?? performance.now();
    this.expire(at);
    for (let waiter = this.waiters.shift(); waiter !== undefined; waiter = this.waiters.shift()) {
      if (waiter.entry !== undefined && this.hooks.atCap?.(waiter.entry) === true) {
        // Its key reached its cap while it waited (the limit, and a fractional cap, were cut).
        this.left(waiter, false);
        this.figures.reject('key-over-share');
        waiter.reject(
          GaugeExhaustedError.withoutStack(
            this.figures.gauge,
            'key-over-share',
            this.retryAfterSeconds,
          ),
        );
        continue;
      }
      this.left(waiter, true);
      // A wait past half its time is served, but too late to keep the caller's latency: a miss.
      waiter.basis?.waited(at - waiter.since <= (waiter.deadline - waiter.since) / 2, at);
      return waiter;
    }
    return undefined;
  }

  /** Every waiter, out of the list (shutdown). */
  takeAll(): GraceWaiter[] {
    const all = this.waiters.splice(0);
    for (const waiter of all) this.left(waiter, false);
    return all;
  }

  private left(waiter: GraceWaiter, served: boolean): void {
    if (waiter.onAbort !== undefined) waiter.signal?.removeEventListener('abort', waiter.onAbort);
    waiter.onAbort = undefined;
    if (this.waiters.length === 0) this.disarm();
    if (waiter.entry !== undefined) this.hooks.onLeft?.(waiter.entry, served);
  }

  private abort(waiter: GraceWaiter): void {
    const at = this.waiters.indexOf(waiter);
    if (at < 0) return;
    this.waiters.splice(at, 1);
    this.left(waiter, false);
    this.figures.abort(performance.now() - waiter.since);
    waiter.reject(GaugeAbortedError.withoutStack(this.figures.gauge));
  }

  private arm(deadline: number, now: number): void {
    this.disarm();
    this.armedFor = deadline;
    this.timer = setTimeout(this.sweep, Math.max(1, Math.ceil(deadline - now)));
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  private readonly sweep = (): void => {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = performance.now();
    this.expire(now);
    // A listener told of a refusal may have added a waiter (and armed for it): keep the earliest.
    let next = Infinity;
    for (const waiter of this.waiters) next = Math.min(next, waiter.deadline);
    if (next < this.armedFor) this.arm(next, now);
  };

  /** Refuses every waiter whose deadline is at or before `now`, the reason its gauge gives. */
  private expire(now: number): void {
    for (let at = 0; at < this.waiters.length;) {
      const waiter = this.waiters[at]!;
      if (waiter.deadline > now) {
        at++;
        continue;
      }
      this.waiters.splice(at, 1);
      this.left(waiter, false);
      waiter.basis?.waited(false, now);
      const reason = this.hooks.refusal();
      this.figures.reject(reason);
      waiter.reject(
        GaugeExhaustedError.withoutStack(this.figures.gauge, reason, this.retryAfterSeconds),
      );
    }
  }
}
