import type {
  GaugeEvent,
  GaugeListener,
  Outcome,
  RejectionReason,
  TimeoutReason,
} from '../core/gauge-events';
import type { Gauge } from '../core/gauge.interface';
import type { GaugeKind } from '../gauge.registry';

/*
 * What the metrics integrations (nestjs-backpressure/prometheus, nestjs-backpressure/opentelemetry)
 * share: one tally per label, fed by gauge listeners with plain number increments (no allocation,
 * no label lookup per event), read by the exporter at scrape / collection time. Framework-free
 * and exporter-free: neither prom-client nor @opentelemetry/api is imported here.
 */

/** The label all dynamic gauges (names first seen after bootstrap) are counted under. */
export const DYNAMIC_LABEL = '(dynamic)';

/** Release outcomes, in the order `HeldIndex` numbers them. */
export const OUTCOMES = ['succeeded', 'failed', 'dropped', 'ignored'] as const;
/** Index of an outcome in `OUTCOMES`. */
export type HeldIndex = 0 | 1 | 2 | 3;

/** How a caller left the queue, in the order `WaitIndex` numbers them. */
export const QUEUE_RESULTS = ['admitted', 'timeout', 'aborted'] as const;
/** Index of a queue result in `QUEUE_RESULTS`. */
export type WaitIndex = 0 | 1 | 2;

/**
 * Why a call got no slot, as the `reason` label says: the gauge's rejection reasons, how a waiter
 * left the queue unserved (`timeout`: its queue timeout; `shed-delay`: a standing CoDel queue),
 * the caller's abort.
 */
export const REFUSAL_REASONS = [
  'full',
  'queue-full',
  'shed-priority',
  'key-over-share',
  'shed-pressure',
  'unavailable',
  'timeout',
  'shed-delay',
  'aborted',
] as const;
/** One of `REFUSAL_REASONS`. */
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/**
 * The label of every reason an event carries. Typed by the event's own unions, so a reason added
 * to the core fails the type check here until it has a label (instead of being counted as another).
 */
const LABEL_OF: Readonly<Record<RejectionReason | TimeoutReason | 'aborted', RefusalReason>> = {
  full: 'full',
  'queue-full': 'queue-full',
  'shed-priority': 'shed-priority',
  'key-over-share': 'key-over-share',
  'shed-pressure': 'shed-pressure',
  unavailable: 'unavailable',
  'queue-timeout': 'timeout',
  'shed-delay': 'shed-delay',
  aborted: 'aborted',
};
const INDEX_OF = Object.fromEntries(REFUSAL_REASONS.map((reason, i) => [reason, i])) as Readonly<
  Record<RefusalReason, number>
>;

/** Where a tally's durations go: buckets of its own (Prometheus) or an SDK histogram (OpenTelemetry). */
export interface DurationSink {
  /** A caller that waited in the queue left it after `seconds`: admitted, timed out or aborted. */
  waited(result: WaitIndex, seconds: number): void;
  /** A slot was given back after `seconds`, its work having ended as `OUTCOMES[outcome]`. */
  held(outcome: HeldIndex, seconds: number): void;
}

/** Counts of one label since the metrics started: plain numbers, bumped by its listener. */
export class GaugeTally {
  admitted = 0;
  overdue = 0;
  /** Refusals so far, indexed as `REFUSAL_REASONS`. */
  private readonly refusals: number[] = REFUSAL_REASONS.map(() => 0);
  /** The listener to subscribe to every gauge counted under this label. */
  readonly listener: GaugeListener;

  constructor(
    /** The `gauge` label: a pinned gauge's name, or `DYNAMIC_LABEL`. */
    readonly label: string,
    sink: DurationSink,
  ) {
    this.listener = (event: GaugeEvent): void => {
      switch (event.type) {
        case 'admitted':
          this.admitted++;
          // 0 exactly: granted at once, never queued (a waiter's wait is measured, never 0).
          if (event.waitedMs > 0) sink.waited(0, event.waitedMs / 1000);
          return;
        case 'rejected':
          this.count(event.reason);
          return;
        case 'timed-out':
          this.count(event.reason);
          sink.waited(1, event.waitedMs / 1000);
          return;
        case 'aborted':
          this.count('aborted');
          // 0: its signal had fired before it could join the queue.
          if (event.waitedMs > 0) sink.waited(2, event.waitedMs / 1000);
          return;
        case 'released':
          sink.held(heldIndex(event.outcome), event.heldMs / 1000);
          return;
        case 'overdue':
          this.overdue++;
          return;
        default:
          return;
      }
    };
  }

