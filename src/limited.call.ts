import type { ExecutionContext } from '@nestjs/common';
import { GaugeAbortedError } from './core/gauge.errors';
import type { PriorityLevel } from './core/priority/priority.level';
import { acquireAt, priorityOf } from './priority.resolver';
import { partitionKeyOf } from './partition.resolver';
import type { AcquireOptions, Release } from './core/gauge.interface';
import type { OutcomeClassifier } from './core/outcome';
import { isGone, watchGone, type ClientConnection } from './client-connection.util';
import { withdrawRetryAfter } from './refusal.factory';
import { settleRun, type RunContext } from './run-settlement.util';
import { attachToRequest } from './limited-run.link';
import type { LimitedRoute } from './limited-route.interface';
import {
  awaitingCall,
  awaitRun,
  chainCall,
  closeOn,
  openOn,
  runCall,
  stopAwaitingRun,
} from './limited-calls.registry';
import { openWorkSignal } from './work-signal.util';

/** Turns a gauge error into the error this call's context should see (see `refusalError`). */
export type Refuser = (error: unknown, call: LimitedCall) => unknown;

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
 * the chain completes, fails or is unsubscribed; `pending` lists what must happen when it does.
 * How a run finds its call is `limited-calls.registry`'s business.
 */
export class LimitedCall implements RunContext {
  private spare: Release | undefined;
  private open = true;
  private pending: Set<() => void> | undefined;
  private work: AbortSignal | undefined;
  /** A run of this call was refused (and its `Retry-After` set) while the chain goes on. */
  private runRefused = false;
  /** Decided once per call, on first use; `null` until then. */
  private level: PriorityLevel | undefined | null = null;
  /** Decided once per call, on first use; `null` until then. */
  private partitionKey: string | undefined | null = null;

  constructor(
    readonly route: LimitedRoute,
    readonly context: ExecutionContext,
    readonly connection: ClientConnection | undefined,
    private readonly refuse: Refuser,
  ) {
    openOn(context, this);
    if (route.linked) attachToRequest(context.getArgByIndex<object>(0), this);
  }

  /** This call's priority (every run of it acquires at it); undefined when the route has none. */
  get priority(): PriorityLevel | undefined {
    if (this.level === null) {
      const { priority } = this.route;
      this.level = priority === undefined ? undefined : priorityOf(priority, this.context);
    }
    return this.level;
  }

  /** Whose call this is (every run of it acquires under it); undefined when the route has no key. */
  get key(): string | undefined {
    if (this.partitionKey === null) {
      const { partition } = this.route;
      this.partitionKey =
        partition === undefined ? undefined : partitionKeyOf(partition, this.context);
    }
    return this.partitionKey;
  }

  /**
   * What each run of this call acquires with: its priority and key, and `signal` when it may
   * wait. Without a key or a signal, a shared frozen object per level (nothing allocated).
   */
  acquireOptions(signal?: AbortSignal): AcquireOptions | undefined {
    const priority = this.priority;
    const key = this.key;
    if (key === undefined && signal === undefined) {
      return priority === undefined ? undefined : acquireAt(priority);
    }
    return { signal, priority, key };
  }

  /** Runs `fn` (which starts the chain) so that the handler's runs below find this call. */
  enter<T>(fn: () => T): T {
    return this.route.linked ? fn() : chainCall.run(this, fn);
  }

  /** The chain answers with a value: a refused run's `Retry-After` no longer applies. */
  answered(): void {
    if (!this.runRefused) return;
    this.runRefused = false;
    withdrawRetryAfter(this.context);
  }

  /** Whether the chain still runs (not completed, failed or unsubscribed). */
  get isOpen(): boolean {
    return this.open;
  }

  get streamed(): boolean {
    return this.route.streamed;
  }

  get classify(): OutcomeClassifier {
    return this.route.gauge.classify;
  }

