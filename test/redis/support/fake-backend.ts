import type {
  AcquireReply,
  GaugeKeys,
  LeaseBatch,
  LeaseClient,
  LeaseRequest,
  LimitSync,
  RenewOutcome,
} from '../../../src/core/shared/lease-client';
import type { StoreCommandError } from '../../../src/core/shared/command-error';
import type { LeaseBackend } from '../../../src/core/shared/lease-backend.interface';
import { SharedGauge } from '../../../src/core/shared/shared-gauge';
import { StoreHealth } from '../../../src/core/shared/store-health';
import { resolveGaugeOptions, type GaugeOptions, type StoreDownPolicy } from '../../../src';
import { Logs } from './helpers';

/**
 * A `LeaseClient` over in-memory sets (the Redis scripts' semantics), for driving a `SharedGauge`
 * through outages, the first connect and reordered replies without a Redis. `renew` can be held
 * back to reorder it; a gauge's renewal, and `syncLimit`, can answer a script error.
 */
export class FakeLeaseCommands implements LeaseClient {
  readonly sets = new Map<string, Set<string>>();
  /** Each gauge's stored cap, by cap key. */
  readonly caps = new Map<string, number>();
  readonly released: string[] = [];
  /** Every attempt: its lease id, the level (fail fast sends one) and partition it was asked at. */
  readonly requests: { id: string; rank: number | undefined; key: string | undefined }[] = [];
  /** While set, `renew` waits for `applyRenewal()` (to deliver it after a release). */
  holdRenewals = false;
  /** Script errors the renewal answers for a gauge, by lease key (the other gauges are renewed). */
  readonly renewFailures = new Map<string, StoreCommandError>();
  /** While set, `syncLimit` rejects with it (a corrupted cap key). */
  syncFailure: StoreCommandError | undefined;
  /** How many times `syncLimit` was called. */
  syncCalls = 0;
  private pendingRenewal: (() => void) | undefined;

  set(key: string): Set<string> {
    let set = this.sets.get(key);
    if (!set) this.sets.set(key, (set = new Set()));
    return set;
  }

  async acquire(
    keys: GaugeKeys,
    id: string,
    limit: number,
    _ttlMs?: number,
    request?: LeaseRequest,
  ): Promise<AcquireReply> {
    this.requests.push({ id, rank: request?.priority?.rank, key: request?.partition?.token });
    await Promise.resolve();
    const set = this.set(keys.leases);
    const cap = this.caps.get(keys.limit) ?? limit;
    if (set.size >= cap) return { granted: false, limit: cap };
    set.add(id);
    return { granted: true, limit: cap };
  }

  async release(
    keys: GaugeKeys,
    _limit: number,
    _notify: boolean,
    ids: readonly string[],
  ): Promise<number> {
    const set = this.set(keys.leases);
    let removed = 0;
    for (const id of ids) {
      this.released.push(id);
      if (set.delete(id)) removed++;
    }
    return removed;
  }

  /** Plain ZADD semantics: re-adds a lease that is missing. */
  renew(batches: readonly LeaseBatch[]): Promise<RenewOutcome[]> {
    const apply = () =>
      batches.map(({ keys, limit, ids }) => {
        const failure = this.renewFailures.get(keys.leases);
        if (failure !== undefined) return failure;
        const set = this.set(keys.leases);
        let readded = 0;
        for (const id of ids) if (!set.has(id) && set.add(id)) readded++;
        if (!this.caps.has(keys.limit)) this.caps.set(keys.limit, limit);
        return { readded, limit: this.caps.get(keys.limit)! };
      });
    if (!this.holdRenewals) return Promise.resolve(apply());
    return new Promise((resolve) => (this.pendingRenewal = () => resolve(apply())));
  }

  /** The stored cap wins here (the Redis scripts' configuration rule is tested on Redis). */
  async syncLimit(keys: GaugeKeys, configured: number): Promise<LimitSync> {
    this.syncCalls++;
    if (this.syncFailure !== undefined) throw this.syncFailure;
    const stored = this.caps.get(keys.limit);
    if (stored === undefined) this.caps.set(keys.limit, configured);
    return { limit: stored ?? configured, storedLimit: stored, storedConfigured: stored };
  }

  async setLimit(keys: GaugeKeys, limit: number): Promise<number | undefined> {
    const before = this.caps.get(keys.limit);
    this.caps.set(keys.limit, limit);
    return before;
  }

  /** Lets the held renewal reach the "server" now. */
  applyRenewal(): void {
    const pending = this.pendingRenewal;
    this.pendingRenewal = undefined;
    pending?.();
  }
}

/** A gauge on fake commands with a real `StoreHealth` that tests move between states. */
export function fakeGauge(
  options: GaugeOptions & { whenStoreDown?: StoreDownPolicy },
  { connectTimeoutMs = 10_000 }: { connectTimeoutMs?: number } = {},
) {
  const commands = new FakeLeaseCommands();
  let n = 0;
  const built: { gauge?: SharedGauge } = {};
  const logs = new Logs();
  const health = new StoreHealth('Redis fake', 'Redis', 60_000, logs, (state) =>
    state === 'down' ? built.gauge?.storeDown(health.reason) : built.gauge?.storeUp(),
  );
  const backend: LeaseBackend = {
    kind: 'Redis',
    health,
    logger: logs,
    leaseTtlMs: 10_000,
    connectTimeoutMs,
    client: () => commands,
    nextLeaseId: () => `fake:${++n}`,
  };
  const { whenStoreDown = 'fail-closed', ...rest } = options;
  const gauge = (built.gauge = new SharedGauge(
    resolveGaugeOptions('g', rest),
    whenStoreDown,
    { leases: 'k', limit: 'l', channel: 'c' },
    backend,
  ));
  return { gauge, health, commands, backend, logs, leases: commands.set('k') };
}
