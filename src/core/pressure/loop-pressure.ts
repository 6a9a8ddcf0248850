import { describeValue as show } from '../config-value.util';
import { GaugeConfigError } from '../gauge.errors';
import { NORMAL_RANK, type PriorityRank } from '../priority/priority.level';
import { processLoopSampler, type LoopReading, type LoopSampler } from './event-loop.sampler';

/**
 * Shed by event-loop pressure: when this process itself is the bottleneck (its event loop late or
 * busy), refuse `low` calls and cap how many slots `normal` calls may hold, keeping the loop for
 * `high` and `critical`.
 */
export interface EventLoopOptions {
  /**
   * The loop's mean timer delay (ms; default 30) that counts as late. The gauge steers the delay
   * towards `maxDelayMs × TARGET_SHARE` (1.5 ms by default), so that bursts stay under this.
   */
  maxDelayMs?: number | undefined;
  /** Steer the loop's busy share of an interval under this too (0..1; default: not used). */
  maxUtilization?: number | undefined;
  /** Where readings come from (default: the one sampler of this process); for tests or another signal. */
  sampler?: LoopSampler | undefined;
}

/** `eventLoop` after validation and defaults. */
export interface ResolvedEventLoop {
  readonly maxDelayMs: number;
  /** Absent: utilization is not a signal. */
  readonly maxUtilization?: number;
  readonly sampler: LoopSampler;
}

/** The default delay threshold: 30 ms late is already most of a fast request's budget. */
export const DEFAULT_MAX_DELAY_MS = 30;
/**
 * The delay the cap steers to, as a share of `maxDelayMs`. A request that needs a few turns of the
 * loop waits for each turn, so its latency is a multiple of the loop's delay: holding the mean
 * delay at a twentieth of the threshold keeps critical calls' tail well under it.
 */
export const TARGET_SHARE = 0.05;
/** Calm readings in a row, with the cap refusing nobody, before the cap is lifted. */
export const CALM_READINGS_TO_RECOVER = 5;
/** The most one reading cuts the cap by (a share of what is held). */
export const MAX_CUT = 0.5;
/** The most one calm reading raises the cap by (a share of it). */
export const MAX_RAISE = 0.125;
/** The cap never goes under this many slots: `normal` calls are throttled, never starved. */
export const MIN_CAP = 1;

/**
 * One gauge's view of the loop: an integral controller over the sampler's readings that sets a cap
 * on the slots held (by all levels) under which a `normal` call is admitted. `pressure` is the
 * reading over its target (delay ÷ `maxDelayMs × TARGET_SHARE`, or utilization ÷ `maxUtilization`,
 * the larger): 1 is on target.
 *
 * - Over target (> 1), with no cap yet: the cap starts under what is held; `low` is refused from
 *   now on. Each such reading cuts the cap to `min(cap, held) × (1 − cut)`, the cut proportional to
 *   the excess (`(pressure − 1) / 4`) and at most `MAX_CUT`.
 * - Under target, while the cap is refusing calls: it rises by `(1 − pressure) / 8` of itself
 *   (at most `MAX_RAISE`), so it settles where the loop is on target instead of see-sawing.
 * - After `CALM_READINGS_TO_RECOVER` readings in a row on target (≤ 1) with the cap refusing no
 *   `normal` call, the cap is lifted and `low` is let back in: demand fits under it, so lifting
 *   it floods nothing (a loop held just under target by the cap itself keeps it).
 * - A late reading while the gauge holds nothing starts no cap: its calls are not the cause.
 *
 * `high` and `critical` are never refused for pressure (only by the gauge's own limit). The hot
 * path compares two numbers; no timer or clock read per call.
 */
export class LoopPressure {
  /** `normal` is admitted while fewer than this many slots are held; `Infinity`: no pressure. */
  private cap = Infinity;
  private calm = 0;
  /** Whether the cap refused a `normal` call since the last reading. */
  private binding = false;
  private readonly stop: () => void;

