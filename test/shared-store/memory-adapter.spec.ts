import { afterEach, describe, expect, it } from '@jest/globals';
import { GaugeUnavailableError, type Release } from '../../src';
import { Logs, isSettled, within } from '../redis/support/helpers';
import { MemoryServer, memoryInstances } from './support/memory-adapter';

/*
 * The whole shared store (waiting, wake-up by announcement, the outage policy, renewal, graceful
 * close) driven through an in-memory adapter (support/memory-adapter.ts), with no Redis.
 */

const { instance, closeAll } = memoryInstances();
afterEach(closeAll);

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

describe('per-key fairness on a shared gauge', () => {
  it('accepts keys and the partition option and ignores them: the shared limit alone holds', async () => {
    const server = new MemoryServer();
    const g = instance(server).gauge('keyed', { limit: 2, partition: { limit: 1 } });
    const first = (await g.acquire({ key: 'a' })) as Release;
    const second = (await g.acquire({ key: 'a' })) as Release; // no per-key cap here
    await expect(Promise.resolve().then(() => g.acquire({ key: 'b' }))).rejects.toMatchObject({
      reason: 'full',
    });
    first();
    second();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(server.leases('{keyed}:leases').size).toBe(0);
  });
});