  /** Calls refused for `reason` so far. */
  refused(reason: RefusalReason): number {
    return this.refusals[INDEX_OF[reason]] ?? 0;
  }

  private count(reason: RejectionReason | TimeoutReason | 'aborted'): void {
    const index = INDEX_OF[LABEL_OF[reason]];
    this.refusals[index] = (this.refusals[index] ?? 0) + 1;
  }
}

function heldIndex(outcome: Outcome): HeldIndex {
  switch (outcome) {
    case 'succeeded':
      return 0;
    case 'failed':
      return 1;
    case 'dropped':
      return 2;
    case 'ignored':
      return 3;
  }
}

/** A label's tally and its gauges' figures right now (summed over the dynamic gauges). */
export interface TallyRow {
  readonly tally: GaugeTally;
  readonly inFlight: number;
  readonly queued: number;
  readonly limit: number;
}

/** What the tallies watch: `GaugeRegistry` (its `onGauge` and `list`). */
export interface GaugeSource {
  onGauge(listener: (gauge: Gauge, kind: GaugeKind) => void): () => void;
  list(kind?: GaugeKind): Gauge[];
}

/**
 * Every gauge of a source, counted by label: each pinned gauge under its own name, all dynamic
 * gauges together under `DYNAMIC_LABEL` (one tally, one shared listener), so the number of labels
 * is bounded by the code, never by the names clients send.
 */
export class GaugeTallies {
  private readonly pinned = new Map<string, { tally: GaugeTally; gauge: Gauge }>();
  private dynamic: GaugeTally | undefined;
  /** How to stop listening to each gauge; weak, so an evicted dynamic gauge is not kept alive. */
  private readonly subscriptions = new WeakMap<Gauge, () => void>();
  private source: GaugeSource | undefined;
  private stopWatching: (() => void) | undefined;

  constructor(private readonly sinkFor: (label: string) => DurationSink) {}

  /** Counts every gauge of `source` from now on, the ones it creates later included. */
  watch(source: GaugeSource): void {
    if (this.source !== undefined) throw new Error('GaugeTallies: already watching');
    this.source = source;
    this.stopWatching = source.onGauge((gauge, kind) => this.add(gauge, kind));
  }

  /** Stops counting: no longer told of new gauges, unsubscribed from every gauge that exists. */
  close(): void {
    this.stopWatching?.();
    this.stopWatching = undefined;
    for (const gauge of this.source?.list() ?? []) {
      this.subscriptions.get(gauge)?.();
      this.subscriptions.delete(gauge);
    }
    this.source = undefined;
  }

  /** Each label's tally with its gauges' figures now: pinned gauges first, then `(dynamic)`. */
  rows(): TallyRow[] {
    const rows: TallyRow[] = [];
    for (const { tally, gauge } of this.pinned.values()) {
      rows.push({ tally, inFlight: gauge.inFlight, queued: gauge.queued, limit: gauge.limit });
    }
    if (this.dynamic !== undefined) {
      let inFlight = 0;
      let queued = 0;
      let limit = 0;
      for (const gauge of this.source?.list('dynamic') ?? []) {
        inFlight += gauge.inFlight;
        queued += gauge.queued;
        limit += gauge.limit;
      }
      rows.push({ tally: this.dynamic, inFlight, queued, limit });
    }
    return rows;
  }

  private add(gauge: Gauge, kind: GaugeKind): void {
    if (this.subscriptions.has(gauge)) return;
    let tally: GaugeTally;
    if (kind === 'dynamic') {
      tally = this.dynamic ??= new GaugeTally(DYNAMIC_LABEL, this.sinkFor(DYNAMIC_LABEL));
    } else {
      const known = this.pinned.get(gauge.name);
      tally = known?.tally ?? new GaugeTally(gauge.name, this.sinkFor(gauge.name));
      this.pinned.set(gauge.name, { tally, gauge });
    }
    this.subscriptions.set(gauge, gauge.subscribe(tally.listener));
  }
}

/** Default histogram buckets, in seconds: 1 ms to 10 s. */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
