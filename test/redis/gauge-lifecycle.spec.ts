import { afterEach, describe, expect, it } from '@jest/globals';
import { GaugeAbortedError, GaugeUnavailableError, type Release } from '../../src';
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { StoreCommandError } from '../../src/core/shared/command-error';
import { StoreHealth } from '../../src/core/shared/store-health';
import { LeaseRenewer } from '../../src/core/shared/lease-renewer';
import { watchClient } from '../../src/redis/redis-connection';
import { fakeGauge } from './support/fake-backend';
import { isSettled, Logs, within } from './support/helpers';

/*
 * A SharedGauge on in-memory lease scripts (no Redis): the first connect, outages and recovery are
 * driven by hand through its StoreHealth, and replies can be reordered at will.
 */
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});
function setup(...args: Parameters<typeof fakeGauge>) {
  const made = fakeGauge(...args);
  cleanups.push(() => {
    made.gauge.close();
    made.health.close();
  });
  return made;
}

describe('a Redis gauge after an outage (fail open)', () => {
  it('serves callers that queued during the outage before newcomers once Redis is back', async () => {
    const { gauge, health } = setup({
      limit: 1,
      queue: { size: 5, timeoutMs: 10_000 },
      whenStoreDown: { localLimit: 1 },
    });
    health.markUp();
    health.markDown('boom');
    const local = gauge.acquire() as Release; // the one local slot, held through the outage
    expect(typeof local).toBe('function');
    const queued = later(gauge.acquire()); // waits for a local slot
    expect(gauge.queued).toBe(1);

    health.markUp(); // one free slot in Redis
    const newcomer = later(gauge.acquire());
    const served = await within(queued, 2000, 'the caller queued in the outage is served');
    expect(await isSettled(newcomer)).toBe(false);
    expect(gauge.queued).toBe(1);
    served();
    gauge.wake(); // the release notification (the fake scripts publish nothing)
    (await within(newcomer, 2000, 'the newcomer is served next'))();
    local();
  });

  it('keeps callers that waited before the outage in order, ahead of later ones', async () => {
    const { gauge, health, leases } = setup({
      limit: 1,
      queue: { size: 5, timeoutMs: 10_000 },
      whenStoreDown: { localLimit: 1 },
    });
    health.markUp();
    leases.add('other-instance:1'); // Redis is full
    const order: string[] = [];
    const track = (name: string) =>
      later(gauge.acquire()).then((release) => {
        order.push(name);
        return release;
      });
    const first = track('first');
    await until(() => gauge.queued === 1);
    const second = track('second');
    await until(() => gauge.queued === 2);

    health.markDown('boom'); // the local slot goes to the oldest waiter
    const firstRelease = await within(first, 2000, 'the oldest waiter gets the local slot');
    const third = track('third');
    expect(gauge.queued).toBe(2);

    leases.clear();
    health.markUp();
    const secondRelease = await within(second, 2000, 'the next waiter gets the Redis slot');
    expect(order).toEqual(['first', 'second']);
    secondRelease();
    gauge.wake();
    (await within(third, 2000, 'the last waiter follows'))();
    expect(order).toEqual(['first', 'second', 'third']);
    firstRelease();
  });

  it('refuses queued callers with 503 when Redis goes away and the gauge fails closed', async () => {
    const { gauge, health, leases } = setup({ limit: 1, queue: { size: 5, timeoutMs: 10_000 } });
    health.markUp();
    leases.add('other-instance:1');
    const waiting = later(gauge.acquire());
    await until(() => gauge.queued === 1);
    health.markDown('boom');
    await expect(waiting).rejects.toBeInstanceOf(GaugeUnavailableError);
    expect(gauge.queued).toBe(0);
  });
});

