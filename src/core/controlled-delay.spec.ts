import { describe, expect, it } from '@jest/globals';
import { ControlledDelay } from './controlled-delay';

/** A hand-off at `now` whose oldest waiter waited `waitMs`: observe, then poll (as `WaitList` does). */
function handOff(delay: ControlledDelay, waitMs: number, now: number): boolean {
  delay.observe(waitMs, now);
  return delay.poll(now);
}

describe('ControlledDelay', () => {
  it('is standing only after a whole interval whose shortest wait stayed above target', () => {
    const delay = new ControlledDelay(5, 100);
    expect(handOff(delay, 50, 0)).toBe(false); // opens the first interval
    expect(handOff(delay, 20, 60)).toBe(false);
    expect(handOff(delay, 30, 100)).toBe(true); // interval [0, 100): min 20 > 5
    expect(delay.standing).toBe(true);
  });

  it('is not standing when one wait in the interval was at or below target', () => {
    const delay = new ControlledDelay(5, 100);
    handOff(delay, 50, 0);
    handOff(delay, 5, 50);
    expect(handOff(delay, 50, 100)).toBe(false);
    // the next interval started at 100: all above target by 200
    expect(handOff(delay, 40, 150)).toBe(false);
    expect(handOff(delay, 40, 200)).toBe(true);
  });

  it('a queue that drained in an interval is not standing at its end', () => {
    const delay = new ControlledDelay(5, 100);
    handOff(delay, 50, 0);
    delay.drained();
    expect(handOff(delay, 50, 100)).toBe(false);
  });

  it('a standing spell survives an empty queue; it ends only after a whole interval with nobody late', () => {
    const delay = new ControlledDelay(5, 100);
    handOff(delay, 50, 0);
    expect(handOff(delay, 50, 100)).toBe(true);
    delay.drained(); // the stale waiters were shed: not a sign the load went away
    expect(delay.poll(150)).toBe(true);
    delay.observe(30, 180); // a late waiter (shed or served) at 180
    delay.observe(1, 250); // on time: does not extend the spell
    expect(delay.poll(279)).toBe(true);
    expect(delay.poll(280)).toBe(false); // [180, 280) saw nobody late
    // FIFO again, with a fresh interval from 280
    expect(handOff(delay, 50, 300)).toBe(false);
    expect(handOff(delay, 50, 380)).toBe(true);
  });

  it('sheds past twice the target', () => {
    expect(new ControlledDelay(5, 100).sloughMs).toBe(10);
  });
});
