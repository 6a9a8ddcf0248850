/**
 * How samples are grouped before an adaptive policy looks at them. One update per window, not per
 * sample, so the limit moves on a summary of many requests rather than on each one's noise.
 */
export interface WindowOptions {
  /** Shortest window (milliseconds): at most one limit update this often. Default 250. */
  readonly minMs?: number | undefined;
  /** Longest window (milliseconds): a window with any sample closes by then. Default 1000. */
  readonly maxMs?: number | undefined;
  /** Latency samples a window needs before it may close early (at `minMs`). Default 10. */
  readonly minSamples?: number | undefined;
  /** Which latency of the window stands for it, from 0 to 1 (0.5: the median). Default 0.5. */
  readonly percentile?: number | undefined;
}

/** Latencies a window keeps for its percentile; past that, a uniform reservoir of this many. */
const CAPACITY = 256;

/**
 * One window of samples in fixed memory: at most `CAPACITY` latencies (a uniform reservoir past
 * that, drawn from a seeded generator so runs are repeatable), the count of drops and the most
 * slots held at once. Adding a sample allocates nothing; the percentile is a quickselect in place.
 */
export class SampleWindow {
  /** Latency samples seen in this window (the reservoir holds at most `CAPACITY` of them). */
  count = 0;
  /** Work that ended `dropped` in this window. */
  drops = 0;
  /** The most slots held at a release in this window: how busy the gauge was. */
  maxInFlight = 0;
  /** When the window opened (milliseconds, the samples' clock); NaN until its first sample. */
  startedAt = Number.NaN;

  private readonly latencies = new Float64Array(CAPACITY);
  private seed = 0x2545f491;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly minSamples: number,
  ) {}

  /** Counts one latency sample. */
  addLatency(ms: number, inFlight: number, at: number): void {
    this.open(at, inFlight);
    const seen = this.count++;
    if (seen < CAPACITY) this.latencies[seen] = ms;
    else {
      const slot = this.random() % (seen + 1);
      if (slot < CAPACITY) this.latencies[slot] = ms;
    }
  }

  /** Counts one dropped piece of work (an overload signal without a usable latency). */
  addDrop(inFlight: number, at: number): void {
    this.open(at, inFlight);
    this.drops++;
  }

  /** Whether the window is complete at `at`: long enough and with enough in it, or too old. */
  isDue(at: number): boolean {
    const age = at - this.startedAt;
    if (age >= this.maxMs) return this.count + this.drops > 0;
    return age >= this.minMs && this.count + this.drops >= this.minSamples;
  }

  /** Share of the window's work that was dropped, from 0 to 1. */
  get dropRatio(): number {
    const total = this.count + this.drops;
    return total === 0 ? 0 : this.drops / total;
  }

  /** The `p`-th latency of the window (0 ≤ p ≤ 1); NaN when it holds no latency. Reorders. */
  percentile(p: number): number {
    const n = Math.min(this.count, CAPACITY);
    if (n === 0) return Number.NaN;
    return select(this.latencies, n, Math.min(n - 1, Math.floor(p * n)));
  }

  /** The smallest latency the window kept; NaN when none. */
  min(): number {
    return this.percentile(0);
  }

  /** Starts an empty window. */
  reset(): void {
    this.count = 0;
    this.drops = 0;
    this.maxInFlight = 0;
    this.startedAt = Number.NaN;
  }

  private open(at: number, inFlight: number): void {
    if (Number.isNaN(this.startedAt)) this.startedAt = at;
    if (inFlight > this.maxInFlight) this.maxInFlight = inFlight;
  }

  /** xorshift32: cheap, allocation-free and repeatable. */
  private random(): number {
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed;
  }
}

/** The k-th smallest of `values[0..n)` (Hoare's quickselect, in place). */
function select(values: Float64Array, n: number, k: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const pivot = values[(lo + hi) >>> 1] as number;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while ((values[i] as number) < pivot) i++;
      while ((values[j] as number) > pivot) j--;
      if (i <= j) {
        const swap = values[i] as number;
        values[i] = values[j] as number;
        values[j] = swap;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break;
  }
  return values[k] as number;
}