describe('a Redis gauge while its store is still connecting', () => {
  it('lets a waiting caller abort', async () => {
    const { gauge } = setup({ limit: 1 });
    const leaving = new AbortController();
    const waiting = later(gauge.acquire({ signal: leaving.signal }));
    leaving.abort();
    await expect(within(waiting, 2000, 'the abort is honoured')).rejects.toBeInstanceOf(
      GaugeAbortedError,
    );
    expect(gauge.queued).toBe(0);
  });

  it('bounds the waiting callers by the queue size, or by the limit for a fail-fast gauge', async () => {
    const queued = setup({ limit: 1, queue: { size: 2, timeoutMs: 10_000 } }).gauge;
    [queued.acquire(), queued.acquire()].forEach((slot) => void later(slot));
    expect(() => queued.acquire()).toThrow(expect.objectContaining({ reason: 'queue-full' }));

    const failFast = setup({ limit: 2 }).gauge;
    [failFast.acquire(), failFast.acquire()].forEach((slot) => void later(slot));
    expect(() => failFast.acquire()).toThrow(expect.objectContaining({ reason: 'full' }));
    expect([queued.queued, failFast.queued]).toEqual([2, 2]);
  });

  it('times a waiting caller out at the queue timeout', async () => {
    const { gauge } = setup({ limit: 1, queue: { size: 2, timeoutMs: 50 } });
    const waiting = later(gauge.acquire());
    await expect(within(waiting, 2000, 'the timeout is honoured')).rejects.toMatchObject({
      name: 'GaugeExhaustedError',
      reason: 'timeout',
    });
  });

  it('serves the waiting callers in order once connected; a fail-fast one Redis finds full gets 429', async () => {
    const { gauge, health, leases } = setup({ limit: 2 });
    const order: number[] = [];
    const waiting = [1, 2].map((n) =>
      later(gauge.acquire()).then((release) => {
        order.push(n);
        return release;
      }),
    );
    // No more callers wait than could be admitted.
    expect(() => gauge.acquire()).toThrow(expect.objectContaining({ reason: 'full' }));
    leases.add('other-instance:1'); // one of the two slots is taken elsewhere

    health.markUp();
    (await within(waiting[0]!, 2000, 'the first caller is served'))();
    await expect(waiting[1]!).rejects.toMatchObject({
      name: 'GaugeExhaustedError',
      reason: 'full',
    });
    expect(order).toEqual([1]);
    expect(gauge.queued).toBe(0);
  });

  it('lets a fail-fast newcomer try Redis while the callers from the first connection are served', async () => {
    const { gauge, health } = setup({ limit: 2 });
    const waiting = later(gauge.acquire());
    health.markUp(); // the waiter's attempt is now on the wire
    expect(gauge.queued).toBe(1);
    const newcomer = later(gauge.acquire()); // a free slot: not refused
    const both = await within(Promise.all([waiting, newcomer]), 2000, 'both are served');
    for (const release of both) release();
  });

  it('serves a waiter only with a lease asked at its own level (the one asked for left meanwhile)', async () => {
    const { gauge, health, commands } = setup({ limit: 2 });
    const leaving = new AbortController();
    const critical = later(gauge.acquire({ priority: 'critical', signal: leaving.signal }));
    const low = later(gauge.acquire({ priority: 'low' }));
    health.markUp(); // the critical waiter's attempt is on the wire
    leaving.abort(); // ... and it leaves: that lease kept room by level, it is not the low one's
    await expect(critical).rejects.toBeInstanceOf(GaugeAbortedError);
    const release = await within(low, 2000, 'the low caller is served');
    expect(commands.requests.map((request) => request.rank)).toEqual([0, 3]);
    expect(commands.released).toEqual([commands.requests[0]!.id]);
    release();
  });

  it('never hands a plain lease to a keyed waiter (the caller without a key left meanwhile)', async () => {
    const { gauge, health, commands } = setup({ limit: 2 });
    const leaving = new AbortController();
    const plain = later(gauge.acquire({ signal: leaving.signal }));
    const keyed = later(gauge.acquire({ key: 'k' }));
    health.markUp(); // the plain caller's attempt is on the wire
    leaving.abort();
    await expect(plain).rejects.toBeInstanceOf(GaugeAbortedError);
    const release = await within(keyed, 2000, 'the keyed caller is served');
    // Asked for without a key, given back; then asked for under the keyed waiter's key.
    expect(commands.requests.map((request) => request.key)).toEqual([undefined, 'k:k']);
    expect(commands.released).toEqual([commands.requests[0]!.id]);
    release();
  });

  it('applies the outage policy to the waiting callers if the first connection fails', async () => {
    const closed = setup({ limit: 1, queue: { size: 2, timeoutMs: 10_000 } });
    const refused = later(closed.gauge.acquire());
    closed.health.markDown('connect ECONNREFUSED');
    await expect(refused).rejects.toBeInstanceOf(GaugeUnavailableError);

    const open = setup({ limit: 2, whenStoreDown: { localLimit: 1 } });
    const local = later(open.gauge.acquire());
    const extra = later(open.gauge.acquire());
    open.health.markDown('connect ECONNREFUSED');
    (await within(local, 2000, 'a local slot is handed out'))();
    await expect(extra).rejects.toMatchObject({ reason: 'full' });
  });
});

