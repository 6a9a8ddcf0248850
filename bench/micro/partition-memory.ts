import 'reflect-metadata';
import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Controller, Get, Module, type ExecutionContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Release } from '../../src';
import { lib } from '../harness/lib';

/**
 * Per-key fairness in bounded memory (issue 11 part 3): distinct keys through a partitioned gauge
 * must not grow the heap. Core: `--keys` (default 1e6) distinct keys through `acquire({ key })`
 * with 50 slots held at a time; HTTP: `--http` (default 1e5) requests with distinct `x-tenant`
 * headers through `@Limited` on an Express app, 32 at a time. Each reports the heap after a full
 * GC against the baseline taken before (goal: within 20 MB), on the BUILT library.
 *
 *   npm run build && npx tsc -p bench/tsconfig.json && \
 *     node --expose-gc node_modules/.cache/nestjs-backpressure-bench/bench/micro/partition-memory.js [--keys=N] [--http=N]
 */
const arg = (name: string, fallback: number) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback);

function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc');
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MB`;

function core(keys: number): void {
  const gauge = new lib.PressureGauge({ name: 'core', limit: 100 });
  const before = heapAfterGc();
  const held: Release[] = [];
  let refused = 0;
  for (let i = 0; i < keys; i++) {
    try {
      const slot = gauge.acquire({ key: `tenant-${i}` });
      if (typeof slot === 'function') held.push(slot);
    } catch {
      refused++;
    }
    if (held.length >= 50) held.shift()!();
  }
  for (const release of held.splice(0)) release();
  const after = heapAfterGc();
  console.log(
    `core: ${keys} distinct keys, ${refused} refused; heap ${mb(before)} -> ${mb(after)} (${mb(after - before)})`,
  );
}

const tenant = (context: ExecutionContext) =>
  context.switchToHttp().getRequest<{ headers: Record<string, string> }>().headers['x-tenant'];

@Controller()
class KeyedController {
  @Get()
  @lib.Limited('keyed')
  get(): string {
    return 'ok';
  }
}

@Module({
  imports: [
    lib.BackpressureModule.forRoot({ gauges: { keyed: { limit: 64, partition: tenant } } }),
  ],
  controllers: [KeyedController],
})
class KeyedModule {}

async function http(requests: number): Promise<void> {
  const app = await NestFactory.create(KeyedModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const { port } = (app.getHttpServer() as { address(): AddressInfo }).address();
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const one = (i: number) =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path: '/', agent, headers: { 'x-tenant': `tenant-${i}` } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end();
    });
  for (let i = 0; i < 200; i++) await one(-i); // warm up
  const before = heapAfterGc();
  let next = 0;
  let ok = 0;
  const worker = async () => {
    while (next < requests) if ((await one(next++)) === 200) ok++;
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  const after = heapAfterGc();
  console.log(
    `http: ${requests} requests with distinct keys, ${ok} answered 200; heap ${mb(before)} -> ${mb(after)} (${mb(after - before)})`,
  );
  agent.destroy();
  await app.close();
}

async function main(): Promise<void> {
  core(arg('keys', 1_000_000));
  await http(arg('http', 100_000));
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
