import type { LimitPolicyFactory } from './limit-policy';
import type { OutcomeClassifier } from './outcome';
import type { PartitionSettings } from './partition/key-partitions';
import type { ResolvedEventLoop } from './pressure/loop-pressure';
import type { QueueDiscipline } from './queue-discipline';
import type { StoreDownPolicy } from './store-down.policy';

/**
 * Options after validation and defaults: what a gauge is built from. Stores build gauges from this,
 * never from `GaugeOptions`, so that no store repeats a check or guesses a default.
 */
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
