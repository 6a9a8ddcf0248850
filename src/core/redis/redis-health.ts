import type { Redis } from 'ioredis';

/** Where the store's connection stands: gauges decide per request from this, without waiting. */
export type RedisState = 'connecting' | 'up' | 'down';

/** The log sink of a store: Nest's `Logger` and `console` both fit. */
export interface StoreLogger {
  warn(message: string): void;
  log(message: string): void;
}

/**
 * Tracks whether Redis is reachable, so that during an outage requests take the failure policy at
 * once instead of each waiting for a timeout, and so an outage is logged once (when it starts and
 * when it ends), never per request.
 *
 * Down: the connection closed, or a command failed or timed out. Up: the client is ready again
 * (after ioredis reconnects), or a periodic PING succeeds (a server that hung without closing).
 */
export class RedisHealth {
  private current: RedisState = 'connecting';
  private why = '';
  private downSince = 0;
  private lastError: string | undefined;
  private client: Redis | undefined;
  private probeTimer: ReturnType<typeof setInterval> | undefined;
  private readyTimer: ReturnType<typeof setTimeout> | undefined;
  private probing = false;
  private closed = false;

  constructor(
    /** Names the store in log lines (a URL without credentials). */
    private readonly label: string,
    private readonly probeIntervalMs: number,
    private readonly logger: StoreLogger,
    /** Told of every change between up and down (not of repeats). */
    private readonly onChange: (state: 'up' | 'down') => void,
  ) {}

  get state(): RedisState {
    return this.current;
  }

  /** Why the store is down, for error messages. */
  get reason(): string {
    return this.why;
  }

  /**
   * Follows `client`'s connection events. A first connection not ready within `readyWithinMs`
   * counts as an outage (a server that accepts the connection but never answers), so callers
   * waiting for it take the failure policy instead of waiting on.
   */
  attach(client: Redis, readyWithinMs: number): void {
    this.client = client;
    if (this.current === 'connecting') {
      this.readyTimer = setTimeout(
        () => this.markDown(`not ready within ${readyWithinMs} ms`),
        readyWithinMs,
      );
      this.readyTimer.unref();
    }
    client.on('ready', () => this.markUp());
    client.on('error', (error: Error) => {
      this.lastError = error.message || error.name;
    });
    client.on('close', () => this.markDown(this.lastError ?? 'connection closed'));
    if (client.status === 'ready') this.markUp();
  }

  /** Enters an outage (once): logs it, starts probing, tells the gauges. */
  markDown(reason: string): void {
    if (this.closed || this.current === 'down') return;
    this.current = 'down';
    this.why = reason;
    this.downSince = Date.now();
    this.logger.warn(
      `Redis ${this.label} is unreachable (${reason}); Redis gauges now fail open or closed as configured, until it is back`,
    );
    this.stopWaitingForReady();
    this.probeTimer = setInterval(this.probe, this.probeIntervalMs);
    this.probeTimer.unref();
    this.onChange('down');
  }

  /** Ends an outage (or the first connect): logs the recovery and tells the gauges. */
  markUp(): void {
    if (this.closed || this.current === 'up') return;
    const wasDown = this.current === 'down';
    this.current = 'up';
    this.why = '';
    this.lastError = undefined;
    this.stopProbing();
    this.stopWaitingForReady();
    if (wasDown) {
      const seconds = ((Date.now() - this.downSince) / 1000).toFixed(1);
      this.logger.log(`Redis ${this.label} is reachable again after ${seconds} s`);
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

  private readonly probe = (): void => {
    const client = this.client;
    if (!client || client.status !== 'ready' || this.probing) return;
    this.probing = true;
    client
      .ping()
      .then(
        () => this.markUp(),
        () => undefined,
      )
      .finally(() => (this.probing = false));
  };
}

/** A short reason for a failed command, for the one log line of an outage. */
export function describeFailure(error: unknown): string {
  return error instanceof Error ? error.message || error.name : String(error);
}
