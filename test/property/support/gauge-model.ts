import type { Release } from '../../../src';

/*
 * The model the core property checks a PressureGauge against: what a gauge should do, written as
 * plainly as possible.
 */

/** What a `process()` caller's function does once it has a slot. */
export type ProcKind = 'sync-ok' | 'sync-throw' | 'async-ok' | 'async-reject' | 'pending';
/** How the model expects a caller to end: granted a slot, or refused and why. */
export type Expected = 'granted' | 'missed' | 'full' | 'queue-full' | 'timeout' | 'aborted';

/** One call into the gauge: what the model expects of it and what the gauge actually did. */
export interface Caller {
  readonly id: number;
  readonly kind: 'hold' | ProcKind;
  readonly controller?: AbortController | undefined;
  readonly error: Error;
  // model
  state: 'queued' | 'holding' | 'done' | 'refused';
  expected?: Expected;
  deadline: number;
  waited: boolean;
  fails: boolean;
  // observed
  granted: boolean;
  release?: Release | undefined;
  work?: { resolve(value: unknown): void; reject(error: unknown): void };
  thrown?: unknown;
  settled?: { ok: boolean; value?: unknown; error?: unknown };
  /** Reached its final state and was checked; nothing about it may change any more. */
  verified?: boolean;
}

/** What a gauge should do, written as plainly as possible: a counter and an array. */
export class GaugeModel {
  inFlight = 0;
  readonly queue: Caller[] = [];
  admitted = 0;
  rejected = 0;
  timedOut = 0;
  aborted = 0;
  /** Callers handed a freed slot after waiting, in hand-off order (must be FIFO). */
  readonly handOffs: number[] = [];
  private readonly autos: Caller[] = [];

  constructor(
    readonly limit: number,
    readonly queueSize: number,
    readonly timeoutMs: number,
  ) {}

  admit(c: Caller): void {
    if (this.inFlight < this.limit && this.queue.length === 0) {
      this.inFlight++;
      this.grant(c);
    } else if (this.queue.length >= this.queueSize) {
      this.rejected++;
      c.state = 'refused';
      c.expected = this.queueSize === 0 ? 'full' : 'queue-full';
    } else {
      c.state = 'queued';
      c.waited = true;
      c.deadline = performance.now() + this.timeoutMs;
      this.queue.push(c);
    }
  }

  tryAdmit(c: Caller): void {
    if (this.inFlight < this.limit && this.queue.length === 0) {
      this.inFlight++;
      this.grant(c);
    } else {
      this.rejected++;
      c.state = 'refused';
      c.expected = 'missed';
    }
  }

  finish(c: Caller): void {
    c.state = 'done';
    const next = this.queue.shift();
    if (next) this.grant(next);
    else this.inFlight--;
  }

  /** A process() fn that returns synchronously gives its slot back within the process() call. */
  finishNow(c: Caller): void {
    this.autos.splice(this.autos.indexOf(c), 1);
    this.finish(c);
  }

  /** A process() fn whose promise was just settled gives its slot back once promises have run. */
  finishLater(c: Caller): void {
    c.state = 'done';
    this.autos.push(c);
  }

  /** process() callers whose fn ends by itself give their slot back once promises have run. */
  settleAutos(): void {
    for (let c = this.autos.shift(); c; c = this.autos.shift()) this.finish(c);
  }

  abort(c: Caller): void {
    const at = this.queue.indexOf(c);
    if (at < 0) return;
    this.queue.splice(at, 1);
    this.aborted++;
    c.state = 'refused';
    c.expected = 'aborted';
  }

  expire(now: number): void {
    while (this.queue.length > 0 && this.queue[0]!.deadline <= now) {
      const c = this.queue.shift()!;
      this.timedOut++;
      c.state = 'refused';
      c.expected = 'timeout';
    }
  }

  private grant(c: Caller): void {
    c.state = 'holding';
    c.expected = 'granted';
    this.admitted++;
    if (c.waited) this.handOffs.push(c.id);
    if (c.kind !== 'hold' && c.kind !== 'pending') this.autos.push(c);
  }
}
