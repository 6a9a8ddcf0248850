import type { Gauge } from './core/gauge.interface';
import type { PartitionResolver } from './partition.resolver';
import type { RoutePriority } from './priority.resolver';
import type { RefusalHook } from './refusal.hook';

/**
 * What the interceptor knows of a limited handler, looked up once per handler: every call of the
 * handler reads it, so nothing here is decided again per request.
 */
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
