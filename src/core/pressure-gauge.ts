import { GaugeAbortedError, GaugeExhaustedError } from './gauge.errors';
import type { Gauge, Release } from './gauge.interface';
import { resolveGaugeOptions, type GaugeOptions, type ResolvedGaugeOptions } from './gauge-options';
import { WaitList } from './wait-list';

/**
 * An in-process counting semaphore: at most `limit` callers hold a slot at once. The rest are
 * rejected at once (fail fast) or wait in a bounded FIFO queue for at most the queue timeout.
 *
 * A freed slot goes straight to the oldest waiter (hand-off), so a newcomer can never barge past
 * the queue, and a waiter that timed out or aborted has already left the queue and is never served.
 * Everything is synchronous on the happy path: no promise, timer or signal unless a caller waits.
 */
export class PressureGauge implements Gauge {
  readonly name: string;
  readonly limit: number;
  readonly retryAfterSeconds: number;
  readonly mayWait: boolean;
  admitted = 0;
  rejected = 0;

  private active = 0;
  /** Slots on offer: `limit` until `close()`, then 0, so the hot path needs no extra check. */
  private capacity: number;
  private queueSize: number;
  private readonly waiters: WaitList;

  /** Takes either raw options (validated here) or options the module already resolved. */
  constructor(options: ResolvedGaugeOptions | (GaugeOptions & { name: string })) {
    const resolved = isResolved(options) ? options : resolveRaw(options);
    this.name = resolved.name;
    this.limit = resolved.limit;
    this.capacity = resolved.limit;
    this.retryAfterSeconds = resolved.retryAfterSeconds;
    this.queueSize = resolved.queueSize;
    this.mayWait = resolved.queueSize > 0;
    this.waiters = new WaitList(this.name, this.retryAfterSeconds, resolved.queueTimeoutMs);
  }

  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiters.length;
  }

  get timedOut(): number {
    return this.waiters.timedOut;
  }

  get aborted(): number {
    return this.waiters.aborted;
  }

  /**
   * Takes a slot only if one is free right now, without waiting or queueing. A miss counts as a
   * rejection, since the caller was turned away.
   */
  tryAcquire(): Release | undefined {
    if (this.active < this.capacity && this.waiters.length === 0) return this.grant();
    this.rejected++;
    return undefined;
  }

  acquire(signal?: AbortSignal): Release | Promise<Release> {
    if (signal?.aborted) {
      this.waiters.aborted++;
      throw new GaugeAbortedError(this.name);
    }
    if (this.active < this.capacity && this.waiters.length === 0) return this.grant();
    if (this.waiters.length >= this.queueSize) {
      this.rejected++;
      throw GaugeExhaustedError.withoutStack(
        this.name,
        this.queueSize === 0 ? 'full' : 'queue-full',
        this.retryAfterSeconds,
      );
    }
    return this.waiters.add(signal);
  }

  process<T>(fn: () => T | PromiseLike<T>, signal?: AbortSignal): Promise<T> {
    let slot: Release | Promise<Release>;
    try {
      slot = this.acquire(signal);
    } catch (error) {
      return Promise.reject(error);
    }
    if (typeof slot === 'function') return runInSlot(fn, slot);
    return slot.then((release) => callInSlot(fn, release));
  }

  /**
   * Shuts the gauge: every waiter and every later caller is refused as if the gauge were full
   * (`queue-full` for waiters, `full` afterwards); holders still release normally.
   */
  close(): void {
    this.capacity = 0;
    this.queueSize = 0;
    for (const waiter of this.waiters.takeAll()) {
      this.rejected++;
      waiter.reject(
        GaugeExhaustedError.withoutStack(this.name, 'queue-full', this.retryAfterSeconds),
      );
    }
  }

  private grant(): Release {
    this.active++;
    this.admitted++;
    return this.lease();
  }

  /** A release handle that frees its slot once, however often it is called. */
  private lease(): Release {
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.handOff();
    };
  }

  /** A freed slot goes to the oldest waiter if there is one; only otherwise does `inFlight` drop. */
  private handOff(): void {
    const waiter = this.waiters.shift();
    if (waiter === undefined) {
      this.active--;
      return;
    }
    this.admitted++;
    waiter.resolve(this.lease());
  }
}

function isResolved(options: object): options is ResolvedGaugeOptions {
  return 'queueSize' in options && 'queueTimeoutMs' in options;
}

/** Validates raw options with every key the caller gave, so a typo such as `limt` is refused. */
function resolveRaw({ name, ...options }: GaugeOptions & { name: string }): ResolvedGaugeOptions {
  return resolveGaugeOptions(name, options);
}

/** Runs `fn` and releases exactly once, whether it returns, throws, resolves or rejects. */
function runInSlot<T>(fn: () => T | PromiseLike<T>, release: Release): Promise<T> {
  try {
    return Promise.resolve(callInSlot(fn, release));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * `runInSlot` for a caller that is already in a promise callback: a plain value is returned as is,
 * so the caller's promise does not have to adopt another promise (two extra microtask turns per
 * queued waiter).
 */
function callInSlot<T>(fn: () => T | PromiseLike<T>, release: Release): T | Promise<T> {
  let result: T | PromiseLike<T>;
  try {
    result = fn();
  } catch (error) {
    release();
    throw error;
  }
  if (!isPromiseLike(result)) {
    release();
    return result;
  }
  return Promise.resolve(result).then(
    (value) => {
      release();
      return value;
    },
    (error: unknown) => {
      release();
      throw error;
    },
  );
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | null)?.then === 'function';
}
