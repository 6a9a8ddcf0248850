/** What every scenario file (scenarios/*.scenario.ts) exports as `scenario`. */
export interface Scenario {
  /** File-safe id, also the results file name: docs/results/<id>.json. */
  id: string;
  title: string;
  run(ctx: BenchContext): Promise<ScenarioResult>;
}

/** What a scenario returns: its settings, its figures, and the verdict on each aim. */
export interface ScenarioResult {
  settings: Record<string, unknown>;
  data: unknown;
  /** Each aim of the issue: the figure, the target, and whether it was met. */
  aims: Aim[];
}

export interface Aim {
  what: string;
  target: string;
  value: string;
  met: boolean;
}

/** Knobs shared by all scenarios. */
export interface BenchContext {
  /** Smoke-test the harness in seconds: tiny durations, one repetition, numbers meaningless. */
  quick: boolean;
  /** Repetitions of each measurement (median and min–max are reported). */
  reps: number;
  /** Requests for the soak (scenario 6). */
  soakRequests: number;
  log(message: string): void;
}

/**
 * Runs `fn` for each repetition and each variant, interleaved (A B C, A B C, ...), so drift hits all
 * alike. With `rotate`, each round starts one variant further along (A B C, B C A, C A B, ...), so
 * no variant always runs first or right after the same neighbour.
 */
export async function interleaved<V, R>(
  reps: number,
  variants: readonly V[],
  fn: (variant: V, rep: number) => Promise<R>,
  rotate = false,
): Promise<Map<V, R[]>> {
  const results = new Map<V, R[]>(variants.map((v) => [v, []]));
  for (let rep = 0; rep < reps; rep++) {
    for (const variant of rotated(variants, rotate ? rep : 0)) {
      results.get(variant)!.push(await fn(variant, rep));
    }
  }
  return results;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `values` starting `by` places further along, wrapping round: (A B C, 1) is B C A. */
export function rotated<V>(values: readonly V[], by: number): V[] {
  const start = values.length === 0 ? 0 : by % values.length;
  return [...values.slice(start), ...values.slice(0, start)];
}
