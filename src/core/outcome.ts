import { GaugeAbortedError, GaugeExhaustedError, GaugeUnavailableError } from './gauge.errors';
import type { Outcome } from './gauge-events';

/** Decides how work that failed with `error` ended, for the limit policy. */
export type OutcomeClassifier = (error: unknown) => Outcome;

/** Statuses that say "overloaded, try later": a dependency's 429, 503 or 504 is a drop. */
const OVERLOAD_STATUSES = new Set([429, 503, 504]);
/** Errors by name that say the work was cut short: a timeout or an abort is a drop. */
const DROP_NAMES = new Set(['TimeoutError', 'AbortError']);

/**
 * The default classification of an error, framework-free (statuses are read by duck typing):
 * - a gauge's own refusal, a timeout or an abort, or a 429 / 503 / 504 → `dropped`;
 * - another 4xx (the client's mistake) → `ignored`;
 * - anything else (a 5xx, a plain `Error`: a bug) → `failed`.
 */
export const classifyError: OutcomeClassifier = (error) => {
  if (
    error instanceof GaugeExhaustedError ||
    error instanceof GaugeAbortedError ||
    error instanceof GaugeUnavailableError
  ) {
    return 'dropped';
  }
  const status = statusOf(error);
  if (status !== undefined) {
    if (OVERLOAD_STATUSES.has(status)) return 'dropped';
    if (status >= 400 && status < 500) return 'ignored';
  }
  const name = (error as { name?: unknown } | null | undefined)?.name;
  return typeof name === 'string' && DROP_NAMES.has(name) ? 'dropped' : 'failed';
};

/** An HTTP-ish status carried by an error: Nest's `getStatus()`, or a `status` / `statusCode`. */
function statusOf(error: unknown): number | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  const candidate = error as { getStatus?: unknown; status?: unknown; statusCode?: unknown };
  const status =
    typeof candidate.getStatus === 'function'
      ? (candidate.getStatus as () => unknown)()
      : (candidate.status ?? candidate.statusCode);
  return typeof status === 'number' ? status : undefined;
}