  /** The slot the interceptor took for this call, for the first run to claim. */
  hold(release: Release): void {
    if (!this.open) return release('ignored');
    this.spare = release;
    const runner = this.route.runner;
    if (runner !== undefined) awaitRun(runner, this);
  }

  /** The chain is over. A slot no run claimed goes back; runs still working keep theirs. */
  end(): void {
    if (!this.open) return;
    this.open = false;
    closeOn(this.context, this);
    this.takeSpare()?.('ignored'); // no run did any work in it: nothing to learn
    const pending = this.pending;
    this.pending = undefined;
    if (pending !== undefined) for (const settle of pending) settle();
  }

  onEnd(settle: () => void): void {
    (this.pending ??= new Set()).add(settle);
  }

  offEnd(settle: () => void): void {
    this.pending?.delete(settle);
  }

  /**
   * The signal a handler asks for with `@WorkSignal()` (see `openWorkSignal`): it fires when its
   * work is no longer wanted. Built on first use only.
   */
  get workSignal(): AbortSignal {
    return (this.work ??= openWorkSignal(this, this.spare));
  }

  /**
   * One run of the handler: `invoke` calls it. Runs in a slot — this call's, another waiting
   * call's, or a new one — and returns what the handler returned, tied so that the slot goes back
   * when its work ends. While the chain runs, a run whose client has gone does not start. A run
   * after the chain ended (a background refresh) is work like any other: it takes a slot.
   * Called by the registry's dispatch (`invokeRun`, `invokeLinkedRun`) only.
   */
  run(invoke: () => unknown): unknown {
    if (this.open && isGone(this.connection)) return this.refused(this.abortedError());
    const slot = this.takeSpare() ?? (this.open ? undefined : this.borrowSpare());
    if (slot !== undefined) return this.perform(invoke, slot);
    const { gauge } = this.route;
    if (!gauge.mayWait) {
      let release: Release;
      try {
        release = gauge.acquire(this.acquireOptions()) as Release;
      } catch (error) {
        return this.refused(error);
      }
      return this.perform(invoke, release);
    }
    return this.queueThenPerform(invoke);
  }

  private takeSpare(): Release | undefined {
    const spare = this.spare;
    if (spare === undefined) return undefined;
    this.spare = undefined;
    const runner = this.route.runner;
    if (runner !== undefined) stopAwaitingRun(runner, this);
    return spare;
  }

  private borrowSpare(): Release | undefined {
    const runner = this.route.runner;
    if (runner === undefined) return undefined;
    return awaitingCall(runner)?.takeSpare();
  }

  /** A run that gets no slot fails with the refusal of its context. */
  private refused(error: unknown): unknown {
    this.runRefused = true;
    const refusal = this.refuse(error, this);
    if (refusal instanceof Promise) {
      return refusal.then((translated) => {
        throw translated;
      });
    }
    throw refusal;
  }

  private abortedError(): GaugeAbortedError {
    return new GaugeAbortedError(this.route.gauge.name);
  }

  /** A further run on a gauge that may wait: queues, leaving if the chain ends or the client goes. */
  private async queueThenPerform(invoke: () => unknown): Promise<unknown> {
    const waitingFor = new AbortController();
    const abort = () => waitingFor.abort();
    const chainRuns = this.open;
    if (chainRuns) this.onEnd(abort);
    const unwatch = chainRuns && this.connection ? watchGone(this.connection, abort) : undefined;
    let release: Release;
    try {
      release = await this.route.gauge.acquire(this.acquireOptions(waitingFor.signal));
    } catch (error) {
      return this.refused(error);
    } finally {
      unwatch?.();
      this.offEnd(abort);
    }
    if (waitingFor.signal.aborted) {
      release('ignored');
      return this.refused(this.abortedError());
    }
    return this.perform(invoke, release);
  }

  private perform(invoke: () => unknown, release: Release): unknown {
    let result: unknown;
    try {
      result = this.route.linked ? invoke() : runCall.run(this, invoke);
    } catch (error) {
      release(this.classify(error));
      throw error;
    }
    return settleRun(result, release, this);
  }
}
