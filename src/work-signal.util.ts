import type { Release } from './core/gauge.interface';
import { slotSignal } from './core/hold-watch';
import { isGone, watchGone } from './client-connection.util';
import type { RunContext } from './run-settlement.util';

/** What a work signal watches of its call: the chain, the client and the end of the chain. */
export type WorkSignalContext = Pick<RunContext, 'isOpen' | 'connection' | 'onEnd'>;

/**
 * Builds the signal a handler asks for with `@WorkSignal()`: it fires when its work is no longer
 * wanted — the client left, the chain ended first (a `timeout` answered), or `slot` outlived the
 * gauge's `maxHoldMs`. Kept apart from the call so that a call nobody asks a signal of pays for
 * none of these watches.
 */
export function openWorkSignal(call: WorkSignalContext, slot: Release | undefined): AbortSignal {
  const work = new AbortController();
  const stop = (reason: unknown) => {
    if (!work.signal.aborted) work.abort(reason);
  };
  const unwatch = call.connection
    ? watchGone(call.connection, () => stop(new ClientGoneError()))
    : undefined;
  // Every path ends here at the latest: the watch of a kept-alive socket never outlives the call.
  work.signal.addEventListener('abort', () => unwatch?.(), { once: true });
  if (!call.isOpen) stop(new ChainEndedError());
  else if (isGone(call.connection)) stop(new ClientGoneError());
  else call.onEnd(() => stop(new ChainEndedError()));
  const overdue = slot === undefined ? undefined : slotSignal(slot);
  if (overdue?.aborted) stop(overdue.reason);
  else overdue?.addEventListener('abort', () => stop(overdue.reason), { once: true });
  return work.signal;
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
