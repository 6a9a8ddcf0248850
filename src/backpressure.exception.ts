import { HttpException, HttpStatus } from '@nestjs/common';
import type { ExhaustionReason } from './core/gauge.errors';

/**
 * Why a request was refused, as its body's `reason` says (no gauge name, nothing internal):
 * `full` (no slot, no queue), `queue-full`, `queue-timeout`, `shed-delay` (a standing CoDel queue
 * gave up on it), `shed-priority` (room kept for higher priorities), `key-over-share` (the
 * caller's key holds its share or cap; room kept for other keys), `shed-pressure` (the event loop
 * is under pressure), `aborted` (the client left
 * while waiting), `unavailable` (503: a shared store down).
 */
export type RefusalReason =
  | 'full'
  | 'queue-full'
  | 'queue-timeout'
  | 'shed-delay'
  | 'shed-priority'
  | 'shed-pressure'
  | 'key-over-share'
  | 'aborted'
  | 'unavailable';

/** The body's reason for a gauge's reason: only `timeout` is renamed, to say which timeout. */
export function refusalReasonOf(reason: ExhaustionReason | 'aborted'): RefusalReason {
  return reason === 'timeout' ? 'queue-timeout' : reason;
}

/** The statuses a refusal may have: 429 (no slot in time) or 503 (the service cannot decide). */
export type RefusalStatus = 429 | 503;

/** What a refusal answers when an `onRefusal` hook reshaped it: its status and its whole body. */
interface ReshapedAnswer {
  readonly status: RefusalStatus;
  readonly body: Record<string, unknown>;
}

/**
 * The default body of a refusal with `status`: Nest's error shape plus `reason`, with the
 * status's generic message (never the gauge's name).
 */
export function refusalBody(status: RefusalStatus, reason: RefusalReason): Record<string, unknown> {
  const body =
    status === 429
      ? HttpException.createBody('Too many requests', 'Too Many Requests', status)
      : HttpException.createBody('Service unavailable', 'Service Unavailable', status);
  return { ...body, reason };
}

/**
 * The 429 a limited handler answers when its gauge has no slot in time. Its body has the shape of
 * Nest's own errors plus a `reason` (`RefusalReason`); the gauge stays on the exception (for
 * filters and logs), not in the body, so internal names do not leak to clients.
 */
export class BackpressureException extends HttpException {
  constructor(
    /** The gauge that turned the request away. */
    readonly gauge: string,
    /** Why: no slot and no queue, queue full, queue timeout, or the client left while waiting. */
    readonly reason: ExhaustionReason | 'aborted',
    /** Seconds sent in `Retry-After`. */
    readonly retryAfterSeconds: number,
    /** The status and body an `onRefusal` hook chose instead of 429 and the default body. */
    answer?: ReshapedAnswer,
  ) {
    super(
      answer?.body ?? refusalBody(HttpStatus.TOO_MANY_REQUESTS, refusalReasonOf(reason)),
      answer?.status ?? HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}

/**
 * The 503 a limited handler answers when its gauge cannot decide (a shared store down and the
 * gauge set to fail closed): the service, not the client's rate, is the problem.
 */
export class BackpressureUnavailableException extends HttpException {
  constructor(
    /** The gauge that could not decide. */
    readonly gauge: string,
    /** Seconds sent in `Retry-After`. */
    readonly retryAfterSeconds: number,
    /** The status and body an `onRefusal` hook chose instead of 503 and the default body. */
    answer?: ReshapedAnswer,
  ) {
    super(
      answer?.body ?? refusalBody(HttpStatus.SERVICE_UNAVAILABLE, 'unavailable'),
      answer?.status ?? HttpStatus.SERVICE_UNAVAILABLE,
    );
  }
}
