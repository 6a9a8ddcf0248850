import { LIMITED_RUNNER } from './backpressure.constants';
import { LimitedCall } from './limited.call';
import { invokeLinkedRun, invokeRun } from './limited-calls.registry';
import { linkOf } from './limited-run.link';

type Handler = (this: unknown, ...args: unknown[]) => unknown;

/** Wrappers made here, so a method limited at both class and method level is wrapped once. */
const wrappers = new WeakSet<Handler>();

/**
 * Puts a function in place of a handler that reports each of its runs to the `LimitedCall` of
 * the chain it runs under, so the slot is held by the handler's own work rather than by the chain
 * around it. Called from anywhere else (a unit test, another method), it is the handler itself.
 *
 * Metadata other decorators set on the handler before (below) `@Limited` is copied over; those
 * applied after (above) set it on the wrapper directly. Name and length stay the handler's.
 */
export function wrapHandler(handler: Handler): Handler {
  if (wrappers.has(handler)) return handler;
  const runner: Handler = function (this: unknown, ...args: unknown[]): unknown {
    const link = linkOf(runner);
    if (link === undefined) return invokeRun(runner, () => handler.apply(this, args));
    // A linked HTTP route: Nest passes each run its call in one more argument (limited-run.link),
    // taken off before the handler sees its arguments. Without it: code calling the method (the
    // handler calling itself: no run), or a route of a class that inherits the handler unlinked
    // (its call is in the async context).
    const invoke = () => handler.apply(this, args);
    if (args.length <= link.at) return invokeRun(runner, invoke, false);
    const call = args[link.at];
    args.length = link.length;
    if (call instanceof LimitedCall) return invokeLinkedRun(call, runner, invoke);
    // Something (a global pipe that does not pass custom parameters through) replaced it: the run
    // takes the slot of a call of this handler waiting for its run, as an unlinked one would.
    return invokeRun(runner, invoke);
  };
  for (const key of Reflect.getOwnMetadataKeys(handler)) {
    Reflect.defineMetadata(key, Reflect.getOwnMetadata(key, handler), runner);
  }
  Reflect.defineMetadata(LIMITED_RUNNER, runner, runner);
  Object.defineProperty(runner, 'name', { value: handler.name, configurable: true });
  Object.defineProperty(runner, 'length', { value: handler.length, configurable: true });
  wrappers.add(runner);
  return runner;
}

/** Wraps a method in place (method-level `@Limited`). */
export function wrapMethod(descriptor: PropertyDescriptor | undefined): void {
  if (typeof descriptor?.value === 'function') {
    descriptor.value = wrapHandler(descriptor.value as Handler);
  }
}

/**
 * Wraps every method a controller has (class-level `@Limited`): route, message and gateway
 * handlers alike, its own and those it inherits (a generic base controller), each wrapper defined
 * on the decorated class so the parent stays as it is. Accessors are left alone; a method that
 * cannot be redefined keeps the chain-long slot the interceptor falls back to.
 */
export function wrapClassMethods(target: { prototype?: object }): void {
  const prototype = target.prototype;
  if (prototype === undefined) return;
  const seen = new Set<string | symbol>(['constructor']);
  for (let level: object | null = prototype; level && level !== Object.prototype;) {
    for (const key of Reflect.ownKeys(level)) {
      if (seen.has(key)) continue;
      seen.add(key);
      const descriptor = Object.getOwnPropertyDescriptor(level, key);
      if (typeof descriptor?.value !== 'function' || !descriptor.configurable) continue;
      const wrapped = wrapHandler(descriptor.value as Handler);
      if (wrapped === descriptor.value) continue; // already a runner (e.g. the parent is limited)
      Object.defineProperty(prototype, key, { ...descriptor, value: wrapped });
    }
    level = Object.getPrototypeOf(level) as object | null;
  }
}
