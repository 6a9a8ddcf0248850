import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { flush } from '../../../test/support/wait';
import { GaugeConfigError, GaugeExhaustedError } from '../gauge.errors';
import type { GaugeEvent } from '../gauge-events';
import type { Release } from '../gauge.interface';
import { PressureGauge } from '../pressure-gauge';

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
});
afterEach(() => {
  jest.useRealTimers();
});

function reasonOf(fn: () => unknown): string {
  try {
    const slot = fn();
    if (typeof slot === 'function') (slot as Release)();
  } catch (error) {
    if (error instanceof GaugeExhaustedError) return error.reason;
    throw error;
  }
  return 'granted';
}

describe('per-key fairness, fail fast', () => {
  it('a key over its share is refused with key-over-share while another key still gets a slot', () => {
    const g = new PressureGauge({ name: 'k', limit: 4 });
    const events: GaugeEvent[] = [];
    g.subscribe((event) => events.push(event));
    const held: Release[] = [];
    // A key alone may use what is free, but its share is half (as if one more key came).
    held.push(g.acquire({ key: 'noisy' }) as Release, g.acquire({ key: 'noisy' }) as Release);
    // Another key arrived once: room is kept for keys under their share.
    held.push(g.acquire({ key: 'quiet' }) as Release);
    expect(reasonOf(() => g.acquire({ key: 'noisy' }))).toBe('key-over-share');
    expect(reasonOf(() => g.acquire({ key: 'quiet' }))).toBe('granted');
    expect(g.inFlight).toBe(3);
    expect(events.filter((e) => e.type === 'rejected')).toEqual([
      { type: 'rejected', gauge: 'k', reason: 'key-over-share' },
    ]);
    for (const release of held) release();
    expect(g.inFlight).toBe(0);
  });

  it('a key alone uses every slot once no other key has come for a while', async () => {
    const g = new PressureGauge({ name: 'k', limit: 4 });
    const q = g.acquire({ key: 'quiet' }) as Release;
    jest.advanceTimersByTime(10);
    q();
    jest.advanceTimersByTime(20_000); // the quiet key's demand is forgotten
    const held = [1, 2, 3].map(() => g.acquire({ key: 'noisy' }) as Release);
    // Its own first calls (within its share) kept one slot for a few seconds.
    expect(reasonOf(() => g.acquire({ key: 'noisy' }))).toBe('key-over-share');
    jest.advanceTimersByTime(5000);
    held.push(g.acquire({ key: 'noisy' }) as Release);
    expect(g.inFlight).toBe(4);
    // Full now: the over-share key is told why.
    expect(reasonOf(() => g.acquire({ key: 'noisy' }))).toBe('key-over-share');
    // A key under its share finds the gauge full and waits briefly for the next freed slot,
    // which goes to it, not to the key filling the gauge.
    const waiting = g.acquire({ key: 'other' });
    expect(waiting).toBeInstanceOf(Promise);
    expect(g.queued).toBe(1);
    held.shift()!();
    expect(reasonOf(() => g.acquire({ key: 'noisy' }))).toBe('key-over-share');
    const other = await waiting;
    expect(g.inFlight).toBe(4);
    other();
    for (const release of held) release();
    expect(g.inFlight).toBe(0);
  });

  it('a key under its share waits at most one mean hold time, then is refused full', async () => {
    const g = new PressureGauge({ name: 'k', limit: 2 });
    const held = [g.acquire({ key: 'noisy' }) as Release];
    jest.advanceTimersByTime(40);
    held[0]!(); // one hold of 40 ms measured
    held[0] = g.acquire({ key: 'noisy' }) as Release;
    // Beyond its share (1 of 2): refused, and counted as a key that fills the gauge.
    expect(reasonOf(() => g.acquire({ key: 'noisy' }))).toBe('key-over-share');
    held.push(g.acquire({ key: 'b' }) as Release); // the last slot
    const waiting = g.acquire({ key: 'quiet' }) as Promise<Release>;
    const outcome = waiting.then(
      () => 'granted',
      (error: unknown) => (error instanceof GaugeExhaustedError ? error.reason : 'other'),
    );
    jest.advanceTimersByTime(39);
    await flush();
    expect(g.queued).toBe(1);
    jest.advanceTimersByTime(2);
    expect(await outcome).toBe('full');
    expect(g.queued).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
    for (const release of held) release();
    expect(g.inFlight).toBe(0);
  });

  it('without a key filling the gauge, a key under its share is refused at once', () => {
    const g = new PressureGauge({ name: 'k', limit: 2 });
    const held = [g.acquire({ key: 'a' }), g.acquire({ key: 'b' })] as Release[];
    expect(reasonOf(() => g.acquire({ key: 'c' }))).toBe('full');
    for (const release of held) release();
  });

  it('a waiting key counts toward its cap: its brief waiters never take it past partition.limit', async () => {
    const g = new PressureGauge({ name: 'k', limit: 3, partition: { limit: 2 } });
    const first = g.acquire({ key: 'noisy' }) as Release;
    jest.advanceTimersByTime(40);
    first(); // one hold time measured: brief waits are possible
    const noisy = [g.acquire({ key: 'noisy' }), g.acquire({ key: 'noisy' })] as Release[];
    expect(reasonOf(() => g.acquire({ key: 'noisy' }))).toBe('key-over-share'); // at its cap
    const a1 = g.acquire({ key: 'a' }) as Release; // the last free slot
    const a2 = g.acquire({ key: 'a' }); // full: under its share, it waits briefly
    expect(a2).toBeInstanceOf(Promise);
    // Held 1 + waiting 1 is its cap of 2: a third call is refused, not made to wait.
    expect(reasonOf(() => g.acquire({ key: 'a' }))).toBe('key-over-share');
    noisy[0]!();
    const second = await (a2 as Promise<Release>);
    expect(g.inFlight).toBe(3);
    for (const release of [second, a1, noisy[1]!]) release();
    expect(g.inFlight).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('keeps a noisy key at 10x from starving keys under their share (>= 99 % served)', async () => {
    const g = new PressureGauge({ name: 'k', limit: 10 });
    const holding: { until: number; release: Release }[] = [];
    let quietAsked = 0;
    let quietServed = 0;
    let quietWaited = 0;
    let noisyServed = 0;
    const holdMs = 50;
    let t = 0;
    const take = (slot: Release | Promise<Release>, quiet: boolean) => {
      if (typeof slot === 'function') {
        holding.push({ until: t + holdMs, release: slot });
        if (quiet) quietServed++;
        else noisyServed++;
        return;
      }
      quietWaited++;
      slot.then(
        (release) => {
          holding.push({ until: t + holdMs, release });
          quietServed++;
        },
        () => undefined, // refused after its brief wait
      );
    };
    // 1 ms ticks for 20 s: the noisy key asks 10x what the gauge serves; 4 quiet keys each ask a
    // quarter of their share (share = 10 / 5 keys = 2 slots = 40/s; each asks 10/s).
    for (t = 0; t < 20_000; t++) {
      for (let i = holding.length - 1; i >= 0; i--) {
        if (holding[i]!.until <= t) {
          holding[i]!.release();
          holding.splice(i, 1);
        }
      }
      await Promise.resolve(); // hand-offs settle before the tick's arrivals
      for (let n = 0; n < 2; n++) {
        try {
          take(g.acquire({ key: 'noisy' }), false);
        } catch {
          // shed
        }
      }
      if (t % 25 === 0) {
        for (const quiet of ['a', 'b', 'c', 'd']) {
          if (t % 100 !== ['a', 'b', 'c', 'd'].indexOf(quiet) * 25) continue;
          quietAsked++;
          try {
            take(g.acquire({ key: quiet }), true);
          } catch {
            // refused
          }
        }
      }
      jest.advanceTimersByTime(1);
    }
    await flush();
    // A release may hand its slot to a brief waiter, which then holds it: release until none holds.
    while (holding.length > 0) {
      for (const { release } of holding.splice(0)) release();
      await flush();
    }
    expect(quietAsked).toBe(800);
    expect(quietServed / quietAsked).toBeGreaterThanOrEqual(0.99);
    // Some found the gauge full and were served by the next freed slot after a brief wait.
    expect(quietWaited).toBeGreaterThan(0);
    // The noisy key gets the rest: the quiet keys use about 2 of the 10 slots and, since they may
    // wait briefly, about 1 stays free for them (not 3, as when they are refused at once).
    expect(noisyServed).toBeGreaterThan((20_000 / holdMs) * 6.5);
    expect(g.inFlight).toBe(0);
  });

  it('a fixed per-key limit caps a key even with slots free', () => {
    const g = new PressureGauge({ name: 'k', limit: 10, partition: { limit: 2 } });
    const held = [g.acquire({ key: 'a' }), g.acquire({ key: 'a' })] as Release[];
    expect(reasonOf(() => g.acquire({ key: 'a' }))).toBe('key-over-share');
    expect(reasonOf(() => g.acquire({ key: 'b' }))).toBe('granted');
    held[0]!();
    expect(reasonOf(() => g.acquire({ key: 'a' }))).toBe('granted');
    held[1]!();
  });

  it('a fractional per-key limit follows the gauge limit', () => {
    const g = new PressureGauge({ name: 'k', limit: 8, partition: { limit: 0.25 } });
    const held = [g.acquire({ key: 'a' }), g.acquire({ key: 'a' })] as Release[];
    expect(reasonOf(() => g.acquire({ key: 'a' }))).toBe('key-over-share');
    g.setLimit(16);
    held.push(g.acquire({ key: 'a' }) as Release, g.acquire({ key: 'a' }) as Release);
    expect(reasonOf(() => g.acquire({ key: 'a' }))).toBe('key-over-share');
    for (const release of held) release();
  });

  it('a brief waiter whose fractional cap was cut while it waited is refused, not served past it', async () => {
    const g = new PressureGauge({
      name: 'k',
      limit: 4,
      partition: { limit: 0.5 },
      priorityWaitMs: 10_000,
    });
    const a = g.acquire({ key: 'a' }) as Release;
    const others = [g.acquire({ key: 'b' }), g.acquire({ key: 'b' })] as Release[];
    expect(reasonOf(() => g.acquire({ key: 'b' }))).toBe('key-over-share'); // b: at its cap of 2
    others.push(g.acquire({ key: 'c' }) as Release);
    // Gauge full, b beyond its share: a (under its share) waits for the next freed slot.
    const outcome = (g.acquire({ key: 'a' }) as Promise<Release>).then(
      (release) => (release(), 'served'),
      (error: GaugeExhaustedError) => error.reason,
    );
    expect(g.queued).toBe(1);
    g.setLimit(2); // a's cap is now 1, which it holds
    for (const release of others) release();
    expect(await outcome).toBe('key-over-share');
    expect(g).toMatchObject({ inFlight: 1, queued: 0 });
    a();
    expect(g.inFlight).toBe(0);
    expect(partitionsOf(g)?.size).toBe(0);
  });

  it('brief waiters of keys under their share do not crowd a critical caller out of its wait', async () => {
    const g = new PressureGauge({ name: 'k', limit: 2, priorityWaitMs: 1000 });
    const normal = { priority: 'normal' } as const;
    // The gauge full (noisy and q), noisy asking beyond its share: keys under theirs wait briefly.
    const held = [g.acquire({ ...normal, key: 'noisy' }), g.acquire({ ...normal, key: 'q' })];
    expect(reasonOf(() => g.acquire({ ...normal, key: 'noisy' }))).toBe('key-over-share');
    const served: string[] = [];
    const note = (who: string, slot: Release | Promise<Release>) =>
      Promise.resolve(slot).then(
        (release) => {
          served.push(who);
          release();
        },
        (error: GaugeExhaustedError) => void served.push(`${who} ${error.reason}`),
      );
    const keyed = note('a', g.acquire({ ...normal, key: 'a' }));
    expect(g.queued).toBe(1);
    // A critical caller finding the gauge full waits too, whoever else waits, and is served first.
    const critical = g.acquire({ priority: 'critical', key: 'c' });
    expect(typeof critical).toBe('object');
    const first = note('critical', critical);
    expect(g.queued).toBe(2);
    for (const release of held as Release[]) release();
    await Promise.all([keyed, first]);
    expect(served).toEqual(['critical', 'a']);
    expect(g).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it('calls without a key share one partition once the gauge partitions', () => {
    const g = new PressureGauge({ name: 'k', limit: 4, partition: { limit: 1 } });
    const first = g.acquire() as Release;
    expect(reasonOf(() => g.acquire())).toBe('key-over-share');
    expect(reasonOf(() => g.tryAcquire())).toBe('granted'.replace('granted', 'granted'));
    first();
  });

  it('a gauge that never saw a key keeps its old fast path', () => {
    const g = new PressureGauge({ name: 'k', limit: 1 });
    const held = g.acquire() as Release;
    expect(reasonOf(() => g.acquire())).toBe('full');
    held();
  });
});

describe('per-key fairness, in a queue', () => {
  it('serves waiters of keys within their share before those beyond it', async () => {
    const g = new PressureGauge({ name: 'q', limit: 2, queue: { size: 10, timeoutMs: 1000 } });
    const held = [g.acquire({ key: 'noisy' }), g.acquire({ key: 'noisy' })] as Release[];
    const served: string[] = [];
    const releases: Release[] = [];
    const join = (label: string, key: string) =>
      void (g.acquire({ key }) as Promise<Release>).then((release) => {
        served.push(label);
        releases.push(release);
      });
    join('n1', 'noisy');
    join('n2', 'noisy');
    join('q1', 'quiet');
    join('n3', 'noisy');
    join('q2', 'quiet');
    held[0]!();
    held[1]!();
    for (let i = 0; i < 5; i++) {
      await flush();
      releases.shift()?.();
    }
    await flush();
    // Shares are 1 of 2: quiet's first waiter goes first; the rest are beyond their key's
    // share (quiet's second too) and served in arrival order.
    expect(served).toEqual(['q1', 'n1', 'n2', 'n3', 'q2']);
    expect(g.inFlight).toBe(0);
  });

  it('a full queue makes room for a key within its share by shedding a waiter beyond it', async () => {
    const g = new PressureGauge({ name: 'q', limit: 1, queue: { size: 2, timeoutMs: 1000 } });
    const holder = g.acquire({ key: 'noisy' }) as Release;
    const outcomes: string[] = [];
    const join = (key: string) =>
      (g.acquire({ key }) as Promise<Release>).then(
        (release) => {
          outcomes.push(`${key} served`);
          release();
        },
        (error: GaugeExhaustedError) => outcomes.push(`${key} ${error.reason}`),
      );
    const waits = [join('noisy'), join('noisy')];
    // Full: a key within its share sheds the noisy waiter served last.
    waits.push(join('quiet'));
    // A noisy caller beyond its share finds no room: told why.
    expect(reasonOf(() => g.acquire({ key: 'noisy' }))).toBe('key-over-share');
    holder();
    await Promise.all(waits);
    expect(outcomes).toEqual(['noisy key-over-share', 'quiet served', 'noisy served']);
    expect(g.inFlight).toBe(0);
  });

  it('a per-key limit counts the key waiting callers too', () => {
    const g = new PressureGauge({
      name: 'q',
      limit: 1,
      queue: { size: 10, timeoutMs: 1000 },
      partition: { limit: 2 },
    });
    const holder = g.acquire({ key: 'a' }) as Release;
    const waiting = g.acquire({ key: 'a' }) as Promise<Release>;
    expect(reasonOf(() => g.acquire({ key: 'a' }))).toBe('key-over-share');
    holder();
    return waiting.then((release) => release());
  });

  it('a waiter whose fractional cap was cut while it waited is refused; the next waiter is served', async () => {
    const g = new PressureGauge({
      name: 'q',
      limit: 4,
      queue: { size: 4, timeoutMs: 10_000 },
      partition: { limit: 0.5 },
    });
    const a = g.acquire({ key: 'a' }) as Release;
    const others = [g.acquire({ key: 'b' }), g.acquire({ key: 'b' }), g.acquire({ key: 'c' })];
    const settled: string[] = [];
    const note = (key: string) =>
      (g.acquire({ key }) as Promise<Release>).then(
        (release) => {
          settled.push(`${key} served`);
          return release;
        },
        (error: GaugeExhaustedError) => void settled.push(`${key} ${error.reason}`),
      );
    const waiting = [note('a'), note('d')];
    g.setLimit(2); // a's cap is now 1, which it holds
    for (const release of others as Release[]) release();
    const [, d] = await Promise.all(waiting);
    expect(settled).toEqual(['a key-over-share', 'd served']);
    expect(g).toMatchObject({ inFlight: 2, queued: 0 });
    a();
    d?.();
    expect(g.inFlight).toBe(0);
    expect(partitionsOf(g)?.size).toBe(0);
  });

  it('waiters that time out, abort or are refused at close leave no key behind', async () => {
    const g = new PressureGauge({ name: 'q', limit: 1, queue: { size: 5, timeoutMs: 100 } });
    const holder = g.acquire({ key: 'h' }) as Release;
    const controller = new AbortController();
    const settled: string[] = [];
    const note = (p: Promise<Release>) =>
      p.then(
        () => settled.push('served'),
        (error: Error) => settled.push(error.name),
      );
    const a = note(g.acquire({ key: 'a', signal: controller.signal }) as Promise<Release>);
    const b = note(g.acquire({ key: 'b' }) as Promise<Release>);
    controller.abort();
    jest.advanceTimersByTime(150);
    await Promise.all([a, b]);
    const c = note(g.acquire({ key: 'c' }) as Promise<Release>);
    g.close();
    await c;
    expect(settled).toEqual(['GaugeAbortedError', 'GaugeExhaustedError', 'GaugeExhaustedError']);
    holder();
    expect(g.inFlight).toBe(0);
    expect(partitionsOf(g)?.size).toBe(0);
  });
});

describe('bounded keys', () => {
  it('forgets a key the moment it holds nothing and nobody waits', () => {
    const g = new PressureGauge({ name: 'k', limit: 4 });
    const release = g.acquire({ key: 'a' }) as Release;
    expect(partitionsOf(g)?.tracked).toBe(1);
    release();
    release();
    expect(partitionsOf(g)?.tracked).toBe(0);
  });

  it('past maxKeys, new keys share overflow partitions instead of being refused', () => {
    const g = new PressureGauge({ name: 'k', limit: 1000, partition: { maxKeys: 10 } });
    const held: Release[] = [];
    for (let i = 0; i < 200; i++) held.push(g.acquire({ key: `user-${i}` }) as Release);
    expect(held).toHaveLength(200);
    const partitions = partitionsOf(g)!;
    expect(partitions.tracked).toBe(10);
    expect(partitions.size).toBeLessThanOrEqual(10 + 64);
    for (const release of held) release();
    expect(partitions.size).toBe(0);
  });

  it('a key longer than 256 characters is kept by its digest, not its text', () => {
    const g = new PressureGauge({ name: 'k', limit: 4, partition: { limit: 1 } });
    const long = 'x'.repeat(10_000);
    const release = g.acquire({ key: long }) as Release;
    const keys = (partitionsOf(g) as unknown as { live: Map<string, unknown> }).live;
    expect([...keys.keys()].every((name) => name.length < 40)).toBe(true);
    expect(reasonOf(() => g.acquire({ key: long }))).toBe('key-over-share'); // the same key
    expect(reasonOf(() => g.acquire({ key: `${'x'.repeat(9_999)}y` }))).toBe('granted');
    release();
    expect(partitionsOf(g)?.size).toBe(0);
  });

  it('a key that overflowed stays in its overflow partition until the overflow is idle', () => {
    const g = new PressureGauge({ name: 'k', limit: 10, partition: { maxKeys: 1, limit: 1 } });
    const a = g.acquire({ key: 'a' }) as Release;
    const b = g.acquire({ key: 'b' }) as Release; // overflow
    a();
    // Room in the map again, but b still holds a slot in its overflow partition: b stays there.
    expect(reasonOf(() => g.acquire({ key: 'b' }))).toBe('key-over-share');
    b();
    expect(reasonOf(() => g.acquire({ key: 'b' }))).toBe('granted');
    expect(partitionsOf(g)?.size).toBe(0);
  });

  it('1e6 distinct keys through the gauge keep at most maxKeys tracked', () => {
    const g = new PressureGauge({ name: 'k', limit: 100, partition: { maxKeys: 1000 } });
    const window: Release[] = [];
    let peak = 0;
    for (let i = 0; i < 1_000_000; i++) {
      const slot = g.acquire({ key: `k${i}` });
      if (typeof slot === 'function') window.push(slot);
      if (window.length >= 50) window.shift()!();
      peak = Math.max(peak, partitionsOf(g)!.tracked);
    }
    for (const release of window) release();
    expect(peak).toBeLessThanOrEqual(1000);
    expect(partitionsOf(g)!.size).toBe(0);
    expect(g.inFlight).toBe(0);
  });
});

describe('option partition', () => {
  it.each([
    [{ limit: 0 }, 'partition.limit'],
    [{ limit: 1.5 }, 'partition.limit'],
    [{ limit: Number.NaN }, 'partition.limit'],
    [{ maxKeys: 0 }, 'partition.maxKeys'],
    [{ maxkeys: 10 }, 'unknown option "partition.maxkeys"'],
    ['tenant', 'option "partition" must be'],
  ])('refuses %p', (partition, message) => {
    expect(
      () => new PressureGauge({ name: 'k', partition: partition as { limit?: number } }),
    ).toThrow(GaugeConfigError);
    expect(
      () => new PressureGauge({ name: 'k', partition: partition as { limit?: number } }),
    ).toThrow(message);
  });
});

function partitionsOf(g: PressureGauge): { size: number; tracked: number } | undefined {
  return (g as unknown as { partitions?: { size: number; tracked: number } }).partitions;
}
