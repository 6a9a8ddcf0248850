import { describe, expect, it } from '@jest/globals';
import { ControlledDelay } from './controlled-delay';

describe('ControlledDelay', () => {
  it('is standing only after a whole interval whose shortest wait stayed above target', () => {
    const delay = new ControlledDelay(5, 100);
    expect(delay.observe(50, 0)).toBe(false); // opens the first interval
    expect(delay.observe(20, 60)).toBe(false);
    expect(delay.observe(30, 100)).toBe(true); // interval [0, 100): min 20 > 5
    expect(delay.standing).toBe(true);
  });

  it('is not standing when one wait in the interval was at or below target', () => {
    const delay = new ControlledDelay(5, 100);
    delay.observe(50, 0);
    delay.observe(5, 50);
    expect(delay.observe(50, 100)).toBe(false);
    // the next interval started at 100 with 50: all above target by 200
    expect(delay.observe(40, 150)).toBe(false);
    expect(delay.observe(40, 200)).toBe(true);
  });

  it('a drained queue ends a standing spell at once and counts as a zero wait', () => {
    const delay = new ControlledDelay(5, 100);
    delay.observe(50, 0);
    expect(delay.observe(50, 100)).toBe(true);
    delay.drained();
    expect(delay.standing).toBe(false);
    expect(delay.observe(50, 150)).toBe(false);
    expect(delay.observe(50, 200)).toBe(false); // the interval [100, 200) saw the drain
  });

  it('sheds past twice the target', () => {
    expect(new ControlledDelay(5, 100).sloughMs).toBe(10);
  });
});
