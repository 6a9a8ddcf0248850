import { GaugeExhaustedError } from '../gauge.errors';
import type { Release } from '../gauge.interface';
import {
  DEFAULT_MAX_KEYS,
  KeyPartitions,
  type KeyEntry,
  type PartitionSettings,
} from '../partition/key-partitions';
import type { AdmissionHost } from './admission-host.interface';
import { PriorityGrace } from './priority-grace';
import { PriorityHeadroom } from './priority-headroom';
import { NORMAL_RANK, type PriorityRank } from './priority.level';
import { ReleaseForecast } from './release-forecast';

/** Why a fail-fast call with a priority or a key was refused. */
type Refusal = 'full' | 'shed-priority' | 'key-over-share';

/**
 * How an in-process gauge admits calls once priorities or keys are in use. A fail-fast gauge
 * keeps room for higher levels (`PriorityHeadroom`) and for keys under their share
 * (`KeyPartitions`), lends that room while a held slot is due back (`ReleaseForecast`), and lets
 * the callers it keeps room for wait briefly for the next freed slot (`PriorityGrace`); a queue
 * caps each key and serves the keys under their share first.
 *
 * Apart from the gauge, and created by it only at the first call with a priority (fail fast) or a
 * key, or with option `partition`: a gauge that never sees one pays nothing for any of this, and
 * the gauge itself reads as the semaphore it is. Each part is created when first needed: the
 * headroom, the forecast and the brief wait by the first priority, the partitions by the first key.
 */
export class RankedAdmission {
  /**
   * Room kept for higher levels: created by the first call with a priority on a fail-fast gauge
   * (here only; the gauge reads it to time its slots).
   */
  headroom: PriorityHeadroom | undefined;
  /** Created with `headroom`: the held slots in grant order, to lend the reserve while one is due. */
  forecast: ReleaseForecast | undefined;
  /** Created by option `partition` or the first call with a key; from then on all calls use it. */
  partitions: KeyPartitions | undefined;
  /** The callers waiting briefly for a freed slot: higher levels, and keys under their share. */
  private grace: PriorityGrace | undefined;

  constructor(
    private readonly host: AdmissionHost,
    /** Option `partition`: present, the partitions exist from the start. */
    private readonly partitionSettings: PartitionSettings | undefined,
  ) {
    if (partitionSettings !== undefined) this.partitions = new KeyPartitions(partitionSettings);
  }

  /** Callers waiting briefly for a freed slot (they count as queued). */
  get waiting(): number {
    return this.grace?.length ?? 0;
  }

  /**
   * `acquire` with a priority or a key, or on a gauge that has seen one: a fail-fast gauge keeps
   * room for higher levels and for keys under their share; a queue serves them first.
   */
  acquire(
    signal: AbortSignal | undefined,
    rank: PriorityRank,
    prioritized: boolean,
    key: unknown,
  ): Release | Promise<Release> {
    const entry =
      key === undefined && this.partitions === undefined
        ? undefined
        : (this.partitions ??= this.defaultPartitions()).lookup(key);
    const host = this.host;
    if (host.queueSize() === 0) {
      const slot = this.tryRanked(rank, prioritized, entry, signal, true);
      if (typeof slot !== 'string') return slot;
      throw GaugeExhaustedError.withoutStack(host.figures.gauge, slot, host.retryAfterSeconds);
    }
    const capacity = host.capacity();
    if (entry !== undefined && !this.partitions!.mayQueue(entry, capacity)) {
      host.figures.reject('key-over-share');
      throw GaugeExhaustedError.withoutStack(
        host.figures.gauge,
        'key-over-share',
        host.retryAfterSeconds,
      );
    }
    if (host.inFlight() < capacity && host.waiting() === 0) return host.grant(entry);
    const excess = entry !== undefined && this.partitions!.excess(entry, capacity);
    return host.wait(signal, rank, entry, excess);
  }

  /** `tryAcquire`: a slot only if one is free right now that no higher level or key needs kept. */
  tryAcquire(): Release | undefined {
    const slot = this.tryRanked(NORMAL_RANK, false, this.partitions?.lookup(undefined));
    return typeof slot === 'function' ? slot : undefined;
  }

