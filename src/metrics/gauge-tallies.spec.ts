import { GaugeFigures } from '../core/gauge-events';
import { PressureGauge } from '../core/pressure-gauge';
import { GaugeTally, REFUSAL_REASONS, type DurationSink } from './gauge-tallies';

const NO_SINK: DurationSink = { waited: () => undefined, held: () => undefined };

describe('GaugeTally', () => {
  it('counts every reason a gauge reports under its own label, and nothing under another', () => {
    const figures = new GaugeFigures('g');
    const tally = new GaugeTally('g', NO_SINK);
    figures.subscribe(tally.listener);
    const expected = Object.fromEntries(REFUSAL_REASONS.map((reason) => [reason, 0]));
    const bump = (label: string, report: () => void) => {
      report();
      expected[label] = (expected[label] ?? 0) + 1;
      for (const reason of REFUSAL_REASONS) expect(tally.refused(reason)).toBe(expected[reason]);
    };
    bump('full', () => figures.reject('full'));
    bump('queue-full', () => figures.reject('queue-full'));
    bump('shed-priority', () => figures.reject('shed-priority'));
    bump('key-over-share', () => figures.reject('key-over-share'));
    bump('shed-pressure', () => figures.reject('shed-pressure'));
    bump('unavailable', () => figures.reject('unavailable'));
    bump('timeout', () => figures.timeOut(5, 'queue-timeout'));
    bump('shed-delay', () => figures.timeOut(5, 'shed-delay'));
    bump('aborted', () => figures.abort(5));
    expect(Object.values(expected).every((count) => count === 1)).toBe(true);
  });

  it('sums to the gauge figures: rejected, timed out, aborted', () => {
    const gauge = new PressureGauge({ name: 'g', limit: 1 });
    const tally = new GaugeTally('g', NO_SINK);
    gauge.subscribe(tally.listener);
    const release = gauge.acquire({ priority: 'critical' });
    expect(() => gauge.acquire({ priority: 'low' })).toThrow();
    expect(() => gauge.acquire()).toThrow();
    if (typeof release === 'function') release();
    const rejected = [
      'full',
      'queue-full',
      'shed-priority',
      'key-over-share',
      'shed-pressure',
      'unavailable',
    ] as const;
    expect(rejected.reduce((sum, reason) => sum + tally.refused(reason), 0)).toBe(gauge.rejected);
    expect(gauge.rejected).toBe(2);
  });
});
