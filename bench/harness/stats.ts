/** Median and spread of repeated runs: the bench reports every figure this way. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

/**
 * `fn` of each round's pair: `interleaved` gives every variant one result per round, so two
 * variants' results line up by index. Throws if they do not (a bench bug, never data).
 */
export function pairwise<A, B>(
  a: readonly A[],
  b: readonly B[],
  fn: (a: A, b: B) => number,
): number[] {
  return a.map((x, i) => {
    const y = b[i];
    if (y === undefined) throw new Error(`pairwise: ${a.length} results against ${b.length}`);
    return fn(x, y);
  });
}

/** `record[key]`, or a thrown error naming the key (a figure the bench should have measured). */
export function required<T>(record: Readonly<Record<string, T>>, key: string): T {
  const value = record[key];
  if (value === undefined) throw new Error(`no "${key}" in the results`);
  return value;
}

/** Summarises repeated measurements of one figure. */
export function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    median: median(sorted),
    min: sorted[0] ?? NaN,
    max: sorted[sorted.length - 1] ?? NaN,
    runs: values,
  };
}

function median(sorted: number[]): number {
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  // mid (and mid - 1 when the length is even) are in range: the length is at least 1.
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN when there are none. */
export function percentile(samples: ArrayLike<number>, p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!; // clamped to 0..length - 1 above
}

/** Rounds to `digits` significant figures (whole numbers stay whole), for tables and JSON. */
export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value)) return value;
  if (Math.abs(value) >= 10 ** digits) return Math.round(value);
  return Number(value.toPrecision(digits));
}

/** "median (min–max)" for tables. */
export function show(s: Spread, digits = 3, unit = ''): string {
  const f = (v: number) => `${round(v, digits)}${unit}`;
  return `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}
