import { describe, expect, it } from '@jest/globals';
import { PriorityHeadroom } from './priority-headroom';

/** Feeds `perSecond` arrivals of `rank` for `seconds`, evenly spaced, from `start` (ms). */
function feed(
  h: PriorityHeadroom,
  rank: 0 | 1 | 2 | 3,
  perSecond: number,
  seconds: number,
  start = 0,
) {
  const step = 1000 / perSecond;
  for (let t = start; t < start + seconds * 1000; t += step) h.arrive(rank, t);
}

describe('PriorityHeadroom', () => {
  it('keeps nothing while no higher level arrived', () => {
    const h = new PriorityHeadroom();
    feed(h, 3, 1000, 5);
    h.held(50);
    expect(h.reserveFor(3, 10)).toBe(0);
    expect(h.reserveFor(0, 10)).toBe(0);
  });

  it('keeps one slot before any hold time is known', () => {
    const h = new PriorityHeadroom();
    feed(h, 0, 10, 1);
    expect(h.reserveFor(3, 10)).toBe(1);
  });

  it('sizes the reserve so higher levels find it taken < 1 % of the time (ρ^r ≤ 0.01)', () => {
    const h = new PriorityHeadroom();
    h.held(50);
    // critical at 0.3× of a 10-slot 50 ms gauge (200/s): 60/s → ρ ≈ 0.3 → r = ⌈ln .01 / ln .3⌉ = 4
    feed(h, 0, 60, 10);
    expect(h.reserveFor(3, 10)).toBe(4);
    expect(h.reserveFor(1, 10)).toBe(4);
    expect(h.reserveFor(0, 10)).toBe(0);
    // 100 slots of 5 ms (20 000/s), critical at 0.3×: the same ρ, the same 4 slots — 4 % of the limit
    const big = new PriorityHeadroom();
    big.held(5);
    feed(big, 0, 6000, 10);
    expect(big.reserveFor(2, 100)).toBe(4);
  });

  it('sums the levels above the caller', () => {
    const h = new PriorityHeadroom();
    h.held(50);
    for (let t = 0; t < 10_000; t += 1000 / 30) {
      h.arrive(0, t);
      h.arrive(1, t);
    }
    expect(h.reserveFor(1, 10)).toBe(Math.ceil(Math.log(0.01) / Math.log(0.15)));
    expect(h.reserveFor(3, 10)).toBe(4);
  });

  it('gives lower levels nothing when higher ones alone want all the gauge serves', () => {
    const h = new PriorityHeadroom();
    h.held(50);
    feed(h, 0, 250, 10);
    expect(h.reserveFor(3, 10)).toBe(10);
  });

  it('forgets a level that stopped arriving (half-life 1 s)', () => {
    const h = new PriorityHeadroom();
    h.held(50);
    feed(h, 0, 60, 10);
    h.arrive(3, 10_000 + 12_000);
    expect(h.reserveFor(3, 10)).toBe(0);
  });

  it('keeps less when higher levels wait briefly: ρ^r · e^{-(μ-λ)W} ≤ 0.01', () => {
    const h = new PriorityHeadroom();
    h.held(50);
    feed(h, 0, 60, 10); // ρ ≈ 0.3, μ = 0.2/ms
    expect(h.reserveFor(3, 10, 0)).toBe(4);
    // W = 25 ms: (μ - λ) W ≈ 0.14 · 25 = 3.5 → ⌈(ln .01 + 3.5) / ln .3⌉ = 1
    expect(h.reserveFor(3, 10, 25)).toBe(1);
    // W = 10 ms: 1.4 → ⌈(-4.6 + 1.4) / -1.2⌉ = 3
    expect(h.reserveFor(3, 10, 10)).toBe(3);
    // a long wait needs nothing kept; the top level never has anything kept for it
    expect(h.reserveFor(3, 10, 100)).toBe(0);
    expect(h.reserveFor(0, 10, 25)).toBe(0);
    // higher levels wanting more than the gauge serves: the wait does not help
    const heavy = new PriorityHeadroom();
    heavy.held(50);
    feed(heavy, 0, 250, 10);
    expect(heavy.reserveFor(3, 10, 25)).toBe(10);
  });

  it('learns how often brief waits run out: steady releases give the reserve back, misses take it again', () => {
    const h = new PriorityHeadroom();
    h.held(50);
    feed(h, 0, 60, 10); // ρ ≈ 0.3; the model's guess: e^{-3.5} ≈ 3 % of waits run out → 1 slot
    const now = 10_000;
    expect(h.reserveFor(3, 10, 25)).toBe(1);
    // 20 waits served, none run out: (0 + 8 · 0.03) / (20 + 8) < 1 % → nothing kept
    for (let i = 0; i < 20; i++) h.waited(true, now);
    expect(h.reserveFor(3, 10, 25)).toBe(0);
    // 3 run out: m ≈ 3.24 / 31 ≈ 10 %, but never above the model's 3 % → 1
    for (let i = 0; i < 3; i++) h.waited(false, now);
    expect(h.reserveFor(3, 10, 25)).toBe(1);
    // ... and many served since: back to nothing kept
    for (let i = 0; i < 400; i++) h.waited(true, now + i);
    expect(h.reserveFor(3, 10, 25)).toBe(0);
  });

  it('forgets measured waits (half-life 2 s): back to the model when waits stop', () => {
    const h = new PriorityHeadroom();
    h.held(50);
    for (let i = 0; i < 100; i++) h.waited(false, 0);
    feed(h, 0, 60, 10);
    expect(h.reserveFor(3, 10, 25)).toBe(1); // m ≈ 100 %, capped at the model's guess
    h.waited(true, 40_000); // 20 half-lives later, one served wait: the prior dominates again
    expect(h.reserveFor(3, 10, 25)).toBe(1);
    // no wait (priorityWaitMs 0): measured waits do not matter, ρ^r ≤ 0.01 alone
    for (let i = 0; i < 100; i++) h.waited(true, 40_000);
    expect(h.reserveFor(3, 10, 0)).toBe(4);
  });

  it('waits only above a level with recent arrivals: half the mean hold, or the configured wait', () => {
    const h = new PriorityHeadroom();
    feed(h, 0, 60, 2);
    expect(h.waitFor(0, undefined)).toBe(0); // no level below critical arrived
    feed(h, 3, 100, 1, 2000);
    expect(h.waitFor(0, undefined)).toBe(0); // no hold time known yet
    expect(h.waitFor(0, 7)).toBe(7);
    h.held(50);
    expect(h.waitFor(0, undefined)).toBe(25);
    expect(h.waitFor(2, undefined)).toBe(25);
    expect(h.waitFor(3, undefined)).toBe(0); // nothing below low
    expect(h.waitFor(0, 0)).toBe(0);
  });

  it('lets as many wait as slots a full gauge frees within the wait, at least one', () => {
    const h = new PriorityHeadroom();
    expect(h.maxWaiting(10, 25)).toBe(1);
    h.held(50);
    expect(h.maxWaiting(10, 25)).toBe(5);
    expect(h.maxWaiting(10, 1)).toBe(1);
    expect(h.maxWaiting(3, 40)).toBe(3);
  });
});
