import {
  MemoryGaugeStore,
  type AcquireOptions,
  type Gauge,
  type GaugeListener,
  type Outcome,
  type GaugeStore,
  type Release,
  type ResolvedGaugeOptions,
} from '../../../src';

/**
 * An in-memory gauge that counts every call of the release handles it gave out, including calls
 * the (idempotent) lease would ignore: "released exactly once" means `releaseCalls === admitted`.
 */
export class CountingGauge implements Gauge {
  releaseCalls = 0;
  /** How each release said its work ended, in order (absent outcome = `succeeded`). */
  readonly outcomes: Outcome[] = [];

  constructor(private readonly inner: Gauge) {}

  get name() {
    return this.inner.name;
  }
  get limit() {
    return this.inner.limit;
  }
  get retryAfterSeconds() {
    return this.inner.retryAfterSeconds;
  }
  get mayWait() {
    return this.inner.mayWait;
  }
  get inFlight() {
    return this.inner.inFlight;
  }
  get queued() {
    return this.inner.queued;
  }
  get admitted() {
    return this.inner.admitted;
  }
  get rejected() {
    return this.inner.rejected;
  }
  get timedOut() {
    return this.inner.timedOut;
  }
  get aborted() {
    return this.inner.aborted;
  }

  get classify() {
    return this.inner.classify;
  }

  acquire(options?: AcquireOptions): Release | Promise<Release> {
    const slot = this.inner.acquire(options);
    return typeof slot === 'function' ? this.count(slot) : slot.then((r) => this.count(r));
  }

  process<T>(
    fn: (signal: AbortSignal) => T | PromiseLike<T>,
    options?: AcquireOptions,
  ): Promise<T> {
    return this.inner.process(fn, options);
  }

  setLimit(limit: number): void | Promise<void> {
    return this.inner.setLimit(limit);
  }

  subscribe(listener: GaugeListener): () => void {
    return this.inner.subscribe(listener);
  }

  private count(release: Release): Release {
    return (outcome?: Outcome) => {
      this.releaseCalls++;
      this.outcomes.push(outcome ?? 'succeeded');
      release(outcome);
    };
  }
}

/** Builds `CountingGauge`s, to pass as the module's `store`. */
export class CountingStore implements GaugeStore {
  private readonly memory = new MemoryGaugeStore();

  createGauge(options: ResolvedGaugeOptions): CountingGauge {
    return new CountingGauge(this.memory.createGauge(options));
  }
}
