import fc from 'fast-check';
import { GaugeConfigError, GaugeExhaustedError } from '../gauge.errors';
import type { GaugeEvent } from '../gauge-events';
import { PressureGauge } from '../pressure-gauge';
import type { PriorityRank } from '../priority/priority.level';
import type { LoopReading, LoopSampler, LoopWatcher } from './event-loop.sampler';
import {
  CALM_READINGS_TO_RECOVER,
  LoopPressure,
  MAX_CUT,
  MAX_RAISE,
  MIN_CAP,
  resolveEventLoop,
  TARGET_SHARE,
} from './loop-pressure';

/** A sampler the test drives: each `read` is one interval's reading. */
class ScriptedSampler implements LoopSampler {
  watchers: LoopWatcher[] = [];
  watch(watcher: LoopWatcher): () => void {
    this.watchers.push(watcher);
    return () => {
      this.watchers = this.watchers.filter((each) => each !== watcher);
    };
  }
  read(delayMs: number, utilization = 0.5, times = 1): void {
    const reading: LoopReading = { delayMs, utilization };
    for (let i = 0; i < times; i++) for (const watcher of this.watchers) watcher(reading);
  }
}

const MAX_DELAY = 30;
/** The delay the controller steers to with `maxDelayMs: 30`. */
const TARGET = MAX_DELAY * TARGET_SHARE;
const [CRITICAL, HIGH, NORMAL, LOW] = [0, 1, 2, 3] as const;

