import { AsyncLocalStorage } from 'node:async_hooks';
import type { ExecutionContext } from '@nestjs/common';
import type { LimitedCall } from './limited.call';

/*
 * The live limited calls, and how a run of a handler finds the one it belongs to: by async
 * context (the chain it runs in, the run it is part of), by execution context (another copy of
 * the interceptor on the same call) or by handler (a call still waiting for its first run).
 */

/**
 * The call whose handler chain is running in this async context: how a run of an unlinked route
 * (RPC, WebSocket, a route Nest reads from another class) finds its call. Exported as is, so that
 * entering a chain costs no wrapper on the per-request path.
 */
export const chainCall = new AsyncLocalStorage<LimitedCall>();
/**
 * The call whose handler's own run this code is part of, so that the handler calling itself (or a
 * helper) is not taken for another run that needs a slot.
 */
export const runCall = new AsyncLocalStorage<LimitedCall>();
/**
 * The open call of each execution context: a second copy of the interceptor on the same call
 * (class and method level, or global too) finds it here, whatever async context it runs in.
 */
const byContext = new WeakMap<ExecutionContext, LimitedCall>();
/** Calls holding the slot taken for them and not yet claimed by a run, by handler. */
const waiting = new WeakMap<object, Set<LimitedCall>>();

/** Records `call` as the open call of `context`, for another copy of the interceptor to find. */
export function openOn(context: ExecutionContext, call: LimitedCall): void {
  byContext.set(context, call);
}

/** Forgets `call` as the open call of `context` (a later call on it may have replaced it). */
export function closeOn(context: ExecutionContext, call: LimitedCall): void {
  if (byContext.get(context) === call) byContext.delete(context);
}

/** The open call that already holds `context`, if another copy of the interceptor made one. */
export function holdingCall(context: ExecutionContext): LimitedCall | undefined {
  const call = byContext.get(context);
  return call?.isOpen ? call : undefined;
}

/** The call of the chain this code runs in, if any (`@WorkSignal()` of an unlinked route). */
export function currentCall(): LimitedCall | undefined {
  return chainCall.getStore();
}

/**
 * Records that `call` holds a slot no run of `runner` has claimed yet: a run that finds no call
 * in its async context (started from a timer or another event) takes it.
 */
export function awaitRun(runner: object, call: LimitedCall): void {
  let calls = waiting.get(runner);
  if (calls === undefined) waiting.set(runner, (calls = new Set()));
  calls.add(call);
}

/** `call`'s slot is claimed (or gone back): no orphan run may take it any more. */
export function stopAwaitingRun(runner: object, call: LimitedCall): void {
  waiting.get(runner)?.delete(call);
}

/**
 * A call of `runner` whose slot no run has claimed yet, if any. Slots of one gauge are
 * interchangeable, so any such call's slot is the right one.
 */
export function awaitingCall(runner: object): LimitedCall | undefined {
  for (const call of waiting.get(runner) ?? []) return call;
  return undefined;
}

/**
 * Reports one invocation of the handler `runner` (the `@Limited` wrapper) that Nest made with
 * `call` as its linked argument: a run of that call, in a slot.
 */
export function invokeLinkedRun(call: LimitedCall, runner: object, invoke: () => unknown): unknown {
  if (call.route.runner !== runner) return invoke(); // not this call's handler
  return call.run(invoke);
}

/**
 * Reports one invocation of the handler `runner` (the `@Limited` wrapper) and runs it by
 * `invoke`: in a slot when it is a run of a limited call, as is otherwise. Without a call in
 * the async context, it is the run of a call still waiting for one, unless `orphans` is false.
 */
export function invokeRun(runner: object, invoke: () => unknown, orphans = true): unknown {
  const call = chainCall.getStore();
  if (call !== undefined) {
    if (call.route.runner !== runner) return invoke(); // a helper called from another handler
    if (runCall.getStore() === call) return invoke(); // the handler calling itself: same run
    return call.run(invoke);
  }
  if (!orphans) return invoke();
  // No call in this context (an interceptor that started the chain from a timer or another
  // event): the run belongs to a call of this handler still waiting for it.
  const orphan = awaitingCall(runner);
  // Otherwise not through a limited call at all (a unit test calling the method).
  return orphan === undefined ? invoke() : orphan.run(invoke);
}
