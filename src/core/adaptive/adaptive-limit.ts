import type { LimitPolicy, LimitSample } from '../limit-policy';
import type { ResolvedAdaptiveOptions } from './adaptive-options';
import { SampleWindow } from './sample-window';

/** What one closed window tells an algorithm. */
export interface WindowSummary {
  /** The window's latency at the configured percentile (milliseconds); NaN when all were drops. */
  readonly latencyMs: number;
  /** The latency of the work with no queue in front of it, as last measured (milliseconds). */
  readonly baselineMs: number;
  /** Share of the window's work that was dropped (0 to 1): an overload signal. */
  readonly dropRatio: number;
  /** The most slots held at once in the window. */
  readonly maxInFlight: number;
}

/** During a probe the limit is this share of the estimate: low enough that no queue forms. */
const PROBE_SHARE = 0.25;
/**
 * The limit grows only in a window where at least this share of its slots were held at once
 * (Netflix concurrency-limits #134). At 0.5 a limit kept growing to twice the peak in-flight
 * whenever the offered load was below capacity; at 0.8 it stops a quarter above it.
 */
const GROWTH_USE = 0.8;
/**
 * A limit that halved since the last probe while this many windows in a row were still more than
 * `STUCK_LATENCY` × the baseline (or all drops) is stuck: the work itself got slower, not the
 * capacity smaller (after a capacity cut the limit settles where latency is near the baseline
 * again). It probes early.
 */
const EARLY_PROBE_WINDOWS = 10;
const STUCK_LATENCY = 2;
/** Seeds each policy's jitter differently (and repeatably, in creation order). */
let created = 0;

/**
 * What Gradient2, Vegas and AIMD share: samples grouped into windows, the limit kept an integer
 * within [min, max], growth only while the gauge is busy, and a no-load latency that cannot drift.
 *
 * - **Samples.** `succeeded` work gives a latency; `dropped` work counts as a drop; `failed`
 *   (a server bug: its latency says nothing of capacity, and a fast-failing bug must not raise the
 *   limit nor a slow one cut it) and `ignored` (a client error, a stream) are no sample at all.
 * - **Under-use.** The limit never grows in a window where fewer than 80 % of its slots were held
 *   at once (Netflix concurrency-limits #134: "fast" samples from an idle gauge would raise it
 *   forever), so under a load below capacity it settles a quarter above the peak in-flight.
 * - **Baseline.** The no-load latency is measured, not inferred: at the first samples the limit
 *   drops to `min` for one window (nothing is known yet: a quarter of the initial limit was still
 *   a queue for CPU-bound work, whose every slot in flight adds to every other's latency), then
 *   every `probeIntervalMs` to a quarter of what it learned, so the work runs with no queue in
 *   front of it, and only work that started during that window counts. Between probes
 *   the baseline may fall (faster windows) but never rise, so sustained overload cannot pull it up
 *   (failsafe-go #127). A limit that has halved since the last probe while ten windows in a row
 *   were still over twice the baseline probes early: the work itself got slower, and the limit
 *   does not sit at `min` until the next scheduled probe. A capacity cut, after which the limit
 *   settles lower with latency near the baseline again, costs no probe.
 */
export abstract class AdaptiveLimit implements LimitPolicy {
  readonly samples = true;
  /** The limit in force: an integer within [min, max]. */
  limit: number;
  /** The algorithm's real-valued limit, which `limit` rounds. */
  protected estimate: number;
  /** The last measured no-load latency (milliseconds); NaN before the first probe. */
  protected baselineMs = Number.NaN;

  private readonly window: SampleWindow;
  private probingSince = Number.NaN;
  private nextProbeAt = Number.NEGATIVE_INFINITY;
  private estimateAtProbe = 0;
  private slowWindows = 0;
  private jitter = (0x9e3779b9 ^ Math.imul(++created, 0x85ebca6b)) >>> 0 || 1;

  constructor(protected readonly options: ResolvedAdaptiveOptions) {
    this.estimate = options.initial;
    this.limit = options.initial;
    this.window = new SampleWindow(
      options.windowMinMs,
      options.windowMaxMs,
      options.windowMinSamples,
    );
  }

