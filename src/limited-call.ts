import { AsyncLocalStorage } from 'node:async_hooks';
import { StreamableFile, type ExecutionContext } from '@nestjs/common';
import { isObservable, Observable } from 'rxjs';
import { GaugeAbortedError } from './core/gauge.errors';
import { slotSignal } from './core/hold-watch';
import type { Outcome } from './core/gauge-events';
import type { Gauge, Release } from './core/gauge.interface';
import {
  discardUnsent,
  isGone,
  releaseWhenSent,
  watchGone,
  type ClientConnection,
} from './client-connection';

/** What the interceptor knows of a limited handler, looked up once per handler. */
export interface LimitedRoute {
  readonly gauge: Gauge;
  /**
   * The function `@Limited` put in place of the handler, which reports each run of it to the call
   * it runs under; absent when the handler was not wrapped (then the call's own span holds).
   */
  readonly runner: unknown;
  /** An `@Sse()` handler: a refusal after its head went out ends the stream with an error event. */
  readonly streamed: boolean;
}

/** Turns a gauge error into the error this call's context should see (see `refusalError`). */
export type Refuser = (error: unknown, call: LimitedCall) => unknown;

/** The call whose handler chain is running in this async context. */
const current = new AsyncLocalStorage<LimitedCall>();

/**
 * One subscription of a limited handler's chain: the interceptors inside `@Limited`, the pipes and
 * the handler's runs. The interceptor takes a slot before the chain starts and hands it to the
 * chain's first handler run; from then on the run owns it, and gives it back only when its own
 * work ends — the promise settles, the returned Observable finalizes, the file is sent — whatever
 * an interceptor does with the chain meanwhile (time it out, catch, race or drop it). A handler
 * invoked again in the same chain (an inner `retry`) takes a slot of its own. A slot no run
 * claimed (a cache hit, a failed pipe) goes back when the chain ends.
 *
 * States, read top to bottom: `spare` holds the slot until a run claims it; `open` is true until
 * the chain completes, fails or is unsubscribed; `pending` lists what must go back when it does
 * (the spare slot, Observables a run returned that nobody subscribed yet, runs still queueing).
 */
export class LimitedCall {
  private spare: Release | undefined;
  private open = true;
  private pending: Set<() => void> | undefined;
  private work: AbortController | undefined;

  constructor(
    readonly route: LimitedRoute,
    readonly context: ExecutionContext,
    readonly connection: ClientConnection | undefined,
    private readonly refuse: Refuser,
  ) {}

  /** The call of the chain this code runs in, if any. */
  static current(): LimitedCall | undefined {
    return current.getStore();
  }

  /** Runs `fn` (which starts the chain) so that the handler's runs below find this call. */
  enter<T>(fn: () => T): T {
    return current.run(this, fn);
  }

  /** Whether the chain still runs (not completed, failed or unsubscribed). */
  get isOpen(): boolean {
    return this.open;
  }

  /** The slot the interceptor took for this call, for the first run to claim. */
  hold(release: Release): void {
    if (this.open) this.spare = release;
    else release('ignored');
  }

  /** The chain is over. A slot no run claimed goes back; runs still working keep theirs. */
  end(): void {
    if (!this.open) return;
    this.open = false;
    const spare = this.spare;
    this.spare = undefined;
    spare?.('ignored'); // no run did any work in it: nothing to learn
    const pending = this.pending;
    this.pending = undefined;
    if (pending !== undefined) for (const settle of pending) settle();
  }

  /**
   * The signal a handler asks for with `@WorkSignal()`: it fires when its work is no longer wanted
   * — the client left, the chain ended first (a `timeout` answered), or the slot outlived the
   * gauge's `maxHoldMs`. Built on first use only.
   */
  get workSignal(): AbortSignal {
    if (this.work !== undefined) return this.work.signal;
    const work = (this.work = new AbortController());
    const stop = (reason: unknown) => {
      if (!work.signal.aborted) work.abort(reason);
    };
    const unwatch = this.connection
      ? watchGone(this.connection, () => stop(new ClientGoneError()))
      : undefined;
    // Every path ends here at the latest: the watch of a kept-alive socket never outlives the call.
    work.signal.addEventListener('abort', () => unwatch?.(), { once: true });
    if (!this.open || isGone(this.connection)) stop(new ClientGoneError());
    else this.onEnd(() => stop(new ChainEndedError()));
    const overdue = this.spare === undefined ? undefined : slotSignal(this.spare);
    if (overdue?.aborted) stop(overdue.reason);
    else overdue?.addEventListener('abort', () => stop(overdue.reason), { once: true });
    return work.signal;
  }

  /** Whether `runner` is this call's handler (not a helper method called from inside it). */
  runs(runner: unknown): boolean {
    return runner === this.route.runner;
  }

