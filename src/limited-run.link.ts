import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA, ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { LIMITED_RUNNER } from './backpressure.constants';
import type { LimitedCall } from './limited.call';

type Class = abstract new (...args: never[]) => unknown;

/**
 * How a limited HTTP handler's run finds its call without `AsyncLocalStorage`.
 *
 * On Node 20, the first `AsyncLocalStorage.run()` turns on promise hooks for the whole process:
 * every promise of every request pays for them (~20 % of a trivial route's throughput on Fastify,
 * docs/benchmarks.md §8). For HTTP routes there is a cheaper link that is also exact: at bootstrap,
 * each `@Limited` route handler gets one more argument, filled by a parameter factory with the call
 * the interceptor opened on that request (kept on the request object). The handler's wrapper
 * takes it off before the handler sees its arguments. Every run Nest makes of the handler —
 * a retry, a run started from a timer after the chain ended — carries its own call; a handler
 * calling itself or a helper passes no such argument, so it is the same run.
 *
 * Microservice and WebSocket handlers are not linked (with a parameter decorator Nest would no
 * longer pass them their raw arguments), nor is a route whose metadata Nest reads from another
 * class than the one given here: they keep the `AsyncLocalStorage` link, which is as correct and
 * only slower.
 */

/**
 * Per wrapper (`@Limited`'s runner): the index of the argument that carries its call, and how
 * many arguments Nest passes without it (the wrapper cuts the list back to that).
 */
export interface RunLink {
  readonly at: number;
  readonly length: number;
}
const links = new WeakMap<object, RunLink>();
/** Per controller: the runners whose every HTTP run carries its call. */
const linkedRoutes = new WeakMap<object, WeakSet<object>>();
/** Per request object of a linked route: the call opened on it. */
const CALL = Symbol('nestjs-backpressure.call');

/** Records `call` on its request, for the handler's runs to find (see `linkedCallOf`). */
export function attachToRequest(request: object, call: LimitedCall): void {
  (request as { [CALL]?: LimitedCall })[CALL] = call;
}

/** The call recorded on the HTTP request of `context`, if any. */
export function linkedCallOf(context: ExecutionContext): LimitedCall | undefined {
  if (context.getType() !== 'http') return undefined;
  const request: unknown = context.getArgByIndex(0);
  if (typeof request !== 'object' || request === null) return undefined;
  return (request as { [CALL]?: LimitedCall })[CALL];
}

const factory = (_data: unknown, context: ExecutionContext): LimitedCall | undefined =>
  linkedCallOf(context);
const LinkedCall = createParamDecorator(factory);

/** Where `runner`'s call is among its arguments, when it was linked. */
export function linkOf(runner: object): RunLink | undefined {
  return links.get(runner);
}

/** Whether every HTTP run of `handler` on `controller` carries its call. */
export function isLinkedRoute(controller: object, handler: object): boolean {
  return linkedRoutes.get(controller)?.has(handler) === true;
}

/**
 * Links every `@Limited` HTTP route handler of `controllers` (see above). Idempotent: a class
 * seen by an earlier application in the same process is linked already. Runs at construction,
 * before Nest reads the routes' argument metadata.
 */
export function linkHttpRoutes(controllers: Iterable<unknown>): void {
  for (const controller of controllers) {
    if (typeof controller !== 'function') continue;
    const cls = controller as Class;
    const prototype = cls.prototype as object | undefined;
    // Nest reads argument metadata from `prototype.constructor` (a mixin may have replaced it).
    if (prototype === undefined || prototype.constructor !== cls) continue;
    for (const [key, runner] of runnersOf(prototype)) {
      if (isHttpRoute(runner) && link(cls, prototype, key, runner)) {
        let routes = linkedRoutes.get(cls);
        if (routes === undefined) linkedRoutes.set(cls, (routes = new WeakSet()));
        routes.add(runner);
      }
    }
  }
}

function link(cls: Class, prototype: object, key: string, runner: object): boolean {
  const known = links.get(runner);
  if (known !== undefined && carriesLink(cls, key, known.at)) return true; // linked before
  const filled = filledLength(cls, key);
  const declared: unknown = Reflect.getMetadata('design:paramtypes', prototype, key);
  // Past every argument the handler declares, so none of them is ever filled with the call.
  const at = Math.max(
    filled,
    Array.isArray(declared) ? declared.length : 0,
    (runner as Class).length,
  );
  if (known !== undefined && (known.at !== at || known.length !== filled)) return false;
  LinkedCall()(prototype, key, at);
  if (!carriesLink(cls, key, at)) return false;
  links.set(runner, { at, length: filled });
  return true;
}

/** Whether the argument metadata Nest will read for `cls[key]` fills index `at` with the call. */
function carriesLink(cls: Class, key: string, at: number): boolean {
  for (const entry of Object.values(argsOf(cls, key))) {
    if (entry.index === at && entry.factory === factory) return true;
  }
  return false;
}

/** How many arguments Nest passes the handler: one past the last one it fills. */
function filledLength(cls: Class, key: string): number {
  let length = 0;
  for (const entry of Object.values(argsOf(cls, key))) {
    if (typeof entry.index === 'number') length = Math.max(length, entry.index + 1);
  }
  return length;
}

function argsOf(cls: Class, key: string): Record<string, { index?: unknown; factory?: unknown }> {
  const args: unknown = Reflect.getMetadata(ROUTE_ARGS_METADATA, cls, key);
  return typeof args === 'object' && args !== null
    ? (args as Record<string, { index?: unknown; factory?: unknown }>)
    : {};
}

/** A route of the HTTP router only: not also a message, event or gateway handler. */
function isHttpRoute(handler: object): boolean {
  return (
    Reflect.getMetadata(PATH_METADATA, handler) !== undefined &&
    Reflect.getMetadata(METHOD_METADATA, handler) !== undefined &&
    Reflect.getMetadata('microservices:pattern', handler) === undefined &&
    Reflect.getMetadata('message', handler) === undefined
  );
}

/** `@Limited` runners among the methods of `prototype` and its parents, read without getters. */
function* runnersOf(prototype: object): Iterable<[string, object]> {
  const seen = new Set<string>();
  for (let level: object | null = prototype; level && level !== Object.prototype;) {
    for (const key of Object.getOwnPropertyNames(level)) {
      if (key === 'constructor' || seen.has(key)) continue;
      seen.add(key);
      const value: unknown = Object.getOwnPropertyDescriptor(level, key)?.value;
      if (typeof value === 'function' && Reflect.getOwnMetadata(LIMITED_RUNNER, value) === value) {
        yield [key, value];
      }
    }
    level = Object.getPrototypeOf(level) as object | null;
  }
}
