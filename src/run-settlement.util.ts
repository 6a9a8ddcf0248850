import { StreamableFile } from '@nestjs/common';
import { isObservable, Observable } from 'rxjs';
import type { Outcome } from './core/gauge-events';
import type { Release } from './core/gauge.interface';
import type { OutcomeClassifier } from './core/outcome';
import { releaseWhenSent, type ClientConnection } from './client-connection.util';

/** What settling a run needs to know of its call. */
export interface RunContext {
  /** Whether the call's chain still runs (someone will consume what the run returns). */
  readonly isOpen: boolean;
  readonly connection: ClientConnection | undefined;
  /** An `@Sse()` handler: its stream's end is the client's choice. */
  readonly streamed: boolean;
  readonly classify: OutcomeClassifier;
  /** Registers what must happen when the call's chain ends (if it has not yet). */
  onEnd(settle: () => void): void;
  /** Unregisters it (it happened otherwise). */
  offEnd(settle: () => void): void;
}

/**
 * Ties `release` to the end of the work `result` stands for, and returns what Nest gets in its
 * place. The outcome the slot is given back with: a value is `succeeded`; an error is what the
 * gauge's `classify` says; a file or an SSE stream is `ignored` (their duration is the client's).
 */
export function settleRun(result: unknown, release: Release, run: RunContext): unknown {
  if (isObservable(result)) return observed(result, release, run);
  if (result instanceof StreamableFile) {
    // Nest destroys a file nobody will send; the response closing frees it too.
    releaseWhenSent(result, run.connection, () => release('ignored'));
    return result;
  }
  if (typeof (result as PromiseLike<unknown> | null | undefined)?.then === 'function') {
    return Promise.resolve(result).then(
      (value) => settleRun(value, release, run),
      (error: unknown) => {
        release(run.classify(error));
        throw error;
      },
    );
  }
  release('succeeded');
  return result;
}

/**
 * The run's work is its subscription: the slot goes back when the last subscriber finalizes
 * (completes, fails, or unsubscribes — a client gone, an inner `take`), or, when nobody subscribes,
 * as the chain ends (or on the next turn, if it has already ended). Cut short, an Observable's
 * work was abandoned (`dropped`); an SSE stream's end is its client's choice (`ignored`).
 */
function observed(
  source: Observable<unknown>,
  release: Release,
  run: RunContext,
): Observable<unknown> {
  const cutShort: Outcome = run.streamed ? 'ignored' : 'dropped';
  let subscribers = 0;
  let started = false;
  const unclaimed = () => {
    if (!started) release(cutShort);
  };
  if (run.isOpen) run.onEnd(unclaimed);
  else setImmediate(unclaimed); // a background subscriber (e.g. a cache refresh) may still come
  return new Observable((subscriber) => {
    started = true;
    run.offEnd(unclaimed);
    subscribers++;
    let outcome: Outcome = cutShort;
    const inner = source.subscribe({
      next: (value) => subscriber.next(value),
      error: (error: unknown) => {
        outcome = run.classify(error);
        subscriber.error(error);
      },
      complete: () => {
        outcome = run.streamed ? 'ignored' : 'succeeded';
        subscriber.complete();
      },
    });
    return () => {
      inner.unsubscribe();
      if (--subscribers === 0) release(outcome);
    };
  });
}
