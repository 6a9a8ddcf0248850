import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import fc from 'fast-check';
import type { Release } from '../gauge.interface';
import { PressureGauge } from '../pressure-gauge';
import { PRIORITIES, type PriorityLevel } from './priority.level';

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
});
afterEach(() => {
  jest.useRealTimers();
});

type Step =
  | { kind: 'acquire'; priority: PriorityLevel | undefined; abort: boolean }
  | { kind: 'release'; index: number }
  | { kind: 'advance'; ms: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('acquire' as const),
    priority: fc.constantFrom<PriorityLevel | undefined>(undefined, ...PRIORITIES),
    abort: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('release' as const), index: fc.nat(20) }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 60 }) }),
);

/**
 * `Gauge.mayWait` is the contract the HTTP layer relies on to take a fail-fast gauge's slot
 * synchronously (no AbortSignal, no watching the client): "true when acquire() may return a
 * promise". The brief wait of `priorityWaitMs` makes a fail-fast gauge's acquire return one, so
 * every such promise must come from a gauge that said `mayWait` just before the call.
 */
describe('mayWait on a fail-fast gauge with priorities', () => {
  it('is true before every acquire that returns a promise (any wait, any traffic)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom<number | undefined>(undefined, 0, 5, 40),
        fc.array(step, { minLength: 1, maxLength: 60 }),
        (limit, priorityWaitMs, steps) => {
          const g = new PressureGauge({ name: 'g', limit, priorityWaitMs });
          const held: Release[] = [];
          const promised: Array<{ mayWait: boolean; priority: PriorityLevel | undefined }> = [];
          for (const s of steps) {
            if (s.kind === 'advance') jest.advanceTimersByTime(s.ms);
            else if (s.kind === 'release') held.splice(s.index % (held.length || 1), 1)[0]?.();
            else {
              const mayWait = g.mayWait;
              const controller = new AbortController();
              let slot: Release | Promise<Release>;
              try {
                slot = g.acquire({ priority: s.priority, signal: controller.signal });
              } catch {
                continue; // refused at once
              }
              if (typeof slot === 'function') held.push(slot);
              else {
                promised.push({ mayWait, priority: s.priority });
                slot.then(
                  (release) => held.push(release),
                  () => undefined,
                );
                if (s.abort) controller.abort();
              }
            }
          }
          jest.runAllTimers();
          for (const release of held.splice(0)) release();
          expect(promised.filter((p) => !p.mayWait)).toEqual([]);
        },
      ),
    );
  });

  it('a caller that waits briefly was told so: mayWait is true once the gauge saw a priority', () => {
    const g = new PressureGauge({ name: 'g', limit: 1, priorityWaitMs: 20 });
    const low = g.acquire({ priority: 'low' }) as Release;
    const mayWait = g.mayWait;
    const critical = g.acquire({ priority: 'critical' });
    expect(typeof critical).not.toBe('function');
    expect(mayWait).toBe(true);
    low();
  });
});
