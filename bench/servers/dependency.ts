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
    private width: number,
    private readonly serviceMs: number,
  ) {}

  /**
   * Changes how many calls are served at once, from now on (scenario 9's capacity shift): a wider
   * dependency starts waiting calls at once; a narrower one lets calls in service finish and
   * starts no waiting call until fewer than `width` are served.
   */
  setWidth(width: number): void {
    this.width = width;
    while (this.busy < this.width && this.head < this.waiting.length) {
      this.busy++;
      this.take()();
    }
  }

  /** Calls served at this moment. */
  get serving(): number {
    return this.busy;
  }

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
    if (this.busy <= this.width && this.head < this.waiting.length) {
      this.take()(); // the slot passes straight to the oldest waiter
    } else {
      this.busy--;
    }
  }

  private take(): () => void {
    const resolve = this.waiting[this.head];
    if (resolve === undefined) throw new Error('take(): no call is waiting'); // callers check first
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting.splice(0, this.head);
      this.head = 0;
    }
    return resolve;
  }
}

/** Burns `ms` of CPU on the event loop, as JSON rendering or hashing would. */
export function burnCpu(ms: number): number {
  const until = performance.now() + ms;
  let spins = 0;
  while (performance.now() < until) spins++;
  return spins;
}
