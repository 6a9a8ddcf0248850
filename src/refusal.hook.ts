import type { ArgumentsHost } from '@nestjs/common';
import { describeValue as show, isPlainObject } from './core/config-value.util';
import { describeThrown } from './core/gauge-events';
import { GaugeConfigError } from './core/gauge.errors';
import type { RefusalReason, RefusalStatus } from './backpressure.exception';

/**
 * Refusal hooks (option `onRefusal`, module-wide or per gauge): one function told of every
 * refusal the module answers — `@Limited` calls and the gauge errors `GaugeErrorFilter` answers —
 * that may log it and may reshape it (`RefusalShape`). It is called synchronously, before the
 * answer is sent, and it can never break the refusal: a hook that throws or returns something
 * invalid (a bad status, a body JSON cannot carry, a getter or proxy that throws when read) leaves
 * the default refusal in place (with one process warning per hook).
 */

/** What a refusal hook is told: the gauge, why, and the answer the client gets by default. */
export interface RefusalInfo {
  /** The gauge that said no (for logs; clients never see it unless a hook puts it in the body). */
  readonly gauge: string;
  /** Why, as the default body says: `full`, `queue-full`, `queue-timeout`, `shed-priority`, … */
  readonly reason: RefusalReason;
  /** The default status: 429 (no slot in time), 503 (the gauge's store is down). */
  readonly status: RefusalStatus;
  /** Sent as `Retry-After` (and in RPC / WebSocket payloads); a hook cannot change it. */
  readonly retryAfterSeconds: number;
  /**
   * The default body in this context: Nest's HTTP error body with `reason`, or for a
   * microservice / WebSocket client the `RefusalPayload`. Spread it to add a field.
   */
  readonly body: Readonly<Record<string, unknown>>;
  /**
   * The HTTP response head is already out (an `@Sse()` stream that started, a `@Res()` handler
   * that wrote): `status` and `body` can no longer change; an SSE stream ends with an error
   * event whose data is the refusal's `message`.
   */
  readonly responseStarted: boolean;
}

/** What a refusal hook may change; each field absent keeps the default. */
export interface RefusalShape {
  /** 429 or 503 (the statuses `Retry-After` means something on); the default body follows it. */
  readonly status?: RefusalStatus;
  /**
   * The whole body (HTTP) or error payload (RPC / WebSocket), instead of the default one. Sent as
   * its JSON copy (a `Date` becomes its string); one JSON cannot carry as an object (circular, a
   * `BigInt`, a `toJSON` that throws) leaves the default refusal.
   */
  readonly body?: Record<string, unknown>;
  /** The body's `message` (written into `body` when both are given). */
  readonly message?: string;
}

/**
 * Option `onRefusal`: told of each refusal with the call's context (for `@Limited` the
 * `ExecutionContext`; for an error `GaugeErrorFilter` answers, the filter's `ArgumentsHost`).
 * Return nothing to observe only (logging, counting), or a `RefusalShape`. Synchronous; a returned
 * promise is ignored (its rejection too), with one warning.
 */
export type RefusalHook = (refusal: RefusalInfo, context: ArgumentsHost) => RefusalShape | void;

/** A hook's answer, checked: what to send instead of the defaults. */
export interface ResolvedShape {
  readonly status: RefusalStatus;
  /** Undefined: the default body for `status` (with `message`, if given). */
  readonly body: Record<string, unknown> | undefined;
  readonly message: string | undefined;
}

const SHAPE_KEYS = new Set(['status', 'body', 'message']);
const warned = new WeakSet<RefusalHook>();

/** Checks option `onRefusal` at bootstrap (`where`: `BackpressureModule` or `Gauge "name"`). */
export function assertRefusalHook(where: string, value: unknown): asserts value is RefusalHook {
  if (typeof value !== 'function') {
    throw new GaugeConfigError(
      `${where}: option "onRefusal" must be a function (refusal, context) => RefusalShape | void, got ${show(value)}`,
    );
  }
}

/**
 * Calls `hook` and checks what it returned: undefined to keep the default refusal (the hook
 * returned nothing, threw, or returned something invalid, which warns once per hook).
 */
export function shapeRefusal(
  hook: RefusalHook,
  refusal: RefusalInfo,
  context: ArgumentsHost,
): ResolvedShape | undefined {
  let shape: unknown;
  try {
    shape = hook(refusal, context);
  } catch (error) {
    warnOnce(hook, () => `threw ${describeThrown(error)}`);
    return undefined;
  }
  if (shape === undefined || shape === null) return undefined;
  // Reading what the hook returned runs its code too (getters, proxies, `toJSON`): guarded alike.
  try {
    return checked(hook, shape, refusal.status);
  } catch (error) {
    warnOnce(hook, () => `returned a value that threw when read (${describeThrown(error)})`);
    return undefined;
  }
}

function checked(
  hook: RefusalHook,
  shape: unknown,
  defaultStatus: RefusalStatus,
): ResolvedShape | undefined {
  if (isThenable(shape)) {
    Promise.resolve(shape).catch(() => undefined); // an async hook's rejection must not crash the app
    warnOnce(hook, () => 'returned a promise (hooks are synchronous; it was not awaited)');
    return undefined;
  }
  const invalid = problemOf(shape);
  if (invalid !== undefined) {
    warnOnce(hook, () => `returned ${show(shape)}: ${invalid}`);
    return undefined;
  }
  const { status, message } = shape as RefusalShape;
  const body = jsonCopy((shape as RefusalShape).body);
  if (body === null) {
    warnOnce(hook, () => `returned a body that is not a JSON object (${show(shape)})`);
    return undefined;
  }
  return { status: status ?? defaultStatus, body, message };
}

/**
 * The body as the client would receive it: a JSON round trip, so what is sent is exactly what was
 * checked (no getter or `toJSON` runs again at send time). `null` for a body JSON cannot carry as
 * an object: circular, a `BigInt`, a `toJSON` that throws or returns a non-object. Throws what
 * the body's own code throws.
 */
function jsonCopy(
  body: Record<string, unknown> | undefined,
): Record<string, unknown> | undefined | null {
  if (body === undefined) return undefined;
  let text: string | undefined;
  try {
    text = JSON.stringify(body);
  } catch {
    return null;
  }
  if (text === undefined) return null;
  const copy: unknown = JSON.parse(text);
  return isPlainObject(copy) ? copy : null;
}

/** Why `shape` is not a `RefusalShape`, or undefined when it is one. */
function problemOf(shape: unknown): string | undefined {
  if (!isPlainObject(shape)) return 'not an object { status?, body?, message? }';
  for (const key of Object.keys(shape)) {
    if (!SHAPE_KEYS.has(key)) return `unknown field "${key}" (known: status, body, message)`;
  }
  const { status, body, message } = shape;
  if (status !== undefined && status !== 429 && status !== 503) return 'status must be 429 or 503';
  if (body !== undefined && !isPlainObject(body)) return 'body must be a plain object';
  if (message !== undefined && typeof message !== 'string') return 'message must be a string';
  return undefined;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

function warnOnce(hook: RefusalHook, what: () => string): void {
  if (warned.has(hook)) return;
  warned.add(hook);
  let said: string;
  try {
    said = what();
  } catch {
    said = 'returned a value that cannot be shown';
  }
  process.emitWarning(
    `A gauge's onRefusal hook ${said}; the default refusal was sent (this and any like it)`,
    'BackpressureRefusalHookWarning',
  );
}
