/**
 * Counts handler invocations running at once, as the handler itself sees them: the bench's proof
 * that a gauge of N never lets more than N handlers run, whatever the gauge's own counters say.
 */
export class HandlerCounter {
  running = 0;
  peak = 0;
  calls = 0;

  enter(): void {
    this.calls++;
    if (++this.running > this.peak) this.peak = this.running;
  }

  leave(): void {
    this.running--;
  }
}

/** The one counter of a server process (a server runs one app). */
export const counter = new HandlerCounter();