  /** The most this policy answers (its `max` option): a shared gauge's cap. */
  get max(): number {
    return this.options.max;
  }

  /** The last measured no-load latency (milliseconds), NaN before the first; for stats and tests. */
  get baseline(): number {
    return this.baselineMs;
  }

  /** Whether the limit is lowered right now to measure the no-load latency. */
  get probing(): boolean {
    return !Number.isNaN(this.probingSince);
  }

  update(sample: LimitSample): number {
    const { outcome, at } = sample;
    if (outcome === 'failed' || outcome === 'ignored') return this.limit;
    if (this.nextProbeAt === Number.NEGATIVE_INFINITY) this.startProbe(at, this.options.min);
    // During a probe only work that started under the probe's limit says what no load costs.
    if (this.probing && at - sample.heldMs < this.probingSince) return this.limit;
    const window = this.window;
    if (outcome === 'dropped') window.addDrop(sample.inFlight, at);
    else window.addLatency(sample.heldMs, sample.inFlight, at);
    if (!window.isDue(at)) return this.limit;
    if (this.probing) this.endProbe(at);
    else this.adjust(at);
    window.reset();
    return this.limit;
  }

  /** The algorithm: the next real-valued limit from the current one and a window's summary. */
  protected abstract next(estimate: number, window: WindowSummary): number;

  private adjust(at: number): void {
    const window = this.window;
    const latencyMs = window.percentile(this.options.percentile);
    // Faster than the baseline: the work got cheaper (or the probe caught a slow moment).
    if (latencyMs < this.baselineMs) this.baselineMs = latencyMs;
    let next = this.next(this.estimate, {
      latencyMs,
      baselineMs: this.baselineMs,
      dropRatio: window.dropRatio,
      maxInFlight: window.maxInFlight,
    });
    if (!Number.isFinite(next)) next = this.estimate;
    if (next > this.estimate && window.maxInFlight < this.limit * GROWTH_USE) next = this.estimate;
    const slow = !(latencyMs <= STUCK_LATENCY * this.baselineMs); // NaN: all drops
    this.slowWindows = slow ? this.slowWindows + 1 : 0;
    this.estimate = Math.min(this.options.max, Math.max(this.options.min, next));
    this.limit = this.rounded(this.estimate);
    const stuck =
      this.slowWindows >= EARLY_PROBE_WINDOWS && this.estimate <= this.estimateAtProbe / 2;
    if (at >= this.nextProbeAt || stuck) this.startProbe(at);
  }

  /** During a probe the limit is `limit`: by default a quarter of the estimate, rounded down. */
  private startProbe(at: number, limit = Math.floor(this.estimate * PROBE_SHARE)): void {
    this.probingSince = at;
    this.nextProbeAt = Number.POSITIVE_INFINITY; // set when the probe ends
    // Rounded down: a small dependency (a pool of 1 or 2) is measured with no queue at all.
    this.limit = this.rounded(limit);
  }

  private endProbe(at: number): void {
    const latencyMs = this.window.percentile(this.options.percentile);
    // A probe that saw only drops measured nothing: keep probing if there is no baseline yet.
    if (Number.isNaN(latencyMs) && Number.isNaN(this.baselineMs)) return;
    if (!Number.isNaN(latencyMs)) this.baselineMs = latencyMs;
    this.probingSince = Number.NaN;
    this.estimateAtProbe = this.estimate;
    this.slowWindows = 0;
    this.nextProbeAt = at + this.options.probeIntervalMs * (0.9 + 0.2 * this.random());
    this.limit = this.rounded(this.estimate);
  }

  private rounded(estimate: number): number {
    return Math.min(this.options.max, Math.max(this.options.min, Math.round(estimate)));
  }

  /** A repeatable jitter in [0, 1) (xorshift32), so probes of many gauges do not line up. */
  private random(): number {
    let x = this.jitter;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.jitter = x >>> 0;
    return this.jitter / 2 ** 32;
  }
}
