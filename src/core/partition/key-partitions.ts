import { PriorityHeadroom } from '../priority/priority-headroom';

/** Past `maxKeys` live keys, new keys share this many partitions, chosen by a hash of the key. */
export const OVERFLOW_PARTITIONS = 64;
/** A longer key is stored by a digest of it instead, so keys cannot grow the heap. */
export const MAX_KEY_LENGTH = 256;
/** Live keys tracked one by one unless `partition.maxKeys` says otherwise. */
export const DEFAULT_MAX_KEYS = 10_000;

/** Ranks in the fairness headroom: arrivals of keys under their share, and of keys at or over it. */
const UNDER = 0;
const OVER = 1;

/** What `KeyPartitions` is built from: the per-key cap, as given or as a share, and the key cap. */
export interface PartitionSettings {
  /** Most slots a key holds: an integer >= 1, or a fraction of the gauge's limit below 1. Absent: no cap. */
  readonly limit?: number | undefined;
  /** Most keys tracked one by one. */
  readonly maxKeys: number;
}

/**
 * One key's use of a gauge: slots held and callers waiting. It is in its table (`counted`) while
 * either is above 0, and leaves it the moment both are 0: no idle timer, no stale entry.
 */
export class KeyEntry {
  held = 0;
  waiting = 0;
  counted = false;
  /**
   * It asked beyond its share since it last went idle: its calls no longer count as the demand
   * room is kept for (else a busy key's own calls under its share would keep room for itself).
   */
  greedy = false;

  constructor(
    /** Its name in the live map; undefined for the fixed entries (overflow, no key). */
    readonly key: string | undefined,
    /** An overflow partition. */
    readonly overflow = false,
  ) {}
}

/**
 * The keys a gauge divides its slots between (`partition`), in bounded memory whatever the
 * clients send: a map of live keys only (a key with nothing held and nobody waiting is deleted at
 * once), at most `maxKeys` of them, a key longer than `MAX_KEY_LENGTH` stored by its digest; past
 * `maxKeys`, new keys hash into `OVERFLOW_PARTITIONS` shared entries instead of being refused, so a
 * flood of made-up keys cannot lock real ones out. New keys keep going there until every overflow
 * partition is idle again, so no key is ever counted in two places. Calls without a key share one
 * more entry.
 *
 * Fairness: a key's _fair share_ is `⌈limit / max(2, live keys)⌉` (the caller's key counted; at
 * least 2, so that a key alone is not entitled to every slot a newcomer would need). A key below
 * its share is never refused for fairness. A key at or above it is admitted (fail fast) only
 * while more slots are free than keys under their share need kept: the same sizing as priority
 * headroom (`PriorityHeadroom`, with "under share" as the higher level), from their recent
 * arrival rate and the mean hold time; a key that asked beyond its share counts no more toward
 * that demand until it goes idle. So a noisy key uses idle slots but not the room the
 * others' next calls will want. In a queue, waiters of keys under their share are served first.
 */
export class KeyPartitions {
  private readonly live = new Map<string, KeyEntry>();
  private readonly overflow: (KeyEntry | undefined)[] = new Array(OVERFLOW_PARTITIONS).fill(
    undefined,
  );
  private readonly unkeyed = new KeyEntry(undefined);
  /** Fixed entries (overflow, no key) that hold or wait right now. */
  private fixedLive = 0;
  /** Overflow partitions that hold or wait right now: while any does, new keys go there too. */
  private overflowLive = 0;
  private readonly cap: number | undefined;
  private readonly fraction: number | undefined;
  private readonly maxKeys: number;
  /** Room kept for keys under their share; fed by every keyed arrival and release. */
  readonly headroom = new PriorityHeadroom();

  constructor(settings: PartitionSettings) {
    const { limit } = settings;
    this.cap = limit !== undefined && limit >= 1 ? limit : undefined;
    this.fraction = limit !== undefined && limit < 1 ? limit : undefined;
    this.maxKeys = settings.maxKeys;
  }

  /** Keys (and overflow partitions) holding or waiting right now. */
  get size(): number {
    return this.live.size + this.fixedLive;
  }

  /** Keys tracked one by one right now (at most `maxKeys`). */
  get tracked(): number {
    return this.live.size;
  }

  /**
   * The entry `key` counts under: its live one, a new one (not in the table until it holds or
   * waits), an overflow partition, or the shared entry of calls without a (string) key.
   */
  lookup(key: unknown): KeyEntry {
    if (typeof key !== 'string') return this.unkeyed;
    const name = key.length > MAX_KEY_LENGTH ? digestOf(key) : key;
    const found = this.live.get(name);
    if (found !== undefined) return found;
    if (this.overflowLive > 0 || this.live.size >= this.maxKeys) return this.bucket(name);
    return new KeyEntry(name);
  }

