import { GaugeConfigError, resolveGaugeOptions, type GaugeOptions } from '../../../src';
import type {
  AcquireReply,
  ConnectionEvents,
  GaugeKeys,
  LeaseBatch,
  LeaseClient,
  LeaseConnection,
  LimitSync,
  RenewOutcome,
} from '../../../src/core/shared/lease-client';
import type { SharedGauge } from '../../../src/core/shared/shared-gauge';
import {
  SharedGaugeStore,
  type SharedStoreSettings,
} from '../../../src/core/shared/shared-gauge-store';
import { Logs } from '../../redis/support/helpers';

/*
 * The seam between a shared gauge and its store: everything store-independent (waiting, wake-up
 * by announcement, the outage policy, renewal, the shared cap, graceful close) runs in
 * SharedGaugeStore, and a store is a small adapter — here an in-memory "server" shared by several
 * stores in one process, standing in for Redis.
 */

/** A gauge's stored cap, and the configured limit it came from (the Redis hash). */
interface Cap {
  cap: number;
  configured: number;
}

/** One server: each gauge's leases with their expiry, its cap, and who listens on its channel. */
export class MemoryServer {
  readonly sets = new Map<string, Map<string, number>>();
  readonly caps = new Map<string, Cap>();
  readonly listeners = new Map<string, Set<(channel: string) => void>>();
  reachable = true;

  leases(key: string): Map<string, number> {
    let set = this.sets.get(key);
    if (!set) this.sets.set(key, (set = new Map()));
    for (const [id, expiry] of set) if (expiry <= Date.now()) set.delete(id);
    return set;
  }

  announce(channel: string): void {
    for (const listener of this.listeners.get(channel) ?? []) listener(channel);
  }
}

/** The adapter: a `LeaseClient` and a `LeaseConnection` over a `MemoryServer`. */
export class MemoryConnection implements LeaseConnection, LeaseClient {
  readonly label = 'memory://test';
  private events: ConnectionEvents | undefined;

  constructor(
    private readonly server: MemoryServer,
    private readonly opens = true,
  ) {}

  keys(name: string): GaugeKeys {
    return { leases: `{${name}}:leases`, limit: `{${name}}:limit`, channel: `{${name}}:released` };
  }

  open(events: ConnectionEvents): void {
    if (!this.opens) throw new GaugeConfigError('memory driver missing');
    this.events = events;
    queueMicrotask(() => (this.server.reachable ? events.up() : events.down('refused')));
  }

  client(): LeaseClient | undefined {
    return this.events && this;
  }

  listen(channel: string): void {
    let listeners = this.server.listeners.get(channel);
    if (!listeners) this.server.listeners.set(channel, (listeners = new Set()));
    listeners.add((announced) => this.events?.released(announced));
  }

  probe(): Promise<unknown> | undefined {
    return this.server.reachable ? Promise.resolve() : Promise.reject(new Error('refused'));
  }

  async close(): Promise<void> {
    this.events = undefined;
  }

  /** The store went away or came back, as a driver would report it. */
  report(reachable: boolean): void {
    this.server.reachable = reachable;
    if (reachable) this.events?.up();
    else this.events?.down('connection closed');
  }

  async acquire(keys: GaugeKeys, id: string, limit: number, ttlMs: number): Promise<AcquireReply> {
    const set = this.call(keys.leases);
    const cap = this.server.caps.get(keys.limit)?.cap ?? limit;
    if (set.size >= cap || set.has(id)) return { granted: false, limit: cap };
    set.set(id, Date.now() + ttlMs);
    return { granted: true, limit: cap };
  }

  async release(keys: GaugeKeys, limit: number, notify: boolean, ids: readonly string[]) {
    const set = this.call(keys.leases);
    const wasFull = set.size >= (this.server.caps.get(keys.limit)?.cap ?? limit);
    const removed = ids.filter((id) => set.delete(id)).length;
    if (removed > 0 && notify && wasFull) this.server.announce(keys.channel);
    return removed;
  }

  async renew(batches: readonly LeaseBatch[], ttlMs: number): Promise<RenewOutcome[]> {
    return batches.map(({ keys, limit, ids }) => {
      const set = this.call(keys.leases);
      const readded = ids.filter((id) => !set.has(id)).length;
      for (const id of ids) set.set(id, Date.now() + ttlMs);
      if (!this.server.caps.has(keys.limit)) {
        this.server.caps.set(keys.limit, { cap: limit, configured: limit });
      }
      return { readded, limit: this.server.caps.get(keys.limit)!.cap };
    });
  }

  /** The Redis script's rule: the newest configuration wins, a run-time cap survives restarts. */
  async syncLimit(keys: GaugeKeys, configured: number): Promise<LimitSync> {
    this.call(keys.leases);
    const stored = this.server.caps.get(keys.limit);
    if (stored === undefined || stored.configured !== configured) {
      this.server.caps.set(keys.limit, { cap: configured, configured });
    }
    return {
      limit: this.server.caps.get(keys.limit)!.cap,
      storedLimit: stored?.cap,
      storedConfigured: stored?.configured,
    };
  }

  async setLimit(keys: GaugeKeys, limit: number, configured: number): Promise<number | undefined> {
    this.call(keys.leases);
    const before = this.server.caps.get(keys.limit);
    this.server.caps.set(keys.limit, { cap: limit, configured: before?.configured ?? configured });
    if (limit > (before?.cap ?? configured)) this.server.announce(keys.channel);
    return before?.cap;
  }

  private call(key: string): Map<string, number> {
    if (!this.server.reachable) throw new Error('connection closed');
    return this.server.leases(key);
  }
}

/** Settings for a test store: wake-ups must come from announcements, not the re-check. */
export const settings = (logger = new Logs()): SharedStoreSettings => ({
  kind: 'Memory',
  storeName: 'MemoryTestStore',
  leaseTtlMs: 10_000,
  renewIntervalMs: 3_000,
  recheckIntervalMs: 60_000,
  connectTimeoutMs: 1_000,
  closeGraceMs: 1_000,
  whenStoreDown: 'fail-closed',
  instanceId: undefined,
  logger,
});

/** An instance (store + connection) on `server`; `closeAll` closes every one built. */
export function memoryInstances() {
  const stores: SharedGaugeStore[] = [];
  const instance = (server: MemoryServer, logger?: Logs, opens?: boolean) => {
    const connection = new MemoryConnection(server, opens);
    const store = new SharedGaugeStore(connection, settings(logger));
    stores.push(store);
    const gauge = (name: string, options: GaugeOptions = {}): SharedGauge =>
      store.createGauge(resolveGaugeOptions(name, options));
    return { store, connection, gauge };
  };
  const closeAll = () => Promise.all(stores.splice(0).map((store) => store.close()));
  return { instance, closeAll };
}
