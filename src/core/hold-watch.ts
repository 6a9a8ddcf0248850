import type { GaugeFigures } from './gauge-events';
import { WaitQueue, type QueueNode } from './wait-queue';

/** The reason a held slot's work signal aborts with when it outlives `maxHoldMs`. */
export class GaugeOverdueError extends Error {
  /** `TimeoutError`, as a timed-out fetch's reason is: code that handles one handles the other. */
  override readonly name = 'TimeoutError';

  constructor(
    /** The gauge whose slot the work outlived. */
    readonly gauge: string,
    /** The allowance it outlived (the gauge's `maxHoldMs`). */
    readonly maxHoldMs: number,
  ) {
    super(`Gauge "${gauge}": work held its slot longer than maxHoldMs (${maxHoldMs} ms)`);
  }
}

/**
 * One held slot, watched for `maxHoldMs`. Its work signal is created only when asked for, so a
 * slot whose work never asks costs a node and no `AbortController`.
 */
export class HeldSlot implements QueueNode {
  prev: QueueNode | undefined = undefined;
  next: QueueNode | undefined = undefined;
  deadline = 0;
  queued = false;
  overdue = false;
  private controller: AbortController | undefined;

  constructor(private readonly watch: HoldWatch) {}

  /** Aborts once the slot is overdue (its reason a `GaugeOverdueError`). */
  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    if (this.overdue && !this.controller.signal.aborted) this.controller.abort(this.watch.reason());
    return this.controller.signal;
  }

  /** Called by the watch at the deadline. */
  expire(): void {
    this.overdue = true;
    this.controller?.abort(this.watch.reason());
  }
}

/**
 * Watches a gauge's held slots for `maxHoldMs`: one timer for them all (every slot has the same
 * allowance, so the oldest expires first), O(1) start and end. An overdue slot raises an
 * `overdue` event and aborts its work signal; it is **not** reclaimed — while its work may still
 * run, giving the slot to someone else would let more than `limit` run. Work that honours the
 * signal ends, and its slot comes back then.
 */
export class HoldWatch {
  private readonly held: WaitQueue<HeldSlot>;

  constructor(
    private readonly figures: GaugeFigures,
    readonly maxHoldMs: number,
  ) {
    this.held = new WaitQueue<HeldSlot>(maxHoldMs, (slot) => {
      slot.expire();
      this.figures.overdue(this.maxHoldMs);
    });
  }

  start(): HeldSlot {
    const slot = new HeldSlot(this);
    this.held.push(slot);
    return slot;
  }

  end(slot: HeldSlot): void {
    this.held.remove(slot);
  }

  reason(): GaugeOverdueError {
    return new GaugeOverdueError(this.figures.gauge, this.maxHoldMs);
  }
}

/** The work signals of release handles whose gauge watches hold times, keyed by the handle. */
const slots = new WeakMap<object, HeldSlot>();

/** Records which held slot a release handle gives back (gauges with `maxHoldMs`). */
export function attachSlot<R extends object>(release: R, slot: HeldSlot): R {
  slots.set(release, slot);
  return release;
}

/**
 * The signal that aborts when the work holding this slot should stop: the slot overdue (its
 * gauge's `maxHoldMs`). `undefined` when the gauge watches no hold time.
 */
export function slotSignal(release: object): AbortSignal | undefined {
  return slots.get(release)?.signal;
}