  /** `held` says how many slots the gauge holds now (every level). */
  constructor(
    private readonly options: ResolvedEventLoop,
    private readonly held: () => number,
  ) {
    this.stop = options.sampler.watch((reading) => this.observe(reading));
  }

  /** True if a call of `rank` is refused now, `held` being the slots held (every level). */
  sheds(rank: PriorityRank, held: number): boolean {
    if (rank < NORMAL_RANK || this.cap === Infinity) return false;
    if (rank > NORMAL_RANK) return true;
    if (held < this.cap) return false;
    this.binding = true;
    return true;
  }

  /** The cap on slots held under which `normal` is admitted now; `undefined`: none (no pressure). */
  get inFlightCap(): number | undefined {
    return this.cap === Infinity ? undefined : this.cap;
  }

  /** Stops watching the loop (the gauge closed). */
  close(): void {
    this.stop();
  }

  private observe({ delayMs, utilization }: LoopReading): void {
    const { maxDelayMs, maxUtilization } = this.options;
    const pressure = Math.max(
      delayMs / (maxDelayMs * TARGET_SHARE),
      maxUtilization === undefined ? 0 : utilization / maxUtilization,
    );
    const binding = this.binding;
    this.binding = false;
    if (pressure > 1) {
      this.calm = 0;
      // Late while this gauge holds nothing: its calls are not what makes the loop late.
      if (this.cap === Infinity && this.held() === 0) return;
      const cut = Math.min(MAX_CUT, (pressure - 1) / 4);
      this.cap = Math.max(MIN_CAP, Math.min(this.cap, this.held()) * (1 - cut));
      return;
    }
    if (this.cap === Infinity) return;
    if (binding) this.cap *= 1 + Math.min(MAX_RAISE, (1 - pressure) / 8);
    // On target and nobody refused: demand fits under the cap; lifting it floods nothing.
    if (binding) {
      this.calm = 0;
    } else if (++this.calm >= CALM_READINGS_TO_RECOVER) {
      this.calm = 0;
      this.cap = Infinity;
    }
  }
}

const KEYS = new Set(['maxDelayMs', 'maxUtilization', 'sampler']);

/** Checks a gauge's `eventLoop` option (`true` or an object), naming the gauge and the option. */
export function resolveEventLoop(where: string, value: unknown): ResolvedEventLoop | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return { maxDelayMs: DEFAULT_MAX_DELAY_MS, sampler: processLoopSampler() };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new GaugeConfigError(
      `${where}: option "eventLoop" must be true or { maxDelayMs, maxUtilization }, got ${show(value)}`,
    );
  }
  for (const key of Object.keys(value)) {
    if (!KEYS.has(key)) {
      throw new GaugeConfigError(
        `${where}: unknown option "eventLoop.${key}" (known: ${[...KEYS].map((k) => `eventLoop.${k}`).join(', ')})`,
      );
    }
  }
  const { maxDelayMs = DEFAULT_MAX_DELAY_MS, maxUtilization, sampler } = value as EventLoopOptions;
  if (typeof maxDelayMs !== 'number' || !Number.isFinite(maxDelayMs) || maxDelayMs <= 0) {
    throw new GaugeConfigError(
      `${where}: option "eventLoop.maxDelayMs" must be a number of milliseconds above 0, got ${show(maxDelayMs)}`,
    );
  }
  if (
    maxUtilization !== undefined &&
    (typeof maxUtilization !== 'number' || !(maxUtilization > 0 && maxUtilization < 1))
  ) {
    throw new GaugeConfigError(
      `${where}: option "eventLoop.maxUtilization" must be a number between 0 and 1 (exclusive), got ${show(maxUtilization)}`,
    );
  }
  if (sampler !== undefined && typeof (sampler as { watch?: unknown }).watch !== 'function') {
    throw new GaugeConfigError(
      `${where}: option "eventLoop.sampler" must have watch(watcher), got ${show(sampler)}`,
    );
  }
  return {
    maxDelayMs,
    ...(maxUtilization === undefined ? {} : { maxUtilization }),
    sampler: sampler ?? processLoopSampler(),
  };
}
