import 'reflect-metadata';
import { jest } from '@jest/globals';
import { Controller, Get, Param } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BackpressureModule,
  GaugeConfigError,
  Limited,
  Priority,
  trustedPriorityHeader,
  type BackpressureModuleOptions,
} from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { json, send, type Call } from './support/http';
import { Probe } from './support/probe';
import { until } from '../support/wait';

@Controller('ff')
@Limited('ff')
class FailFastController {
  constructor(private readonly probe: Probe) {}

  @Get('low/:id')
  @Priority('low')
  async low(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('critical/:id')
  @Priority('critical')
  async critical(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('sleep-low')
  @Priority('low')
  async sleepLow() {
    await sleep(20);
    return 'low';
  }

  @Get('sleep-critical')
  @Priority('critical')
  async sleepCritical() {
    await sleep(20);
    return 'critical';
  }
}

@Controller('q')
class QueueController {
  constructor(private readonly probe: Probe) {}

  @Get(':id')
  @Limited('q')
  async any(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('lifo/:id')
  @Limited('lifo')
  async lifo(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('throws/:id')
  @Limited('throws')
  async throws(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }
}

const SECRET = { 'x-internal': 'let-me-in' };

describe.each(PLATFORMS)('priorities on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running;

  beforeEach(async () => {
    probe = new Probe();
    const module = moduleOf({
      imports: [
        BackpressureModule.forRoot({
          gauges: {
            ff: { limit: 4 },
            q: {
              limit: 1,
              queue: { size: 10, timeoutMs: 10_000 },
              priority: trustedPriorityHeader({
                trust: (request) => request.headers['x-internal'] === 'let-me-in',
              }),
            },
            lifo: { limit: 1, queue: { size: 10, timeoutMs: 10_000, discipline: 'lifo' } },
            throws: {
              limit: 1,
              queue: { size: 10, timeoutMs: 10_000 },
              priority: () => {
                throw new Error('resolver bug');
              },
            },
          },
        }),
      ],
      controllers: [FailFastController, QueueController],
      providers: [{ provide: Probe, useValue: probe }],
    });
    running = await startApp(platform, module);
  });

  afterEach(async () => {
    probe.openAll();
    await running.close();
  });

  async function runs(path: string, id: string, headers?: Record<string, string>): Promise<Call> {
    const entered = probe.entered.length;
    const call = send(running.url, path, headers ? { headers } : {});
    await until(
      () => probe.entered.length === entered + 1,
      () => `${id} runs (entered: ${probe.entered.join(', ')})`,
    );
    return call;
  }

  async function queues(gauge: string, path: string, headers?: Record<string, string>) {
    const queued = running.gauge(gauge).queued;
    const call = send(running.url, path, headers ? { headers } : {});
    await until(() => running.gauge(gauge).queued === queued + 1, `${path} is queued`);
    return call;
  }

  it('a fail-fast gauge keeps a slot for critical while it refuses low (reason shed-priority)', async () => {
    const first = await runs('/ff/critical/c0', 'c0');
    probe.pass('c0');
    expect((await first.reply).status).toBe(200);
    const lows = [];
    for (const id of ['l1', 'l2', 'l3']) lows.push(await runs(`/ff/low/${id}`, id));
    const shed = await send(running.url, '/ff/low/l4').reply;
    expect(shed.status).toBe(429);
    expect(shed.headers['retry-after']).toBe('1');
    expect(json(shed)).toStrictEqual({
      statusCode: 429,
      message: 'Too many requests',
      error: 'Too Many Requests',
      reason: 'shed-priority',
    });
    const critical = await runs('/ff/critical/c1', 'c1');
    const full = await send(running.url, '/ff/critical/c2').reply;
    expect(full.status).toBe(429);
    expect(json(full)).toMatchObject({ reason: 'full' });
    for (const id of ['l1', 'l2', 'l3', 'c1']) probe.pass(id);
    for (const call of [...lows, critical]) expect((await call.reply).status).toBe(200);
    expect(running.gauge('ff')).toMatchObject({ inFlight: 0, rejected: 2 });
  });

  it('under a saturating low load, critical requests keep getting slots', async () => {
    let stop = false;
    const low = { ok: 0, shed: 0, other: 0 };
    const flood = async () => {
      while (!stop) {
        const reply = await send(running.url, '/ff/sleep-low').reply;
        if (reply.status === 200) low.ok++;
        else if ((json(reply) as { reason?: string }).reason === 'shed-priority') low.shed++;
        else low.other++;
      }
    };
    // Room is kept for levels seen recently: one critical call first, before the flood.
    expect((await send(running.url, '/ff/sleep-critical').reply).status).toBe(200);
    const flooders = Array.from({ length: 12 }, flood);
    await until(() => low.shed > 0, 'low is shed');
    const critical: number[] = [];
    for (let i = 0; i < 15; i++) {
      critical.push((await send(running.url, '/ff/sleep-critical').reply).status);
      await sleep(5);
    }
    stop = true;
    await Promise.all(flooders);
    expect(critical).toEqual(new Array(15).fill(200));
    expect(low.ok).toBeGreaterThan(0);
    expect(low.shed + low.other).toBeGreaterThan(0);
  });

  it('a queue serves critical first; the header counts only from a trusted caller', async () => {
    const holder = await runs('/q/a', 'a');
    const calls = [
      await queues('q', '/q/low', { ...SECRET, 'x-priority': 'low' }),
      await queues('q', '/q/normal'),
      await queues('q', '/q/forged', { 'x-priority': 'critical' }), // no secret: normal
      await queues('q', '/q/critical', { ...SECRET, 'x-priority': 'CRITICAL' }),
      await queues('q', '/q/high', { ...SECRET, 'x-priority': 'high' }),
    ];
    const order = ['critical', 'high', 'normal', 'forged', 'low'];
    probe.pass('a');
    for (const [i, id] of order.entries()) {
      await until(() => probe.entered.length === i + 2, `${id} runs`);
      probe.pass(id);
    }
    expect(probe.entered).toEqual(['a', ...order]);
    for (const call of [holder, ...calls]) expect((await call.reply).status).toBe(200);
  });

  it("a 'lifo' queue serves the newest first", async () => {
    const calls = [
      await runs('/q/lifo/a', 'a'),
      await queues('lifo', '/q/lifo/b'),
      await queues('lifo', '/q/lifo/c'),
    ];
    probe.pass('a');
    await until(() => probe.entered.length === 2, 'the next runs');
    expect(probe.entered).toEqual(['a', 'c']);
    probe.pass('c');
    await until(() => probe.entered.length === 3, 'the last runs');
    probe.pass('b');
    for (const call of calls) expect((await call.reply).status).toBe(200);
  });

  it('a priority resolver that throws gives normal, not a 500', async () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      for (const id of ['x', 'y']) {
        const call = await runs(`/q/throws/${id}`, id);
        probe.pass(id);
        expect((await call.reply).status).toBe(200);
      }
      expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
        "A gauge's priority resolver threw Error: resolver bug; the call (and any like it) counts as 'normal'",
      ]);
    } finally {
      warn.mockRestore();
    }
  });
});

