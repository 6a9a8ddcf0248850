import type { LeaseBatch, LeaseClient } from '../../../src/core/shared/lease-client';
import { SharedGauge, type LeaseBackend } from '../../../src/core/shared/shared-gauge';
import { StoreHealth } from '../../../src/core/shared/store-health';
import { resolveGaugeOptions, type GaugeOptions, type StoreDownPolicy } from '../../../src';
import { Logs } from './helpers';

/**
 * A `LeaseClient` over in-memory sets (the Redis scripts' semantics), for driving a `SharedGauge`
 * through outages, the first connect and reordered replies without a Redis. `renew` can be held
 * back to reorder it.
 */
export class FakeLeaseCommands implements LeaseClient {
  readonly sets = new Map<string, Set<string>>();
  readonly released: string[] = [];
  /** While set, `renew` waits for `applyRenewal()` (to deliver it after a release). */
  holdRenewals = false;
  private pendingRenewal: (() => void) | undefined;

  set(key: string): Set<string> {
    let set = this.sets.get(key);
    if (!set) this.sets.set(key, (set = new Set()));
    return set;
  }

  async acquire(key: string, id: string, limit: number): Promise<boolean> {
    await Promise.resolve();
    const set = this.set(key);
    if (set.size >= limit) return false;
    set.add(id);
    return true;
  }

  async release(
    key: string,
    _channel: string,
    _limit: number,
    _notify: boolean,
    ids: readonly string[],
  ): Promise<number> {
    const set = this.set(key);
    let removed = 0;
    for (const id of ids) {
      this.released.push(id);
      if (set.delete(id)) removed++;
    }
    return removed;
  }

  /** Plain ZADD semantics: re-adds a lease that is missing. */
  renew(batches: readonly LeaseBatch[]): Promise<number[]> {
    const apply = () =>
      batches.map(({ key, ids }) => {
        const set = this.set(key);
        let added = 0;
        for (const id of ids) if (!set.has(id) && set.add(id)) added++;
        return added;
      });
    if (!this.holdRenewals) return Promise.resolve(apply());
    return new Promise((resolve) => (this.pendingRenewal = () => resolve(apply())));
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
  const health = new StoreHealth('Redis fake', 'Redis', 60_000, new Logs(), (state) =>
    state === 'down' ? built.gauge?.storeDown(health.reason) : built.gauge?.storeUp(),
  );
  const backend: LeaseBackend = {
    kind: 'Redis',
    health,
    leaseTtlMs: 10_000,
    connectTimeoutMs,
    client: () => commands,
    nextLeaseId: () => `fake:${++n}`,
  };
  const { whenStoreDown = 'fail-closed', ...rest } = options;
  const gauge = (built.gauge = new SharedGauge(
    resolveGaugeOptions('g', rest),
    whenStoreDown,
    { leases: 'k', channel: 'c' },
    backend,
  ));
  return { gauge, health, commands, backend, leases: commands.set('k') };
}