describe('LoopPressure', () => {
  let sampler: ScriptedSampler;
  let held: number;
  let pressure: LoopPressure;
  beforeEach(() => {
    sampler = new ScriptedSampler();
    held = 0;
    pressure = new LoopPressure({ maxDelayMs: MAX_DELAY, sampler }, () => held);
  });

  it('caps nothing while the loop is on or under its target', () => {
    sampler.read(TARGET, 0.99, 20);
    expect(pressure.inFlightCap).toBeUndefined();
    for (const rank of [CRITICAL, HIGH, NORMAL, LOW]) expect(pressure.sheds(rank, 1e6)).toBe(false);
  });

  it('on a reading over target refuses low and caps normal below what is held, cut in proportion to the excess', () => {
    held = 40;
    sampler.read(TARGET * 1.4); // 40 % over: a cut of 10 %
    expect(pressure.inFlightCap).toBeCloseTo(36);
    expect(pressure.sheds(LOW, 0)).toBe(true);
    expect(pressure.sheds(NORMAL, 35)).toBe(false);
    expect(pressure.sheds(NORMAL, 37)).toBe(true);
    expect(pressure.sheds(HIGH, 1e6)).toBe(false);
    expect(pressure.sheds(CRITICAL, 1e6)).toBe(false);
  });

  it('cuts at most half of what is held per reading, however late, and never below MIN_CAP', () => {
    held = 40;
    sampler.read(10_000);
    expect(pressure.inFlightCap).toBe(40 * (1 - MAX_CUT));
    sampler.read(10_000);
    expect(pressure.inFlightCap).toBe(10);
    held = 3; // fewer held than the cap: the cut is from what is held
    sampler.read(10_000);
    expect(pressure.inFlightCap).toBe(1.5);
    sampler.read(10_000, 0.5, 10);
    expect(pressure.inFlightCap).toBe(MIN_CAP);
    expect(pressure.sheds(NORMAL, 0)).toBe(false);
  });

  it('raises a refusing cap by at most 1/8 per reading under target, and a cap refusing nobody not at all', () => {
    held = 8;
    sampler.read(TARGET * 3); // cap 4
    expect(pressure.inFlightCap).toBe(4);
    sampler.read(0);
    expect(pressure.inFlightCap).toBe(4); // refused nobody since the last reading
    expect(pressure.sheds(NORMAL, 4)).toBe(true);
    sampler.read(0);
    expect(pressure.inFlightCap).toBe(4 * (1 + MAX_RAISE));
    expect(pressure.sheds(NORMAL, 4.4)).toBe(false);
    expect(pressure.sheds(NORMAL, 5)).toBe(true);
    sampler.read(TARGET * 0.5);
    expect(pressure.inFlightCap).toBeCloseTo(4.5 * (1 + 0.5 / 8));
  });

  it('lifts the cap (low back in) after calm readings in a row that refused nobody; a refusal or a busier reading starts the count again', () => {
    held = 8;
    sampler.read(TARGET * 3);
    sampler.read(0, 0.5, CALM_READINGS_TO_RECOVER - 1);
    expect(pressure.sheds(NORMAL, 100)).toBe(true); // refused: this calm reading does not count
    sampler.read(0);
    sampler.read(0, 0.5, CALM_READINGS_TO_RECOVER - 1);
    sampler.read(TARGET * 1.25); // over target: the count starts again
    sampler.read(0, 0.5, CALM_READINGS_TO_RECOVER - 1);
    expect(pressure.inFlightCap).toBeDefined();
    expect(pressure.sheds(LOW, 0)).toBe(true);
    sampler.read(0);
    expect(pressure.inFlightCap).toBeUndefined();
    expect(pressure.sheds(LOW, 1e6)).toBe(false);
    expect(pressure.sheds(NORMAL, 1e6)).toBe(false);
  });

  it('a loop held just under target, with nobody refused, gets its cap lifted (low is not kept out for good)', () => {
    held = 8;
    sampler.read(TARGET * 3);
    expect(pressure.sheds(LOW, 0)).toBe(true);
    // Between half the target and the target, the cap refusing nobody: calm enough.
    sampler.read(TARGET * 0.9, 0.5, CALM_READINGS_TO_RECOVER - 1);
    expect(pressure.inFlightCap).toBeDefined();
    sampler.read(TARGET * 0.9);
    expect(pressure.inFlightCap).toBeUndefined();
    expect(pressure.sheds(LOW, 1e6)).toBe(false);
  });

  it('a late reading while the gauge holds nothing starts no cap (its calls are not the cause)', () => {
    held = 0;
    sampler.read(TARGET * 3);
    expect(pressure.inFlightCap).toBeUndefined();
    expect(pressure.sheds(NORMAL, 0)).toBe(false);
    expect(pressure.sheds(LOW, 0)).toBe(false);
    held = 1;
    sampler.read(TARGET * 3);
    expect(pressure.inFlightCap).toBeDefined();
  });

  it('settles where the loop is on target instead of oscillating, with demand above what the process serves', () => {
    // A CPU-bound process: each slot held makes every turn 1 ms longer, so the loop is late by
    // about TARGET / 5 ms per slot (on target at 5 held); callers keep 70 slots' worth coming.
    const demand = 70;
    const caps: number[] = [];
    const inFlight: number[] = [];
    held = demand;
    for (let reading = 0; reading < 200; reading++) {
      let admitted = 0;
      while (admitted < demand && !pressure.sheds(NORMAL, admitted)) admitted++;
      held = admitted;
      sampler.read((held * TARGET) / 5);
      caps.push(pressure.inFlightCap ?? Infinity);
      inFlight.push(held);
    }
    expect(caps.every(Number.isFinite)).toBe(true); // never lifted into the flood again
    for (let i = 1; i < caps.length; i++) {
      expect(caps[i]!).toBeGreaterThanOrEqual(caps[i - 1]! * (1 - MAX_CUT) - 1e-9);
      expect(caps[i]!).toBeLessThanOrEqual(caps[i - 1]! * (1 + MAX_RAISE) + 1e-9);
    }
    const settled = inFlight.slice(50);
    expect(Math.min(...settled)).toBeGreaterThanOrEqual(4);
    expect(Math.max(...settled)).toBeLessThanOrEqual(6);
  });

  it('never refuses high or critical, and refuses low whenever it refuses normal (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            delayMs: fc.double({ min: 0, max: 1000, noNaN: true }),
            utilization: fc.double({ min: 0, max: 1, noNaN: true }),
            held: fc.nat(200),
          }),
          { maxLength: 60 },
        ),
        fc.nat(300),
        (readings, asked) => {
          const scripted = new ScriptedSampler();
          let now = 0;
          const under = new LoopPressure(
            { maxDelayMs: MAX_DELAY, maxUtilization: 0.9, sampler: scripted },
            () => now,
          );
          for (const reading of readings) {
            now = reading.held;
            scripted.read(reading.delayMs, reading.utilization);
            for (const rank of [CRITICAL, HIGH] as PriorityRank[]) {
              if (under.sheds(rank, asked)) return false;
            }
            if (under.sheds(NORMAL, asked) && !under.sheds(LOW, asked)) return false;
            const cap = under.inFlightCap;
            if (cap !== undefined && !(cap >= MIN_CAP)) return false;
          }
          return true;
        },
      ),
    );
  });

  it('takes utilization as a signal only when asked to', () => {
    held = 10;
    sampler.read(0, 1, 3);
    expect(pressure.inFlightCap).toBeUndefined();
    const busy = new LoopPressure(
      { maxDelayMs: MAX_DELAY, maxUtilization: 0.8, sampler },
      () => 10,
    );
    sampler.read(0, 0.96); // 20 % over: a cut of 5 %
    expect(busy.inFlightCap).toBeCloseTo(9.5);
    sampler.read(0, 0.3, CALM_READINGS_TO_RECOVER);
    expect(busy.inFlightCap).toBeUndefined();
  });

  it('stops watching when closed', () => {
    expect(sampler.watchers).toHaveLength(1);
    pressure.close();
    expect(sampler.watchers).toHaveLength(0);
  });
});

const LEVELS = ['critical', 'high', 'normal', 'low'] as const;