describe('priority and discipline options at bootstrap', () => {
  const boot = async (options: unknown) => {
    const module = moduleOf({
      imports: [BackpressureModule.forRoot(options as BackpressureModuleOptions)],
    });
    const running = await startApp('express', module);
    await running.close();
  };

  it('refuses a priority that is not a function, naming the gauge', () => {
    expect(() =>
      BackpressureModule.forRoot({ gauges: { api: { priority: 'critical' as never } } }),
    ).toThrow(
      /Gauge "api": option "priority" must be a function \(context: ExecutionContext\) => 'critical' \| 'high' \| 'normal' \| 'low', got "critical"/,
    );
  });

  it('refuses an unknown discipline', async () => {
    await expect(
      boot({ gauges: { api: { queue: { size: 1, timeoutMs: 1, discipline: 'random' } } } }),
    ).rejects.toThrow(GaugeConfigError);
  });

  it('refuses @Priority with a bad level where the class is declared', () => {
    expect(() => Priority('urgent' as never)).toThrow(
      new GaugeConfigError(
        `@Priority(level): the level must be one of 'critical', 'high', 'normal', 'low', got "urgent"`,
      ),
    );
  });

  it('refuses trustedPriorityHeader without a trust check', () => {
    expect(() => trustedPriorityHeader({} as never)).toThrow(/option "trust" must be a function/);
    expect(() => trustedPriorityHeader({ trust: () => true, fallback: 'top' as never })).toThrow(
      /option "fallback" must be one of/,
    );
  });
});
