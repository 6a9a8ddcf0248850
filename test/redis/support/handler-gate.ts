/**
 * Lets a test decide when the handlers holding slots finish: each handler that `pass`es is counted
 * and, while the gate is closed, held until `open()`. One per suite, shared by its controllers.
 */
export class HandlerGate {
  /** How many handlers started since the last `reset()`. */
  entered = 0;
  private gate: Promise<void> = Promise.resolve();
  private release: () => void = () => undefined;

  /** Holds every handler that passes from now on, until `open()`. */
  close(): void {
    this.gate = new Promise<void>((resolve) => (this.release = resolve));
  }

  /** Lets the held handlers (and every later one) go on. */
  open(): void {
    this.release();
  }

  /** A handler starts: counted, then held while the gate is closed. */
  async pass(): Promise<void> {
    this.entered++;
    await this.gate;
  }
}
