import { describeValue as show } from '../config-value.util';
import { GaugeConfigError } from '../gauge.errors';
import { DEFAULT_MAX_KEYS, type PartitionSettings } from './key-partitions';

/**
 * Per-key fairness of one gauge (option `partition`): calls carrying a `key` (a tenant, a user, an
 * API key, an IP) share the gauge's slots so that one busy key cannot starve the others. A gauge
 * divides its slots by key as soon as a call carries one; these options tune how.
 */
export interface PartitionOptions {
  /**
   * Most slots one key holds at once, whatever is free: an integer >= 1, or a fraction of the
   * gauge's limit below 1 (`0.25`: a quarter, rounded up; follows an adaptive limit). Absent: no
   * fixed cap, only the fair share when slots are scarce. In a queue, a key's waiters count too.
   */
  limit?: number | undefined;
  /**
   * Most keys tracked one by one (default 10 000). Past it, new keys share 64 overflow partitions
   * chosen by a hash of the key (never refused for being new). A key with nothing held and nobody
   * waiting is forgotten at once, so this counts live keys only.
   */
  maxKeys?: number | undefined;
}

const PARTITION_KEYS = ['limit', 'maxKeys'];

/** Checks option `partition` (the core part of it; `extraKeys` are the Nest layer's, e.g. `key`). */
export function resolvePartition(
  where: string,
  value: unknown,
  extraKeys: readonly string[] = [],
): PartitionSettings {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new GaugeConfigError(
      `${where}: option "partition" must be { limit?, maxKeys? }, got ${show(value)}`,
    );
  }
  const known = [...extraKeys, ...PARTITION_KEYS];
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new GaugeConfigError(
        `${where}: unknown option "partition.${key}" (known: ${known.map((k) => `partition.${k}`).join(', ')})`,
      );
    }
  }
  const { limit, maxKeys = DEFAULT_MAX_KEYS } = value as PartitionOptions;
  if (limit !== undefined && !isPerKeyLimit(limit)) {
    throw new GaugeConfigError(
      `${where}: option "partition.limit" must be an integer >= 1 (slots per key) or a fraction of the limit between 0 and 1 exclusive, got ${show(limit)}`,
    );
  }
  if (typeof maxKeys !== 'number' || !Number.isSafeInteger(maxKeys) || maxKeys < 1) {
    throw new GaugeConfigError(
      `${where}: option "partition.maxKeys" must be an integer from 1 to Number.MAX_SAFE_INTEGER, got ${show(maxKeys)}`,
    );
  }
  return limit === undefined ? { maxKeys } : { limit, maxKeys };
}

function isPerKeyLimit(value: unknown): value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) return false;
  return value < 1 || Number.isSafeInteger(value);
}
