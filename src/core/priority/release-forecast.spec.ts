import { describe, expect, it } from '@jest/globals';
import { ReleaseForecast } from './release-forecast';

describe('ReleaseForecast', () => {
  it('counts the held slots expected back within the window, oldest first, at most max', () => {
    const f = new ReleaseForecast();
    f.start(0);
    f.start(10);
    f.start(30);
    // mean hold 50, spread 2, window 12 at t = 40: due if since ≤ 40 + 12 − 50 − 2 = 0
    expect(f.due(40, 12, 50, 2, 10)).toBe(1);
    // at t = 50: since ≤ 10 → two
    expect(f.due(50, 12, 50, 2, 10)).toBe(2);
    expect(f.due(50, 12, 50, 2, 1)).toBe(1);
    expect(f.due(64, 12, 50, 2, 10)).toBe(2);
  });

  it('drops a slot held past its latest foretold release by more than the window, for good', () => {
    const f = new ReleaseForecast();
    f.start(0);
    f.start(10);
    // at t = 66: due if since ≤ 26; late (dropped) if since < 66 − 12 − 50 − 2 = 2
    expect(f.due(66, 12, 50, 2, 10)).toBe(1);
    // a longer mean hold later would make it due again, but its forecast already failed
    expect(f.due(66, 12, 60, 2, 10)).toBe(1);
  });

  it('forgets a slot that came back, wherever it was, once', () => {
    const f = new ReleaseForecast();
    const a = f.start(0);
    const b = f.start(10);
    const c = f.start(20);
    f.end(b);
    f.end(b);
    expect(f.due(60, 12, 50, 0, 10)).toBe(2);
    f.end(a);
    expect(f.due(60, 12, 50, 0, 10)).toBe(1);
    f.end(c);
    expect(f.due(60, 12, 50, 0, 10)).toBe(0);
    // empty, then used again: head and tail were reset
    f.start(200);
    expect(f.due(240, 12, 50, 0, 10)).toBe(1);
  });

  it('foretells nothing before a hold time is known or when holds are as unsteady as the window', () => {
    const f = new ReleaseForecast();
    f.start(0);
    expect(f.due(1000, 12, 0, 0, 10)).toBe(0);
    expect(f.due(1000, 12, 50, 12, 10)).toBe(0);
    expect(f.due(60, 12, 50, 11.9, 10)).toBe(1);
  });
});
