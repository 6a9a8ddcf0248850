import { describeValue as show } from './config-value.util';
import { GaugeConfigError } from './gauge.errors';
import { assertInteger, isRecord, rejectUnknownKeys } from './option-checks.util';

/**
 * A shared-store gauge's choice when the store cannot be reached: `'fail-closed'` refuses with 503
 * (protects the shared resource), `{ localLimit }` keeps serving with that many slots per instance.
 */
export type StoreDownPolicy = 'fail-closed' | { readonly localLimit: number };

const STORE_DOWN_KEYS = new Set(['localLimit']);

/** Checks a `whenStoreDown` policy (a gauge's or a store's default), naming where it came from. */
export function assertStoreDownPolicy(
  where: string,
  value: unknown,
): asserts value is StoreDownPolicy {
  if (value === 'fail-closed') return;
  if (isRecord(value)) {
    rejectUnknownKeys(where, value, STORE_DOWN_KEYS, 'whenStoreDown.');
    const { localLimit } = value as { localLimit?: unknown };
    assertInteger(where, 'whenStoreDown.localLimit', localLimit, 1, Number.MAX_SAFE_INTEGER);
    return;
  }
  throw new GaugeConfigError(
    `${where}: option "whenStoreDown" must be 'fail-closed' or { localLimit }, got ${show(value)}`,
  );
}
