import { StreamableFile, type ArgumentsHost, type ExecutionContext } from '@nestjs/common';
import type { Release } from './core/gauge.interface';

/** What of a Node socket or response tells that the client has gone. */
interface Closable {
  readonly closed?: boolean;
  readonly destroyed?: boolean;
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

/**
 * The client end of one HTTP call: the raw response (Express `res`, Fastify `reply.raw`) and the
 * request's socket. Both are watched: a pipelined request queued behind another has no socket on
 * its response yet, so only its request's socket says that the connection has gone.
 */
export interface ClientConnection {
  readonly response: Closable | undefined;
  readonly socket: Closable | undefined;
}

/** The connection of an HTTP call; none for RPC and WebSocket contexts. */
export function connectionOf(context: ExecutionContext): ClientConnection | undefined {
  if (context.getType() !== 'http') return undefined;
  const http = context.switchToHttp();
  const response = unwrap(http.getResponse<unknown>());
  const request = unwrap(http.getRequest<unknown>()) as { socket?: unknown } | undefined;
  const socket = isClosable(request?.socket) ? request.socket : undefined;
  return { response: isClosable(response) ? response : undefined, socket };
}

/** True once the client can no longer receive an answer: its response closed or socket gone. */
export function isGone(connection: ClientConnection | undefined): boolean {
  if (connection === undefined) return false;
  const { response, socket } = connection;
  return response?.closed === true || response?.destroyed === true || socket?.destroyed === true;
}

/** The raw Node response of an HTTP call (Express `res`, Fastify `reply.raw`). */
function rawResponseOf(context: ArgumentsHost): RawHead | undefined {
  if (context.getType() !== 'http') return undefined;
  return unwrap(context.switchToHttp().getResponse<unknown>()) as RawHead | undefined;
}

interface RawHead {
  readonly headersSent?: boolean;
  readonly writableEnded?: boolean;
  end?(): unknown;
}

/** Whether the response head has gone out already (an SSE stream, a `@Res()` write). */
export function headersSent(context: ArgumentsHost): boolean {
  return rawResponseOf(context)?.headersSent === true;
}

/**
 * Ends a response whose head is out, where no refusal can be sent any more. Nest's own filters
 * then leave it alone — without this, NestJS 11's Fastify adapter (which asks the reply, not the
 * socket, whether headers went out) would try to send the 429 and throw.
 */
export function endStartedResponse(context: ArgumentsHost): void {
  const raw = rawResponseOf(context);
  if (raw?.headersSent !== true || raw.writableEnded === true) return;
  try {
    raw.end?.();
  } catch {
    // Already torn down: nothing more to end.
  }
}

/**
 * Calls `listener` once the client goes (response or socket closed). Returns what stops watching.
 * A socket gets one listener however many of its pipelined requests wait: the client chooses how
 * many there are, and both adding past ten listeners and removing one of many are costly.
 */
export function watchGone(connection: ClientConnection, listener: () => void): () => void {
  const { response, socket } = connection;
  response?.once('close', listener);
  const unwatchSocket = socket ? onSocketClose(socket, listener) : undefined;
  return () => {
    response?.off('close', listener);
    unwatchSocket?.();
  };
}

const socketWatchers = new WeakMap<Closable, Set<() => void>>();

function onSocketClose(socket: Closable, listener: () => void): () => void {
  let listeners = socketWatchers.get(socket);
  if (listeners === undefined) {
    const watched = (listeners = new Set());
    socketWatchers.set(socket, watched);
    socket.once('close', () => {
      socketWatchers.delete(socket);
      for (const call of watched) call();
    });
  }
  listeners.add(listener);
  const own = listeners;
  return () => void own.delete(listener);
}

/**
 * A streamed body's work ends when the stream ends, fails, or the client stops reading it: only
 * then is its slot free. `release` must be safe to call more than once.
 */
export function releaseWhenSent(
  file: StreamableFile,
  connection: ClientConnection | undefined,
  release: Release,
): void {
  // The client left before the file was returned: it will never be sent.
  if (isGone(connection)) {
    discardUnsent(file);
    return release();
  }
  let held = true;
  const once = () => {
    if (!held) return;
    held = false;
    release();
  };
  const stream = file.getStream();
  stream.once('end', once);
  stream.once('close', once);
  stream.once('error', once);
  connection?.response?.once('close', once);
}

/** Frees what an unsent `StreamableFile` reads from (an open file), as Nest does for its own. */
export function discardUnsent(value: unknown): void {
  if (value instanceof StreamableFile) value.getStream().destroy();
}

function unwrap(value: unknown): unknown {
  const raw = (value as { raw?: unknown } | null | undefined)?.raw;
  return raw ?? value;
}

function isClosable(value: unknown): value is Closable {
  return typeof (value as Closable | null | undefined)?.once === 'function';
}
