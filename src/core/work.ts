import type { Release } from './gauge.interface';
import { slotSignal } from './hold-watch';
import type { OutcomeClassifier } from './outcome';

/** Work run in a slot; it may take the signal that says it should stop. */
export type Work<T> = (signal: AbortSignal) => T | PromiseLike<T>;

/** Never aborts: the signal of work that nothing can stop (no caller signal, no `maxHoldMs`). */
const NEVER = new AbortController().signal;

/**
 * Runs `work` in the slot `release` gives back, exactly once however it ends: a value is
 * `succeeded`, an error is what `classify` says. For a caller already in a promise callback a plain
 * value is returned as is, sparing the caller's promise the adoption of another one.
 */
export function runInSlot<T>(
  work: Work<T>,
  release: Release,
  classify: OutcomeClassifier,
  callerSignal: AbortSignal | undefined,
): Promise<T> {
  try {
    return Promise.resolve(callInSlot(work, release, classify, callerSignal));
  } catch (error) {
    return Promise.reject(error);
  }
}

function callInSlot<T>(
  work: Work<T>,
  release: Release,
  classify: OutcomeClassifier,
  callerSignal: AbortSignal | undefined,
): T | Promise<T> {
  let result: T | PromiseLike<T>;
  try {
    // The signal is built only for work that declares the parameter: most work never reads it.
    result = work.length === 0 ? (work as () => T)() : work(workSignal(release, callerSignal));
  } catch (error) {
    release(classify(error));
    throw error;
  }
  if (typeof (result as PromiseLike<T> | null | undefined)?.then !== 'function') {
    release('succeeded');
    return result as T;
  }
  return Promise.resolve(result).then(
    (value) => {
      release('succeeded');
      return value;
    },
    (error: unknown) => {
      release(classify(error));
      throw error;
    },
  );
}

/** Fires when the caller's signal does, or when the slot is overdue. */
function workSignal(release: Release, callerSignal: AbortSignal | undefined): AbortSignal {
  const overdue = slotSignal(release);
  if (overdue === undefined) return callerSignal ?? NEVER;
  return callerSignal === undefined ? overdue : AbortSignal.any([callerSignal, overdue]);
}
