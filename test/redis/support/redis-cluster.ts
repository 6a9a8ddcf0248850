import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { redisServerBinary } from './redis-env';

const run = promisify(execFile);
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * A private Redis Cluster of three masters (no replicas) on free loopback ports, started by the
 * test with its own redis-server processes (never the shared Redis), slots spread by
 * `redis-cli --cluster create`.
 */
export class RedisTestCluster {
  private constructor(
    readonly ports: readonly number[],
    private readonly children: ChildProcess[],
    private readonly dir: string,
  ) {}

  static async start(masters = 3): Promise<RedisTestCluster> {
    const binary = redisServerBinary();
    if (!binary) throw new Error('redis-server is not installed');
    const cli = join(binary, '..', 'redis-cli');
    const dir = mkdtempSync(join(tmpdir(), 'bp-cluster-'));
    const ports: number[] = [];
    const children: ChildProcess[] = [];
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      ports.push(port);
      const child = spawn(
        binary,
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '2000',
          '--dir',
          dir,
        ],
        { stdio: 'ignore' },
      );
      running.add(child);
      child.once('exit', () => running.delete(child));
      children.push(child);
    }
    const cluster = new RedisTestCluster(ports, children, dir);
    try {
      for (const port of ports) await cluster.answers(port);
      await run(cli, [
        '--cluster',
        'create',
        ...ports.map((port) => `127.0.0.1:${port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ]);
      for (const port of ports) await cluster.ready(port);
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  /** A Cluster client of the application's kind (the store duplicates it). */
  client(): Cluster {
    const client = new Cluster([{ host: '127.0.0.1', port: this.ports[0] ?? 0 }], {
      redisOptions: { maxRetriesPerRequest: 1 },
    });
    client.on('error', () => undefined);
    return client;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      }),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async answers(port: number): Promise<void> {
    await this.poll(port, async (node) => (await node.ping()) === 'PONG', 'answers PING');
  }

  private async ready(port: number): Promise<void> {
    await this.poll(
      port,
      async (node) => String(await node.cluster('INFO')).includes('cluster_state:ok'),
      'reports cluster_state:ok',
    );
  }

  private async poll(
    port: number,
    check: (node: Redis) => Promise<boolean>,
    what: string,
  ): Promise<void> {
    const node = new Redis(port, '127.0.0.1', {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    node.on('error', () => undefined);
    const deadline = Date.now() + 15_000;
    try {
      for (;;) {
        try {
          if (node.status !== 'ready') await node.connect();
          if (await check(node)) return;
        } catch {
          node.disconnect();
        }
        if (Date.now() > deadline) throw new Error(`redis-server on ${port} never ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      node.disconnect();
    }
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}
