import { GaugeAbortedError, GaugeExhaustedError } from '../gauge.errors';
import type { Release } from '../gauge.interface';
import { WaitQueue } from '../wait-queue';
import { Waiter } from './waiter';

/**
 * The callers of one Redis gauge waiting in this instance, oldest first, on the core `WaitQueue`
 * (one deadline timer, O(1) removal): a caller that times out or aborts is rejected here exactly as
 * by the in-memory gauge, and has left the list before anyone could hand it a slot.
 */
export class LocalWaitList {
  timedOut = 0;
  aborted = 0;
  private readonly queue: WaitQueue<Waiter>;

  constructor(
    private readonly gauge: string,
    private readonly retryAfterSeconds: number,
    timeoutMs: number,
  ) {
    this.queue = new WaitQueue<Waiter>(timeoutMs, this.expire);
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
    this.timedOut++;
    waiter.reject(new GaugeExhaustedError(this.gauge, 'timeout', this.retryAfterSeconds));
  };

  private abort(waiter: Waiter): void {
    if (!this.queue.remove(waiter)) return;
    waiter.settle();
    this.aborted++;
    waiter.reject(new GaugeAbortedError(this.gauge));
  }
}
