/*
 * The seam between a shared gauge and its store. Everything in src/core/shared — the local wait
 * list, wake-up by notification, the outage policy, lease renewal, orphaned releases — works on
 * these two small interfaces only; a store (src/redis) is an adapter that implements them over its
 * driver: the lease commands (`LeaseClient`) and the connection that carries them
 * (`LeaseConnection`).
 */

/** Where one gauge lives in the store: its lease set, and where its releases are announced. */
export interface GaugeKeys {
  readonly leases: string;
  readonly channel: string;
}

/** The leases of one gauge to renew, for a batched renewal. */
export interface LeaseBatch {
  readonly key: string;
  readonly ids: readonly string[];
}

/**
 * The three atomic operations a shared gauge needs of its store. A slot is a lease: an id in the
 * gauge's lease set with an expiry on the store's clock. Each call is one round trip; a rejection
 * means the store could not be reached (the call may still have been applied).
 */
export interface LeaseClient {
  /**
   * One attempt at a slot: drops expired leases, and adds lease `id` (expiring in `ttlMs`) if
   * fewer than `limit` remain. Resolves to true when `id` now holds a slot; never re-scores an `id`
   * already in the set.
   */
  acquire(key: string, id: string, limit: number, ttlMs: number): Promise<boolean>;
  /**
   * Removes leases (ids already gone are ignored) and, when `notify` is set and the set was full
   * before, announces the release on `channel` so waiting instances try again. Resolves to the
   * count removed.
   */
  release(
    key: string,
    channel: string,
    limit: number,
    notify: boolean,
    ids: readonly string[],
  ): Promise<number>;
  /**
   * Pushes the expiry of every lease in every batch to `ttlMs` from now, re-adding those the store
   * lost, in one round trip if it can. Resolves to how many were re-added, per batch.
   */
  renew(batches: readonly LeaseBatch[], ttlMs: number): Promise<number[]>;
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
