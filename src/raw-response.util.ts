import { StreamableFile, type ExecutionContext } from '@nestjs/common';
import type { Release } from './core/gauge.interface';

/** The Node response under Express (`res`) or Fastify (`reply.raw`), to see the client leave. */
export interface RawResponse {
  /** True once the response is done or the client has gone: no 'close' event will come. */
  readonly closed?: boolean;
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

/** The raw response of an HTTP call, to watch for the client leaving; none in other contexts. */
export function rawResponse(context: ExecutionContext): RawResponse | undefined {
  if (context.getType() !== 'http') return undefined;
  const response = context
    .switchToHttp()
    .getResponse<{ raw?: RawResponse } & Partial<RawResponse>>();
  const raw = response?.raw ?? response;
  return typeof raw?.once === 'function' ? (raw as RawResponse) : undefined;
}

/**
 * A streamed body's work ends when the stream ends, fails, or the client stops reading it: only
 * then is its slot free. `release` must be safe to call more than once.
 */
export function releaseWhenSent(
  file: StreamableFile,
  response: RawResponse | undefined,
  release: Release,
): void {
  // The client left before the file was returned: it will never be sent, and 'close' has fired.
  if (response?.closed) return release();
  const stream = file.getStream();
  stream.once('end', release);
  stream.once('close', release);
  stream.once('error', release);
  response?.once('close', release);
}

/** Frees what an unsent `StreamableFile` reads from (an open file), as Nest does for its own. */
export function discardUnsent(value: unknown): void {
  if (value instanceof StreamableFile) value.getStream().destroy();
}
