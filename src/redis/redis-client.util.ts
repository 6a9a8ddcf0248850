import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';

/** What the store connects through: one Redis (or a Sentinel set) or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/** Settings for a connection of the store's own, as for a single Redis. */
export type ConnectionSettings = Pick<
  RedisOptions,
  | 'enableOfflineQueue'
  | 'maxRetriesPerRequest'
  | 'autoResendUnfulfilledCommands'
  | 'commandTimeout'
  | 'connectTimeout'
  | 'disconnectTimeout'
  | 'lazyConnect'
  | 'retryStrategy'
  | 'connectionName'
>;

export function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: unknown }).isCluster === true;
}

/**
 * A connection of the store's own, opened like `client` (its nodes, credentials, TLS) with
 * `settings` on top. On a Cluster the per-node settings go under `redisOptions` (merged with the
 * application's, so its password stays) and the offline queue and retry are the cluster's.
 */
export function duplicateClient(client: RedisClient, settings: ConnectionSettings): RedisClient {
  if (!isCluster(client)) return client.duplicate(settings);
  const { enableOfflineQueue, lazyConnect, retryStrategy, ...perNode } = settings;
  const options: ClusterOptions = {
    ...client.options,
    redisOptions: { ...client.options.redisOptions, ...perNode },
    enableOfflineQueue,
    lazyConnect,
    clusterRetryStrategy: retryStrategy ? (times) => retryStrategy(times) : undefined,
  };
  // ioredis's own types disagree under `exactOptionalPropertyTypes`: the `redisOptions` a Cluster
  // was given declare `replyMapping?: M | undefined`, `duplicate()` wants `replyMapping?: M`.
  return client.duplicate(undefined, options as Parameters<Cluster['duplicate']>[1]);
}

/** Where `client` connects, without credentials, for log lines. */
export function describeClient(client: RedisClient): string {
  if (isCluster(client)) {
    const nodes = client.nodes('master').map(({ options: { host, port } }) => `${host}:${port}`);
    return `redis-cluster://${nodes.length > 0 ? nodes.join(',') : 'startup nodes'}`;
  }
  const { host, port, path } = client.options;
  return path ? `redis+unix://${path}` : `redis://${host ?? 'localhost'}:${port ?? 6379}`;
}
