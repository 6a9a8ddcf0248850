/**
 * How a held slot's work ended, as a limit policy learns from it:
 * - `succeeded`: the work finished; its latency is a capacity sample.
 * - `failed`: a server-side error (a bug), not overload: no reason to lower a limit.
 * - `dropped`: timed out, abandoned, or a dependency said it is overloaded: an overload signal.
 * - `ignored`: says nothing about capacity (a client error, a stream whose duration is the client's).
 */
export type Outcome = 'succeeded' | 'failed' | 'dropped' | 'ignored';

/**
 * Why a caller was turned away: at once (`full`, `queue-full`, `unavailable`), or at once or out
 * of the queue to keep room for a higher priority (`shed-priority`) or for keys under their fair
 * share (`key-over-share`), or at once while the process's event loop is under pressure
 * (`shed-pressure`).
 */
export type RejectionReason =
  'full' | 'queue-full' | 'unavailable' | 'shed-priority' | 'key-over-share' | 'shed-pressure';

/** Why a waiter left the queue unserved: its queue timeout, or shed by a standing CoDel queue. */
export type TimeoutReason = 'queue-timeout' | 'shed-delay';

/**
 * Everything a gauge decides, as it happens. Metrics, health checks and logs are listeners of
 * these; the gauge's own counters (`admitted`, `rejected`, …) are derived from the same calls.
 */
export type GaugeEvent =
  | { readonly type: 'admitted'; readonly gauge: string; readonly waitedMs: number }
  | { readonly type: 'rejected'; readonly gauge: string; readonly reason: RejectionReason }
  | { readonly type: 'queued'; readonly gauge: string }
  | {
      readonly type: 'timed-out';
      readonly gauge: string;
      readonly waitedMs: number;
      readonly reason: TimeoutReason;
    }
  | { readonly type: 'aborted'; readonly gauge: string; readonly waitedMs: number }
  | {
      readonly type: 'released';
      readonly gauge: string;
      readonly heldMs: number;
      readonly outcome: Outcome;
    }
  | {
      readonly type: 'limit-changed';
      readonly gauge: string;
      readonly from: number;
      readonly to: number;
    }
  | { readonly type: 'overdue'; readonly gauge: string; readonly heldMs: number }
  | { readonly type: 'store-down'; readonly gauge: string; readonly reason: string }
  | { readonly type: 'store-up'; readonly gauge: string };

/**
 * Called synchronously for every event of the gauges it subscribed to; must be quick and not throw.
 * Events that carry nothing but their gauge and type or reason (`queued`, `rejected`
 * and `admitted` with `waitedMs` 0) are one frozen object per gauge, handed to listeners again and
 * again: a listener reads an event when called and must not keep it or rely on its identity.
 */
export type GaugeListener = (event: GaugeEvent) => void;

/** What a gauge offers its observers. */
export interface GaugeEvents {
  /** Calls `listener` for every event of this gauge from now on; returns what unsubscribes it. */
  subscribe(listener: GaugeListener): () => void;
}

const NONE: readonly GaugeListener[] = [];

/** The listeners that threw once already: each is reported once, not on every event. */
const warned = new WeakSet<GaugeListener>();

/** `String(error)`, for any thrown value: one whose `toString` throws as well is not a second crash. */
export function describeThrown(error: unknown): string {
  try {
    return String(error);
  } catch {
    return 'a value that cannot be shown';
  }
}

/**
 * The one place a gauge's figures come from: each decision is reported here once, which counts it
 * and tells the listeners. With no listener, a report is a counter increment and one comparison:
 * no event object is built.
 */
export class GaugeFigures implements GaugeEvents {
  admitted = 0;
  rejected = 0;
  timedOut = 0;
  aborted = 0;
  released = 0;
  private listeners: readonly GaugeListener[] = NONE;
  /** The events that carry no figure, built once: a gauge with listeners allocates none for them. */
  private readonly admittedAtOnce: GaugeEvent;
  private readonly queued: GaugeEvent;
  private readonly rejections = new Map<RejectionReason, GaugeEvent>();

  constructor(readonly gauge: string) {
    this.admittedAtOnce = Object.freeze({ type: 'admitted', gauge, waitedMs: 0 });
    this.queued = Object.freeze({ type: 'queued', gauge });
  }

  /** True while someone listens: callers skip measuring what only a listener would read. */
  get listening(): boolean {
    return this.listeners !== NONE;
  }

  subscribe(listener: GaugeListener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      const rest = this.listeners.filter((each) => each !== listener);
      this.listeners = rest.length === 0 ? NONE : rest;
    };
  }

  admit(waitedMs: number): void {
    this.admitted++;
    if (this.listeners === NONE) return;
    this.emit(
      waitedMs === 0 ? this.admittedAtOnce : { type: 'admitted', gauge: this.gauge, waitedMs },
    );
  }

  reject(reason: RejectionReason): void {
    this.rejected++;
    if (this.listeners === NONE) return;
    let event = this.rejections.get(reason);
    if (event === undefined) {
      event = Object.freeze({ type: 'rejected', gauge: this.gauge, reason });
      this.rejections.set(reason, event);
    }
    this.emit(event);
  }

  queue(): void {
    if (this.listeners !== NONE) this.emit(this.queued);
  }

  timeOut(waitedMs: number, reason: TimeoutReason = 'queue-timeout'): void {
    this.timedOut++;
    if (this.listeners !== NONE) {
      this.emit({ type: 'timed-out', gauge: this.gauge, waitedMs, reason });
    }
  }

  abort(waitedMs: number): void {
    this.aborted++;
    if (this.listeners !== NONE) this.emit({ type: 'aborted', gauge: this.gauge, waitedMs });
  }

  release(heldMs: number, outcome: Outcome): void {
    this.released++;
    if (this.listeners !== NONE) {
      this.emit({ type: 'released', gauge: this.gauge, heldMs, outcome });
    }
  }

  limitChanged(from: number, to: number): void {
    if (this.listeners !== NONE) this.emit({ type: 'limit-changed', gauge: this.gauge, from, to });
  }

  overdue(heldMs: number): void {
    if (this.listeners !== NONE) this.emit({ type: 'overdue', gauge: this.gauge, heldMs });
  }

  storeDown(reason: string): void {
    if (this.listeners !== NONE) this.emit({ type: 'store-down', gauge: this.gauge, reason });
  }

  storeUp(): void {
    if (this.listeners !== NONE) this.emit({ type: 'store-up', gauge: this.gauge });
  }

  /**
   * A listener that throws must not break the gauge or the caller: it becomes a process warning,
   * once per listener (a listener that throws on every event would otherwise flood stderr).
   */
  private emit(event: GaugeEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        if (warned.has(listener)) continue;
        warned.add(listener);
        process.emitWarning(
          `A listener of gauge "${this.gauge}" threw on "${event.type}": ${describeThrown(error)} (its later throws are not reported)`,
          'BackpressureListenerWarning',
        );
      }
    }
  }
}