  /** Most slots one key may hold with `capacity` slots (Infinity: no cap). */
  capOf(capacity: number): number {
    if (this.cap !== undefined) return this.cap;
    if (this.fraction !== undefined) return Math.max(1, Math.ceil(capacity * this.fraction));
    return Infinity;
  }

  /** `entry`'s fair share of `capacity` slots among the live keys (its own counted). */
  shareOf(entry: KeyEntry, capacity: number): number {
    const keys = this.size + (entry.counted ? 0 : 1);
    return Math.max(1, Math.ceil(capacity / Math.max(2, keys)));
  }

  /**
   * Fail fast: may `entry` take one of `free` slots (of `capacity`) as far as fairness goes?
   * Counts the arrival. False: it is at its cap, or over its share with no room to spare.
   */
  admits(
    entry: KeyEntry,
    capacity: number,
    free: number,
    now: number,
    waitMs?: number | undefined,
  ): boolean {
    // Its brief waiters (a fail-fast gauge's only waiters) count as held: each will be served.
    const held = entry.held + entry.waiting;
    if (held >= this.capOf(capacity)) {
      entry.greedy = true;
      this.headroom.arrive(OVER, now);
      return false;
    }
    const over = held >= this.shareOf(entry, capacity);
    if (over) entry.greedy = true;
    this.headroom.arrive(entry.greedy ? OVER : UNDER, now);
    return !over || free > this.headroom.reserveFor(OVER, capacity, this.headroom.waitMs(waitMs));
  }

  /**
   * Fail fast: how long a caller of `entry` that found the gauge full waits for the next freed
   * slot (0: refused at once). Only a key under its share, and only while a key beyond its share
   * is what fills the gauge (its releases will come): `configuredMs`, or one mean hold time. The
   * room kept is sized for half that wait (as for priorities), assuming releases spread out; the
   * whole hold time is what makes it hold when they come in clumps (every slot taken at once
   * frees at once, a hold later), so a key under its share still gets the next one.
   */
  graceFor(entry: KeyEntry, configuredMs: number | undefined): number {
    if (entry.greedy) return 0;
    return this.headroom.waitFor(UNDER, configuredMs ?? this.headroom.meanHoldMs);
  }

  /**
   * Whether `entry` already holds its cap of `capacity` slots: a waiter of it is not served (a
   * fractional cap shrinks when the limit is cut while it waits).
   */
  atCap(entry: KeyEntry, capacity: number): boolean {
    return entry.held >= this.capOf(capacity);
  }

  /** Queue mode: may `entry` queue at all (its held and waiting under its cap)? */
  mayQueue(entry: KeyEntry, capacity: number): boolean {
    return entry.held + entry.waiting < this.capOf(capacity);
  }

  /** Queue mode: would one more call of `entry` be beyond its share (served after the others)? */
  excess(entry: KeyEntry, capacity: number): boolean {
    return entry.held + entry.waiting >= this.shareOf(entry, capacity);
  }

  /** `entry` took a slot at once. */
  hold(entry: KeyEntry): void {
    entry.held++;
    this.count(entry);
  }

  /** `entry` gave a slot back. */
  unhold(entry: KeyEntry): void {
    entry.held--;
    this.uncount(entry);
  }

  /** A caller of `entry` joined the queue. */
  queue(entry: KeyEntry): void {
    entry.waiting++;
    this.count(entry);
  }

  /** A caller of `entry` left the queue: served (it now holds a slot), or not. */
  dequeue(entry: KeyEntry, served: boolean): void {
    entry.waiting--;
    if (served) entry.held++;
    else this.uncount(entry);
  }

  private count(entry: KeyEntry): void {
    if (entry.counted) return;
    entry.counted = true;
    if (entry.overflow) this.overflowLive++;
    if (entry.key === undefined) this.fixedLive++;
    else this.live.set(entry.key, entry);
  }

  private uncount(entry: KeyEntry): void {
    if (entry.held > 0 || entry.waiting > 0 || !entry.counted) return;
    entry.counted = false;
    entry.greedy = false;
    if (entry.overflow) this.overflowLive--;
    if (entry.key === undefined) this.fixedLive--;
    else this.live.delete(entry.key);
  }

  private bucket(key: string): KeyEntry {
    const index = hashOf(key) % OVERFLOW_PARTITIONS;
    return (this.overflow[index] ??= new KeyEntry(undefined, true));
  }
}

/** A long key's stand-in: its length and two hashes (a shared partition only on a collision of both). */
function digestOf(key: string): string {
  return `\u0000${key.length}:${hashOf(key).toString(36)}:${hashOf(key, 0x2f3c1a7b).toString(36)}`;
}

/**
 * FNV-1a over the UTF-16 code units: cheap, and spreads keys over the overflow partitions (also
 * those a shared gauge keeps in its store, so both pick partitions alike).
 */
export function hashOf(key: string, seed = 0x811c9dc5): number {
  let hash = seed;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
