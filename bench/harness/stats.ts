/** Median and spread of repeated runs: the bench reports every figure this way. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number[];
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
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN when there are none. */
export function percentile(samples: ArrayLike<number>, p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
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
