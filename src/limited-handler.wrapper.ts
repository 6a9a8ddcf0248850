import { LIMITED_RUNNER } from './backpressure.constants';
import { LimitedCall } from './limited-call';

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
    const call = LimitedCall.current();
    if (call === undefined || !call.runs(runner)) return handler.apply(this, args);
    return call.run(() => handler.apply(this, args));
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
 * Wraps every method of a controller's prototype (class-level `@Limited`): route, message and
 * gateway handlers alike. Accessors are left alone; a method that cannot be redefined keeps the
 * chain-long slot the interceptor falls back to.
 */
export function wrapClassMethods(target: { prototype?: object }): void {
  const prototype = target.prototype;
  if (prototype === undefined) return;
  for (const key of Reflect.ownKeys(prototype)) {
    if (key === 'constructor') continue;
    const descriptor = Object.getOwnPropertyDescriptor(prototype, key);
    if (typeof descriptor?.value !== 'function' || !descriptor.configurable) continue;
    wrapMethod(descriptor);
    Object.defineProperty(prototype, key, descriptor);
  }
}
