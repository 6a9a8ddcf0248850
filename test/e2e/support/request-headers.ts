import type { ExecutionContext } from '@nestjs/common';

/** Header `name` of the HTTP request in `context`, as sent (Express and Fastify alike). */
export function headerOf(context: ExecutionContext, name: string): unknown {
  return context.switchToHttp().getRequest<{ headers: Record<string, unknown> }>().headers[name];
}

/** The tenant a request says it is (its `x-tenant` header): the suites' partition key resolver. */
export function tenantOf(context: ExecutionContext): string | undefined {
  const value = headerOf(context, 'x-tenant');
  return typeof value === 'string' ? value : undefined;
}
