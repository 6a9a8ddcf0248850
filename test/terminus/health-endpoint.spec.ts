import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Get, Param } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { BackpressureModule, Limited, type GaugeStore } from '../../src';
import { RedisGaugeStore } from '../../src/redis';
import { BackpressureHealthModule, GaugeHealthIndicator } from '../../src/terminus';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from '../e2e/support/apps';
import { get, json, send } from '../e2e/support/http';
import { Probe } from '../e2e/support/probe';
import { Logs, until } from '../redis/support/helpers';
import { describeWithRedis } from '../redis/support/redis-env';
import { RedisServer } from '../redis/support/redis-server';

/*
 * A real `/health` endpoint (terminus's HealthCheckService, @HealthCheck) over HTTP on Express
 * and Fastify: 200 while the gauges are healthy, 503 once one has been saturated for longer than
 * the window (a fake clock the test moves) or its Redis store is down (a private redis-server the
 * test stops).
 */

let now = 0;
const clock = () => now;

@Controller()
class AppController {
  constructor(
    private readonly probe: Probe,
    private readonly health: HealthCheckService,
    private readonly gauges: GaugeHealthIndicator,
  ) {}

  @Get('work/:id')
  @Limited('work')
  async work(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('health')
  @HealthCheck()
  ready() {
    return this.health.check([() => this.gauges.isHealthy('work')]);
  }

  @Get('health/all')
  @HealthCheck()
  all() {
    return this.health.check([() => this.gauges.areHealthy()]);
  }

  @Get('health/typo')
  @HealthCheck()
  typo() {
    return this.health.check([() => this.gauges.isHealthy('wrok')]);
  }
}

function healthApp(platform: Platform, probe: Probe, store?: GaugeStore): Promise<Running> {
  return startApp(
    platform,
    moduleOf({
      imports: [
        BackpressureModule.forRoot({ store, gauges: { work: { limit: 1 } } }),
        BackpressureHealthModule.forRoot({ forMs: 5_000, clock }),
      ],
      controllers: [AppController],
      providers: [{ provide: Probe, useValue: probe }],
    }),
  );
}

describe.each(PLATFORMS)('a /health endpoint with GaugeHealthIndicator (%s)', (platform) => {
  let running: Running | undefined;
  let probe: Probe;
  afterEach(async () => {
    probe.openAll();
    await running?.close();
    running = undefined;
  });

  it('answers 200 while healthy, 503 once saturated beyond the window, 200 when free again', async () => {
    probe = new Probe();
    running = await healthApp(platform, probe);
    const { url } = running;

    const healthy = await get(url, '/health');
    expect(healthy.status).toBe(200);
    expect(json(healthy)).toEqual({
      status: 'ok',
      info: {
        work: expect.objectContaining({ status: 'up', inFlight: 0, limit: 1, store: 'memory' }),
      },
      error: {},
      details: { work: expect.objectContaining({ status: 'up' }) },
    });

    const held = send(url, '/work/a');
    await until(() => probe.entered.length === 1, 'the handler holds the slot');
    expect((await get(url, '/health')).status).toBe(200); // saturated, not for long yet

    now += 5_000;
    const saturated = await get(url, '/health');
    expect(saturated.status).toBe(503);
    expect(json(saturated)).toMatchObject({
      status: 'error',
      error: {
        work: { status: 'down', reason: 'saturated', inFlight: 1, limit: 1, saturatedForMs: 5_000 },
      },
    });
    expect((await get(url, '/health/all')).status).toBe(503);

    probe.pass('a');
    expect((await held.reply).status).toBe(200);
    // Free, but checked too soon after the last one to tell a calm spell from a burst of probes.
    expect((await get(url, '/health')).status).toBe(503);
    now += 1_000;
    expect((await get(url, '/health')).status).toBe(200);
  });

  it('answers 500 for a gauge that does not exist (a bug in the endpoint, not a health state)', async () => {
    probe = new Probe();
    running = await healthApp(platform, probe);
    const reply = await get(running.url, '/health/typo');
    expect(reply.status).toBe(500);
  });
});

const describeRedis = describeWithRedis({ server: true });

describeRedis('a /health endpoint while the Redis store is down (private redis-server)', () => {
  let server: RedisServer;
  let running: Running | undefined;
  let probe: Probe;
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterEach(async () => {
    probe.openAll();
    await running?.close();
    running = undefined;
    if (stopped) await server.restart();
    stopped = false;
  });
  afterAll(() => server.stop());
  let stopped = false;

  it.each(PLATFORMS)(
    'answers 503 while Redis is down and 200 once it is back (%s)',
    async (platform) => {
      probe = new Probe();
      const store = new RedisGaugeStore({
        redis: server.url,
        logger: new Logs(),
        commandTimeoutMs: 300,
        recheckIntervalMs: 50,
      });
      running = await healthApp(platform, probe, store);
      const { url } = running;
      await until(async () => (await get(url, '/health')).status === 200, 'the store is up');

      stopped = true;
      await server.stop();
      await until(async () => (await get(url, '/health')).status === 503, 'health sees Redis go');
      expect(json(await get(url, '/health'))).toMatchObject({
        error: { work: { status: 'down', reason: 'store-down', store: 'down' } },
      });

      await server.restart();
      stopped = false;
      await until(
        async () => (await get(url, '/health')).status === 200,
        'health sees Redis return',
      );
    },
  );
});
