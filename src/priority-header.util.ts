import type { ExecutionContext } from '@nestjs/common';
import { describeValue as show } from './core/config-value.util';
import { GaugeConfigError } from './core/gauge.errors';
import {
  assertPriority,
  DEFAULT_PRIORITY,
  isPriority,
  type PriorityLevel,
} from './core/priority/priority.level';
import type { PriorityResolver } from './priority.resolver';

/** The request as `trust` sees it: Express's or Fastify's, with its headers (lower-case names). */
export interface TrustedRequest {
  /** The request's headers, as Express and Fastify give them (lower-case names). */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly [key: string]: unknown;
}

/** How `trustedPriorityHeader` reads a priority that an internal caller (a gateway, a job runner) sets. */
export interface TrustedPriorityHeaderOptions {
  /** The header, any case (default `x-priority`). */
  readonly header?: string | undefined;
  /**
   * Whether this request comes from a caller allowed to set its priority — required, because a
   * public client can send any header: check something it cannot forge, e.g. a shared secret
   * header your gateway adds, or a private network address your proxy setup guarantees. Only
   * `true` trusts: a check that throws or returns anything else (a promise) gives `fallback`.
   */
  readonly trust: (request: TrustedRequest) => boolean;
  /** The level of requests that are not trusted or send no valid level (default `normal`). */
  readonly fallback?: PriorityLevel | undefined;
}

/**
 * A gauge `priority` resolver that takes the level from a header, but only on requests your
 * `trust` check accepts; every other request (and any non-HTTP call) gets `fallback`. Never trust
 * a public client's header: anyone would send `critical`.
 *
 * ```ts
 * gauges: {
 *   api: {
 *     priority: trustedPriorityHeader({
 *       trust: (req) => req.headers['x-internal-token'] === process.env.INTERNAL_TOKEN,
 *     }),
 *   },
 * }
 * ```
 */
export function trustedPriorityHeader(options: TrustedPriorityHeaderOptions): PriorityResolver {
  const where = 'trustedPriorityHeader()';
  if (typeof options?.trust !== 'function') {
    throw new GaugeConfigError(
      `${where}: option "trust" must be a function (request) => boolean: a public client's header is never trusted by default`,
    );
  }
  const named: unknown = options.header ?? 'x-priority';
  if (typeof named !== 'string') {
    throw new GaugeConfigError(
      `${where}: option "header" must be a header name (a string), got ${show(named)}`,
    );
  }
  const header = named.toLowerCase();
  if (header.trim() === '') throw new GaugeConfigError(`${where}: option "header" is empty`);
  const fallback = options.fallback ?? DEFAULT_PRIORITY;
  assertPriority(`${where}: option "fallback"`, fallback);
  const { trust } = options;
  return (context: ExecutionContext): PriorityLevel => {
    if (context.getType() !== 'http') return fallback;
    const request = context.switchToHttp().getRequest<TrustedRequest | undefined>();
    if (request?.headers === undefined || !trusts(trust, request)) return fallback;
    const raw = request.headers[header];
    const value = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined;
    return isPriority(value) ? value : fallback;
  };
}

/**
 * Whether `trust` accepts `request`: only a plain `true` does. A check that throws (a header it
 * reads is missing) or answers anything else (a promise from an async check) does not, so a
 * client cannot rise above the fallback by breaking the check.
 */
function trusts(trust: (request: TrustedRequest) => boolean, request: TrustedRequest): boolean {
  try {
    return trust(request) === true;
  } catch {
    return false;
  }
}
