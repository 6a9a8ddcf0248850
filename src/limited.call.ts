import { AsyncLocalStorage } from 'node:async_hooks';
import type { ExecutionContext } from '@nestjs/common';
import { GaugeAbortedError } from './core/gauge.errors';
import { slotSignal } from './core/hold-watch';
import type { PriorityLevel } from './core/priority/priority.level';
import { acquireAt, priorityOf, type RoutePriority } from './priority.resolver';
import { partitionKeyOf, type PartitionResolver } from './partition.resolver';
import type { AcquireOptions, Gauge, Release } from './core/gauge.interface';
import type { OutcomeClassifier } from './core/outcome';
import { isGone, watchGone, type ClientConnection } from './client-connection.util';
import { withdrawRetryAfter } from './refusal.factory';
import { settleRun, type RunContext } from './run-settlement.util';
import { attachToRequest } from './limited-run.link';
import type { RefusalHook } from './refusal.hook';

/** What the interceptor knows of a limited handler, looked up once per handler. */
export interface LimitedRoute {
  readonly gauge: Gauge;
  /**
   * The function `@Limited` put in place of the handler, which reports each run of it to the call
   * it runs under; absent when the handler was not wrapped (then the call's own span holds).
   */
  readonly runner: object | undefined;
  /** An `@Sse()` handler: a refusal after its head went out ends the stream with an error event. */
  readonly streamed: boolean;
  /**
   * Every run of the handler receives its call as an argument (an HTTP route, see
   * `limited-run.link`), so the chain needs no `AsyncLocalStorage`.
   */
  readonly linked: boolean;
  /** Where its calls' priority comes from (`@Priority`, the gauge's resolver); absent: `normal`. */
  readonly priority?: RoutePriority | undefined;
  /** The gauge's `onRefusal` hook (its own, else the module's); absent: default refusals. */
  readonly onRefusal?: RefusalHook | undefined;
  /** Whose call it is, for a gauge that shares its slots by key; absent: no key. */
  readonly partition?: PartitionResolver | undefined;
}

/** Turns a gauge error into the error this call's context should see (see `refusalError`). */
export type Refuser = (error: unknown, call: LimitedCall) => unknown;

/** The call whose handler chain is running in this async context. */
const current = new AsyncLocalStorage<LimitedCall>();
/** The call whose handler's own run this code is part of (a recursive call is not another run). */
const inside = new AsyncLocalStorage<LimitedCall>();
/**
 * The open call of each execution context: a second copy of the interceptor on the same call
 * (class and method level, or global too) finds it here, whatever async context it runs in.
 */
const byContext = new WeakMap<ExecutionContext, LimitedCall>();
/** Calls holding the slot taken for them and not yet claimed by a run, by handler. */
const waiting = new WeakMap<object, Set<LimitedCall>>();

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
 */
export class LimitedCall implements RunContext {
  private spare: Release | undefined;
  private open = true;
  private pending: Set<() => void> | undefined;
  private work: AbortController | undefined;
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
    byContext.set(context, this);
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

  /** The open call that already holds `context`, if another copy of the interceptor made one. */
  static holding(context: ExecutionContext): LimitedCall | undefined {
    const call = byContext.get(context);
    return call?.open ? call : undefined;
  }

  /** The call of the chain this code runs in, if any. */
  static current(): LimitedCall | undefined {
    return current.getStore();
  }

  /**
   * Reports one invocation of the handler `runner` (the `@Limited` wrapper) that Nest made with
   * `call` as its linked argument: a run of that call, in a slot.
   */
  static invokeLinked(call: LimitedCall, runner: object, invoke: () => unknown): unknown {
    if (call.route.runner !== runner) return invoke(); // not this call's handler
    return call.run(invoke);
  }

  /**
   * Reports one invocation of the handler `runner` (the `@Limited` wrapper) and runs it by
   * `invoke`: in a slot when it is a run of a limited call, as is otherwise. Without a call in
   * the async context, it is the run of a call still waiting for one, unless `orphans` is false.
   */
  static invoke(runner: object, invoke: () => unknown, orphans = true): unknown {
    const call = current.getStore();
    if (call !== undefined) {
      if (call.route.runner !== runner) return invoke(); // a helper called from another handler
      if (inside.getStore() === call) return invoke(); // the handler calling itself: same run
      return call.run(invoke);
    }
    if (!orphans) return invoke();
    // No call in this context (an interceptor that started the chain from a timer or another
    // event): the run belongs to a call of this handler still waiting for it. Slots of one gauge
    // are interchangeable, so any such call's slot is the right one.
    for (const orphan of waiting.get(runner) ?? []) return orphan.run(invoke);
    return invoke(); // not through a limited call at all (a unit test calling the method)
  }

  /** Runs `fn` (which starts the chain) so that the handler's runs below find this call. */
  enter<T>(fn: () => T): T {
    return this.route.linked ? fn() : current.run(this, fn);
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
    if (runner === undefined) return;
    let calls = waiting.get(runner);
    if (calls === undefined) waiting.set(runner, (calls = new Set()));
    calls.add(this);
  }

  /** The chain is over. A slot no run claimed goes back; runs still working keep theirs. */
  end(): void {
    if (!this.open) return;
    this.open = false;
    if (byContext.get(this.context) === this) byContext.delete(this.context);
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
    if (!this.open) stop(new ChainEndedError());
    else if (isGone(this.connection)) stop(new ClientGoneError());
    else this.onEnd(() => stop(new ChainEndedError()));
    const overdue = this.spare === undefined ? undefined : slotSignal(this.spare);
    if (overdue?.aborted) stop(overdue.reason);
    else overdue?.addEventListener('abort', () => stop(overdue.reason), { once: true });
    return work.signal;
  }

  /**
   * One run of the handler: `invoke` calls it. Runs in a slot — this call's, another waiting
   * call's, or a new one — and returns what the handler returned, tied so that the slot goes back
   * when its work ends. While the chain runs, a run whose client has gone does not start. A run
   * after the chain ended (a background refresh) is work like any other: it takes a slot.
   */
  private run(invoke: () => unknown): unknown {
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
    if (runner !== undefined) waiting.get(runner)?.delete(this);
    return spare;
  }

  private borrowSpare(): Release | undefined {
    const runner = this.route.runner;
    if (runner === undefined) return undefined;
    for (const call of waiting.get(runner) ?? []) return call.takeSpare();
    return undefined;
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
      result = this.route.linked ? invoke() : inside.run(this, invoke);
    } catch (error) {
      release(this.classify(error));
      throw error;
    }
    return settleRun(result, release, this);
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
