import type { GaugeEvents, Outcome } from './gauge-events';
import type { OutcomeClassifier } from './outcome';
import type { PriorityLevel } from './priority/priority.level';

/**
 * Gives a slot back, saying how its work ended (default `succeeded`) so the gauge's limit policy
 * can learn from it. Idempotent: calling it again is harmless, so `finally` blocks and
 * belt-and-braces cleanup cannot free a slot twice.
 */
export type Release = (outcome?: Outcome) => void;

/** How a caller asks for a slot. One object, so what comes next (a priority, a key) fits in. */
export interface AcquireOptions {
  /** Leave the queue (rejecting with `GaugeAbortedError`) when this fires before a slot is free. */
  readonly signal?: AbortSignal | undefined;
  /**
   * How much this call matters under overload (default `normal`): a queue serves higher levels
   * first; a fail-fast gauge keeps room for higher levels, refusing lower ones (`shed-priority`).
   * A value that is not a level counts as `normal`.
   */
  readonly priority?: PriorityLevel | undefined;
  /**
   * Whose call this is (a tenant, a user, an API key, an IP): a gauge shares its slots fairly
   * between keys, refusing a key over its share first (`key-over-share`) and, in memory, serving
   * the others' waiters first (see the gauge option `partition`). A value that is not a string
   * counts as no key. A shared (Redis) gauge counts keys in Redis, across every instance.
   */
  readonly key?: string | undefined;
}

/** Read-only figures of a gauge, for health checks, metrics and tests. */
export interface GaugeStats {
  /** Slots this gauge hands out at most at once, right now. */
  readonly limit: number;
  /** Slots held right now (in this process, for a shared gauge). */
  readonly inFlight: number;
  /** Callers waiting for a slot right now. */
  readonly queued: number;
  /** Calls that got a slot, since start. */
  readonly admitted: number;
  /** Calls turned away at once (gauge full, or its queue full), since start. */
  readonly rejected: number;
  /** Calls that waited in the queue and gave up at the queue timeout, since start. */
  readonly timedOut: number;
  /** Calls whose AbortSignal fired while they waited, since start. */
  readonly aborted: number;
}

/**
 * What the Nest layer needs of any gauge, in memory or shared through a store. Lets the interceptor
 * and the registry stay ignorant of where slots are counted.
 */
export interface Gauge extends GaugeStats, GaugeEvents {
  /** The name it is registered and reported under. */
  readonly name: string;
  /** Hint for `Retry-After` when this gauge turns a caller away (whole seconds). */
  readonly retryAfterSeconds: number;
  /**
   * True when `acquire()` may return a promise (a queue, or a remote store). Lets callers skip
   * creating an AbortSignal on the fail-fast path.
   */
  readonly mayWait: boolean;
  /**
   * Where the gauge's shared store stands (`connecting`, `up`, `down`), for health checks; absent
   * for a gauge counted in this process (`PressureGauge`), which has no store to lose.
   */
  readonly storeState?: 'connecting' | 'up' | 'down';
  /** How an error the held work ended with is reported to the limit policy (see `classifyError`). */
  readonly classify: OutcomeClassifier;
  /**
   * Takes a slot. Returns the release handle synchronously when it can decide at once, a promise
   * when it must wait. Throws (or rejects with) `GaugeExhaustedError` when no slot is free in time,
   * `GaugeAbortedError` when the signal fires first. A caller that is never given a slot has
   * nothing to release.
   */
  acquire(options?: AcquireOptions): Release | Promise<Release>;
  /**
   * Runs `fn` in a slot and gives the slot back however `fn` ends (an error is reported as
   * `classify` says). `fn` may take an `AbortSignal` that fires when the work should stop: the
   * caller's `signal` fired, or the slot outlived the gauge's `maxHoldMs`. (It is built only for a
   * function that declares the parameter.)
   */
  process<T>(fn: (signal: AbortSignal) => T | PromiseLike<T>, options?: AcquireOptions): Promise<T>;
  /**
   * Sets a fixed gauge's limit at once: a raise hands the new slots to waiters, a cut never
   * revokes slots already held (they drain). Throws `GaugeConfigError` for a bad value, or for a
   * gauge whose limit a policy decides.
   */
  setLimit(limit: number): void | Promise<void>;
  /** Stops background work (timers, subscriptions). Pending waiters are rejected. */
  close?(): Promise<void> | void;
}
