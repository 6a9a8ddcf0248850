import type { ArgumentsHost } from '@nestjs/common';
import {
  BackpressureException,
  BackpressureUnavailableException,
  refusalBody,
  refusalReasonOf,
  type RefusalReason,
  type RefusalStatus,
} from './backpressure.exception';
import { withoutStackTrace } from './core/gauge.errors';
import { shapeRefusal, type RefusalHook, type ResolvedShape } from './refusal.hook';

/*
 * What a refused client receives, in its context: the HTTP exception's body, or for a
 * microservice / WebSocket client the `RefusalPayload`; and both as a gauge's `onRefusal` hook
 * reshaped them (`answerRefusal`).
 */

/** The HTTP exception of a refusal: 429 (no slot in time) or 503 (the gauge cannot decide). */
export type Refusal = BackpressureException | BackpressureUnavailableException;

/** What a microservice or WebSocket client receives when a gauge turns its message away. */
export interface RefusalPayload {
  /** Always `'error'`, as in Nest's own RPC / WebSocket error payloads. */
  status: 'error';
  /** The HTTP status the refusal would have had: 429 (no slot in time) or 503 (store down). */
  statusCode: 429 | 503;
  /** The status's name, as in Nest's HTTP error bodies. */
  error: 'Too Many Requests' | 'Service Unavailable';
  /** `'Too many requests'` or `'Service unavailable'`: never the gauge's name. */
  message: string;
  /** Seconds after which the client may try again (what HTTP sends as `Retry-After`). */
  retryAfterSeconds: number;
  /** Why (as in the HTTP body): `full`, `queue-full`, `queue-timeout`, `shed-priority`, … */
  reason: RefusalReason;
}

/** The default RPC / WebSocket payload of `refusal`. */
export function payloadOf(refusal: Refusal): RefusalPayload {
  return payloadFor(
    refusal.getStatus() as RefusalStatus,
    reasonOf(refusal),
    refusal.retryAfterSeconds,
  );
}

function payloadFor(
  status: RefusalStatus,
  reason: RefusalReason,
  retryAfterSeconds: number,
): RefusalPayload {
  return {
    status: 'error',
    statusCode: status,
    error: status === 429 ? 'Too Many Requests' : 'Service Unavailable',
    message: status === 429 ? 'Too many requests' : 'Service unavailable',
    retryAfterSeconds,
    reason,
  };
}

function reasonOf(refusal: Refusal): RefusalReason {
  return refusal instanceof BackpressureException ? refusalReasonOf(refusal.reason) : 'unavailable';
}

/** A refusal as its client in this context receives it: the exception, and the RPC / WS payload. */
export interface AnsweredRefusal {
  /** The HTTP exception (reshaped by the hook for HTTP and other non-RPC / WS contexts). */
  readonly refusal: Refusal;
  /** The payload of the RPC / WebSocket error (only in those contexts). */
  readonly payload: object | undefined;
}

/**
 * `refusal` after the gauge's `onRefusal` hook (if any) saw it, in context `type`: the hook is told
 * of it and may change its status, body and message; it cannot change `Retry-After`, and a hook
 * that fails leaves the default (`shapeRefusal`). Once the head is out (`responseStarted`), only
 * the message can still change.
 */
export function answerRefusal(
  refusal: Refusal,
  type: string,
  context: ArgumentsHost,
  hook: RefusalHook | undefined,
  responseStarted = false,
): AnsweredRefusal {
  const rpcLike = type === 'rpc' || type === 'ws';
  if (hook === undefined) return { refusal, payload: rpcLike ? payloadOf(refusal) : undefined };
  const status = refusal.getStatus() as RefusalStatus;
  const reason = reasonOf(refusal);
  const { retryAfterSeconds } = refusal;
  // A copy: what the hook does to it cannot change the default answer.
  const body: Record<string, unknown> = rpcLike
    ? { ...payloadOf(refusal) }
    : { ...(refusal.getResponse() as Record<string, unknown>) };
  const info = { gauge: refusal.gauge, reason, status, retryAfterSeconds, body, responseStarted };
  let shape = shapeRefusal(hook, info, context);
  if (shape !== undefined && responseStarted) {
    shape = { status, body: undefined, message: shape.message };
  }
  if (shape === undefined) return { refusal, payload: rpcLike ? payloadOf(refusal) : undefined };
  const defaults =
    shape.status === status
      ? rpcLike
        ? payloadOf(refusal)
        : (refusal.getResponse() as object)
      : rpcLike
        ? payloadFor(shape.status, reason, retryAfterSeconds)
        : refusalBody(shape.status, reason);
  const shaped = withMessage(shape.body ?? defaults, shape);
  if (rpcLike) return { refusal, payload: shaped };
  return { refusal: reshaped(refusal, shape.status, shaped), payload: undefined };
}

function withMessage(body: object, shape: ResolvedShape): object {
  return shape.message === undefined ? body : { ...body, message: shape.message };
}

function reshaped(refusal: Refusal, status: RefusalStatus, body: object): Refusal {
  const answer = { status, body: body as Record<string, unknown> };
  return withoutStackTrace(() =>
    refusal instanceof BackpressureException
      ? new BackpressureException(refusal.gauge, refusal.reason, refusal.retryAfterSeconds, answer)
      : new BackpressureUnavailableException(refusal.gauge, refusal.retryAfterSeconds, answer),
  );
}
