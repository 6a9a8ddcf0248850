import { afterEach, describe, expect, it } from '@jest/globals';
import {
  gradient2,
  type Gauge,
  type GaugeEvent,
  type LimitPolicy,
  type LimitPolicyFactory,
  type LimitSample,
  type Release,
} from '../../src';
import { isSettled, until, within } from '../redis/support/helpers';
import { MemoryServer, memoryInstances } from './support/memory-adapter';

/*
 * An adaptive limit on a shared gauge: the cap in the store is the policy's `max` (or what
 * `setLimit` set) and applies to all instances together; each instance adapts its own share under
 * it from its own samples. Deterministic: a scripted policy answers the shares the test sets.
 */

/** A policy whose limit the test sets, recording every sample it is fed. */
class ScriptedShare implements LimitPolicy {
  readonly samples = true;
  readonly seen: LimitSample[] = [];
  next: number[] = [];
  constructor(
    public limit: number,
    readonly max: number,
  ) {}
  update(sample: LimitSample): number {
    this.seen.push(sample);
    const limit = this.next.shift();
    if (limit !== undefined) this.limit = limit;
    return this.limit;
  }
}

/** A factory whose policies (one per instance, in creation order) the test can reach. */
function scripted(initial: number, max: number) {
  const made: ScriptedShare[] = [];
  const factory: LimitPolicyFactory = {
    policy: 'scripted',
    create: () => {
      const policy = new ScriptedShare(initial, max);
      made.push(policy);
      return policy;
    },
  };
  return { factory, made };
}

const { instance, closeAll } = memoryInstances();
afterEach(closeAll);
const queue = { size: 10, timeoutMs: 5_000 };
const leases = (server: MemoryServer) => server.leases('{g}:leases').size;
/** `acquire` as a promise: a refusal the gauge throws at once becomes a rejection. */
const take = async (gauge: Gauge) => gauge.acquire();

describe('an adaptive limit on a shared gauge: each instance adapts its share under the cap', () => {
  it('stores the policy max as the cap; an instance holds at most its share and asks the store for no more', async () => {
    const server = new MemoryServer();
    const { factory, made } = scripted(2, 5);
    const one = instance(server).gauge('g', { limit: factory });
    // resolveGaugeOptions builds one policy to validate it; the gauge builds its own.
    const share = made.at(-1)!;
    expect(one.limit).toBe(2);
    const held = (await Promise.all([one.acquire(), one.acquire()])) as Release[];
    await expect(take(one)).rejects.toMatchObject({ reason: 'full' });
    expect(leases(server)).toBe(2);
    expect(server.caps.get('{g}:limit')).toEqual({ cap: 5, configured: 5 }); // the max, not the share
    expect(one.configuredLimit).toBe(5);
    held[0]!('succeeded');
    expect(share.seen).toHaveLength(1);
    expect(share.seen[0]).toMatchObject({ outcome: 'succeeded', inFlight: 2 });
    held[1]!('dropped');
    expect(share.seen[1]).toMatchObject({ outcome: 'dropped', inFlight: 1 });
    expect(one.inFlight).toBe(0);
  });

  it('never lets the instances together exceed the cap, whatever their shares', async () => {
    const server = new MemoryServer();
    const { factory, made } = scripted(4, 6);
    const one = instance(server).gauge('g', { limit: factory });
    const two = instance(server).gauge('g', { limit: factory });
    const [, shareTwo] = made.slice(-2) as [ScriptedShare, ScriptedShare];
    const a = (await Promise.all([1, 2, 3, 4].map(() => one.acquire()))) as Release[];
    const b = await Promise.allSettled([1, 2, 3, 4].map(() => take(two)));
    expect(b.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected']);
    expect(leases(server)).toBe(6);
    // Two's share goes down while it holds two slots: nothing is revoked, no new lease until
    // its holdings fall below the new share.
    shareTwo.next = [1];
    (b[0] as PromiseFulfilledResult<Release>).value();
    expect(two.limit).toBe(1);
    expect(two.inFlight).toBe(1);
    await expect(take(two)).rejects.toMatchObject({ reason: 'full' });
    for (const release of a) release();
    (b[1] as PromiseFulfilledResult<Release>).value();
    ((await two.acquire()) as Release)();
    expect(leases(server)).toBe(0);
  });

  it('queues a caller over the share, and serves it when a local slot frees or the share rises', async () => {
    const server = new MemoryServer();
    const { factory, made } = scripted(1, 8);
    const one = instance(server).gauge('g', { limit: factory, queue });
    const share = made.at(-1)!;
    const events: GaugeEvent[] = [];
    one.subscribe((event) => events.push(event));
    const first = (await one.acquire()) as Release;
    const second = Promise.resolve(one.acquire());
    const third = Promise.resolve(one.acquire());
    await until(() => one.queued === 2, 'two callers wait for the share');
    expect(leases(server)).toBe(1);

    share.next = [3]; // the release of the first raises the share to 3: both waiters get in
    first();
    const [r2, r3] = await within(Promise.all([second, third]), 1_000, 'both waiters are served');
    expect(one.inFlight).toBe(2);
    expect(events).toContainEqual({ type: 'limit-changed', gauge: 'g', from: 1, to: 3 });

    share.next = [1];
    r2();
    const fourth = Promise.resolve(one.acquire());
    await until(() => one.queued === 1, 'over the lowered share again');
    expect(await isSettled(fourth)).toBe(false);
    r3(); // now under the share of 1: the waiter is served by the local drain
    ((await within(fourth, 1_000, 'the waiter gets the freed share')) as Release)();
    expect(leases(server)).toBe(0);
  });

  it('setLimit sets the shared cap; the limit is the lower of cap and share, reported as such', async () => {
    const server = new MemoryServer();
    const { factory, made } = scripted(4, 10);
    const one = instance(server).gauge('g', { limit: factory });
    const two = instance(server).gauge('g', { limit: factory });
    const events: GaugeEvent[] = [];
    two.subscribe((event) => events.push(event));
    ((await one.acquire()) as Release)();
    ((await two.acquire()) as Release)();
    await one.setLimit(2);
    const held = (await Promise.all([one.acquire(), one.acquire()])) as Release[];
    await expect(take(two)).rejects.toMatchObject({ reason: 'full' });
    expect(two.limit).toBe(2);
    expect(events).toContainEqual({ type: 'limit-changed', gauge: 'g', from: 4, to: 2 });
    // A cap raised above the share changes the limit only up to the share.
    await one.setLimit(9);
    ((await two.acquire()) as Release)(); // its acquire reads the cap (as a renewal would)
    expect(two.limit).toBe(4);
    expect(events.filter((e) => e.type === 'limit-changed').at(-1)).toEqual({
      type: 'limit-changed',
      gauge: 'g',
      from: 2,
      to: 4,
    });
    expect(made.at(-1)!.limit).toBe(4);
    for (const release of held) release();
  });

  it('works with a real policy: gradient2 on two instances keeps within its max in all', async () => {
    const server = new MemoryServer();
    const limit = gradient2({ initial: 3, max: 4 });
    const one = instance(server).gauge('g', { limit });
    const two = instance(server).gauge('g', { limit });
    expect([one.limit, two.limit]).toEqual([3, 3]);
    expect(one.configuredLimit).toBe(4);
    const held = await Promise.allSettled([1, 2, 3].flatMap(() => [one.acquire(), two.acquire()]));
    expect(held.filter((r) => r.status === 'fulfilled')).toHaveLength(4);
    expect(leases(server)).toBe(4);
    for (const r of held) if (r.status === 'fulfilled') (r.value as Release)();
    expect(leases(server)).toBe(0);
  });
});
