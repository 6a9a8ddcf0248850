import { describeValue as show } from '../config-value.util';
import { GaugeConfigError } from '../gauge.errors';
import type { PriorityRank } from '../priority/priority.level';
import { processLoopSampler, type LoopReading, type LoopSampler } from './event-loop.sampler';

/**
 * Shed by event-loop pressure: when this process itself is the bottleneck (its event loop late or
 * busy), refuse `low` and then `normal` calls at once, keeping the loop for `high` and `critical`.
 */
export interface EventLoopOptions {
  /** Pressure when the loop's mean delay over a sampling interval (100 ms) exceeds this (ms; default 30). */
  maxDelayMs?: number | undefined;
  /** Pressure when the loop is busy more than this share of an interval (0..1; default: not used). */
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
/** Calm readings in a row before one level is let back in (a cut is at once, a recovery slow). */
export const CALM_READINGS_TO_RECOVER = 5;
/** No shedding: no rank is this high. */
const NONE = 4;
/** The most it sheds: `normal` and `low`; `high` and `critical` are never shed for pressure. */
const MOST = 2;

/**
 * One gauge's view of the loop: a step controller over the sampler's readings. Each reading over a
 * threshold sheds one level more (`low`, then `normal` too); after `CALM_READINGS_TO_RECOVER`
 * readings well under them (half the delay, 90 % of the utilization), one level is let back in.
 * The hot path reads one number.
 */
export class LoopPressure {
  /** Calls of this rank or lower (a greater rank number) are refused: 4 none, 3 `low`, 2 `normal` too. */
  private shedFrom: number = NONE;
  private calm = 0;
  private readonly stop: () => void;

  constructor(private readonly options: ResolvedEventLoop) {
    this.stop = options.sampler.watch((reading) => this.observe(reading));
  }

  /** True if a call of `rank` is refused now. */
  sheds(rank: PriorityRank): boolean {
    return rank >= this.shedFrom;
  }

  /** The highest level shed now, for tests and logs: `undefined`, `'low'` or `'normal'`. */
  get shedding(): 'low' | 'normal' | undefined {
    return this.shedFrom === NONE ? undefined : this.shedFrom === MOST ? 'normal' : 'low';
  }

  /** Stops watching the loop (the gauge closed). */
  close(): void {
    this.stop();
  }

  private observe({ delayMs, utilization }: LoopReading): void {
    const { maxDelayMs, maxUtilization } = this.options;
    const busy = maxUtilization !== undefined && utilization > maxUtilization;
    if (delayMs > maxDelayMs || busy) {
      this.calm = 0;
      if (this.shedFrom > MOST) this.shedFrom--;
      return;
    }
    const quiet =
      delayMs <= maxDelayMs / 2 &&
      (maxUtilization === undefined || utilization <= maxUtilization * 0.9);
    if (!quiet) {
      this.calm = 0;
      return;
    }
    if (this.shedFrom < NONE && ++this.calm >= CALM_READINGS_TO_RECOVER) {
      this.calm = 0;
      this.shedFrom++;
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
