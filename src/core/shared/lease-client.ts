import type { StoreCommandError } from './command-error';

/*
 * The seam between a shared gauge and its store. Everything in src/core/shared — the local wait
 * list, wake-up by notification, the outage policy, lease renewal, orphaned releases — works on
 * these two small interfaces only; a store (src/redis) is an adapter that implements them over its
 * driver: the lease commands (`LeaseClient`) and the connection that carries them
 * (`LeaseConnection`).
 */

/**
 * Where one gauge lives in the store: its lease set, its cap (the limit every instance applies),
 * and where its releases and raised caps are announced.
 */
export interface GaugeKeys {
  readonly leases: string;
  /** The gauge's cap and the configured limit it came from (see `LimitSync`). */
  readonly limit: string;
  readonly channel: string;
}

/** The leases of one gauge to renew, for a batched renewal; `ids` may be empty. */
export interface LeaseBatch {
  readonly keys: GaugeKeys;
  /** This instance's configured limit: stored as the cap if none is (the store lost it). */
  readonly limit: number;
  readonly ids: readonly string[];
}

/**
 * A lease attempt of a partitioned call (see `SharedPartitions`): the store counts the lease in its
 * key's partition, or past `maxKeys` live keys in an overflow partition, and refuses it beyond the
 * key's cap or, failing fast, beyond its fair share while the room left is kept for the others.
 */
export interface LeasePartition {
  /** The partition's name in the store (the key itself, or its digest; `u`: no key). */
  readonly token: string;
  /** The lease id if counted under `token`. */
  readonly id: string;
  /** The overflow partition this key falls into past `maxKeys`. */
  readonly overflowToken: string;
  /** The lease id if counted under `overflowToken`. */
  readonly overflowId: string;
  /** `partition.limit`: slots per key (>= 1), a fraction of the cap (< 1), or 0 for none. */
  readonly limit: number;
  /** Live keys counted one by one before new ones go to overflow partitions. */
  readonly maxKeys: number;
  /** Fail fast: a key over its fair share is refused when the room left is kept for others. */
  readonly fair: boolean;
}

/** A fail-fast call's priority, for the room the store keeps for higher levels. */
export interface LeasePriority {
  /** 0 (`critical`) to 3 (`low`). */
  readonly rank: number;
  /** The call named its level (what keeps the store counting levels, cluster-wide). */
  readonly named: boolean;
}

/**
 * What a lease attempt asks beyond a slot: its key's partition, its priority (fail fast), and
 * this instance's mean hold time, which sizes the room kept for keys under their share and for
 * higher levels.
 */
export interface LeaseRequest {
  readonly partition?: LeasePartition | undefined;
  readonly priority?: LeasePriority | undefined;
  /** Ms; 0 while unknown. */
  readonly meanHoldMs: number;
}

/** The answer to one attempt at a slot. */
export interface AcquireReply {
  /** True when the lease now holds a slot. */
  readonly granted: boolean;
  /** The cap the store applied: the stored one, or the caller's limit when none is stored. */
  readonly limit: number;
  /**
   * Why it was refused: the gauge is full, the key is over its cap or share, or the free slots
   * are kept for higher priorities.
   */
  readonly reason?: 'full' | 'key-over-share' | 'shed-priority' | undefined;
  /** The lease id the store recorded (a partitioned call: under its key or an overflow partition). */
  readonly id?: string | undefined;
}

/** What a renewal found, per batch. */
export interface RenewReply {
  /** Leases the store had lost and that were added back. */
  readonly readded: number;
  /** The gauge's cap in the store now. */
  readonly limit: number;
}

/**
 * What a batched renewal did for one gauge: its reply, or the error its script answered (a key of
 * that gauge holding the wrong type, say). One gauge's corrupted key fails that gauge's renewal
 * only: the others in the same round trip were renewed all the same, and their replies count.
 */
export type RenewOutcome = RenewReply | StoreCommandError;

/**
 * The cap found by an instance at bootstrap. The newest configuration wins, and a cap set at run
 * time survives restarts of instances configured like the one that stored it: when no cap is
 * stored, or it came from another configured limit, this instance's configured limit becomes the
 * cap; otherwise the stored cap stays.
 */
