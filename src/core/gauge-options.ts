import { describeValue as show } from './config-value.util';
import { GaugeConfigError } from './gauge.errors';
import { isLimitPolicyFactory, type LimitPolicyFactory } from './limit-policy';
import {
  assertInteger,
  assertNumber,
  isRecord,
  MAX_TIMEOUT_MS,
  rejectUnknownKeys,
} from './option-checks.util';
import type { OutcomeClassifier } from './outcome';
import { resolvePartition, type PartitionOptions } from './partition/partition-options';
import { resolveEventLoop, type EventLoopOptions } from './pressure/loop-pressure';
import { resolveQueue, type QueueOptions } from './queue-options';
import type { ResolvedGaugeOptions } from './resolved-gauge-options';
import { assertStoreDownPolicy, type StoreDownPolicy } from './store-down.policy';

/** The slots every gauge has unless told otherwise: the Go original's buffered channel of 10. */
export const DEFAULT_LIMIT = 10;

/** How one gauge behaves. Absent `queue` means fail fast, as a full Go channel does. */
export interface GaugeOptions {
  /**
   * Slots at most at once: a positive integer (a fixed limit, changeable with `gauge.setLimit`),
   * or a limit policy that decides it from measured latency. Defaults to the module's default limit.
   */
  limit?: number | LimitPolicyFactory | undefined;
  /** Present: wait in a bounded queue. Absent: reject at once when full. */
  queue?: QueueOptions | undefined;
  /** `Retry-After` sent with a 429 (whole seconds). Defaults to 1, or the queue timeout rounded up. */
  retryAfterSeconds?: number | undefined;
  /**
   * Only for a shared store (Redis): what to do while it is unreachable. Defaults to the store's own
   * setting. The in-memory store is never down and ignores it.
   */
  whenStoreDown?: StoreDownPolicy | undefined;
  /**
   * How work that failed with an error ended, for the limit policy (default `classifyError`: a
   * refusal, timeout, abort, 429/503/504 is `dropped`; another 4xx `ignored`; anything else `failed`).
   */
  classify?: OutcomeClassifier | undefined;
  /**
   * How long a slot may be held before its work is overdue (milliseconds; absent: never). An
   * overdue slot raises an `overdue` event and aborts the work's signal (`process(fn)`'s
   * argument, `@WorkSignal()` in a handler); it is not taken back while the work may still run.
   */
  maxHoldMs?: number | undefined;
  /**
   * Shed by event-loop pressure: while this process's event loop is late (or busy), refuse `low`
   * calls and cap the slots `normal` ones may hold (`shed-pressure`), the cap steered to keep the
   * loop's delay low, so `high` and `critical` keep the loop. `true` takes the defaults. One
   * sampler per process, however many gauges use it.
   */
  eventLoop?: boolean | EventLoopOptions | undefined;
  /**
   * Per-key fairness for calls that carry a `key` (`acquire({ key })`): a fixed cap per key and
   * how many keys are tracked (see `PartitionOptions`). A gauge partitions by key as soon as a
   * call carries one; this option tunes it, and makes calls without a key share one partition
   * from the start. A shared (Redis) gauge enforces it across every instance (README, "Per-key
   * fairness").
   */
  partition?: PartitionOptions | undefined;
  /**
   * Fail-fast gauges with priorities: how long (ms) a caller may wait for the next freed slot when
   * it finds none it may take while a lower level fills the gauge (that slot goes to it before
   * anyone else). It lets the gauge keep fewer slots free for higher levels. Default: half the
   * measured mean hold time; `0`: never wait (refuse at once, keeping more slots free). Not with a
   * `queue` of `size` > 0 (a queue already serves higher levels first; `size: 0` fails fast and
   * takes it). In-memory gauges only.
   */
  priorityWaitMs?: number | undefined;
}

/** The keys `GaugeOptions` accepts; anything else is a typo and fails the bootstrap. */
export const GAUGE_OPTION_KEYS: readonly string[] = [
  'limit',
  'queue',
  'retryAfterSeconds',
  'whenStoreDown',
  'classify',
  'maxHoldMs',
  'eventLoop',
  'partition',
  'priorityWaitMs',
];
const GAUGE_KEYS = new Set(GAUGE_OPTION_KEYS);

