import type { GaugeKeys, LeaseClient } from './lease-client';
import type { StoreCommandError } from './command-error';
import type { StoreHealth } from './store-health';

/** What the ledger needs of the store: the connection's state and the lease commands. */
export interface LedgerBackend {
  readonly health: StoreHealth;
  /** Undefined until the client exists (its driver still loading). */
  client(): LeaseClient | undefined;
}

/** Where one gauge lives in the store, and how its releases behave. */
export interface LedgerTarget {
  readonly keys: GaugeKeys;
  /** The configured limit: what "full" means if the store holds no cap. */
  readonly configuredLimit: number;
  /** Publish on a release from full (queue mode). */
  readonly notifies: boolean;
}

/**
 * The leases one instance holds on one gauge, and those it owes the store a removal for. A release
 * that cannot reach the store, or an attempt whose reply was lost (the store may have applied it),
 * is kept as an orphan and removed in one call once the store is back, so an outage never leaves a
 * slot taken.
 */
export class LeaseLedger {
  private readonly held = new Set<string>();
  private readonly orphans = new Set<string>();
  private readonly whenIdle: (() => void)[] = [];

  constructor(
    private readonly target: LedgerTarget,
    private readonly backend: LedgerBackend,
  ) {}

  get size(): number {
    return this.held.size;
  }

  /** The held lease ids, for the batched renewal. */
  ids(): string[] {
    return [...this.held];
  }

  hold(id: string): void {
    this.held.add(id);
  }

  /** Gives lease `id` back (held or not): one call, or an orphan while the store is away. */
  release(id: string): void {
    this.held.delete(id);
    this.remove([id]);
    if (this.held.size === 0 && this.whenIdle.length > 0) {
      for (const resolve of this.whenIdle.splice(0)) resolve();
    }
  }

  /** Resolves once no lease is held (each release sent), for a graceful shutdown. */
  idle(): Promise<void> {
    if (this.held.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.whenIdle.push(resolve));
  }

  /**
   * A renewal covering `ids` has been answered (or failed, and may have been applied). A lease
   * released meanwhile may have been re-added by it, if the renewal reached the store after the
   * release (a reordered or retried command): it is removed again, else it would hold a slot until
   * its TTL. A second removal is harmless. Returns how many such leases there were.
   */
  renewed(ids: readonly string[]): number {
    const released = ids.filter((id) => !this.held.has(id));
    if (released.length > 0) this.remove(released);
    return released.length;
  }

  /**
   * An attempt that may have recorded lease `ids` failed. Its reply lost: the store counts as down
   * and the leases are removed on recovery. An error of the command's own (a script failed on a
   * corrupted key) is no outage and is returned, for the caller to be refused: a Redis script
   * stops at the error but keeps the writes before it, so the attempt may have recorded a lease
   * before failing on a later key. The ids are released at once (best effort) rather than kept as
   * orphans, which only a recovery removes, and the store never went down: if that release fails
   * too (the same key), they are dropped, and a lease no one renews expires within the TTL.
   */
  lost(ids: readonly string[], error: unknown): StoreCommandError | undefined {
    const failure = this.backend.health.failed(error);
    if (failure !== undefined) this.remove([...ids]);
    else for (const id of ids) this.orphans.add(id);
    return failure;
  }

  /** Removes every orphan in one call (on recovery). */
  removeOrphans(): void {
    const client = this.backend.client();
    if (this.orphans.size === 0 || !client) return;
    const ids = [...this.orphans];
    this.orphans.clear();
    this.send(client, ids);
  }

  /** One call, or orphans while the store is away. */
  private remove(ids: string[]): void {
    const client = this.backend.client();
    if (!client || this.backend.health.state !== 'up') {
      for (const id of ids) this.orphans.add(id);
      return;
    }
    this.send(client, ids);
  }

  private send(client: LeaseClient, ids: string[]): void {
    const { keys, configuredLimit, notifies } = this.target;
    client.release(keys, configuredLimit, notifies, ids).catch((error: unknown) => {
      // The store answered with an error of the script's own: no outage, and no orphan to keep
      // (only a recovery would remove it); unrenewed, the leases expire within the TTL.
      if (this.backend.health.failed(error) !== undefined) return;
      for (const id of ids) this.orphans.add(id);
    });
  }
}