describe('the store health while connecting', () => {
  it('counts a first connection that is not ready in time as an outage', async () => {
    const states: string[] = [];
    const health = new StoreHealth('Redis fake', 'Redis', 60_000, new Logs(), (state) =>
      states.push(state),
    );
    cleanups.push(() => health.close());
    const client = Object.assign(new EventEmitter(), { status: 'connect' });
    health.expectUpWithin(20);
    watchClient(client as unknown as Redis, {
      up: () => health.markUp(),
      down: (reason) => health.markDown(reason),
    }); // connected, but the server never answers
    await until(() => health.state === 'down');
    expect(health.reason).toBe('not ready within 20 ms');
    client.emit('ready');
    expect([health.state, states]).toEqual(['up', ['down', 'up']]);
  });
});

/** A renewer of `gauge` alone, every 1 s, leases of 10 s. */
function renewerOf(
  gauge: ConstructorParameters<typeof LeaseRenewer>[2] extends () => Iterable<infer H> ? H : never,
  commands: ConstructorParameters<typeof LeaseRenewer>[3] extends () => infer C
    ? NonNullable<C>
    : never,
  health: ConstructorParameters<typeof LeaseRenewer>[4],
  logs: ConstructorParameters<typeof LeaseRenewer>[5],
): LeaseRenewer {
  return new LeaseRenewer(
    1000,
    10_000,
    () => [gauge],
    () => commands,
    health,
    logs,
    'Redis',
  );
}

describe('lease renewal racing a release', () => {
  it('removes again a lease that a renewal re-added after it was released', async () => {
    const { gauge, health, commands, leases } = setup({ limit: 2 });
    health.markUp();
    const release = (await gauge.acquire()) as Release;
    const id = [...leases][0]!; // the one lease just acquired
    const renewer = renewerOf(gauge, commands, health, new Logs());
    commands.holdRenewals = true;
    const renewing = renewer.renewNow(); // captured the lease; its reply is held back
    release(); // reaches Redis first
    expect(leases.has(id)).toBe(false);
    commands.applyRenewal(); // ZADD without XX re-adds it, as a late renewal would
    await renewing;
    await Promise.resolve();
    expect(leases.has(id)).toBe(false);
    expect(commands.released.filter((released) => released === id)).toHaveLength(2);
  });
});

describe('the cap sync at bootstrap answered with a script error', () => {
  it('is tried again at each renewal round until it succeeds, logged once', async () => {
    const { gauge, health, commands, logs } = setup({ limit: 2 });
    const renewer = renewerOf(gauge, commands, health, logs);
    commands.caps.set('l', 5); // stored by an instance configured otherwise: the sync warns
    commands.syncFailure = new StoreCommandError('backpressureSyncLimit', 'WRONGTYPE wrong kind');
    const syncErrors = () => logs.warnings.filter((line) => line.includes('backpressureSyncLimit'));
    const differs = () => logs.warnings.filter((line) => line.includes('configured with limit 2'));

    health.markUp(); // bootstrap: the sync fails
    await until(() => syncErrors().length === 1);
    expect(commands.syncCalls).toBe(1);
    await renewer.renewNow();
    await renewer.renewNow();
    await until(() => commands.syncCalls === 3); // once per round, no more
    expect(syncErrors()).toHaveLength(1);
    expect(health.state).toBe('up');

    commands.syncFailure = undefined; // the key is fixed: no outage needed to finish the bootstrap
    await renewer.renewNow();
    await until(() => differs().length === 1);
    await renewer.renewNow();
    await Promise.resolve();
    expect(commands.syncCalls).toBe(4);
    expect(gauge.limit).toBe(5);
  });
});

/** The caller's outcome as a promise, with rejections left to the test (none go unhandled). */
function later<T>(outcome: T | Promise<T>): Promise<T> {
  const promise = Promise.resolve(outcome);
  promise.catch(() => undefined);
  return promise;
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !condition(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(condition()).toBe(true);
}
