import { afterEach, describe, expect, it } from '@jest/globals';
import { GaugeConfigError, GaugeUnavailableError, type GaugeEvent, type Release } from '../../src';
import { Logs, until, within } from '../redis/support/helpers';
import { MemoryServer, memoryInstances } from './support/memory-adapter';

/*
 * The shared cap (setLimit on one instance applies to all) is store-independent: the same engine
 * on the in-memory adapter, with no Redis.
 */

const { instance, closeAll } = memoryInstances();
afterEach(closeAll);
const queue = { size: 5, timeoutMs: 5_000 };

describe('setLimit on a shared gauge over an in-memory adapter', () => {
  it('reaches every instance, hands slots to waiters on each, and reports limit-changed', async () => {
    const server = new MemoryServer();
    const one = instance(server).gauge('g', { limit: 1, queue });
    const two = instance(server).gauge('g', { limit: 1, queue });
    const events: GaugeEvent[] = [];
    two.subscribe((event) => events.push(event));
    const held = (await one.acquire()) as Release;
    const waiting = [Promise.resolve(one.acquire()), Promise.resolve(two.acquire())];
    await until(() => one.queued === 1 && two.queued === 1, 'a waiter on each instance');

    await one.setLimit(3);
    const served = await within(Promise.all(waiting), 1_000, 'both waiters are served');
    expect(server.leases('{g}:leases').size).toBe(3);
    expect([one.limit, two.limit]).toEqual([3, 3]);
    expect(events).toContainEqual({ type: 'limit-changed', gauge: 'g', from: 1, to: 3 });
    for (const release of [held, ...served]) release();
  });

  it('lowers without revoking, validates, and rejects while the store is down', async () => {
    const server = new MemoryServer();
    const { connection, gauge } = instance(server);
    const g = gauge('g', { limit: 2 });
    const held = await Promise.all([g.acquire(), g.acquire()]);
    await g.setLimit(1);
    expect(g.inFlight).toBe(2);
    held[0]();
    await expect(g.acquire()).rejects.toMatchObject({ reason: 'full' });
    held[1]();
    ((await g.acquire()) as Release)();

    expect(() => g.setLimit(0)).toThrow(GaugeConfigError);
    connection.report(false);
    await expect(g.setLimit(4)).rejects.toThrow(GaugeUnavailableError);
    expect(g.limit).toBe(1);
  });

  it('warns once at bootstrap when instances are configured with different limits', async () => {
    const server = new MemoryServer();
    const first = instance(server);
    const a = first.gauge('g', { limit: 4 });
    ((await a.acquire()) as Release)();
    const logs = new Logs();
    const b = instance(server, logs).gauge('g', { limit: 6 });
    await until(() => logs.warnings.length === 1, 'the mismatch is reported');
    expect(logs.warnings[0]).toMatch(
      /^Gauge "g": configured with limit 6 here, but the cap stored in Memory is 4/,
    );
    expect(b.limit).toBe(6);
    ((await a.acquire()) as Release)();
    expect(a.limit).toBe(6);
  });
});
