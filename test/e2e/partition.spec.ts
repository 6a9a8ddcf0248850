import 'reflect-metadata';
import { jest } from '@jest/globals';
import { Controller, Get, Param } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { BackpressureModule, GaugeConfigError, Limited, type GaugeOptions } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { json, send, type Call } from './support/http';
import { Probe } from './support/probe';
import { tenantOf } from './support/request-headers';
import { until } from '../support/wait';

@Controller('ff')
@Limited('ff')
class FailFastController {
  constructor(private readonly probe: Probe) {}

  @Get('hold/:id')
  async hold(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('sleep')
  async sleep() {
    await sleep(20);
    return 'ok';
  }
}

@Controller('brief')
@Limited('brief')
class BriefController {
  constructor(private readonly probe: Probe) {}

  @Get(':id')
  async hold(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }
}

@Controller()
class QueueController {
  constructor(private readonly probe: Probe) {}

  @Get('q/:id')
  @Limited('q')
  async any(@Param('id') id: string) {
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

const as = (key: string) => ({ headers: { 'x-tenant': key } });

describe.each(PLATFORMS)('per-key fairness on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running;

  beforeEach(async () => {
    probe = new Probe();
    const module = moduleOf({
      imports: [
        BackpressureModule.forRoot({
          gauges: {
            ff: { limit: 4, partition: tenantOf },
            brief: { limit: 2, partition: tenantOf, priorityWaitMs: 10_000 },
            q: {
              limit: 1,
              queue: { size: 10, timeoutMs: 10_000 },
              partition: { key: tenantOf, maxKeys: 100 },
            },
            throws: {
              limit: 1,
              partition: () => {
                throw new Error('resolver bug');
              },
            },
          },
        }),
      ],
      controllers: [FailFastController, BriefController, QueueController],
      providers: [{ provide: Probe, useValue: probe }],
    });
    running = await startApp(platform, module);
  });

  afterEach(async () => {
    probe.openAll();
    await running.close();
  });

  /** Sends `path` as `key` and waits until its handler runs, or it is answered without running. */
  async function runs(path: string, id: string, key: string): Promise<Call> {
    const entered = probe.entered.length;
    const call = send(running.url, path, as(key));
    let replied = false;
    void call.reply.then(
      () => (replied = true),
      () => (replied = true),
    );
    await until(
      () => probe.entered.length === entered + 1 || replied,
      () => `${id} runs (entered: ${probe.entered.join(', ')})`,
    );
    return call;
  }

  it('a key over its share is refused with key-over-share while another key gets 200s', async () => {
    const first = await runs('/ff/hold/q0', 'q0', 'quiet');
    probe.pass('q0');
    expect((await first.reply).status).toBe(200);
    // The noisy key takes its share (2 of 4) and maybe one more, never the room kept for others.
    const held: Call[] = [];
    let shed: Awaited<Call['reply']> | undefined;
    for (let i = 0; i < 4 && shed === undefined; i++) {
      const call = await runs(`/ff/hold/n${i}`, `n${i}`, 'noisy');
      if (probe.entered.includes(`n${i}`)) held.push(call);
      else shed = await call.reply;
    }
    expect(held.length).toBeGreaterThanOrEqual(2);
    expect(held.length).toBeLessThanOrEqual(3);
    expect(shed?.status).toBe(429);
    expect(shed?.headers['retry-after']).toBe('1');
    expect(json(shed!)).toStrictEqual({
      statusCode: 429,
      message: 'Too many requests',
      error: 'Too Many Requests',
      reason: 'key-over-share',
    });
    const quiet = await runs('/ff/hold/q1', 'q1', 'quiet');
    expect(probe.entered).toContain('q1');
    probe.pass('q1');
    expect((await quiet.reply).status).toBe(200);
    for (let i = 0; i < held.length; i++) probe.pass(`n${i}`);
    for (const call of held) expect((await call.reply).status).toBe(200);
    expect(running.gauge('ff')).toMatchObject({ inFlight: 0 });
  });

  /** Fills gauge `brief` (2 slots): the noisy key beyond its share, the last slot another key's. */
  async function fillBrief(): Promise<Call[]> {
    const first = await runs('/brief/q0', 'q0', 'quiet');
    probe.pass('q0');
    expect((await first.reply).status).toBe(200);
    const held = [await runs('/brief/n1', 'n1', 'noisy')];
    // Beyond its share (1 of 2): it gets the last slot only if no room need be kept (here, with
    // a 10 s wait for keys under their share, none is); else another key takes it.
    const n2 = await runs('/brief/n2', 'n2', 'noisy');
    if (probe.entered.includes('n2')) held.push(n2);
    else {
      expect(json(await n2.reply)).toMatchObject({ reason: 'key-over-share' });
      held.push(await runs('/brief/b1', 'b1', 'b'));
    }
    expect(running.gauge('brief')).toMatchObject({ inFlight: 2, queued: 0 });
    return held;
  }

  it('fail fast: a key under its share that finds the gauge full gets the next freed slot', async () => {
    const held = await fillBrief();
    const waiting = send(running.url, '/brief/c1', as('c'));
    await until(() => running.gauge('brief').queued === 1, 'c1 waits briefly');
    // The noisy key asking again does not overtake it.
    const noisy = await send(running.url, '/brief/n3', as('noisy')).reply;
    expect(noisy.status).toBe(429);
    probe.pass('n1');
    await until(() => probe.entered.includes('c1'), 'c1 runs in the freed slot');
    probe.openAll();
    for (const call of [...held, waiting]) expect((await call.reply).status).toBe(200);
    expect(running.gauge('brief')).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it('fail fast: a client that leaves during its brief wait leaks no slot and nobody runs for it', async () => {
    const held = await fillBrief();
    const waiting = send(running.url, '/brief/c1', as('c'));
    await until(() => running.gauge('brief').queued === 1, 'c1 waits briefly');
    waiting.abort();
    await until(() => running.gauge('brief').queued === 0, 'c1 leaves the wait');
    probe.openAll();
    for (const call of held) expect((await call.reply).status).toBe(200);
    await until(() => running.gauge('brief').inFlight === 0, 'every slot back');
    expect(probe.entered).not.toContain('c1');
    expect(running.gauge('brief')).toMatchObject({ inFlight: 0, queued: 0, aborted: 1 });
  });

  it('under a flood from one key, another key keeps getting slots', async () => {
    let stop = false;
    const noisy = { ok: 0, shed: 0, other: 0 };
    const flood = async () => {
      while (!stop) {
        const reply = await send(running.url, '/ff/sleep', as('noisy')).reply;
        if (reply.status === 200) noisy.ok++;
        else if ((json(reply) as { reason?: string }).reason === 'key-over-share') noisy.shed++;
        else noisy.other++;
      }
    };
    // Room is kept for keys seen recently: one quiet call first, before the flood.
    expect((await send(running.url, '/ff/sleep', as('quiet')).reply).status).toBe(200);
    const flooders = Array.from({ length: 12 }, flood);
    await until(() => noisy.shed > 0, 'the noisy key is shed');
    const quiet: number[] = [];
    for (let i = 0; i < 15; i++) {
      quiet.push((await send(running.url, '/ff/sleep', as('quiet')).reply).status);
      await sleep(5);
    }
    stop = true;
    await Promise.all(flooders);
    expect(quiet).toEqual(new Array(15).fill(200));
    expect(noisy.ok).toBeGreaterThan(0);
    expect(noisy.other).toBe(0);
  });

  it('a queue serves a key within its share before the waiters of a key beyond it', async () => {
    const queues = async (path: string, key: string) => {
      const queued = running.gauge('q').queued;
      const call = send(running.url, path, as(key));
      await until(() => running.gauge('q').queued === queued + 1, `${path} is queued`);
      return call;
    };
    const holder = await runs('/q/n0', 'n0', 'noisy');
    const calls = [
      await queues('/q/n1', 'noisy'),
      await queues('/q/n2', 'noisy'),
      await queues('/q/q1', 'quiet'),
      await queues('/q/n3', 'noisy'),
    ];
    const order = ['q1', 'n1', 'n2', 'n3'];
    probe.pass('n0');
    for (const [i, id] of order.entries()) {
      await until(() => probe.entered.length === i + 2, `${id} runs`);
      probe.pass(id);
    }
    expect(probe.entered).toEqual(['n0', ...order]);
    for (const call of [holder, ...calls]) expect((await call.reply).status).toBe(200);
  });

  it('a partition resolver that throws gives no key, not a 500', async () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      for (const id of ['x', 'y']) {
        const call = await runs(`/throws/${id}`, id, 'any');
        probe.pass(id);
        expect((await call.reply).status).toBe(200);
      }
      expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
        "A gauge's partition key resolver threw Error: resolver bug; the call (and any like it) counts as having no key",
      ]);
    } finally {
      warn.mockRestore();
    }
  });
});

