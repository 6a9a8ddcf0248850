import { afterAll, afterEach, describe, expect, it, jest } from '@jest/globals';
import { GaugeFigures, describeThrown, type GaugeEvent } from './gauge-events';

describe('GaugeFigures: a listener that throws', () => {
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  afterEach(() => {
    warn.mockClear();
  });
  afterAll(() => {
    warn.mockRestore();
  });

  it('breaks neither the gauge nor the other listeners, and warns once per listener', () => {
    const figures = new GaugeFigures('pdf');
    const seen: GaugeEvent['type'][] = [];
    const broken = () => {
      throw new Error('listener bug');
    };
    const alsoBroken = () => {
      throw new Error('another bug');
    };
    figures.subscribe(broken);
    figures.subscribe((event) => void seen.push(event.type));
    figures.subscribe(alsoBroken);
    for (let i = 0; i < 1_000; i++) {
      figures.admit(0);
      figures.release(1, 'succeeded');
    }
    figures.reject('full');
    expect({ admitted: figures.admitted, released: figures.released }).toEqual({
      admitted: 1_000,
      released: 1_000,
    });
    expect(figures.rejected).toBe(1);
    expect(seen).toHaveLength(2_001);
    expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
      'A listener of gauge "pdf" threw on "admitted": Error: listener bug (its later throws are not reported)',
      'A listener of gauge "pdf" threw on "admitted": Error: another bug (its later throws are not reported)',
    ]);
  });

  it('warns once for a listener of several gauges, and again for a new listener', () => {
    const pdf = new GaugeFigures('pdf');
    const csv = new GaugeFigures('csv');
    const broken = () => {
      throw new Error('bug');
    };
    pdf.subscribe(broken);
    csv.subscribe(broken);
    pdf.queue();
    csv.queue();
    expect(warn).toHaveBeenCalledTimes(1);
    const unsubscribe = pdf.subscribe(() => {
      throw new Error('bug');
    });
    pdf.queue();
    pdf.queue();
    unsubscribe();
    expect(warn).toHaveBeenCalledTimes(2);
  });

  it('survives a thrown value that cannot be turned into a string', () => {
    const figures = new GaugeFigures('pdf');
    figures.subscribe(() => {
      throw Object.create(null) as unknown; // String() of it throws a TypeError
    });
    expect(() => figures.storeUp()).not.toThrow();
    expect(String(warn.mock.calls[0]?.[0])).toContain('a value that cannot be shown');
    expect(describeThrown(new Error('x'))).toBe('Error: x');
  });
});
