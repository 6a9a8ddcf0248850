/**
 * A simulated downstream dependency (a database pool, an API with a concurrency cap): it serves
 * `width` calls at a time, each taking `serviceMs`, and queues the rest FIFO without bound, as a
 * connection pool does. Deliberately not our gauge: it stands for the thing the gauge protects.
 */
export class Dependency {
  private busy = 0;
  private readonly waiting: Array<() => void> = [];
  private head = 0;

  constructor(
    private readonly width: number,
    private readonly serviceMs: number,
  ) {}

  /** Resolves once a call has been served (after waiting its turn, then `serviceMs`). */
  async call(): Promise<void> {
    if (this.busy < this.width) this.busy++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      await new Promise((resolve) => setTimeout(resolve, this.serviceMs));
    } finally {
      this.next();
    }
  }

  /** Calls waiting for their turn right now. */
  get backlog(): number {
    return this.waiting.length - this.head;
  }

  private next(): void {
    if (this.head < this.waiting.length) {
      const resolve = this.waiting[this.head++];
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting.splice(0, this.head);
        this.head = 0;
      }
      resolve(); // the slot passes straight to the oldest waiter
    } else {
      this.busy--;
    }
  }
}

/** Burns `ms` of CPU on the event loop, as JSON rendering or hashing would. */
export function burnCpu(ms: number): number {
  const until = performance.now() + ms;
  let spins = 0;
  while (performance.now() < until) spins++;
  return spins;
}
