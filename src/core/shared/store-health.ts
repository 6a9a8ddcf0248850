import { describeThrown } from '../gauge-events';
import { CommandErrorLog, StoreCommandError } from './command-error';
/** Where a shared store's connection stands: gauges decide per request from this, without waiting. */
export type StoreState = 'connecting' | 'up' | 'down';

/** The log sink of a store: Nest's `Logger` and `console` both fit. */
export interface StoreLogger {
  /** The line when an outage starts (and when held leases had to be added back). */
  warn(message: string): void;
  /** The line when an outage ends. */
  log(message: string): void;
}

/**
 * Tracks whether a shared store is reachable, so that during an outage requests take the failure
 * policy at once instead of each waiting for a timeout, and so an outage is logged once (when it
 * starts and when it ends), never per request.
 *
 * Down: the connection reported it (closed, a command failed or timed out), or the first
 * connection was not ready in time. Up: the connection reported it again, or a periodic probe got
 * an answer (a server that hung without closing its connections).
 */
export class StoreHealth {
  private current: StoreState = 'connecting';
  private why = '';
  private downSince = 0;
  private probeTimer: ReturnType<typeof setInterval> | undefined;
  private readyTimer: ReturnType<typeof setTimeout> | undefined;
  private probing = false;
  private closed = false;
  private readonly commandErrors: CommandErrorLog;

  constructor(
    /** Names the store in log lines: its kind and where it is (`Redis redis://host:6379`). */
    private readonly label: string,
    /** What kind of store, for log lines (`Redis gauges now fail …`). */
    private readonly kind: string,
    private readonly probeIntervalMs: number,
    private readonly logger: StoreLogger,
    /** Told of every change between up and down (not of repeats). */
    private readonly onChange: (state: 'up' | 'down') => void,
    /** Asks the store whether it answers (undefined: nothing to ask yet). */
    private readonly probe: () => Promise<unknown> | undefined = () => undefined,
  ) {
    this.commandErrors = new CommandErrorLog(logger, kind);
  }

  get state(): StoreState {
    return this.current;
  }

  /** Why the store is down, for error messages. */
  get reason(): string {
    return this.why;
  }

  /**
   * A first connection not up within `ms` counts as an outage (a server that accepts the
   * connection but never answers), so callers waiting for it take the failure policy instead of
   * waiting on.
   */
  expectUpWithin(ms: number): void {
    if (this.current !== 'connecting' || this.readyTimer !== undefined) return;
    this.readyTimer = setTimeout(() => this.markDown(`not ready within ${ms} ms`), ms);
    this.readyTimer.unref();
  }

  /** Enters an outage (once): logs it, starts probing, tells the gauges. */
  markDown(reason: string): void {
    if (this.closed || this.current === 'down') return;
    this.current = 'down';
    this.why = reason;
    this.downSince = Date.now();
    this.logger.warn(
      `${this.label} is unreachable (${reason}); ${this.kind} gauges now fail open or closed as configured, until it is back`,
    );
    this.stopWaitingForReady();
    this.probeTimer = setInterval(this.runProbe, this.probeIntervalMs);
    this.probeTimer.unref();
    this.onChange('down');
  }

  /**
   * A store command failed with `error`. An error of the command's own (`StoreCommandError`: the
   * store answered, a script failed on a corrupted key) is no outage: it is logged once and
   * returned, for the caller concerned to be refused. Anything else enters an outage.
   */
  failed(error: unknown): StoreCommandError | undefined {
    if (error instanceof StoreCommandError) {
      this.commandErrors.report(error);
      return error;
    }
    this.markDown(describeFailure(error));
    return undefined;
  }

  /** Ends an outage (or the first connect): logs the recovery and tells the gauges. */
  markUp(): void {
    if (this.closed || this.current === 'up') return;
    const wasDown = this.current === 'down';
    this.current = 'up';
    this.why = '';
    this.stopProbing();
    this.stopWaitingForReady();
    if (wasDown) {
      const seconds = ((Date.now() - this.downSince) / 1000).toFixed(1);
      this.logger.log(`${this.label} is reachable again after ${seconds} s`);
    }
    this.onChange('up');
  }

  /** Stops probing and ignores further events (store shutdown). */
  close(): void {
    this.closed = true;
    this.stopProbing();
    this.stopWaitingForReady();
  }

  private stopWaitingForReady(): void {
    if (this.readyTimer !== undefined) clearTimeout(this.readyTimer);
    this.readyTimer = undefined;
  }

  private stopProbing(): void {
    if (this.probeTimer !== undefined) clearInterval(this.probeTimer);
    this.probeTimer = undefined;
  }

  private readonly runProbe = (): void => {
    if (this.probing) return;
    const answer = this.probe();
    if (answer === undefined) return;
    this.probing = true;
    answer
      .then(
        () => this.markUp(),
        () => undefined,
      )
      .finally(() => (this.probing = false));
  };
}

/** A short reason for a failed command, for the one log line of an outage. */
export function describeFailure(error: unknown): string {
  return error instanceof Error ? error.message || error.name : describeThrown(error);
}
