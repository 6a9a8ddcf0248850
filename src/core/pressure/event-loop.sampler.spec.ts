import { jest } from '@jest/globals';
import { processLoopSampler, type LoopReading } from './event-loop.sampler';

describe('the process loop sampler', () => {
  it('is one per process, runs one timer while watched and none after the last watcher left', async () => {
    const started = jest.spyOn(global, 'setInterval');
    const cleared = jest.spyOn(global, 'clearInterval');
    try {
      expect(processLoopSampler()).toBe(processLoopSampler());
      const readings: LoopReading[] = [];
      const others: LoopReading[] = [];
      const stop = processLoopSampler().watch((reading) => readings.push(reading));
      const stopOther = processLoopSampler().watch((reading) => others.push(reading));
      expect(started).toHaveBeenCalledTimes(1);
      while (readings.length < 2) await new Promise((resolve) => setImmediate(resolve));
      for (const { delayMs, utilization } of readings) {
        expect(delayMs).toBeGreaterThanOrEqual(0);
        expect(utilization).toBeGreaterThanOrEqual(0);
        expect(utilization).toBeLessThanOrEqual(1);
      }
      expect(others.length).toBeGreaterThan(0);
      stop();
      expect(cleared).not.toHaveBeenCalled();
      stopOther();
      stopOther();
      expect(cleared).toHaveBeenCalledTimes(1);
      const again = processLoopSampler().watch(() => undefined);
      expect(started).toHaveBeenCalledTimes(2);
      again();
      expect(cleared).toHaveBeenCalledTimes(2);
    } finally {
      started.mockRestore();
      cleared.mockRestore();
    }
  });
});