export interface LimitSync {
  /** The cap in effect from now on. */
  readonly limit: number;
  /** The cap stored before, if any. */
  readonly storedLimit: number | undefined;
  /** The configured limit the stored cap came from, if any. */
  readonly storedConfigured: number | undefined;
}

/**
 * The atomic operations a shared gauge needs of its store. A slot is a lease: an id in the gauge's
 * lease set with an expiry on the store's clock. The gauge's cap is stored beside it and applies to
 * every instance. Each call is one round trip; a rejection means the store could not be reached
 * (the call may still have been applied), or, a `StoreCommandError`, that it answered with an
 * error of the command's own.
 */
export interface LeaseClient {
  /**
   * One attempt at a slot: drops expired leases, and adds lease `id` (expiring in `ttlMs`) if
   * fewer leases remain than the stored cap (or `limit` when none is stored). Never re-scores an
   * `id` already in the set. With `request.partition`, the lease is counted in its key's
   * partition (and `id` is unused): see `LeasePartition`; with `request.priority`, free slots may
   * be kept for higher levels.
   */
  acquire(
    keys: GaugeKeys,
    id: string,
    limit: number,
    ttlMs: number,
    request?: LeaseRequest,
  ): Promise<AcquireReply>;
  /**
   * Removes leases (ids already gone are ignored) and, when `notify` is set and the set was full
   * before (against the stored cap, or `limit`), announces the release on the gauge's channel so
   * waiting instances try again. Resolves to the count removed.
   */
  release(keys: GaugeKeys, limit: number, notify: boolean, ids: readonly string[]): Promise<number>;
  /**
   * Pushes the expiry of every lease in every batch to `ttlMs` from now, re-adding those the store
   * lost, and keeps each gauge's cap alive as long (storing the batch's `limit` if none is), in
   * one round trip if it can. Resolves to one outcome per batch, in order: a batch whose command
   * the store answered with an error of its own resolves to that `StoreCommandError`, the others
   * to their replies; it rejects only when the store could not be reached (an outage).
   */
  renew(batches: readonly LeaseBatch[], ttlMs: number): Promise<RenewOutcome[]>;
  /** At bootstrap: stores or adopts the gauge's cap (see `LimitSync`), kept alive for `ttlMs`. */
  syncLimit(keys: GaugeKeys, configured: number, ttlMs: number): Promise<LimitSync>;
  /**
   * Stores `limit` as the gauge's cap for every instance (`configured` is recorded with it if
   * nothing was stored) and, when that raises it, announces it on the gauge's channel so waiting
   * instances try again at once. Resolves to the cap stored before, if any.
   */
  setLimit(
    keys: GaugeKeys,
    limit: number,
    configured: number,
    ttlMs: number,
  ): Promise<number | undefined>;
}

/** What a store's connection tells the shared gauges. */
export interface ConnectionEvents {
  /** The store answers (connected, reconnected, or a probe succeeded). */
  up(): void;
  /** The store cannot be reached (connection closed, a command failed): `reason` is logged. */
  down(reason: string): void;
  /** A release was announced on `channel`: that gauge's waiting callers try again. */
  released(channel: string): void;
  /** Announcements may have been missed (the listening connection was re-established). */
  missedReleases(): void;
}

/**
 * A store's connection as the shared gauges use it. The store-independent part calls `open` once,
 * when the first gauge is built, and learns of the connection's state only through `events`.
 */
export interface LeaseConnection {
  /** Names the store in log lines: a URL without credentials, say. */
  readonly label: string;
  /** Where gauge `name` lives in the store (its keys are the store's business). */
  keys(name: string): GaugeKeys;
  /**
   * Opens the connection(s), reporting to `events` from then on. Throws if it cannot even start
   * (its driver cannot be loaded): the gauge being built fails, and so does every later one.
   */
  open(events: ConnectionEvents): void;
  /** The lease commands once open; undefined while the driver is still loading. */
  client(): LeaseClient | undefined;
  /** Starts delivering releases announced on `channel` (also if called before `open`). */
  listen(channel: string): void;
  /**
   * Asks a store believed down whether it answers, for a server that hung without closing its
   * connections: resolves if it does. Undefined when there is no connection to ask yet.
   */
  probe(): Promise<unknown> | undefined;
  /** Closes what `open` opened. */
  close(): Promise<void>;
}
