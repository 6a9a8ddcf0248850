/** A queue entry; the queue links entries through these fields so enqueue, dequeue and removal are O(1). */
export interface QueueNode {
  prev: QueueNode | undefined;
  next: QueueNode | undefined;
  /** `performance.now()` at which the entry times out. */
  deadline: number;
  /** True while linked; guards against removing an entry twice. */
  queued: boolean;
}

/**
 * A FIFO of waiters with one shared deadline timer instead of a timer per waiter. Entries stay in
 * arrival order; `pop()` takes the newest for a LIFO discipline without changing that order.
 *
 * Every entry waits the same `timeoutMs`, so deadlines grow from head to tail and the head always
 * expires first: one timer armed for the head is enough. The timer is cleared as soon as the queue
 * empties, so a settled waiter never leaves a timer behind. Entries are intrusively linked (no
 * `Array#shift`), which also makes removing an aborted waiter from the middle O(1).
 */
export class WaitQueue<N extends QueueNode> {
  private head: N | undefined;
  private tail: N | undefined;
  private count = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly timeoutMs: number,
    /** Called for each entry whose deadline passed; the entry is already unlinked. */
    private readonly onExpire: (node: N) => void,
  ) {}

  get length(): number {
    return this.count;
  }

  /** Appends `node` and starts the deadline timer if none is running. */
  push(node: N): void {
    const now = performance.now();
    node.deadline = now + this.timeoutMs;
    node.prev = this.tail;
    node.next = undefined;
    node.queued = true;
    if (this.tail) this.tail.next = node;
    else this.head = node;
    this.tail = node;
    this.count++;
    if (this.timer === undefined) this.arm(this.timeoutMs);
  }

  /** Takes the oldest entry, or `undefined` when empty. */
  shift(): N | undefined {
    const node = this.head;
    if (node) this.unlink(node);
    return node;
  }

  /** Takes the newest entry (for LIFO service), or `undefined` when empty. */
  pop(): N | undefined {
    const node = this.tail;
    if (node) this.unlink(node);
    return node;
  }

  /** The oldest entry, left in place. */
  get oldest(): N | undefined {
    return this.head;
  }

  /** The newest entry, left in place. */
  get newest(): N | undefined {
    return this.tail;
  }

  /** Removes `node` wherever it is; false when it was no longer queued. */
  remove(node: N): boolean {
    if (!node.queued) return false;
    this.unlink(node);
    return true;
  }

  /** Unlinks every entry and stops the timer; returns them oldest first (for shutdown). */
  drain(): N[] {
    const all: N[] = [];
    for (let node = this.shift(); node; node = this.shift()) all.push(node);
    return all;
  }

  private unlink(node: N): void {
    const { prev, next } = node;
    if (prev) prev.next = next;
    else this.head = next as N | undefined;
    if (next) next.prev = prev;
    else this.tail = prev as N | undefined;
    node.prev = node.next = undefined;
    node.queued = false;
    if (--this.count === 0) this.disarm();
  }

  private arm(delayMs: number): void {
    this.timer = setTimeout(this.sweep, Math.max(1, Math.ceil(delayMs)));
  }

  private disarm(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /**
   * Expires, oldest first, every entry whose deadline is at or before `now`. The timer may fire
   * late (it is rounded up to whole milliseconds and waits its turn in the event loop), so a
   * hand-off calls this first: no entry is ever served past its deadline.
   */
  expireDue(now: number): void {
    while (this.head && this.head.deadline <= now) {
      const node = this.head;
      this.unlink(node);
      this.onExpire(node);
    }
  }

  private readonly sweep = (): void => {
    this.timer = undefined;
    const now = performance.now();
    this.expireDue(now);
    if (this.head && this.timer === undefined) this.arm(this.head.deadline - now);
  };
}