/** Which levels `gauge` refuses for pressure now (each admitted call released at once). */
function refused(gauge: PressureGauge): string[] {
  return LEVELS.filter((priority) => {
    try {
      const slot = gauge.acquire({ priority });
      if (typeof slot === 'function') slot();
      return false;
    } catch (error) {
      expect(error).toBeInstanceOf(GaugeExhaustedError);
      expect((error as GaugeExhaustedError).reason).toBe('shed-pressure');
      return true;
    }
  });
}

describe('a gauge with eventLoop', () => {
  it('refuses low, and normal over the cap, with shed-pressure, counted and reported', () => {
    const sampler = new ScriptedSampler();
    const gauge = new PressureGauge({ name: 'g', limit: 10, eventLoop: { sampler } });
    const events: GaugeEvent[] = [];
    gauge.subscribe((event) => events.push(event));
    expect(refused(gauge)).toEqual([]);
    const held = [
      gauge.tryAcquire()!,
      gauge.tryAcquire()!,
      gauge.tryAcquire()!,
      gauge.tryAcquire()!,
    ];
    sampler.read(1000); // cap: half the 4 held
    expect(refused(gauge)).toEqual(['normal', 'low']);
    expect(gauge.tryAcquire()).toBeUndefined();
    expect(() => gauge.acquire()).toThrow(
      /sheds this priority while the event loop is under pressure/,
    );
    held.splice(0, 3).forEach((release) => release());
    expect(refused(gauge)).toEqual(['low']); // 1 held, under the cap of 2
    expect(gauge.rejected).toBe(5);
    expect(events.filter((e) => e.type === 'rejected')).toEqual(
      new Array(5).fill({ type: 'rejected', gauge: 'g', reason: 'shed-pressure' }),
    );
    held[0]!();
    expect(gauge.inFlight).toBe(0);
    gauge.close();
    expect(sampler.watchers).toHaveLength(0);
  });

  it('admits critical and high up to its own limit under pressure, then refuses them as full', () => {
    const sampler = new ScriptedSampler();
    const gauge = new PressureGauge({ name: 'g', limit: 4, eventLoop: { sampler } });
    sampler.read(1000);
    const slots = [0, 1, 2, 3].map(() => gauge.acquire({ priority: 'critical' }));
    expect(slots.every((slot) => typeof slot === 'function')).toBe(true);
    expect(() => gauge.acquire({ priority: 'high' })).toThrow(
      expect.objectContaining({ reason: 'full' }),
    );
    gauge.close();
  });

  it("sheds a queue gauge's callers before they queue", async () => {
    const sampler = new ScriptedSampler();
    const gauge = new PressureGauge({
      name: 'q',
      limit: 1,
      queue: { size: 5, timeoutMs: 1000 },
      eventLoop: { sampler },
    });
    const held = gauge.acquire();
    sampler.read(1000);
    expect(() => gauge.acquire({ priority: 'low' })).toThrow(GaugeExhaustedError);
    expect(() => gauge.acquire()).toThrow(GaugeExhaustedError); // 1 held, cap 1
    expect(gauge.queued).toBe(0);
    const waiting = gauge.acquire({ priority: 'high' });
    expect(gauge.queued).toBe(1);
    if (typeof held === 'function') held();
    const release = await waiting;
    release();
    expect(gauge.inFlight).toBe(0);
    gauge.close();
  });
});

describe('resolveEventLoop', () => {
  const where = 'Gauge "g"';
  it.each([
    [
      'a string',
      'yes',
      /option "eventLoop" must be true or \{ maxDelayMs, maxUtilization \}, got "yes"/,
    ],
    ['null', null, /option "eventLoop" must be true or/],
    ['an unknown key', { maxDelay: 5 }, /unknown option "eventLoop.maxDelay"/],
    [
      'a zero delay',
      { maxDelayMs: 0 },
      /option "eventLoop.maxDelayMs" must be a number of milliseconds above 0, got 0/,
    ],
    ['a string delay', { maxDelayMs: '30' }, /"eventLoop.maxDelayMs".*got "30"/],
    [
      'utilization 1',
      { maxUtilization: 1 },
      /"eventLoop.maxUtilization" must be a number between 0 and 1 \(exclusive\), got 1/,
    ],
    ['utilization NaN', { maxUtilization: NaN }, /"eventLoop.maxUtilization"/],
    ['a sampler without watch', { sampler: {} }, /"eventLoop.sampler" must have watch/],
  ])('refuses %s, naming the gauge and the option', (_label, value, message) => {
    expect(() => resolveEventLoop(where, value)).toThrow(GaugeConfigError);
    expect(() => resolveEventLoop(where, value)).toThrow(message);
    expect(() => resolveEventLoop(where, value)).toThrow(/^Gauge "g": /);
  });

  it('takes true, false and absent', () => {
    expect(resolveEventLoop(where, undefined)).toBeUndefined();
    expect(resolveEventLoop(where, false)).toBeUndefined();
    expect(resolveEventLoop(where, true)).toMatchObject({ maxDelayMs: 30 });
  });
});
