import type { ExecutionContext } from '@nestjs/common';

/** What of a Node response the guard needs: its head is written through `writeHead`. */
interface RawHead {
  writeHead: (statusCode: number, ...rest: unknown[]) => unknown;
  removeHeader?: (name: string) => unknown;
  readonly headersSent?: boolean;
}

/** The raw responses whose `writeHead` is wrapped (once each). */
const guarded = new WeakSet<object>();

/**
 * Keeps the `Retry-After` a refusal set on an HTTP response for that refusal only. The interceptor
 * sets the header as it refuses (Nest's filters send no headers of their own), but an interceptor
 * outside `@Limited` may still turn the refusal into another answer (a `catchError` fallback): a
 * 200 must not tell the client to wait. So the head, when it goes out with a status below 400,
 * loses the header (Express and Fastify both write it with `writeHead`). An error answer keeps it:
 * a refusal mapped to a 503 (for a gateway) or another error still means "come back later", and a
 * filter may have set its own `Retry-After` on purpose.
 */
export function keepRetryAfterForErrors(context: ExecutionContext): void {
  const raw = rawOf(context);
  if (raw === undefined || raw.headersSent === true || guarded.has(raw)) return;
  guarded.add(raw);
  const writeHead = raw.writeHead;
  raw.writeHead = function (this: RawHead, statusCode: number, ...rest: unknown[]): unknown {
    raw.writeHead = writeHead;
    guarded.delete(raw);
    if (statusCode < 400) {
      this.removeHeader?.('Retry-After');
      // Fastify passes its headers here rather than setting them on the response.
      const at = rest.findIndex((arg) => typeof arg === 'object' && arg !== null);
      if (at >= 0) rest[at] = withoutRetryAfter(rest[at] as Record<string, unknown>);
    }
    return writeHead.call(this, statusCode, ...rest);
  };
}

function withoutRetryAfter(headers: Record<string, unknown>): Record<string, unknown> {
  if (Array.isArray(headers)) return headers; // raw [name, value, …] pairs: not the adapters' form
  const kept: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() !== 'retry-after') kept[name] = value;
  }
  return kept;
}

function rawOf(context: ExecutionContext): RawHead | undefined {
  if (context.getType() !== 'http') return undefined;
  const response = context.switchToHttp().getResponse<{ raw?: unknown } | undefined>();
  const raw = (response?.raw ?? response) as Partial<RawHead> | undefined;
  return typeof raw?.writeHead === 'function' ? (raw as RawHead) : undefined;
}
