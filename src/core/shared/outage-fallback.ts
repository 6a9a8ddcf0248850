import { GaugeUnavailableError } from '../gauge.errors';
import type { GaugeFigures, Outcome } from '../gauge-events';
import type { Release } from '../gauge.interface';
import type { ResolvedGaugeOptions } from '../resolved-gauge-options';
import type { StoreDownPolicy } from '../store-down.policy';
import type { StoreHealth } from './store-health';

/**
 * The slots a shared gauge may hand out while its store is unreachable, by its `whenStoreDown`
 * policy: none (fail closed: `GaugeUnavailableError`, 503), or `localLimit` in-process slots that
 * never touch the store, not even after it is back (fail open).
 *
 * It holds no queue: callers waiting for one of these slots stay in the shared gauge's own wait
 * list, so they keep their place and deadline across the outage and are served before newcomers
 * whichever comes first, a local slot or the store.
 */
export class OutageFallback {
  private active = 0;
  private readonly localLimit: number;

  constructor(
    private readonly options: ResolvedGaugeOptions,
    policy: StoreDownPolicy,
    private readonly health: StoreHealth,
    /** What kind of store, for the refusal's message (`its Redis store is unreachable`). */
    private readonly kind: string,
    /** The gauge's figures: local slots are admitted, released and refused there too. */
    private readonly figures: GaugeFigures,
    /** Told when a local slot is freed, so a waiting caller can take it. */
    private readonly onFreed: () => void,
  ) {
    this.localLimit = policy === 'fail-closed' ? 0 : policy.localLimit;
  }

  get failsOpen(): boolean {
    return this.localLimit > 0;
  }

  get inFlight(): number {
    return this.active;
  }

  /** A local slot if one is free, else undefined (all taken, or the gauge fails closed). */
  take(): Release | undefined {
    if (this.active >= this.localLimit) return undefined;
    this.active++;
    this.figures.admit(0);
    let held = true;
    const since = this.figures.listening ? performance.now() : -1;
    return (outcome: Outcome = 'succeeded') => {
      if (!held) return;
      held = false;
      this.active--;
      this.figures.release(since < 0 ? 0 : performance.now() - since, outcome);
      this.onFreed();
    };
  }

  /** The refusal of a fail-closed gauge (counted as a rejection). */
  refusal(): GaugeUnavailableError {
    this.figures.reject('unavailable');
    const { name, retryAfterSeconds } = this.options;
    const why = this.health.reason || 'not connected';
    return new GaugeUnavailableError(
      name,
      `Gauge "${name}" refused: its ${this.kind} store is unreachable (${why}) and it fails closed`,
      retryAfterSeconds,
    );
  }
}
