import { GaugeUnavailableError } from '../gauge.errors';
import type { GaugeStats, Release } from '../gauge.interface';
import type { ResolvedGaugeOptions, StoreDownPolicy } from '../gauge-options';
import { PressureGauge } from '../pressure-gauge';
import type { RedisHealth } from './redis-health';

/**
 * What a Redis gauge does while Redis is unreachable, by its `whenStoreDown` policy: refuse with
 * `GaugeUnavailableError` (503), or admit through an in-process gauge of `localLimit` slots (same
 * queue settings) whose slots never touch Redis, not even after it is back.
 */
export class OutageFallback implements Omit<GaugeStats, 'limit'> {
  private readonly local: PressureGauge | undefined;
  private refused = 0;

  constructor(
    private readonly options: ResolvedGaugeOptions,
    policy: StoreDownPolicy,
    private readonly health: RedisHealth,
  ) {
    if (policy !== 'fail-closed') {
      this.local = new PressureGauge({ ...options, limit: policy.localLimit });
    }
  }

  /** A local slot (fail open), or throws `GaugeUnavailableError` (fail closed). */
  acquire(signal: AbortSignal | undefined): Release | Promise<Release> {
    if (this.local) return this.local.acquire(signal);
    this.refused++;
    const { name, retryAfterSeconds } = this.options;
    const why = this.health.reason || 'not connected';
    throw new GaugeUnavailableError(
      name,
      `Gauge "${name}" refused: its Redis store is unreachable (${why}) and it fails closed`,
      retryAfterSeconds,
    );
  }

  close(): void {
    this.local?.close();
  }

  get inFlight(): number {
    return this.local?.inFlight ?? 0;
  }

  get queued(): number {
    return this.local?.queued ?? 0;
  }

  get admitted(): number {
    return this.local?.admitted ?? 0;
  }

  get rejected(): number {
    return this.refused + (this.local?.rejected ?? 0);
  }

  get timedOut(): number {
    return this.local?.timedOut ?? 0;
  }

  get aborted(): number {
    return this.local?.aborted ?? 0;
  }
}
