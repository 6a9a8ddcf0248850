/**
 * Which waiter a freed slot goes to, within a priority level:
 * - `fifo`: the oldest (fair; under sustained overload every admitted caller has waited longest);
 * - `lifo`: the newest (its client is surely still there; the oldest may have given up);
 * - `codel`: controlled delay with adaptive LIFO (Facebook's "Fail at Scale"): FIFO while the
 *   queue absorbs bursts; once even the shortest wait over an interval stays above the target
 *   (a standing queue), the newest first, and waiters that have waited past twice the target are
 *   shed (`shed-delay`) instead of being served late.
 */
export type QueueDiscipline = 'fifo' | 'lifo' | 'codel';

/** Every discipline, for validation messages. */
export const QUEUE_DISCIPLINES: readonly QueueDiscipline[] = ['fifo', 'lifo', 'codel'];

/** CoDel's default target wait: Facebook's and folly's 5 ms. */
export const DEFAULT_CODEL_TARGET_MS = 5;

/** CoDel's default interval: 100 ms, as in CoDel and folly. */
export const DEFAULT_CODEL_INTERVAL_MS = 100;
