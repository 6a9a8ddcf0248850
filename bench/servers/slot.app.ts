import { Controller, Get, Module, type ExecutionContext, type Type } from '@nestjs/common';
import type { GaugeConfig } from '../../src';
import { lib } from '../harness/lib';
import { Dependency } from './dependency';
import { counter } from './handler-counter';

/**
 * Scenario 11 (issue 11): who gets the slot. Scenario 3's dependency (10 calls at a time × 50 ms,
 * 200/s) behind one gauge `bench` of 10, on four routes: `GET /low` and `GET /critical` (part 1,
 * priorities), `GET /` (part 2, queue discipline) and `GET /tenant` keyed by its `x-tenant` header
 * (part 3, per-key fairness). Variants, `<part>-<variant>`:
 * - `priorities-plain`: fail fast, no `@Priority` (every call `normal`);
 *   `priorities-priorities`: fail fast, `/low` under `@Priority('low')`, `/critical` under
 *   `@Priority('critical')`.
 * - `queue-fifo`, `queue-lifo`, `queue-codel`: a queue of 100 waiting at most 1 s, that discipline
 *   (codel with its defaults, targetMs 5 / intervalMs 100).
 * - `fairness-plain`: fail fast, no key; `fairness-partitioned`: fail fast,
 *   `partition: (ctx) => ctx.switchToHttp().getRequest().headers['x-tenant']`.
 */
export const SLOT_CAPACITY_PER_SECOND = 200;
export const SLOT_SERVICE_MS = 50;
export const SLOT_LIMIT = 10;
export const SLOT_QUEUE = { size: 100, timeoutMs: 1000 } as const;
const dependency = new Dependency(10, SLOT_SERVICE_MS);

async function work(): Promise<string> {
  counter.enter();
  try {
    await dependency.call();
    return 'ok';
  } finally {
    counter.leave();
  }
}

/** The call's tenant: its `x-tenant` header (one value), else no key. */
function tenant(context: ExecutionContext): string | undefined {
  const value = context
    .switchToHttp()
    .getRequest<{ headers: Record<string, string | string[] | undefined> }>().headers['x-tenant'];
  return typeof value === 'string' ? value : undefined;
}

function gauge(variant: string): GaugeConfig {
  switch (variant) {
    case 'priorities-plain':
    case 'priorities-priorities':
    case 'fairness-plain':
      return { limit: SLOT_LIMIT };
    case 'queue-fifo':
    case 'queue-lifo':
    case 'queue-codel':
      return {
        limit: SLOT_LIMIT,
        queue: { ...SLOT_QUEUE, discipline: variant.slice('queue-'.length) as 'fifo' },
      };
    case 'fairness-partitioned':
      return { limit: SLOT_LIMIT, partition: tenant };
    default:
      throw new Error(`slot: unknown variant ${variant}`);
  }
}

/** The root module for one variant. */
export function slotModule(variant: string): Type {
  const config = gauge(variant);
  const leveled = variant === 'priorities-priorities';
  const none = () => undefined;
  const low = leveled ? lib.Priority('low') : none;
  const critical = leveled ? lib.Priority('critical') : none;

  @Controller()
  class SlotController {
    @Get()
    @lib.Limited('bench')
    get(): Promise<string> {
      return work();
    }

    @Get('low')
    @lib.Limited('bench')
    @low
    low(): Promise<string> {
      return work();
    }

    @Get('critical')
    @lib.Limited('bench')
    @critical
    critical(): Promise<string> {
      return work();
    }

    @Get('tenant')
    @lib.Limited('bench')
    tenant(): Promise<string> {
      return work();
    }
  }
  @Module({
    imports: [lib.BackpressureModule.forRoot({ gauges: { bench: config } })],
    controllers: [SlotController],
  })
  class SlotModule {}
  return SlotModule;
}
