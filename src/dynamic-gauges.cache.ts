import type { Gauge } from './core/gauge.interface';

/** What to do with a gauge dropped from the cache (close it, log it). */
export type EvictGauge = (name: string, gauge: Gauge) => void;

/**
 * The gauges created at run time for names first seen after bootstrap — possibly chosen by
 * clients — bounded to `max`, least recently used first.
 *
 * Without a bound every distinct name would keep a gauge forever, so a client could grow the heap
 * at will. A gauge is only dropped while idle (no slot held, nobody queued): dropping a busy one
 * would let its name map to a second gauge and so double its limit, and its holders' releases
 * would go to a gauge nobody counts.
 *
 * Eviction runs only when a gauge must be added at the cap, with no timer. It drops a batch (a
 * tenth of `max`) of the least recently used idle gauges at once, so the walk is paid about once
 * per `max / 10` additions: amortized O(1) per new name while most gauges are idle, O(max) per
 * addition only when nearly every gauge is busy.
 */
export class DynamicGauges {
  /** Insertion order is recency order: a hit moves its entry to the end. */
  private readonly gauges = new Map<string, Gauge>();
  private readonly batch: number;

  constructor(
    /** Most gauges kept at once. */
    readonly max: number,
    private readonly evict: EvictGauge,
  ) {
    this.batch = Math.max(1, Math.ceil(max / 10));
  }

  get size(): number {
    return this.gauges.size;
  }

  /** The gauge `name`, marked as the most recently used, or undefined. */
  get(name: string): Gauge | undefined {
    const gauge = this.gauges.get(name);
    if (gauge !== undefined) {
      this.gauges.delete(name);
      this.gauges.set(name, gauge);
    }
    return gauge;
  }

  has(name: string): boolean {
    return this.gauges.has(name);
  }

  values(): IterableIterator<Gauge> {
    return this.gauges.values();
  }

  /**
   * Makes room for one more gauge, evicting idle ones if the cache is full. False when it is
   * full and every gauge is busy (or `max` is 0): the caller must not add.
   */
  makeRoom(): boolean {
    if (this.gauges.size < this.max) return true;
    let evicted = 0;
    // Deleting the entry being visited is safe while iterating a Map.
    for (const [name, gauge] of this.gauges) {
      if (gauge.inFlight !== 0 || gauge.queued !== 0) continue;
      this.gauges.delete(name);
      this.evict(name, gauge);
      if (++evicted === this.batch) break;
    }
    return this.gauges.size < this.max;
  }

  /** Adds `gauge` as the most recently used; call `makeRoom()` first. */
  add(name: string, gauge: Gauge): void {
    this.gauges.set(name, gauge);
  }

  /** Forgets every gauge (at shutdown, after they are closed). */
  clear(): void {
    this.gauges.clear();
  }
}