  /**
   * One run of the handler: `invoke` calls it. Runs in a slot — the spare one, or a new one —
   * and returns what the handler returned, tied so that the slot goes back when its work ends.
   * A run that would start after the chain ended or the client left does not start.
   */
  run(invoke: () => unknown): unknown {
    if (!this.open || isGone(this.connection)) return this.refused(this.abortedError());
    const spare = this.spare;
    if (spare !== undefined) {
      this.spare = undefined;
      return this.perform(invoke, spare);
    }
    const { gauge } = this.route;
    if (!gauge.mayWait) {
      let release: Release;
      try {
        release = gauge.acquire() as Release;
      } catch (error) {
        return this.refused(error);
      }
      return this.perform(invoke, release);
    }
    return this.queueThenPerform(invoke);
  }

  /** A run that gets no slot fails with the refusal of its context (the handler's promise rejects). */
  private async refused(error: unknown): Promise<never> {
    throw await this.refuse(error, this);
  }

  private abortedError(): GaugeAbortedError {
    return new GaugeAbortedError(this.route.gauge.name);
  }

  /** A further run on a gauge that may wait: queues, leaving if the chain ends or the client goes. */
  private async queueThenPerform(invoke: () => unknown): Promise<unknown> {
    const waiting = new AbortController();
    const abort = () => waiting.abort();
    this.onEnd(abort);
    const unwatch = this.connection ? watchGone(this.connection, abort) : undefined;
    let release: Release;
    try {
      release = await this.route.gauge.acquire({ signal: waiting.signal });
    } catch (error) {
      return this.refused(error);
    } finally {
      unwatch?.();
      this.pending?.delete(abort);
    }
    if (waiting.signal.aborted || !this.open) {
      release('ignored');
      return this.refused(this.abortedError());
    }
    return this.perform(invoke, release);
  }

  private perform(invoke: () => unknown, release: Release): unknown {
    let result: unknown;
    try {
      result = invoke();
    } catch (error) {
      release(this.route.gauge.classify(error));
      throw error;
    }
    return this.settle(result, release);
  }

  /**
   * Ties `release` to the end of the work `result` stands for, and returns what Nest gets. The
   * outcome the slot is given back with: a value is `succeeded`; an error is what the gauge's
   * `classify` says; a file or an SSE stream is `ignored` (their duration is the client's).
   */
  private settle(result: unknown, release: Release): unknown {
    if (isObservable(result)) return this.observed(result, release);
    if (result instanceof StreamableFile) {
      if (this.open) releaseWhenSent(result, this.connection, () => release('ignored'));
      else {
        discardUnsent(result);
        release('ignored');
      }
      return result;
    }
    if (typeof (result as PromiseLike<unknown> | null | undefined)?.then === 'function') {
      return Promise.resolve(result).then(
        (value) => this.settle(value, release),
        (error: unknown) => {
          release(this.route.gauge.classify(error));
          throw error;
        },
      );
    }
    release('succeeded');
    return result;
  }

  /**
   * The run's work is its subscription: the slot goes back when the last subscriber finalizes
   * (completes, fails, or unsubscribes — a client gone, an inner `take`), or when the chain ends
   * without anyone having subscribed. Cut short, an Observable's work was abandoned (`dropped`);
   * an SSE stream's end is its client's choice (`ignored`).
   */
  private observed(source: Observable<unknown>, release: Release): Observable<unknown> {
    const cutShort: Outcome = this.route.streamed ? 'ignored' : 'dropped';
    if (!this.open) {
      release(cutShort);
      return source;
    }
    let subscribers = 0;
    const unsubscribed = () => release(cutShort);
    this.onEnd(unsubscribed);
    return new Observable((subscriber) => {
      this.pending?.delete(unsubscribed);
      subscribers++;
      let outcome: Outcome = cutShort;
      const inner = source.subscribe({
        next: (value) => subscriber.next(value),
        error: (error: unknown) => {
          outcome = this.route.gauge.classify(error);
          subscriber.error(error);
        },
        complete: () => {
          outcome = this.route.streamed ? 'ignored' : 'succeeded';
          subscriber.complete();
        },
      });
      return () => {
        inner.unsubscribe();
        if (--subscribers === 0) release(outcome);
      };
    });
  }

  private onEnd(settle: () => void): void {
    (this.pending ??= new Set()).add(settle);
  }
}

/** Why a handler's work signal fired: its client left before the work ended. */
export class ClientGoneError extends Error {
  override readonly name = 'AbortError';
  constructor() {
    super('The client left before the work ended');
  }
}

/** Why a handler's work signal fired: its chain ended first (an interceptor answered, e.g. a timeout). */
export class ChainEndedError extends Error {
  override readonly name = 'AbortError';
  constructor() {
    super('The request was answered before the work ended');
  }
}
