import { GaugeExhaustedError, GaugeUnavailableError, type Gauge } from '../../../src';

/** What a closed-loop load run saw, updated live. */
export interface Load {
  readonly admitted: number;
  readonly outcomes: {
    admitted: number;
    exhausted: number;
    unavailable: number;
    unexpected: string[];
  };
  /** Most units of work running at once, counted by the work itself. */
  readonly maxConcurrent: number;
  stop(): Promise<void>;
}

/**
 * Closed-loop load in this process: `workersPerGauge` loops per gauge, each taking a slot, doing
 * `workMs` of work that counts how many run at once, and releasing. Bounded: stops on `stop()`.
 */
export function runLoad(
  gauges: Gauge[],
  { workersPerGauge, workMs }: { workersPerGauge: number; workMs: number },
): Load {
  let running = 0;
  let stopped = false;
  const outcomes = { admitted: 0, exhausted: 0, unavailable: 0, unexpected: [] as string[] };
  const state = {
    maxConcurrent: 0,
    get admitted() {
      return outcomes.admitted;
    },
    outcomes,
    stop: async () => {
      stopped = true;
      await Promise.all(workers);
    },
  };
  const work = async () => {
    running++;
    state.maxConcurrent = Math.max(state.maxConcurrent, running);
    await new Promise((resolve) => setTimeout(resolve, workMs));
    running--;
  };
  const worker = async (gauge: Gauge) => {
    while (!stopped) {
      try {
        await gauge.process(work);
        outcomes.admitted++;
      } catch (error) {
        if (error instanceof GaugeExhaustedError) outcomes.exhausted++;
        else if (error instanceof GaugeUnavailableError) outcomes.unavailable++;
        else outcomes.unexpected.push(String(error));
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    }
  };
  const workers = gauges.flatMap((gauge) =>
    Array.from({ length: workersPerGauge }, () => worker(gauge)),
  );
  return state;
}