  /**
   * Hands a slot that is not `inFlight`'s to drop to the first brief waiter, if any; false if
   * there is none (its time may have run out meanwhile).
   */
  serve(now?: number): boolean {
    const waiter = this.grace?.shift(now);
    if (waiter === undefined) return false;
    const figures = this.host.figures;
    if (figures.listening) figures.admit((now ?? performance.now()) - waiter.since);
    else figures.admit(0);
    waiter.resolve(this.host.lease(waiter.entry, now));
    return true;
  }

  /** A held slot's time, for the room kept for higher levels and, for a key's slot, for keys. */
  held(heldMs: number, keyed: boolean): void {
    this.headroom?.held(heldMs);
    if (keyed) this.partitions?.headroom.held(heldMs);
  }

  /** Shutdown: every brief waiter is refused as if the gauge were full. */
  close(): void {
    const { figures, retryAfterSeconds } = this.host;
    for (const waiter of this.grace?.takeAll() ?? []) {
      figures.reject('full');
      waiter.reject(GaugeExhaustedError.withoutStack(figures.gauge, 'full', retryAfterSeconds));
    }
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
  ): Release | Promise<Release> | Refusal {
    const host = this.host;
    let headroom = this.headroom;
    if (headroom === undefined && prioritized) headroom = this.headroom = this.createHeadroom();
    const now = performance.now();
    headroom?.arrive(rank, now);
    const capacity = host.capacity();
    const free = capacity - host.inFlight();
    const closed = host.closed();
    let reason: Refusal = 'full';
    if (
      entry !== undefined &&
      !closed &&
      !this.partitions!.admits(entry, capacity, free, now, host.priorityWaitMs)
    ) {
      reason = 'key-over-share';
    } else if (free > 0 && host.waiting() === 0) {
      if (headroom === undefined || rank === 0 || free > this.keptFor(headroom, rank, now)) {
        return host.grant(entry, now);
      }
      reason = 'shed-priority';
    }
    if (mayWait && reason !== 'key-over-share' && !closed) {
      // Above a level that fills the gauge, or a key under its share while another key fills it.
      let basis = headroom;
      let waitMs = headroom === undefined ? 0 : headroom.waitFor(rank, host.priorityWaitMs);
      if (waitMs === 0 && reason === 'full' && entry !== undefined) {
        basis = this.partitions!.headroom;
        waitMs = this.partitions!.graceFor(entry, host.priorityWaitMs);
      }
      if (basis !== undefined && waitMs > 0) {
        const grace = (this.grace ??= this.createGrace());
        if (grace.servedBefore(rank) < basis.maxWaiting(capacity, waitMs)) {
          if (entry !== undefined) this.partitions!.queue(entry);
          return grace.add(rank, waitMs, now, signal, entry, basis);
        }
        basis.waited(false, now); // as many wait as the next releases can serve: a miss too
      }
    }
    host.figures.reject(reason);
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
    const waitMs = headroom.waitMs(this.host.priorityWaitMs);
    const kept = headroom.reserveFor(rank, this.host.capacity(), waitMs);
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

  /** The headroom, and the brief wait and forecast that go with it, at the first priority. */
  private createHeadroom(): PriorityHeadroom {
    this.grace ??= this.createGrace();
    this.forecast = new ReleaseForecast();
    return new PriorityHeadroom();
  }

  /** The brief wait of a fail-fast gauge: for higher levels and for keys under their share. */
  private createGrace(): PriorityGrace {
    const host = this.host;
    return new PriorityGrace(host.figures, host.retryAfterSeconds, {
      refusal: () => (host.capacity() - host.inFlight() > 0 ? 'shed-priority' : 'full'),
      onLeft: (entry, served) => this.partitions?.dequeue(entry, served),
      atCap: (entry) => this.partitions?.atCap(entry, host.capacity()) === true,
    });
  }

  /** The partitioning a gauge without option `partition` gets at its first key. */
  private defaultPartitions(): KeyPartitions {
    return new KeyPartitions(this.partitionSettings ?? { maxKeys: DEFAULT_MAX_KEYS });
  }
}
