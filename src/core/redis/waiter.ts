import type { Release } from '../gauge.interface';
import type { QueueNode } from '../wait-queue';

/**
 * A caller waiting in this instance for a global slot: a node of the core `WaitQueue`, plus the
 * promise callbacks and the abort listener to detach once it is settled.
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
