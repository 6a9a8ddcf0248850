import type { LeaseCommands } from './lease-commands';
import { describeFailure, type RedisHealth } from './redis-health';

/** What the ledger needs of the store: the connection's state and the scripts. */
export interface LedgerBackend {
  readonly health: RedisHealth;
  /** Undefined until the client exists (ioredis still loading). */
  commands(): LeaseCommands | undefined;
}

/** Where one gauge lives in Redis, and how its releases behave. */
export interface LedgerTarget {
  readonly leaseKey: string;
  readonly channel: string;
  readonly limit: number;
  /** Publish on a release from full (queue mode). */
  readonly notifies: boolean;
}

/**
 * The leases one instance holds on one gauge, and those it owes Redis a removal for. A release that
 * cannot reach Redis, or an attempt whose reply was lost (Redis may have applied it), is kept as an
 * orphan and removed in one call once Redis is back, so an outage never leaves a slot taken.
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

  /** Gives lease `id` back (held or not): one script call, or an orphan while Redis is away. */
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
   * released meanwhile may have been re-added by it, if its plain `ZADD` reached Redis after the
   * release (a reordered or retried command): it is removed again, else it would hold a slot until
   * its TTL. A second removal is harmless. Returns how many such leases there were.
   */
  renewed(ids: readonly string[]): number {
    const released = ids.filter((id) => !this.held.has(id));
    if (released.length > 0) this.remove(released);
    return released.length;
  }

  /** A command about lease `id` failed: Redis counts as down, and the lease is removed later. */
  lost(id: string, error: unknown): void {
    this.orphans.add(id);
    this.backend.health.markDown(describeFailure(error));
  }

  /** Removes every orphan in one call (on recovery). */
  removeOrphans(): void {
    const commands = this.backend.commands();
    if (this.orphans.size === 0 || !commands) return;
    const ids = [...this.orphans];
    this.orphans.clear();
    this.send(commands, ids);
  }

  /** One script call, or orphans while Redis is away. */
  private remove(ids: string[]): void {
    const commands = this.backend.commands();
    if (!commands || this.backend.health.state !== 'up') {
      for (const id of ids) this.orphans.add(id);
      return;
    }
    this.send(commands, ids);
  }

  private send(commands: LeaseCommands, ids: string[]): void {
    const { leaseKey, channel, limit, notifies } = this.target;
    commands.release(leaseKey, channel, limit, notifies, ids).catch((error: unknown) => {
      for (const id of ids) this.orphans.add(id);
      this.backend.health.markDown(describeFailure(error));
    });
  }
}