describe('option partition at bootstrap', () => {
  it('refuses a partition that is neither a resolver nor { key }, naming the gauge', () => {
    expect(() =>
      BackpressureModule.forRoot({ gauges: { api: { partition: 'x-tenant' as never } } }),
    ).toThrow(
      /Gauge "api": option "partition" must be a function \(context: ExecutionContext\) => string \| undefined, or \{ key\?: that function, limit\?, maxKeys\? \}, got "x-tenant"/,
    );
    expect(() =>
      BackpressureModule.forRoot({ gauges: { api: { partition: { key: 'x-tenant' as never } } } }),
    ).toThrow(/an object whose "key" is "x-tenant"/);
  });

  it('takes per-key settings without a resolver: the keys code passes to process()', () => {
    const core: GaugeOptions = { limit: 4, partition: { limit: 1, maxKeys: 100 } };
    expect(() => BackpressureModule.forRoot({ gauges: { api: core } })).not.toThrow();
  });

  it('refuses bad per-key settings', () => {
    expect(() =>
      BackpressureModule.forRoot({ gauges: { api: { partition: { key: tenantOf, limit: 0 } } } }),
    ).toThrow(new RegExp('Gauge "api": option "partition.limit" must be an integer >= 1'));
    expect(() =>
      BackpressureModule.forRoot({
        gauges: { api: { partition: { key: tenantOf, maxkeys: 5 } as never } },
      }),
    ).toThrow(GaugeConfigError);
    expect(() =>
      BackpressureModule.forRoot({
        gauges: { api: { partition: { key: tenantOf, maxKeys: -1 } } },
      }),
    ).toThrow(/option "partition.maxKeys" must be an integer from 1/);
  });
});
