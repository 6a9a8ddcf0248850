import 'reflect-metadata';
import { describe, expect, it, jest } from '@jest/globals';
import fc from 'fast-check';
import {
  aimd,
  gradient2,
  PressureGauge,
  vegas,
  type LimitPolicy,
  type LimitPolicyFactory,
  type Outcome,
  type Release,
} from '../../src';
import { flush } from '../support/wait';

// Random operations on a gauge whose limit moves on every window (adaptive policies with tiny
// windows) or on every release (a policy answering random limits): whatever the interleaving, no
// slot is ever granted above the limit in force at that moment, and everything drains.

/** A policy that answers a random limit, from a script, on every release. */
function randomLimits(script: number[]): LimitPolicyFactory {
  return {
    policy: 'random',
    create(): LimitPolicy {
      let i = 0;
      const policy = {
        samples: true,
        limit: script[0] ?? 1,
        update() {
          policy.limit = script[i++ % script.length] ?? 1;
          return policy.limit;
        },
      };
      return policy;
    },
  };
}

const tiny = { window: { minMs: 0, maxMs: 5, minSamples: 1 }, probeIntervalMs: 50 };

const policyArb: fc.Arbitrary<[string, LimitPolicyFactory]> = fc.oneof(
  fc
    .record({ initial: fc.integer({ min: 1, max: 8 }), max: fc.constant(8) })
    .chain((o) =>
      fc.constantFrom<[string, LimitPolicyFactory]>(
        ['gradient2', gradient2({ ...o, ...tiny })],
        ['vegas', vegas({ ...o, ...tiny })],
        ['aimd', aimd({ ...o, ...tiny })],
      ),
    ),
  fc
    .array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 20 })
    .map((script) => ['random', randomLimits(script)] as [string, LimitPolicyFactory]),
);

type Op =
  | { op: 'acquire'; withSignal: boolean }
  | { op: 'release'; pick: number; outcome: Outcome }
  | { op: 'abort'; pick: number }
  | { op: 'advance'; ms: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant('acquire' as const), withSignal: fc.boolean() }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('release' as const),
      pick: fc.nat(),
      outcome: fc.constantFrom<Outcome>('succeeded', 'succeeded', 'dropped', 'failed', 'ignored'),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('abort' as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('advance' as const),
      ms: fc.integer({ min: 0, max: 40 }),
    }),
  },
);

async function run(factory: LimitPolicyFactory, queued: boolean, ops: Op[]): Promise<void> {
  const gauge = new PressureGauge({
    name: 'p',
    limit: factory,
    ...(queued ? { queue: { size: 4, timeoutMs: 100 } } : {}),
  });
  const violations: string[] = [];
  gauge.subscribe((event) => {
    if (event.type === 'admitted' && gauge.inFlight > gauge.limit) {
      violations.push(`granted with ${gauge.inFlight} held at limit ${gauge.limit}`);
    }
  });
  const held: Release[] = [];
  const waiting: AbortController[] = [];
  const take = (slot: Release | Promise<Release>) => {
    if (typeof slot === 'function') held.push(slot);
    else
      slot.then(
        (release) => held.push(release),
        () => undefined,
      );
  };
  for (const step of ops) {
    switch (step.op) {
      case 'acquire': {
        const controller = new AbortController();
        try {
          take(gauge.acquire(step.withSignal ? { signal: controller.signal } : {}));
          if (step.withSignal) waiting.push(controller);
        } catch {
          // refused: the gauge is full
        }
        break;
      }
      case 'release': {
        const [release] = held.splice(step.pick % Math.max(1, held.length), 1);
        release?.(step.outcome);
        break;
      }
      case 'abort':
        waiting.splice(step.pick % Math.max(1, waiting.length), 1)[0]?.abort();
        break;
      case 'advance':
        jest.advanceTimersByTime(step.ms);
        break;
    }
    await flush();
    expect(gauge.inFlight).toBe(held.length);
  }
  // Drain: every holder lets go, waiters are served or time out.
  for (let guard = 0; held.length > 0 || gauge.queued > 0; guard++) {
    for (const release of held.splice(0)) release();
    jest.advanceTimersByTime(101);
    await flush();
    expect(guard).toBeLessThan(100);
  }
  expect(violations).toEqual([]);
  expect([gauge.inFlight, gauge.queued]).toEqual([0, 0]);
  expect(Number.isInteger(gauge.limit) && gauge.limit >= 1).toBe(true);
}

describe('property: adaptive and moving limits', () => {
  it('no slot is granted above the limit in force, and everything drains', async () => {
    await fc.assert(
      fc.asyncProperty(
        policyArb,
        fc.boolean(),
        fc.array(opArb, { minLength: 1, maxLength: 80 }),
        async ([, factory], queued, ops) => {
          jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
          try {
            await run(factory, queued, ops);
          } finally {
            jest.useRealTimers();
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
