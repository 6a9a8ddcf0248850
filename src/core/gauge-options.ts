import { describeValue as show } from './config-value.util';
import { GaugeConfigError } from './gauge.errors';
import { isLimitPolicyFactory, type LimitPolicyFactory } from './limit-policy';
import type { OutcomeClassifier } from './outcome';
import type { PartitionSettings } from './partition/key-partitions';
import { resolvePartition, type PartitionOptions } from './partition/partition-options';
import {
  resolveEventLoop,
  type EventLoopOptions,
  type ResolvedEventLoop,
} from './pressure/loop-pressure';
import {
  DEFAULT_CODEL_INTERVAL_MS,
  DEFAULT_CODEL_TARGET_MS,
  QUEUE_DISCIPLINES,
  type QueueDiscipline,
} from './queue-discipline';

/** The slots every gauge has unless told otherwise: the Go original's buffered channel of 10. */
export const DEFAULT_LIMIT = 10;

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

/**
 * A shared-store gauge's choice when the store cannot be reached: `'fail-closed'` refuses with 503
 * (protects the shared resource), `{ localLimit }` keeps serving with that many slots per instance.
 */
export type StoreDownPolicy = 'fail-closed' | { readonly localLimit: number };

/** Options after validation and defaults: what a gauge is built from. */
export interface ResolvedGaugeOptions {
  /** The gauge's name: non-empty, not blank. */
  readonly name: string;
  /** The limit to start with: a fixed limit's value (an integer >= 1), or the policy's initial one. */
  readonly limit: number;
  /** Absent: a fixed limit. */
  readonly policy?: LimitPolicyFactory;
  /** Absent: `classifyError`. */
  readonly classify?: OutcomeClassifier;
  /** Absent: hold times are not watched. */
  readonly maxHoldMs?: number;
  /** Callers that may wait at once: 0 means fail fast (no queue). */
  readonly queueSize: number;
  /** Longest a caller waits, in milliseconds (0 when `queueSize` is 0). */
  readonly queueTimeoutMs: number;
  /** Absent: `fifo`. */
  readonly queueDiscipline?: QueueDiscipline;
  /** CoDel's target (ms), for `codel` only. */
  readonly queueTargetMs?: number;
  /** CoDel's interval (ms), for `codel` only. */
  readonly queueIntervalMs?: number;
  /** Sent as `Retry-After` on a refusal (whole seconds, >= 0). */
  readonly retryAfterSeconds: number;
  /** What to do while a shared store is unreachable. Absent: the store decides. */
  readonly whenStoreDown?: StoreDownPolicy;
  /** Absent: no shedding by event-loop pressure. */
  readonly eventLoop?: ResolvedEventLoop;
  /** Absent: keys get the default partitioning when the first one arrives. */
  readonly partition?: PartitionSettings;
  /** Absent: half the measured mean hold time (fail fast only). */
  readonly priorityWaitMs?: number;
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
const QUEUE_KEYS = new Set(['size', 'timeoutMs', 'discipline', 'targetMs', 'intervalMs']);
const STORE_DOWN_KEYS = new Set(['localLimit']);
/** setTimeout's ceiling: a longer delay silently becomes 1 ms. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

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

  let queueSize = 0;
  let queueTimeoutMs = 0;
  let codel: Pick<ResolvedGaugeOptions, 'queueDiscipline' | 'queueTargetMs' | 'queueIntervalMs'> =
    {};
  if (options.queue !== undefined) {
    const queue: unknown = options.queue;
    if (!isRecord(queue)) {
      throw new GaugeConfigError(
        `${where}: option "queue" must be { size, timeoutMs }, got ${show(queue)}`,
      );
    }
    rejectUnknownKeys(where, queue, QUEUE_KEYS, 'queue.');
    assertInteger(where, 'queue.size', options.queue.size, 0, Number.MAX_SAFE_INTEGER);
    assertNumber(where, 'queue.timeoutMs', options.queue.timeoutMs, 1, MAX_TIMEOUT_MS);
    // Checked whatever the size, so a typo fails even while the queue is switched off.
    const discipline = resolveDiscipline(where, options.queue);
    // `size: 0` is a fail-fast gauge, resolved exactly as one without `queue` (a config that
    // turns the queue off by its size must not behave, or be validated, as a queue).
    if (options.queue.size > 0) {
      queueSize = options.queue.size;
      queueTimeoutMs = options.queue.timeoutMs;
      codel = discipline;
    }
  }

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
    ...codel,
  };
}

/** Checks `queue.discipline` and CoDel's settings, which only `codel` takes. */
function resolveDiscipline(
  where: string,
  queue: QueueOptions,
): Pick<ResolvedGaugeOptions, 'queueDiscipline' | 'queueTargetMs' | 'queueIntervalMs'> {
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

/** Checks a `whenStoreDown` policy (a gauge's or a store's default), naming where it came from. */
export function assertStoreDownPolicy(
  where: string,
  value: unknown,
): asserts value is StoreDownPolicy {
  if (value === 'fail-closed') return;
  if (isRecord(value)) {
    rejectUnknownKeys(where, value, STORE_DOWN_KEYS, 'whenStoreDown.');
    const { localLimit } = value as { localLimit?: unknown };
    assertInteger(where, 'whenStoreDown.localLimit', localLimit, 1, Number.MAX_SAFE_INTEGER);
    return;
  }
  throw new GaugeConfigError(
    `${where}: option "whenStoreDown" must be 'fail-closed' or { localLimit }, got ${show(value)}`,
  );
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

function assertInteger(where: string, option: string, value: unknown, min: number, max: number) {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new GaugeConfigError(
      `${where}: option "${option}" must be an integer from ${min} to ${max === Number.MAX_SAFE_INTEGER ? 'Number.MAX_SAFE_INTEGER' : max}, got ${show(value)}`,
    );
  }
}

function assertNumber(where: string, option: string, value: unknown, min: number, max: number) {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new GaugeConfigError(
      `${where}: option "${option}" must be a number of milliseconds from ${min} to ${max}, got ${show(value)}`,
    );
  }
}

function rejectUnknownKeys(where: string, value: object, known: Set<string>, prefix: string) {
  for (const key of Object.keys(value)) {
    if (!known.has(key)) {
      const allowed = [...known].map((k) => prefix + k).join(', ');
      throw new GaugeConfigError(`${where}: unknown option "${prefix}${key}" (known: ${allowed})`);
    }
  }
}

/** An object that is not an array: arrays would pass `typeof` and silently mean "no options". */
function isRecord(value: unknown): value is object {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
