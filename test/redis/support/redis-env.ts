import { describe } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { Redis } from 'ioredis';

/** The Redis the shared-Redis suites use (one runs on this project's machines). */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** The repository root (tests run from it), where ioredis resolves. */
const ROOT = resolve(process.cwd());

/** Quits and waits until the socket is gone, so no ioredis disconnect timer outlives a test. */
export async function closeClient(client: Redis): Promise<void> {
  if (client.status !== 'ready') {
    client.disconnect(); // not connected (or between reconnects): nothing to wait for
    return;
  }
  const ended = once(client, 'end');
  await client.quit().catch(() => client.disconnect());
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([ended, new Promise((resolve) => (timer = setTimeout(resolve, 1000)))]);
  clearTimeout(timer);
}

/** The redis-server binary for suites that stop and restart their own server, if installed. */
export function redisServerBinary(): string | undefined {
  const candidates = [
    process.env.REDIS_SERVER,
    ...(process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'redis-server')),
    '/usr/bin/redis-server',
  ];
  for (const path of candidates) {
    if (!path) continue;
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * `describe` when what the suite needs is there; otherwise the file fails at once, saying what is
 * missing and how to provide it: a suite that cannot run is never reported as passed or skipped.
 * Decided synchronously (a short child process pings Redis), since suites are declared up front.
 */
export function describeWithRedis(
  needs: { server?: boolean } = {},
): (name: string, body: () => void) => void {
  let reason = whyUnreachableSync(REDIS_URL);
  if (!reason && needs.server && !redisServerBinary()) {
    reason = 'no redis-server binary to start a private server (set REDIS_SERVER)';
  }
  if (reason) {
    throw new Error(
      `The Redis suites cannot run (${reason}): start Redis ` +
        `(redis-server --port 6379) or point REDIS_URL at one (now ${REDIS_URL})`,
    );
  }
  return (name, body) => describe(name, body);
}

const PING_SCRIPT = `
const { Redis } = require('ioredis');
const client = new Redis(process.argv[1], { lazyConnect: true, connectTimeout: 2000,
  maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
let last;
client.on('error', (error) => { last = error.message; });
client.connect().then(() => client.ping()).then(
  () => { client.disconnect(); process.exit(0); },
  (error) => { process.stdout.write(last || error.message); process.exit(1); });
`;

/** Why `url` cannot be used (or undefined), found by a child process so the caller stays synchronous. */
export function whyUnreachableSync(url: string): string | undefined {
  const result = spawnSync(process.execPath, ['-e', PING_SCRIPT, url], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (result.status === 0) return undefined;
  const why =
    result.stdout?.trim() || result.error?.message || result.stderr?.trim().split('\n')[0];
  return `no Redis at ${url} (${why || `exit ${result.status}`})`;
}

/** A key prefix no other run or test uses, so suites can share one Redis. */
export function uniquePrefix(label: string): string {
  return `bp-test:${label}:${process.pid}:${Math.random().toString(36).slice(2, 8)}:`;
}

/** Deletes every key under `prefix` (test clean-up). */
export async function deleteKeys(client: Redis, prefix: string): Promise<void> {
  const keys = await client.keys(`${prefix}*`);
  if (keys.length > 0) await client.del(...keys);
}

/** Redis's own clock in ms, the clock lease expiries are measured against. */
export async function redisNow(client: Redis): Promise<number> {
  const [seconds, micros] = await client.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}
