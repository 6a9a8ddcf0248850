import { Readable } from 'node:stream';
import { Subject } from 'rxjs';
import { Deferred } from '../../support/deferred';

/**
 * What the test controllers report to and are held by: every handler entry in order, one gate per
 * entry that the test opens, and a stream / subject the test feeds. Provided by value, one per app.
 */
export class Probe {
  /** Labels of the handlers that started, in the order they started. */
  readonly entered: string[] = [];
  /** Raw responses of handlers that asked to be watched, to see the client leave. */
  readonly responses = new Map<string, { closed?: boolean; destroyed?: boolean }>();
  /** Events an SSE or Observable handler emits. */
  readonly events = new Subject<string>();
  /** The body a `StreamableFile` handler sends; the test pushes its chunks. */
  readonly body = new Readable({ read() {} });
  /** Gates of the handlers still held, oldest first (a label may be held more than once). */
  private readonly gates: Array<{ label: string; gate: Deferred }> = [];
  /** Set by `openAll`: handlers that start from now on pass at once. */
  private open = false;

  /** Records that handler `label` started and returns what holds it until `pass` or `fail`. */
  enter(label: string): Promise<void> {
    this.entered.push(label);
    if (this.open) return Promise.resolve();
    const gate = new Deferred();
    this.gates.push({ label, gate });
    return gate.promise;
  }

  /** Lets the (oldest held) handler `label` go on. */
  pass(label: string): void {
    this.take(label).resolve();
  }

  /** Makes the (oldest held) handler `label` fail with `error`. */
  fail(label: string, error: unknown): void {
    this.take(label).reject(error);
  }

  /** Lets every held handler go (and test cleanup). */
  passAll(): void {
    for (const { gate } of this.gates.splice(0)) gate.resolve();
  }

  /**
   * Teardown: lets every held handler go and every later one pass at once, so a waiter granted
   * while the app closes (a queue hands the freed slot on) cannot hold `close()` open.
   */
  openAll(): void {
    this.open = true;
    this.passAll();
  }

  private take(label: string): Deferred {
    const index = this.gates.findIndex((held) => held.label === label);
    if (index < 0) throw new Error(`no handler "${label}" is held`);
    return this.gates.splice(index, 1)[0]!.gate; // index was found above
  }
}
