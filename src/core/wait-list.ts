import { GaugeAbortedError, GaugeExhaustedError } from './gauge.errors';
import type { GaugeFigures } from './gauge-events';
import type { Release } from './gauge.interface';
import { WaitQueue, type QueueNode } from './wait-queue';

/**
 * A caller waiting for a slot: a node of the `WaitQueue`, plus the promise callbacks and the
 * abort listener to detach once it is settled.
 */
export class Waiter implements QueueNode {
  prev: QueueNode | undefined = undefined;
  next: QueueNode | undefined = undefined;
  deadline = 0;
  queued = false;
  onAbort: (() => void) | undefined = undefined;

  constructor(
    readonly resolve: (release: Release) => void,
    readonly reject: (error: Error) => void,
    readonly signal: AbortSignal | undefined,
  ) {}

  /** Detaches the abort listener so a settled waiter holds no reference from the signal. */
  settle(): void {
    if (this.onAbort) this.signal?.removeEventListener('abort', this.onAbort);
    this.onAbort = undefined;
  }
}

/**
 * The callers of one gauge waiting in this process, oldest first, on the `WaitQueue` (one deadline
 * timer, O(1) removal). Shared by the in-memory and Redis gauges so that timeouts and aborts behave
 * the same: a caller that times out or aborts is rejected here and has left the list before anyone
 * could hand it a slot.
 */
export class WaitList {
  private readonly queue: WaitQueue<Waiter>;

  constructor(
    /** Where timeouts, aborts and queueing are reported (and counted). */
    private readonly figures: GaugeFigures,
    private readonly retryAfterSeconds: number,
    private readonly timeoutMs: number,
  ) {
    this.queue = new WaitQueue<Waiter>(timeoutMs, this.expire);
  }

  /** How long `waiter` has waited, from the deadline the queue set (no extra clock read on push). */
  waitedMs(waiter: Waiter): number {
    return performance.now() - (waiter.deadline - this.timeoutMs);
  }

  get length(): number {
    return this.queue.length;
  }

  /** Joins the end of the list; settles when a slot is handed over, at the timeout, or on abort. */
  add(signal: AbortSignal | undefined): Promise<Release> {
    return new Promise<Release>((resolve, reject) => {
      const waiter = new Waiter(resolve, reject, signal);
      if (signal) {
        waiter.onAbort = () => this.abort(waiter);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
      this.figures.queue();
    });
  }

  /** The oldest waiter, out of the list and detached from its signal. */
  shift(): Waiter | undefined {
    const waiter = this.queue.shift();
    waiter?.settle();
    return waiter;
  }

  /** Every waiter, oldest first, out of the list (outage, shutdown). */
  takeAll(): Waiter[] {
    const all = this.queue.drain();
    for (const waiter of all) waiter.settle();
    return all;
  }

  private readonly expire = (waiter: Waiter): void => {
    waiter.settle();
    this.figures.timeOut(this.timeoutMs);
    waiter.reject(
      GaugeExhaustedError.withoutStack(this.figures.gauge, 'timeout', this.retryAfterSeconds),
    );
  };

  private abort(waiter: Waiter): void {
    if (!this.queue.remove(waiter)) return;
    waiter.settle();
    this.figures.abort(this.waitedMs(waiter));
    waiter.reject(new GaugeAbortedError(this.figures.gauge));
  }
}
