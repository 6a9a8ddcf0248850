import { describeValue as show } from './config-value.util';
import { GaugeConfigError } from './gauge.errors';
import {
  assertInteger,
  assertNumber,
  isRecord,
  MAX_TIMEOUT_MS,
  rejectUnknownKeys,
} from './option-checks.util';
import {
  DEFAULT_CODEL_INTERVAL_MS,
  DEFAULT_CODEL_TARGET_MS,
  QUEUE_DISCIPLINES,
  type QueueDiscipline,
} from './queue-discipline';
import type { ResolvedGaugeOptions } from './resolved-gauge-options';

/** Wait instead of failing fast: how many may wait, and for how long. */
export interface QueueOptions {
  /** Most callers that may wait at once; the next one is rejected at once. */
  size: number;
  /** Longest a caller waits for a slot before it is rejected (milliseconds). */
  timeoutMs: number;
  /**
   * Which waiter a freed slot goes to, within a priority level: `'fifo'` (default, the oldest),
   * `'lifo'` (the newest) or `'codel'` (FIFO until the queue stands, then newest first and late
   * waiters shed; see `QueueDiscipline`).
   */
  discipline?: QueueDiscipline | undefined;
  /** `codel` only: the wait (ms) a queue may keep without counting as standing (default 5). */
  targetMs?: number | undefined;
  /** `codel` only: how long (ms) waits must stay above `targetMs` to count as standing (default 100). */
  intervalMs?: number | undefined;
}

/**
 * The queue part of `ResolvedGaugeOptions`, resolved on its own so that a gauge's other options
 * (its `Retry-After`, `priorityWaitMs`) can depend on whether it really queues.
 */
export type ResolvedQueue = Pick<
  ResolvedGaugeOptions,
  'queueSize' | 'queueTimeoutMs' | 'queueDiscipline' | 'queueTargetMs' | 'queueIntervalMs'
>;

type ResolvedDiscipline = Pick<
  ResolvedGaugeOptions,
  'queueDiscipline' | 'queueTargetMs' | 'queueIntervalMs'
>;

const QUEUE_KEYS = new Set(['size', 'timeoutMs', 'discipline', 'targetMs', 'intervalMs']);

/**
 * Checks option `queue` of the gauge `where` names. Absent, or of `size: 0`, it is a fail-fast
 * gauge (`queueSize` 0); every setting is checked even then, so a typo fails the bootstrap while
 * the queue is switched off too.
 */
export function resolveQueue(where: string, queue: QueueOptions | undefined): ResolvedQueue {
  if (queue === undefined) return { queueSize: 0, queueTimeoutMs: 0 };
  const value: unknown = queue;
  if (!isRecord(value)) {
    throw new GaugeConfigError(
      `${where}: option "queue" must be { size, timeoutMs }, got ${show(value)}`,
    );
  }
  rejectUnknownKeys(where, value, QUEUE_KEYS, 'queue.');
  assertInteger(where, 'queue.size', queue.size, 0, Number.MAX_SAFE_INTEGER);
  assertNumber(where, 'queue.timeoutMs', queue.timeoutMs, 1, MAX_TIMEOUT_MS);
  // Checked whatever the size, so a typo fails even while the queue is switched off.
  const discipline = resolveDiscipline(where, queue);
  // `size: 0` is a fail-fast gauge, resolved exactly as one without `queue` (a config that
  // turns the queue off by its size must not behave, or be validated, as a queue).
  if (queue.size > 0) {
    return { queueSize: queue.size, queueTimeoutMs: queue.timeoutMs, ...discipline };
  }
  return { queueSize: 0, queueTimeoutMs: 0 };
}

/** Checks `queue.discipline` and CoDel's settings, which only `codel` takes. */
function resolveDiscipline(where: string, queue: QueueOptions): ResolvedDiscipline {
  const { discipline, targetMs, intervalMs } = queue;
  if (discipline === undefined || discipline === 'fifo' || discipline === 'lifo') {
    const stray =
      targetMs !== undefined ? 'targetMs' : intervalMs !== undefined ? 'intervalMs' : '';
    if (stray !== '') {
      throw new GaugeConfigError(
        `${where}: option "queue.${stray}" is for discipline 'codel' only, but the discipline is ${show(discipline ?? 'fifo')}`,
      );
    }
    return discipline === undefined ? {} : { queueDiscipline: discipline };
  }
  if (discipline !== 'codel') {
    throw new GaugeConfigError(
      `${where}: option "queue.discipline" must be one of ${QUEUE_DISCIPLINES.map((d) => `'${d}'`).join(', ')}, got ${show(discipline)}`,
    );
  }
  const target = targetMs ?? DEFAULT_CODEL_TARGET_MS;
  const interval = intervalMs ?? DEFAULT_CODEL_INTERVAL_MS;
  assertNumber(where, 'queue.targetMs', target, 0.001, MAX_TIMEOUT_MS);
  assertNumber(where, 'queue.intervalMs', interval, 1, MAX_TIMEOUT_MS);
  return { queueDiscipline: 'codel', queueTargetMs: target, queueIntervalMs: interval };
}
