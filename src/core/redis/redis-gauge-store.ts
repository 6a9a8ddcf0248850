import { randomBytes } from 'node:crypto';
import type { Redis, RedisOptions } from 'ioredis';
import type { GaugeStore } from '../gauge-store.interface';
import type { ResolvedGaugeOptions } from '../gauge-options';
import { LeaseCommands } from './lease-commands';
import { LeaseRenewer } from './lease-renewer';
import { loadIoredis, type RedisConstructor } from './load-ioredis';
import { RedisGauge, type LeaseBackend } from './redis-gauge';
import {
  resolveRedisStoreOptions,
  type RedisGaugeStoreOptions,
  type ResolvedRedisStoreOptions,
} from './redis-gauge-store.options';
import { describeFailure, RedisHealth, type RedisState } from './redis-health';

/**
 * A gauge store on Redis: every instance given the same Redis (and `keyPrefix`) shares each gauge's
 * `limit`, so 10 means 10 across all replicas. Pass it as `store` to `BackpressureModule.forRoot()`
 * for every gauge, or in one gauge's config for that gauge only.
 *
 * Per instance it holds two connections (commands; release notifications) and two timers (lease
 * renewal; re-check and outage probe), whatever the number of gauges and requests.
 */
export class RedisGaugeStore implements GaugeStore {
  /** The readable start of this store's lease ids (the `instanceId` option, or random). */
  readonly instanceId: string;
  /**
   * What every lease id of this store starts with: `instanceId:nonce`, the nonce random per store.
   * Stores given the same `instanceId` (replicas with a fixed id, two stores in one process, a pod
   * restarted under its old name while its predecessor's leases are still in Redis) never share a
   * lease id, so none admits on, renews or releases another's lease.
   */
  readonly leaseIdPrefix: string;
  private readonly options: ResolvedRedisStoreOptions;
  private readonly health: RedisHealth;
  private readonly renewer: LeaseRenewer;
  private readonly backend: LeaseBackend;
  private readonly gauges = new Set<RedisGauge>();
  private readonly byChannel = new Map<string, Set<RedisGauge>>();
  private client: Redis | undefined;
  private subscriber: Redis | undefined;
  private commands: LeaseCommands | undefined;
  private recheckTimer: ReturnType<typeof setInterval> | undefined;
  private leaseCounter = 0;
  private started = false;
  private closed = false;

  constructor(options: RedisGaugeStoreOptions) {
    this.options = resolveRedisStoreOptions(options);
    const { logger, recheckIntervalMs, renewIntervalMs, leaseTtlMs } = this.options;
    this.instanceId = this.options.instanceId ?? randomBytes(6).toString('base64url');
    this.leaseIdPrefix = `${this.instanceId}:${randomBytes(9).toString('base64url')}`;
    this.health = new RedisHealth(labelOf(this.options.redis), recheckIntervalMs, logger, (state) =>
      this.onHealthChange(state),
    );
    this.renewer = new LeaseRenewer(
      renewIntervalMs,
      leaseTtlMs,
      () => this.gauges,
      () => this.commands,
      this.health,
      logger,
    );
    this.backend = {
      health: this.health,
      leaseTtlMs,
      connectTimeoutMs: this.connectTimeoutMs,
      commands: () => this.commands,
      nextLeaseId: () => `${this.leaseIdPrefix}:${(++this.leaseCounter).toString(36)}`,
    };
  }

  /** `connecting` until the first connection settles, then `up` or `down` (for health checks). */
  get state(): RedisState {
    return this.health.state;
  }

  /** Builds a gauge whose slots are leases in Redis; connects on the first call. */
  createGauge(options: ResolvedGaugeOptions): RedisGauge {
    if (this.closed) throw new Error('RedisGaugeStore is closed; create a new one');
    // First: a driver that cannot be loaded fails this call, and every later one, with the same
    // clear error, rather than leaving a gauge behind that never connects.
    this.start();
    const name = options.name;
    const tag = `${this.options.keyPrefix}{${name}}`;
    const policy = options.whenStoreDown ?? this.options.whenStoreDown;
    const gauge = new RedisGauge(
      options,
      policy,
      { leases: `${tag}:leases`, channel: `${tag}:released` },
      this.backend,
    );
    this.gauges.add(gauge);
    if (gauge.notifies) this.listen(gauge);
    return gauge;
  }

