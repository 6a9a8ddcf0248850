import type { LimitBackend } from './shared-limit';

/**
 * What a shared gauge needs from its store: the connection's state, the lease commands, lease
 * settings. Provided by `SharedGaugeStore`.
 */
export interface LeaseBackend extends LimitBackend {
  /** How long the first connection may take to become ready before the store counts as down. */
  readonly connectTimeoutMs: number;
  /**
   * A fresh lease id, never used before by any store: `instanceId:nonce:counter`, the nonce random
   * per store (so stores given the same `instanceId` never share one). Each attempt takes a new one.
   */
  nextLeaseId(): string;
}
