import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';

/** What the event loop looked like over the last sampling interval. */
export interface LoopReading {
  /** Mean delay of the loop's timers beyond their due time, in milliseconds. */
  readonly delayMs: number;
  /** Share of the interval the loop was busy, 0..1 (`performance.eventLoopUtilization`). */
  readonly utilization: number;
}

/** Told of every reading, synchronously, on the sampler's timer. */
export type LoopWatcher = (reading: LoopReading) => void;

/** Where readings come from: one sampler per process in production, a script in tests. */
export interface LoopSampler {
  /** Calls `watcher` with every reading from now on; returns what stops it. */
  watch(watcher: LoopWatcher): () => void;
}

/**
 * How often the process sampler reads the loop (ms): fast enough for a gauge to settle its cap
 * within a few hundred milliseconds, slow enough for each reading to average ~10 histogram samples.
 */
export const SAMPLE_INTERVAL_MS = 50;
/**
 * The delay histogram's resolution (ms); subtracted from its mean, as @fastify/under-pressure
 * does. Fine enough to tell a loop 1.5 ms late from an idle one (the controller's default target).
 */
export const RESOLUTION_MS = 5;

/**
 * The one event-loop sampler of this process (after @fastify/under-pressure): a delay histogram
 * and one unref'd interval timer, started by the first watcher and stopped with the last, so a
 * process where no gauge watches the loop pays nothing, and many gauges share one timer. No work
 * per request: a gauge only reads the state its watcher last set.
 */
class ProcessLoopSampler implements LoopSampler {
  private watchers: LoopWatcher[] = [];
  private histogram: IntervalHistogram | undefined;
  private timer: NodeJS.Timeout | undefined;
  private last = performance.eventLoopUtilization();

  watch(watcher: LoopWatcher): () => void {
    this.watchers = [...this.watchers, watcher];
    if (this.watchers.length === 1) this.start();
    return () => {
      const before = this.watchers.length;
      this.watchers = this.watchers.filter((each) => each !== watcher);
      if (before > 0 && this.watchers.length === 0) this.stop();
    };
  }

  private start(): void {
    const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    histogram.enable();
    this.histogram = histogram;
    this.last = performance.eventLoopUtilization();
    this.timer = setInterval(() => this.read(histogram), SAMPLE_INTERVAL_MS);
    this.timer.unref();
  }

  private stop(): void {
    clearInterval(this.timer);
    this.histogram?.disable();
    this.timer = undefined;
    this.histogram = undefined;
  }

  private read(histogram: IntervalHistogram): void {
    const mean = histogram.count > 0 ? histogram.mean / 1e6 : 0;
    histogram.reset();
    const now = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(now, this.last);
    this.last = now;
    const reading: LoopReading = { delayMs: Math.max(0, mean - RESOLUTION_MS), utilization };
    for (const watcher of this.watchers) watcher(reading);
  }
}

let processSampler: ProcessLoopSampler | undefined;

/** The process's sampler, created on first use. */
export function processLoopSampler(): LoopSampler {
  return (processSampler ??= new ProcessLoopSampler());
}
