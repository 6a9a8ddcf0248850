/** Counts handler runs in progress and the most at once: what the limit is about. */
export class Runs {
  now = 0;
  peak = 0;

  start(): void {
    this.now++;
    this.peak = Math.max(this.peak, this.now);
  }

  end(): void {
    this.now--;
  }
}
