import type {
  ConnectionEvents,
  GaugeKeys,
  LeaseClient,
  LeaseConnection,
} from '../core/shared/lease-client';
import { describeFailure } from '../core/shared/store-health';
import { loadIoredis, type RedisConstructor } from './load-ioredis';
import { RedisLeaseClient } from './redis-lease-client';
import {
  describeClient,
  duplicateClient,
  type ConnectionSettings,
  type RedisClient,
} from './redis-client.util';

/** What the Redis connection needs of the store's options. */
export interface RedisConnectionOptions {
  /** A URL (ioredis loaded on demand) or a client / Cluster to duplicate (never closed here). */
  readonly redis: RedisClient | string;
  readonly keyPrefix: string;
  /** A command slower than this fails (and the store counts as down). */
  readonly commandTimeoutMs: number;
  /** ioredis's connect timeout. */
  readonly connectTimeoutMs: number;
}

/**
 * The `LeaseConnection` on Redis: two connections of its own (commands; release notifications),
 * opened with fail-fast settings from a URL or by duplicating the application's client. Gauge
 * `name` lives in `<keyPrefix>{name}:leases` (a sorted set) and `<keyPrefix>{name}:limit` (its cap,
 * a hash), and announces releases and raised caps on `<keyPrefix>{name}:released` (the hash tag
 * keeps them all on one Cluster slot).
 */
export class RedisConnection implements LeaseConnection {
  readonly label: string;
  private readonly channels = new Set<string>();
  private events: ConnectionEvents | undefined;
  private connection: RedisClient | undefined;
  private subscriber: RedisClient | undefined;
  private leases: RedisLeaseClient | undefined;
  private closed = false;

  constructor(private readonly options: RedisConnectionOptions) {
    this.label = labelOf(options.redis);
  }

  keys(name: string): GaugeKeys {
    const tag = `${this.options.keyPrefix}{${name}}`;
    return { leases: `${tag}:leases`, limit: `${tag}:limit`, channel: `${tag}:released` };
  }

  open(events: ConnectionEvents): void {
    const { redis } = this.options;
    if (typeof redis !== 'string') {
      this.events = events;
      this.connect(duplicateClient(redis, this.commandOptions()));
      return;
    }
    const loaded = loadIoredis(); // throws when ioredis is not installed: nothing opened
    this.events = events;
    if (typeof loaded === 'function') {
      this.connect(new loaded(redis, this.commandOptions()));
      return;
    }
    loaded.then(
      (Redis: RedisConstructor) => this.connect(new Redis(redis, this.commandOptions())),
      (error: unknown) => events.down(describeFailure(error)),
    );
  }

  client(): LeaseClient | undefined {
    return this.leases;
  }

  listen(channel: string): void {
    if (this.channels.has(channel)) return;
    this.channels.add(channel);
    if (this.connection) this.subscribe(channel);
  }

  probe(): Promise<unknown> | undefined {
    const connection = this.connection;
    return connection?.status === 'ready' ? connection.ping() : undefined;
  }

  /** Closes both connections; the application's own client is never touched. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([this.connection, this.subscriber].map((client) => client && shut(client)));
  }

  private connect(connection: RedisClient): void {
    if (this.closed) {
      connection.disconnect();
      return;
    }
    this.connection = connection;
    this.leases = new RedisLeaseClient(connection);
    watchClient(connection, this.events!);
    for (const channel of this.channels) this.subscribe(channel);
  }

  private subscribe(channel: string): void {
    this.subscriber ??= this.createSubscriber(this.connection!);
    this.subscriber.subscribe(channel).catch(() => undefined);
  }

  /** The notification connection: waits for Redis rather than failing fast, and resubscribes. */
  private createSubscriber(connection: RedisClient): RedisClient {
    const subscriber = duplicateClient(connection, {
      ...this.commandOptions(),
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      autoResendUnfulfilledCommands: true,
      commandTimeout: undefined,
      connectionName: 'backpressure-notify',
    });
    const events = this.events!;
    subscriber.on('message', (channel: string) => events.released(channel));
    // Notifications sent while it was reconnecting are lost: re-check instead.
    subscriber.on('ready', () => events.missedReleases());
    subscriber.on('error', () => undefined);
    return subscriber;
  }

  /** Fail fast: no offline queue, no retries, a short timeout — the failure policy decides instead. */
  private commandOptions(): ConnectionSettings {
    return {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: this.options.commandTimeoutMs,
      connectTimeout: this.options.connectTimeoutMs,
      // A socket that does not close after QUIT is destroyed soon, not held for ioredis's 2 s.
      disconnectTimeout: 200,
      lazyConnect: false,
      retryStrategy: (attempt: number) => Math.min(attempt * 100, 1000),
      connectionName: 'backpressure',
    };
  }
}

/**
 * Reports an ioredis client's connection to `events`: up when it is ready (again), down when it
 * closes, with the last error it reported as the reason. ioredis reconnects by itself.
 */
export function watchClient(
  client: RedisClient,
  events: Pick<ConnectionEvents, 'up' | 'down'>,
): void {
  let lastError: string | undefined;
  client.on('ready', () => {
    lastError = undefined;
    events.up();
  });
  client.on('error', (error: Error) => {
    lastError = error.message || error.name;
  });
  client.on('close', () => {
    events.down(lastError ?? 'connection closed');
    lastError = undefined;
  });
  if (client.status === 'ready') events.up();
}

/** The URL without credentials, for log lines. */
function labelOf(redis: RedisClient | string): string {
  if (typeof redis === 'string') {
    try {
      const url = new URL(redis);
      return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
    } catch {
      return 'redis';
    }
  }
  return describeClient(redis);
}

/** Closes a connection politely if it is up, at once otherwise (QUIT would wait for a reconnect). */
async function shut(client: RedisClient): Promise<void> {
  if (client.status === 'ready') {
    await client.quit().catch(() => client.disconnect());
  } else {
    client.disconnect();
  }
}
