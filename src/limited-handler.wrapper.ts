import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { LIMITED_RUNNER } from './backpressure.constants';
import { LimitedCall } from './limited.call';

type Handler = (this: unknown, ...args: unknown[]) => unknown;

/** Wrappers made here, so a method limited at both class and method level is wrapped once. */
const wrappers = new WeakSet<Handler>();

/**
 * What a limited handler's hidden last argument resolves to on each invocation: the
 * `LimitedCall` it belongs to and, outside HTTP, the raw arguments Nest would have passed a handler
 * that declares no parameter decorator (an RPC handler's payload and context).
 */
class RunArgumentValue {
  constructor(
    readonly call: LimitedCall | undefined,
    readonly raw: unknown[] | undefined,
  ) {}
}

/**
 * A hidden last argument of every limited handler: Nest resolves it with the others on each
 * invocation. So a run finds its call by what Nest passes it — not by the async context, which an
 * interceptor may lose, nor (for HTTP) by `AsyncLocalStorage`, which would tax every promise —
 * and a direct call (the handler calling itself, a unit test) carries none and is no run.
 */
const RunArgument = createParamDecorator((_data: unknown, context: ExecutionContext) => {
  const runner = Reflect.getMetadata(LIMITED_RUNNER, context.getHandler()) as object | undefined;
  const call = LimitedCall.of(context, runner);
  return new RunArgumentValue(call, context.getType() === 'http' ? undefined : context.getArgs());
});

/**
 * Puts a function in place of a handler that reports each of its runs to the `LimitedCall` it
 * belongs to, so the slot is held by the handler's own work rather than by the chain around it.
 * Called from anywhere else (a unit test, another method), it is the handler itself.
 *
 * Metadata other decorators set on the handler before (below) `@Limited` is copied over; those
 * applied after (above) set it on the wrapper directly. Name and length stay the handler's.
 */
function wrapHandler(handler: Handler, argument: number, undecorated: boolean): Handler {
  const runner: Handler = function (this: unknown, ...args: unknown[]): unknown {
    const hidden = args[argument];
    if (!(hidden instanceof RunArgumentValue)) return handler.apply(this, args);
    // The handler sees exactly its own arguments: those Nest resolved, or, for an RPC / WebSocket
    // handler without parameter decorators, the raw ones Nest passes such a handler.
    const own = undecorated && hidden.raw !== undefined ? hidden.raw : args.slice(0, argument);
    return LimitedCall.invoke(hidden.call, () => handler.apply(this, own));
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

/** Wraps the method `key` of `prototype`, adding its hidden argument. */
function wrapAt(prototype: object, key: string | symbol, handler: Handler): Handler {
  if (wrappers.has(handler)) return handler;
  const declared = Object.values(
    (Reflect.getMetadata(ROUTE_ARGS_METADATA, prototype.constructor, key) ?? {}) as Record<
      string,
      { index?: number }
    >,
  );
  // After every argument the handler declares or a decorator resolves.
  let argument = handler.length;
  for (const { index } of declared) {
    if (typeof index === 'number' && index >= argument) argument = index + 1;
  }
  RunArgument()(prototype, key, argument);
  return wrapHandler(handler, argument, declared.length === 0);
}

/** Wraps a method in place (method-level `@Limited`). */
export function wrapMethod(
  prototype: object,
  key: string | symbol,
  descriptor: PropertyDescriptor | undefined,
): void {
  if (typeof descriptor?.value === 'function') {
    descriptor.value = wrapAt(prototype, key, descriptor.value as Handler);
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
      const wrapped = wrapAt(prototype, key, descriptor.value as Handler);
      if (wrapped === descriptor.value) continue; // already a runner (e.g. the parent is limited)
      Object.defineProperty(prototype, key, { ...descriptor, value: wrapped });
    }
    level = Object.getPrototypeOf(level) as object | null;
  }
}