/**
 * Validates one gauge's options and fills in defaults. Throws `GaugeConfigError` naming the gauge
 * and the option, so a typo fails the bootstrap instead of the first request.
 */
export function resolveGaugeOptions(
  name: string,
  options: GaugeOptions = {},
  defaultLimit: number = DEFAULT_LIMIT,
): ResolvedGaugeOptions {
  assertGaugeName(name);
  const where = `Gauge "${name}"`;
  if (!isRecord(options)) {
    throw new GaugeConfigError(`${where}: options must be an object, got ${show(options)}`);
  }
  rejectUnknownKeys(where, options, GAUGE_KEYS, '');
  // Only `undefined` means "not set": a `null` from a JSON config is a mistake worth naming.
  const limitOption = options.limit === undefined ? defaultLimit : options.limit;
  let limit: number;
  let policy: LimitPolicyFactory | undefined;
  if (isLimitPolicyFactory(limitOption)) {
    policy = limitOption;
    // Built once here so that bad policy options fail the bootstrap, naming the gauge.
    limit = limitOption.create(`${where}: option "limit" (${limitOption.policy})`).limit;
  } else {
    assertInteger(where, 'limit', limitOption, 1, Number.MAX_SAFE_INTEGER);
    limit = limitOption;
  }
  const { classify } = options;
  if (classify !== undefined && typeof classify !== 'function') {
    throw new GaugeConfigError(
      `${where}: option "classify" must be a function (error) => outcome, got ${show(classify)}`,
    );
  }

  const { queueSize, queueTimeoutMs, ...discipline } = resolveQueue(where, options.queue);

  const fallbackRetry = queueSize > 0 ? Math.max(1, Math.ceil(queueTimeoutMs / 1000)) : 1;
  const retryAfterSeconds =
    options.retryAfterSeconds === undefined ? fallbackRetry : options.retryAfterSeconds;
  assertInteger(where, 'retryAfterSeconds', retryAfterSeconds, 0, Number.MAX_SAFE_INTEGER);

  const { whenStoreDown } = options;
  if (whenStoreDown !== undefined) assertStoreDownPolicy(where, whenStoreDown);
  const { maxHoldMs } = options;
  if (maxHoldMs !== undefined) assertNumber(where, 'maxHoldMs', maxHoldMs, 1, MAX_TIMEOUT_MS);
  const eventLoop = resolveEventLoop(where, options.eventLoop);
  const partition =
    options.partition === undefined ? undefined : resolvePartition(where, options.partition);
  const { priorityWaitMs } = options;
  if (priorityWaitMs !== undefined) {
    assertNumber(where, 'priorityWaitMs', priorityWaitMs, 0, MAX_TIMEOUT_MS);
    if (queueSize > 0) {
      throw new GaugeConfigError(
        `${where}: option "priorityWaitMs" is for a fail-fast gauge, but "queue.size" is ${queueSize} (a queue already serves higher levels first): remove "priorityWaitMs", or the queue (or set its size to 0) to fail fast; got ${show(priorityWaitMs)}`,
      );
    }
  }
  return {
    name,
    limit,
    queueSize,
    queueTimeoutMs,
    retryAfterSeconds,
    ...(policy === undefined ? {} : { policy }),
    ...(classify === undefined ? {} : { classify }),
    ...(maxHoldMs === undefined ? {} : { maxHoldMs }),
    ...(whenStoreDown === undefined ? {} : { whenStoreDown }),
    ...(eventLoop === undefined ? {} : { eventLoop }),
    ...(partition === undefined ? {} : { partition }),
    ...(priorityWaitMs === undefined ? {} : { priorityWaitMs }),
    ...discipline,
  };
}

/** Gauge names key registries, metrics and Redis keys: an empty or non-string name is a bug. */
export function assertGaugeName(name: unknown, where = 'Gauge name'): asserts name is string {
  if (typeof name !== 'string' || name.trim() === '') {
    throw new GaugeConfigError(`${where} must be a non-empty string, got ${show(name)}`);
  }
}

/** Checks the module-wide default limit, which every unconfigured gauge inherits. */
export function assertDefaultLimit(value: unknown): asserts value is number {
  assertInteger('BackpressureModule', 'defaultLimit', value, 1, Number.MAX_SAFE_INTEGER);
}
