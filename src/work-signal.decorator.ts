import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { currentCall } from './limited-calls.registry';
import { linkedCallOf } from './limited-run.link';

/** The signal of a handler that no limited call runs: nothing will ever stop it. */
const NEVER = new AbortController().signal;

/**
 * Injects an `AbortSignal` that fires when the limited handler's work is no longer wanted: the
 * client left, an interceptor answered first (a `timeout`), or the slot outlived the gauge's
 * `maxHoldMs`. Pass it on (`fetch(url, { signal })`, a query's cancel) so work that would
 * otherwise hold its slot forever can stop; the slot comes back when the work actually ends.
 *
 * ```ts
 * @Get('report') @Limited('reports')
 * report(@WorkSignal() signal: AbortSignal) { return this.reports.build({ signal }); }
 * ```
 * On a handler without `@Limited` it never fires.
 */
export const WorkSignal = createParamDecorator(
  (_data: unknown, context: ExecutionContext): AbortSignal =>
    (linkedCallOf(context) ?? currentCall())?.workSignal ?? NEVER,
);