  /**
   * Refuses waiting and new callers, gives handlers still running up to `commandTimeoutMs` to
   * release their slots (so those releases reach Redis), then stops timers and closes the store's
   * connections. Leases still held after that are no longer renewed and expire within the TTL.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.recheckTimer !== undefined) clearInterval(this.recheckTimer);
    for (const gauge of this.gauges) gauge.close();
    await this.heldLeasesReleased();
    this.renewer.stop();
    this.health.close();
    await Promise.all([this.client, this.subscriber].map((client) => client && shut(client)));
  }

  /**
   * Waits (at most `commandTimeoutMs`) until no gauge holds a lease. Never frees a slot itself: a
   * lease is released only by its holder, so a handler still running keeps its slot counted.
   */
  private async heldLeasesReleased(): Promise<void> {
    if (this.health.state !== 'up') return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.options.commandTimeoutMs);
    });
    await Promise.race([Promise.all([...this.gauges].map((gauge) => gauge.idle())), bound]);
    clearTimeout(timer);
  }

  /** ioredis's connect timeout, and how long the first connection may take to become ready. */
  private get connectTimeoutMs(): number {
    return Math.max(this.options.commandTimeoutMs, 1000);
  }

  private start(): void {
    if (this.started) return;
    const { redis } = this.options;
    if (typeof redis === 'string') {
      const loaded = loadIoredis(); // throws (not started) when ioredis is not installed
      this.started = true;
      if (typeof loaded === 'function') this.connect(new loaded(redis, this.commandOptions()));
      else {
        loaded.then(
          (Redis: RedisConstructor) => this.connect(new Redis(redis, this.commandOptions())),
          (error: unknown) => this.health.markDown(describeFailure(error)),
        );
      }
    } else {
      this.started = true;
      this.connect(redis.duplicate(this.commandOptions()));
    }
    this.recheckTimer = setInterval(() => {
      if (this.health.state === 'up') for (const gauge of this.gauges) gauge.wake();
    }, this.options.recheckIntervalMs);
    this.recheckTimer.unref();
    this.renewer.start();
  }

  private connect(client: Redis): void {
    if (this.closed) {
      client.disconnect();
      return;
    }
    this.client = client;
    this.commands = new LeaseCommands(client);
    this.health.attach(client, this.connectTimeoutMs);
    for (const channel of this.byChannel.keys()) this.subscribe(channel);
  }

  private listen(gauge: RedisGauge): void {
    let gauges = this.byChannel.get(gauge.channel);
    if (!gauges) {
      this.byChannel.set(gauge.channel, (gauges = new Set()));
      if (this.client) this.subscribe(gauge.channel);
    }
    gauges.add(gauge);
  }

  private subscribe(channel: string): void {
    this.subscriber ??= this.createSubscriber(this.client!);
    this.subscriber.subscribe(channel).catch(() => undefined);
  }

  /** The notification connection: waits for Redis rather than failing fast, and resubscribes. */
  private createSubscriber(client: Redis): Redis {
    const subscriber = client.duplicate({
      ...this.commandOptions(),
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      autoResendUnfulfilledCommands: true,
      commandTimeout: undefined,
      connectionName: 'backpressure-notify',
    });
    subscriber.on('message', (channel: string) => {
      for (const gauge of this.byChannel.get(channel) ?? []) gauge.wake();
    });
    // Notifications sent while it was reconnecting are lost: re-check instead.
    subscriber.on('ready', () => this.wakeAll());
    subscriber.on('error', () => undefined);
    return subscriber;
  }

  /** Fail fast: no offline queue, no retries, a short timeout — the failure policy decides instead. */
  private commandOptions(): RedisOptions {
    const timeout = this.options.commandTimeoutMs;
    return {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: timeout,
      connectTimeout: this.connectTimeoutMs,
      // A socket that does not close after QUIT is destroyed soon, not held for ioredis's 2 s.
      disconnectTimeout: 200,
      lazyConnect: false,
      retryStrategy: (attempt: number) => Math.min(attempt * 100, 1000),
      connectionName: 'backpressure',
    };
  }

  private onHealthChange(state: 'up' | 'down'): void {
    if (state === 'down') {
      for (const gauge of this.gauges) gauge.storeDown(this.health.reason);
      return;
    }
    // Re-add this instance's leases (a restarted Redis lost them) before serving anyone new.
    void this.renewer.renewNow();
    for (const gauge of this.gauges) gauge.storeUp();
  }

  private wakeAll(): void {
    if (this.health.state === 'up') for (const gauge of this.gauges) gauge.wake();
  }
}

/** The URL without credentials, for log lines. */
function labelOf(redis: Redis | string): string {
  if (typeof redis === 'string') {
    try {
      const url = new URL(redis);
      return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
    } catch {
      return 'redis';
    }
  }
  const { host, port, path } = redis.options;
  return path ? `redis+unix://${path}` : `redis://${host ?? 'localhost'}:${port ?? 6379}`;
}

/** Closes a connection politely if it is up, at once otherwise (QUIT would wait for a reconnect). */
async function shut(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    await client.quit().catch(() => client.disconnect());
  } else {
    client.disconnect();
  }
}
