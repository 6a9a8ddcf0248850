import { afterEach, describe, expect, it } from '@jest/globals';
import {
  GaugeConfigError,
  GaugeUnavailableError,
  resolveGaugeOptions,
  type GaugeOptions,
  type Release,
} from '../../src';
import type {
  ConnectionEvents,
  GaugeKeys,
  LeaseBatch,
  LeaseClient,
  LeaseConnection,
} from '../../src/core/shared/lease-client';
import {
  SharedGaugeStore,
  type SharedStoreSettings,
} from '../../src/core/shared/shared-gauge-store';
import { Logs, isSettled, within } from '../redis/support/helpers';

/*
 * The seam between a shared gauge and its store: everything store-independent (waiting, wake-up
 * by announcement, the outage policy, renewal, graceful close) runs in SharedGaugeStore, and a
 * store is a small adapter — here an in-memory "server" shared by several stores in one process,
 * standing in for Redis. These tests drive the whole shared store through it, with no Redis.
 */

/** One server: each gauge's leases with their expiry, and who listens for its releases. */
class MemoryServer {
  readonly sets = new Map<string, Map<string, number>>();
  readonly listeners = new Map<string, Set<(channel: string) => void>>();
  reachable = true;

  leases(key: string): Map<string, number> {
    let set = this.sets.get(key);
    if (!set) this.sets.set(key, (set = new Map()));
    for (const [id, expiry] of set) if (expiry <= Date.now()) set.delete(id);
    return set;
  }
}

/** The adapter: a `LeaseClient` and a `LeaseConnection` over a `MemoryServer`, ~50 lines. */
class MemoryConnection implements LeaseConnection, LeaseClient {
  readonly label = 'memory://test';
  private events: ConnectionEvents | undefined;

  constructor(
    private readonly server: MemoryServer,
    private readonly opens = true,
  ) {}

  keys(name: string): GaugeKeys {
    return { leases: `{${name}}:leases`, channel: `{${name}}:released` };
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

  async acquire(key: string, id: string, limit: number, ttlMs: number): Promise<boolean> {
    const set = this.call(key);
    if (set.size >= limit || set.has(id)) return false;
    set.set(id, Date.now() + ttlMs);
    return true;
  }

  async release(
    key: string,
    channel: string,
    limit: number,
    notify: boolean,
    ids: readonly string[],
  ) {
    const set = this.call(key);
    const wasFull = set.size >= limit;
    const removed = ids.filter((id) => set.delete(id)).length;
    if (removed > 0 && notify && wasFull) {
      for (const listener of this.server.listeners.get(channel) ?? []) listener(channel);
    }
    return removed;
  }

  async renew(batches: readonly LeaseBatch[], ttlMs: number): Promise<number[]> {
    return batches.map(({ key, ids }) => {
      const set = this.call(key);
      const added = ids.filter((id) => !set.has(id)).length;
      for (const id of ids) set.set(id, Date.now() + ttlMs);
      return added;
    });
  }

  private call(key: string): Map<string, number> {
    if (!this.server.reachable) throw new Error('connection closed');
    return this.server.leases(key);
  }
}

const settings = (logger = new Logs()): SharedStoreSettings => ({
  kind: 'Memory',
  storeName: 'MemoryTestStore',
  leaseTtlMs: 10_000,
  renewIntervalMs: 3_000,
  recheckIntervalMs: 60_000, // wake-ups must come from announcements, not the re-check
  connectTimeoutMs: 1_000,
  closeGraceMs: 1_000,
  whenStoreDown: 'fail-closed',
  instanceId: undefined,
  logger,
});

const stores: SharedGaugeStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()));
});

function instance(server: MemoryServer, logger?: Logs, opens?: boolean) {
  const connection = new MemoryConnection(server, opens);
  const store = new SharedGaugeStore(connection, settings(logger));
  stores.push(store);
  const gauge = (name: string, options: GaugeOptions = {}) =>
    store.createGauge(resolveGaugeOptions(name, options));
  return { store, connection, gauge };
}

describe('a shared gauge store on another store than Redis (an in-memory adapter)', () => {
  it('shares one limit between instances and wakes a waiter of one on a release by the other', async () => {
    const server = new MemoryServer();
    const one = instance(server).gauge('g', { limit: 2, queue: { size: 5, timeoutMs: 5_000 } });
    const two = instance(server).gauge('g', { limit: 2, queue: { size: 5, timeoutMs: 5_000 } });
    const first = (await one.acquire()) as Release; // waits for the connection, then a slot
    const second = (await two.acquire()) as Release;
    expect(server.leases('{g}:leases').size).toBe(2);

    const waiting = Promise.resolve(one.acquire());
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await isSettled(waiting)).toBe(false);
    expect(one.queued).toBe(1);

    second(); // released on the other instance: announced, so the waiter tries again at once
    const third = await within(waiting, 1_000, 'the waiter is woken by the announcement');
    expect(server.leases('{g}:leases').size).toBe(2);
    first();
    third();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(server.leases('{g}:leases').size).toBe(0);
  });

  it('applies the outage policy while the store is down, logs it once, and recovers', async () => {
    const server = new MemoryServer();
    const logs = new Logs();
    const { store, connection, gauge } = instance(server, logs);
    const closed = gauge('closed', { limit: 1 });
    const open = gauge('open', { limit: 5, whenStoreDown: { localLimit: 1 } });
    ((await closed.acquire()) as Release)();
    expect(store.state).toBe('up');

    connection.report(false);
    expect(store.state).toBe('down');
    expect(() => closed.acquire()).toThrow(GaugeUnavailableError);
    expect(() => closed.acquire()).toThrow(/its Memory store is unreachable \(connection closed\)/);
    const local = open.acquire() as Release; // fail open: one local slot
    expect(() => open.acquire()).toThrow(expect.objectContaining({ reason: 'full' }));
    expect(logs.warnings).toEqual([
      'Memory memory://test is unreachable (connection closed); Memory gauges now fail open or closed as configured, until it is back',
    ]);

    connection.report(true);
    expect(logs.infos).toEqual([
      expect.stringMatching(/^Memory memory:\/\/test is reachable again/),
    ]);
    ((await closed.acquire()) as Release)();
    local();
  });

  it('fails every createGauge with the same error when the adapter cannot even open', () => {
    const { gauge } = instance(new MemoryServer(), new Logs(), false);
    expect(() => gauge('a')).toThrow('memory driver missing');
    expect(() => gauge('b')).toThrow('memory driver missing');
  });

  it('gives a running handler time to release at close, and refuses later callers', async () => {
    const server = new MemoryServer();
    const { store, gauge } = instance(server);
    const shared = gauge('g', { limit: 1 });
    const release = (await shared.acquire()) as Release;
    const closing = store.close();
    setTimeout(release, 50); // the handler ends while the store closes
    await within(closing, 2_000, 'close() ends once the slot is released');
    expect(server.leases('{g}:leases').size).toBe(0);
    expect(() => shared.acquire()).toThrow(/Gauge "g" is closed/);
    expect(() => gauge('h')).toThrow('MemoryTestStore is closed; create a new one');
  });
});
