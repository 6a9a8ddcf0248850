import {
  DEFAULT_MAX_KEYS,
  hashOf,
  MAX_KEY_LENGTH,
  OVERFLOW_PARTITIONS,
} from '../partition/key-partitions';
import type { PartitionSettings } from '../partition/key-partitions';
import type { LeasePartition } from './lease-client';

/** The partition of calls without a key, on a gauge with option `partition`. */
const UNKEYED = 'u';
/** A lone UTF-16 surrogate: not encodable as UTF-8, so such a key is stored by its digest. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * A partition's name in the store, unambiguous and bounded: `k:` and the key itself (up to
 * `MAX_KEY_LENGTH` UTF-16 units, well formed), else `d:` and a digest (its length and two hashes);
 * `o:<n>` for an overflow partition, `u` for calls without a key. So no key can pose as another,
 * as an overflow partition or as "no key", and `{`, `}` or any byte are harmless: the name only
 * ever follows the gauge's hash tag.
 */
export function partitionToken(key: string): string {
  if (key.length <= MAX_KEY_LENGTH && !LONE_SURROGATE.test(key)) return `k:${key}`;
  return `d:${key.length}:${hashOf(key).toString(36)}:${hashOf(key, 0x2f3c1a7b).toString(36)}`;
}

/** The overflow partition `key` (a `partitionToken`) falls into past `maxKeys`. */
export function overflowToken(token: string): string {
  return `o:${hashOf(token) % OVERFLOW_PARTITIONS}`;
}

/**
 * A keyed lease id: the plain id, then `#`, the partition's name and `#` its length in UTF-8
 * bytes. A plain id (`instanceId:nonce:counter`) never ends in `#` and digits (its tail is
 * `:nonce:counter`, with colons), so the store's scripts read the partition back from the id
 * alone: releases, renewals and orphans need nothing else.
 */
export function keyedLeaseId(id: string, token: string): string {
  return `${id}#${token}#${Buffer.byteLength(token, 'utf8')}`;
}

/**
 * Per-key fairness of a shared gauge (option `partition`, or calls carrying a `key`): what each
 * lease attempt tells the store so that its acquire script enforces `partition.limit` and the fair
 * share across every instance (see `ACQUIRE_LEASE`). The store keeps the per-key counts; this
 * instance keeps nothing per key.
 */
export class SharedPartitions {
  constructor(
    private readonly settings: PartitionSettings | undefined,
    /** Fail fast: the fair share applies; in a queue only the per-key cap does. */
    private readonly fair: boolean,
  ) {}

  /** True when calls without a key share one partition (option `partition` was given). */
  get partitionsUnkeyed(): boolean {
    return this.settings !== undefined;
  }

  /**
   * What an attempt with `key` and plain lease id `id` asks of the store; undefined for a call not
   * partitioned (no string key, on a gauge without option `partition`).
   */
  request(key: unknown, id: string): LeasePartition | undefined {
    if (typeof key !== 'string' && !this.partitionsUnkeyed) return undefined;
    const token = typeof key === 'string' ? partitionToken(key) : UNKEYED;
    const bucket = overflowToken(token);
    return {
      token,
      id: keyedLeaseId(id, token),
      overflowToken: bucket,
      overflowId: keyedLeaseId(id, bucket),
      limit: this.settings?.limit ?? 0,
      maxKeys: this.settings?.maxKeys ?? DEFAULT_MAX_KEYS,
      fair: this.fair,
    };
  }
}
