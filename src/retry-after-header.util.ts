import type { ExecutionContext } from '@nestjs/common';

/** What of a Node response the guard needs: its head is written through `writeHead`. */
interface RawHead {
  writeHead: (statusCode: number, ...rest: unknown[]) => unknown;
  removeHeader?: (name: string) => unknown;
  readonly headersSent?: boolean;
}

/** Per raw response: the status of the refusal whose `Retry-After` is set on it. */
const guarded = new WeakMap<object, { status: number }>();

/**
 * Keeps the `Retry-After` a refusal set on an HTTP response for that refusal only. The interceptor
 * sets the header as it refuses (Nest's filters send no headers of their own), but an interceptor
 * outside `@Limited` may still turn the refusal into another answer (a `catchError` fallback, a
 * mapped 5xx): a 200 must not tell the client to wait. So the head, when it goes out, keeps the
 * header only with the refusal's status (Express and Fastify both write it with `writeHead`).
 */
export function keepRetryAfterFor(context: ExecutionContext, status: number): void {
  const raw = rawOf(context);
  if (raw === undefined || raw.headersSent === true) return;
  const known = guarded.get(raw);
  if (known !== undefined) {
    known.status = status; // the latest refusal's status decides
    return;
  }
  const state = { status };
  guarded.set(raw, state);
  const writeHead = raw.writeHead;
  raw.writeHead = function (this: RawHead, statusCode: number, ...rest: unknown[]): unknown {
    raw.writeHead = writeHead;
    guarded.delete(raw);
    if (statusCode !== state.status) {
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
