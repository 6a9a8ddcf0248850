import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { seeded } from '../../test/support/random';
import { ControlledDelay } from './controlled-delay';
import { GaugeFigures } from './gauge-events';
import { KeyEntry } from './partition/key-partitions';
import { LEVEL_COUNT, type PriorityRank } from './priority/priority.level';
import type { QueueDiscipline } from './queue-discipline';
import { WaitList } from './wait-list';
import type { Waiter } from './waiter';

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
});
afterEach(() => {
  jest.useRealTimers();
});

/** A list whose waiters' rejections are swallowed (each test checks who is served). */
function listOf(discipline: QueueDiscipline, size = 1000): WaitList {
  return new WaitList(new GaugeFigures('w'), 1, size, { discipline, targetMs: 5, intervalMs: 100 });
}

function join(list: WaitList, rank: PriorityRank, key: string, signal?: AbortSignal): void {
  list.add(signal, rank, new KeyEntry(key)).catch(() => undefined);
}

describe('ControlledDelay.standsAt', () => {
  it.each([1, 2, 3, 4, 5])(
    'foresees what observe + poll will say, changing nothing (seed %i)',
    (seed) => {
      const next = seeded(seed);
      const delay = new ControlledDelay(5, 100);
      const twin = new ControlledDelay(5, 100);
      let now = 0;
      for (let step = 0; step < 3000; step++) {
        now += Math.floor(next() * 40);
        const roll = next();
        if (roll < 0.1) {
          delay.drained();
          twin.drained();
          continue;
        }
        const observed = roll < 0.3 ? undefined : next() * 20;
        const foreseen = delay.standsAt(now, observed);
        expect(delay.standsAt(now, observed)).toBe(foreseen); // nothing changed
        if (observed !== undefined) twin.observe(observed, now);
        expect(twin.poll(now)).toBe(foreseen);
        if (observed !== undefined) delay.observe(observed, now);
        delay.poll(now);
        expect(delay.standing).toBe(twin.standing);
      }
    },
  );
});

describe('WaitList.peek and take', () => {
  it.each<[QueueDiscipline, number]>([
    ['codel', 1],
    ['codel', 2],
    ['codel', 3],
    ['fifo', 4],
    ['lifo', 5],
  ])(
    '%s: a hand-off serves the waiter peeked at the same instant (seed %i)',
    (discipline, seed) => {
      const next = seeded(seed);
      const list = listOf(discipline);
      const aborts: AbortController[] = [];
      let served = 0;
      for (let step = 0; step < 4000; step++) {
        jest.advanceTimersByTime(Math.floor(next() * 12));
        const roll = next();
        if (roll < 0.45) {
          const abort = new AbortController();
          aborts.push(abort);
          const rank = Math.floor(next() * LEVEL_COUNT) as PriorityRank;
          join(list, rank, `k${Math.floor(next() * 5)}`, abort.signal);
        } else if (roll < 0.5) {
          aborts.splice(Math.floor(next() * aborts.length), 1)[0]?.abort();
        } else if (roll < 0.53 && list.length >= 20) {
          list.makeRoom(Math.floor(next() * LEVEL_COUNT) as PriorityRank);
        } else {
          const now = performance.now();
          const peeked = list.peek(now);
          const shifted = list.shift(now);
          expect(shifted).toBe(peeked);
          if (shifted !== undefined) served++;
        }
      }
      expect(served).toBeGreaterThan(500);
    },
  );

  it('codel: a waiter taken by choice teaches the discipline what a shift would have', () => {
    // Two lists fed the same; one serves by shift, the other takes the oldest waiter by choice.
    const lists = [listOf('codel'), listOf('codel')] as const;
    const waiters: Waiter[][] = [[], []];
    let stood = 0;
    const joinBoth = (key: string) => {
      for (const list of lists) join(list, 2, key);
    };
    joinBoth('a');
    jest.advanceTimersByTime(10);
    joinBoth('b');
    for (let round = 0; round < 30; round++) {
      jest.advanceTimersByTime(20);
      joinBoth(`k${round}`);
      const now = performance.now();
      const wanted = lists[0].peek(now)!;
      expect(lists[0].shift(now)).toBe(wanted);
      const chosen = lists[1].peek(now)!;
      expect(lists[1].take(chosen, now)).toBe(true);
      expect(lists[1].take(chosen, now)).toBe(false); // already out
      waiters[0]!.push(wanted);
      waiters[1]!.push(chosen);
      expect(lists[1].standing).toBe(lists[0].standing);
      if (lists[0].standing) stood++;
      expect(lists[1].length).toBe(lists[0].length);
    }
    expect(stood).toBeGreaterThan(0); // 20 ms waits over whole intervals: it stood
    expect(waiters[1]!.map((w) => w.entry?.key)).toEqual(waiters[0]!.map((w) => w.entry?.key));
  });

  it('codel: a waiter shed at its key cap at a hand-off still counts toward the queue delay', () => {
    const capped = new Set<string>();
    const list = new WaitList(new GaugeFigures('w'), 1, 1000, {
      discipline: 'codel',
      targetMs: 5,
      intervalMs: 100,
      atCap: (entry) => entry.key !== undefined && capped.has(entry.key),
    });
    join(list, 1, 'p');
    jest.advanceTimersByTime(2);
    join(list, 1, 'a');
    jest.advanceTimersByTime(8);
    expect(list.shift()?.entry?.key).toBe('p'); // served late (10 ms): the interval opens
    jest.advanceTimersByTime(190);
    join(list, 2, 'b');
    jest.advanceTimersByTime(1);
    capped.add('a'); // a's key reached its cap: it is refused at this hand-off
    expect(list.shift()?.entry?.key).toBe('b');
    // a waited 199 ms over a whole interval whose shortest wait was 10: the queue stands.
    expect(list.standing).toBe(true);
  });
});
