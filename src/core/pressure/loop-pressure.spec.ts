import { GaugeConfigError, GaugeExhaustedError } from '../gauge.errors';
import type { GaugeEvent } from '../gauge-events';
import { PressureGauge } from '../pressure-gauge';
import type { LoopReading, LoopSampler, LoopWatcher } from './event-loop.sampler';
import { CALM_READINGS_TO_RECOVER, LoopPressure, resolveEventLoop } from './loop-pressure';

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

const LEVELS = ['critical', 'high', 'normal', 'low'] as const;

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

describe('LoopPressure', () => {
  let sampler: ScriptedSampler;
  let pressure: LoopPressure;
  beforeEach(() => {
    sampler = new ScriptedSampler();
    pressure = new LoopPressure({ maxDelayMs: 30, sampler });
  });

  it('sheds low on the first late reading, normal on the next, never high or critical', () => {
    expect(pressure.shedding).toBeUndefined();
    sampler.read(31);
    expect(pressure.shedding).toBe('low');
    expect([pressure.sheds(0), pressure.sheds(1), pressure.sheds(2), pressure.sheds(3)]).toEqual([
      false,
      false,
      false,
      true,
    ]);
    sampler.read(500, 0.5, 10);
    expect(pressure.shedding).toBe('normal');
    expect([pressure.sheds(0), pressure.sheds(1), pressure.sheds(2)]).toEqual([false, false, true]);
  });

  it('lets one level back in after enough calm readings in a row, not before', () => {
    sampler.read(100, 0.5, 2);
    sampler.read(5, 0.5, CALM_READINGS_TO_RECOVER - 1);
    expect(pressure.shedding).toBe('normal');
    sampler.read(5);
    expect(pressure.shedding).toBe('low');
    sampler.read(5, 0.5, CALM_READINGS_TO_RECOVER);
    expect(pressure.shedding).toBeUndefined();
  });

  it('holds its level between half the threshold and the threshold, and a late reading resets the calm', () => {
    sampler.read(100);
    sampler.read(20, 0.5, 50); // under 30, above 15: neither worse nor calm
    expect(pressure.shedding).toBe('low');
    sampler.read(5, 0.5, CALM_READINGS_TO_RECOVER - 1);
    sampler.read(31);
    expect(pressure.shedding).toBe('normal');
    sampler.read(5, 0.5, CALM_READINGS_TO_RECOVER - 1);
    expect(pressure.shedding).toBe('normal');
  });

  it('takes utilization as a signal only when asked to', () => {
    sampler.read(0, 1, 3);
    expect(pressure.shedding).toBeUndefined();
    const busy = new LoopPressure({ maxDelayMs: 30, maxUtilization: 0.9, sampler });
    sampler.read(0, 0.95);
    expect(busy.shedding).toBe('low');
    sampler.read(0, 0.85, 20); // under 0.9 but over 90 % of it: not calm
    expect(busy.shedding).toBe('low');
    sampler.read(0, 0.5, CALM_READINGS_TO_RECOVER);
    expect(busy.shedding).toBeUndefined();
  });

  it('stops watching when closed', () => {
    expect(sampler.watchers).toHaveLength(1);
    pressure.close();
    expect(sampler.watchers).toHaveLength(0);
  });
});

describe('a gauge with eventLoop', () => {
  it('refuses the shed levels at once with shed-pressure, counted and reported', () => {
    const sampler = new ScriptedSampler();
    const gauge = new PressureGauge({ name: 'g', limit: 5, eventLoop: { sampler } });
    const events: GaugeEvent[] = [];
    gauge.subscribe((event) => events.push(event));
    expect(refused(gauge)).toEqual([]);
    sampler.read(1000);
    expect(refused(gauge)).toEqual(['low']);
    const normal = gauge.tryAcquire();
    expect(normal).toBeDefined();
    normal?.();
    sampler.read(1000);
    expect(refused(gauge)).toEqual(['normal', 'low']);
    expect(gauge.tryAcquire()).toBeUndefined();
    expect(() => gauge.acquire()).toThrow(
      /sheds this priority while the event loop is under pressure/,
    );
    expect(gauge.rejected).toBe(5);
    expect(events.filter((e) => e.type === 'rejected')).toEqual(
      new Array(5).fill({ type: 'rejected', gauge: 'g', reason: 'shed-pressure' }),
    );
    expect(gauge.inFlight).toBe(0);
    gauge.close();
    expect(sampler.watchers).toHaveLength(0);
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
